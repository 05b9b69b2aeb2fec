"""The plan: which files and programs one catalog becomes, and the map status reads."""

from __future__ import annotations

import json

from sevenleague.catalog import load_catalog
from sevenleague.ecosystem import drain_seconds, render_plan

from ..conftest import ROOT
from .test_renderers import LAYOUT, TOOLS


def test_plan_runs_the_platform_and_every_instance():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    assert [p.name for p in plan.programs] == [
        "haproxy", "prometheus", "alertmanager", "builds", "identity", "deploy", "renewer",
        "hello-1", "hello-2"]
    hello = next(p for p in plan.programs if p.name == "hello-1")
    assert hello.argv[:4] == ("/opt/venv/bin/python", "-m", "sevenleague.kit.serve", "hello.app:app")
    assert "--port" in hello.argv and hello.argv[hello.argv.index("--port") + 1] == "8001"
    # every instance trusts the eco-system's CA and checks tokens from its identity service
    assert hello.environment == {"LEAGUE_SERVICE": "hello", "LEAGUE_INSTANCE": "hello-1",
                                 "LEAGUE_CA_FILE": str(LAYOUT.ca_file),
                                 "LEAGUE_OIDC_ISSUER": "https://127.0.0.1:9400"}


def test_every_platform_service_serves_https_with_its_own_leaf_and_checks_tokens():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    programs = {p.name: p for p in plan.programs}
    for name in ("builds", "identity"):
        argv = programs[name].argv
        assert argv[argv.index("--tls-bundle") + 1] == str(LAYOUT.tls_bundle(name))
        assert programs[name].environment["LEAGUE_OIDC_ISSUER"] == "https://127.0.0.1:9400"
    for name in ("prometheus", "alertmanager"):
        web_config = next(a for a in programs[name].argv if a.startswith("--web.config.file="))
        rendered = next(f for f in plan.files if str(f.path) == web_config.partition("=")[2])
        assert f"pki/leaves/{name}/fullchain.pem" in rendered.text
        assert f"pki/leaves/{name}/key.pem" in rendered.text
    assert all(url.startswith("https://") for key, url in plan.snapshot["endpoints"].items()
               if key != "edge_http")
    assert plan.snapshot["endpoints"]["edge_http"] == "http://127.0.0.1:8080/"


def test_a_service_that_calls_others_gets_their_edge_urls_and_a_service_account(write_catalog):
    text = (ROOT / "ecosystem.toml").read_text().replace(
        'route = "/"', 'route = "/"\ncalls = ["echo"]') + (
        '\n[services.echo]\napp = "echo:app"\ninstances = 1\nport = 8101\nhosts = ["local"]\n'
        'route = "/echo"\n')
    plan = render_plan(load_catalog(write_catalog(text)), LAYOUT, TOOLS)
    hello = next(p for p in plan.programs if p.name == "hello-1")
    assert json.loads(hello.environment["LEAGUE_SERVICE_URLS"]) == {"echo": "https://127.0.0.1:8443/echo"}
    assert hello.environment["LEAGUE_CLIENT_SECRET_FILE"] == str(LAYOUT.client_secret("hello"))
    echo = next(p for p in plan.programs if p.name == "echo-1")
    assert "LEAGUE_SERVICE_URLS" not in echo.environment
    clients = json.loads(next(f for f in plan.files if f.path == LAYOUT.identity_clients).text)["clients"]
    assert {"name": "hello", "audiences": ["echo"],
            "scopes": ["echo.read", "echo.write", "echo.operate"]} in clients
    assert [c["name"] for c in clients] == ["source", "prometheus", "deploy", "hello"]
    # Prometheus may read the metrics of every kit process, and nothing else
    assert {"name": "prometheus", "audiences": ["builds", "identity", "deploy", "hello", "echo"],
            "scopes": ["builds.metrics", "identity.metrics", "deploy.metrics", "hello.metrics",
                       "echo.metrics"]} in clients
    assert plan.snapshot["scrape_tokens"]["audiences"] == ["builds", "identity", "deploy", "hello", "echo"]


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
    assert snapshot["endpoints"]["edge"] == "https://127.0.0.1:8743/"
    assert snapshot["endpoints"]["edge_http"] == "http://127.0.0.1:8380/"
    assert snapshot["endpoints"]["prometheus"] == "https://127.0.0.1:9390/"
    assert [i["port"] for i in snapshot["instances"]] == [8301, 8302]
    assert snapshot["instances"][0]["probe"] == {"http": "https://127.0.0.1:8301/readyz",
                                                 "ca": str(LAYOUT.ca_file)}


def test_every_process_gets_a_certificate_request_named_as_the_catalog_names_it():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    requests = {r.name: r for r in plan.certificates}
    assert set(requests) == {"edge", "prometheus", "alertmanager", "builds", "identity", "deploy",
                             "hello-1", "hello-2"}
    assert [r.name for r in plan.certificates if r.edge] == ["edge"]
    assert requests["hello-1"].dns_names == ("hello", "hello-1", "localhost")
    assert requests["hello-1"].ips == ("127.0.0.1",)
