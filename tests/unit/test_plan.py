"""The plan: which files and programs one catalog becomes, and the map status reads."""

from __future__ import annotations

from sevenleague.catalog import load_catalog
from sevenleague.ecosystem import drain_seconds, render_plan

from ..conftest import ROOT
from .test_renderers import LAYOUT, TOOLS


def test_plan_runs_the_platform_and_every_instance():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    assert [p.name for p in plan.programs] == [
        "haproxy", "prometheus", "alertmanager", "builds", "identity", "renewer", "hello-1", "hello-2"]
    hello = next(p for p in plan.programs if p.name == "hello-1")
    assert hello.argv[:4] == ("/opt/venv/bin/python", "-m", "sevenleague.kit.serve", "hello.app:app")
    assert "--port" in hello.argv and hello.argv[hello.argv.index("--port") + 1] == "8001"
    assert hello.environment == {"LEAGUE_SERVICE": "hello", "LEAGUE_INSTANCE": "hello-1"}


def test_plan_writes_each_config_with_its_checker():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    checked = {f.path.name: f.checker for f in plan.files}
    assert checked["haproxy.cfg"] == "haproxy"
    assert checked["prometheus.yml"] == "prometheus"
    assert checked["alertmanager.yml"] == "alertmanager"
    names = [f.path.name for f in plan.files]
    # prometheus.yml names the target files, so they are written before it
    assert names.index("hello.json") < names.index("prometheus.yml")


def test_instances_drain_long_enough_for_the_edge_to_notice():
    assert drain_seconds(0.5, 2) == 1.5
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    hello = next(p for p in plan.programs if p.name == "hello-1")
    assert hello.argv[hello.argv.index("--drain-seconds") + 1] == "1.5"
    assert hello.stop_timeout > 1.5


def test_snapshot_gives_endpoints_with_the_port_offset():
    catalog = load_catalog(ROOT / "ecosystem.toml", port_offset=300)
    snapshot = render_plan(catalog, LAYOUT, TOOLS).snapshot
    assert snapshot["endpoints"]["edge"] == "http://127.0.0.1:8380/"
    assert snapshot["endpoints"]["prometheus"] == "http://127.0.0.1:9390/"
    assert [i["port"] for i in snapshot["instances"]] == [8301, 8302]
    assert snapshot["instances"][0]["probe"] == {"http": "https://127.0.0.1:8301/readyz",
                                                 "ca": str(LAYOUT.ca_file)}


def test_every_process_gets_a_certificate_request_named_as_the_catalog_names_it():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    requests = {r.name: r for r in plan.certificates}
    assert set(requests) == {"edge", "prometheus", "alertmanager", "builds", "identity", "hello-1", "hello-2"}
    assert [r.name for r in plan.certificates if r.edge] == ["edge"]
    assert requests["hello-1"].dns_names == ("hello", "hello-1", "localhost")
    assert requests["hello-1"].ips == ("127.0.0.1",)
