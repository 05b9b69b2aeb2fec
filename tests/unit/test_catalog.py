"""The catalog loads the demo, applies the port offset and names its instances."""

from __future__ import annotations

import pytest

from sevenleague.catalog import format_duration, load_catalog, parse_duration

from ..conftest import MINIMAL_CATALOG, ROOT


def test_demo_catalog_describes_hello_twice_on_the_local_host():
    catalog = load_catalog(ROOT / "ecosystem.toml")
    assert list(catalog.spec.services) == ["hello"]
    assert [i.name for i in catalog.instances] == ["hello-1", "hello-2"]
    assert {i.host for i in catalog.instances} == {"local"}
    assert catalog.spec.environments["dev"].hosts == ["local"]


def test_port_offset_moves_every_port(write_catalog):
    path = write_catalog(MINIMAL_CATALOG)
    plain = load_catalog(path)
    moved = load_catalog(path, port_offset=1000)
    assert moved.spec.edge.port == plain.spec.edge.port + 1000
    assert moved.spec.edge.stats_port == plain.spec.edge.stats_port + 1000
    assert moved.spec.prometheus.port == plain.spec.prometheus.port + 1000
    assert moved.spec.alertmanager.port == plain.spec.alertmanager.port + 1000
    assert [i.port for i in moved.instances] == [9001, 9002]


def test_instances_take_consecutive_ports_and_hosts_in_turn(write_catalog):
    text = MINIMAL_CATALOG.replace('[environments.dev]', '[hosts.other]\naddress = "127.0.0.2"\n\n'
                                   '[environments.dev]')
    text = text.replace('instances = 2', 'instances = 3').replace(
        'hosts = ["local"]\n', 'hosts = ["local", "other"]\n', 2)
    catalog = load_catalog(write_catalog(text))
    assert [(i.name, i.host, i.address, i.port) for i in catalog.instances] == [
        ("hello-1", "local", "127.0.0.1", 8001),
        ("hello-2", "other", "127.0.0.2", 8002),
        ("hello-3", "local", "127.0.0.1", 8003),
    ]


def test_defaults_fill_what_the_file_leaves_out(write_catalog):
    catalog = load_catalog(write_catalog(MINIMAL_CATALOG))
    service = catalog.spec.services["hello"]
    assert service.route == "/"
    assert service.health.path == "/readyz"
    assert service.health.interval == 0.5
    assert catalog.spec.prometheus.scrape_interval == 5.0


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("5s", 5.0), ("1.5s", 1.5), ("2m", 120.0), ("1h", 3600.0), ("15d", 1296000.0),
])
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "fast", "-1s", "0s", "5 sec", ""])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "500ms"), (5.0, "5s"), (120.0, "2m"), (90.0, "90s"), (1296000.0, "15d"), (0.25, "250ms"),
])
def test_durations_render_in_the_tools_spelling(seconds, text):
    assert format_duration(seconds) == text


def test_the_catalog_reference_page_is_generated_from_the_models():
    from sevenleague.catalog.reference import render_reference

    expected = render_reference((ROOT / "ecosystem.toml").read_text())
    assert (ROOT / "docs" / "catalog.md").read_text() == expected, (
        "docs/catalog.md is stale: python -m sevenleague.catalog.reference > docs/catalog.md")


def test_every_toml_example_in_the_docs_loads(tmp_path):
    """The documented examples are the schema: each ```toml block in docs/ and README validates."""
    import re

    from sevenleague.catalog import parse_catalog

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = [(page.name, block) for page in pages
              for block in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)]
    assert blocks, "no ```toml example found in the docs"
    for name, block in blocks:
        if "[ecosystem]" in block:  # whole catalogs; fragments are checked inside the demo
            parse_catalog(block, name)
