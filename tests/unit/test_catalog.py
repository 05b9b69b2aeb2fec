"""The catalog loads the demo, applies the port offset and names its instances."""

from __future__ import annotations

import pytest

from sevenleague.catalog import format_duration, format_size, load_catalog, parse_duration, parse_size

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
    assert (moved.spec.logs.port, moved.spec.logs.agent_port) == (10600, 10610)
    assert moved.spec.hosts["local"].node_exporter_port == 10100


def test_port_offset_leaves_the_node_exporter_of_an_ssh_host_where_its_package_put_it(write_catalog):
    text = MINIMAL_CATALOG.replace('[environments.dev]', '[hosts.far]\ndriver = "ssh"\naddress = "10.0.0.9"\n'
                                   'node_exporter_port = 9200\n\n[environments.dev]')
    moved = load_catalog(write_catalog(text), port_offset=1000)
    assert moved.spec.hosts["far"].node_exporter_port == 9200
    assert moved.spec.hosts["local"].node_exporter_port == 10100


def test_the_logs_table_has_defaults_and_reads_sizes_and_durations(write_catalog):
    plain = load_catalog(write_catalog(MINIMAL_CATALOG)).spec.logs
    assert (plain.host, plain.port, plain.agent_port) == ("local", 9600, 9610)
    assert (plain.retention, plain.max_size) == (7 * 86400.0, 1024**3)
    demo = load_catalog(ROOT / "ecosystem.toml").spec.logs
    assert (demo.retention, demo.max_size) == (7 * 86400.0, 1024**3)
    text = MINIMAL_CATALOG + '\n[logs]\nretention = "36h"\nmax_size = "500MB"\n'
    logs = load_catalog(write_catalog(text)).spec.logs
    assert (logs.retention, logs.max_size) == (36 * 3600.0, 500_000_000)


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


@pytest.mark.parametrize(("text", "size"), [
    ("1GiB", 1024**3), ("500MB", 500_000_000), ("64KiB", 65536), ("1kB", 1000), ("2TB", 2 * 10**12),
    ("1.5GiB", 1536 * 1024**2), ("1TiB", 1024**4), ("4096B", 4096),
])
def test_sizes_read_as_bytes_binary_units_per_1024_decimal_per_1000(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1G", "1KB", "1 GiB", "1gib", "GiB", "-1MB", "0B", "0.5B", "", 1024])
def test_bad_sizes_are_refused_with_the_accepted_spellings(text):
    with pytest.raises(ValueError, match="size") as refused:
        parse_size(text)
    assert repr(text) in str(refused.value)


@pytest.mark.parametrize(("size", "text"), [
    (1024**3, "1GiB"), (500_000_000, "500MB"), (1000, "1kB"), (1536 * 1024**2, "1536MiB"), (7, "7B"),
])
def test_sizes_render_in_their_shortest_exact_spelling(size, text):
    assert format_size(size) == text
    assert parse_size(text) == size


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
