"""The plan: which files and programs one catalog becomes, and the map status reads."""

from __future__ import annotations

import json

import pytest

from sevenleague.catalog import CatalogError, load_catalog
from sevenleague.ecosystem import drain_seconds, render_plan
from sevenleague.hosts import LocalHost

from ..conftest import ROOT
from .test_renderers import LAYOUT, TOOLS


def test_plan_runs_the_platform_and_every_instance():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    assert [p.name for p in plan.programs] == [
        "haproxy", "prometheus", "alertmanager", "builds", "identity", "deploy", "logs", "renewer",
        "node-exporter", "agent", "hello-1", "hello-2"]
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
    for name in ("builds", "identity", "deploy", "logs", "agent"):
        argv = programs[name].argv
        assert argv[argv.index("--tls-bundle") + 1] == str(LAYOUT.tls_bundle(name))
        assert programs[name].environment["LEAGUE_OIDC_ISSUER"] == "https://127.0.0.1:9400"
    for name in ("prometheus", "alertmanager", "node-exporter"):
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
    assert [c["name"] for c in clients] == ["source", "prometheus", "deploy", "agent", "hello"]
    # Prometheus may read the metrics of every kit process, and nothing else
    kit = ["builds", "identity", "deploy", "logs", "agent", "hello", "echo"]
    assert {"name": "prometheus", "audiences": kit, "scopes": [f"{name}.metrics" for name in kit]} in clients
    assert plan.snapshot["scrape_tokens"]["audiences"] == [
        "builds", "identity", "deploy", "logs", "agent", "hello", "echo"]


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
    assert snapshot["endpoints"]["logs"] == "https://127.0.0.1:9900"
    assert snapshot["endpoints"]["agent"] == "https://127.0.0.1:9910"
    assert snapshot["endpoints"]["node_exporter"] == "https://127.0.0.1:9400/"
    assert {p["name"]: p["port"] for p in snapshot["processes"]}["node-exporter"] == 9400
    assert [port for _, port in snapshot["listens"] if port in (9900, 9910, 9400)] == [9900, 9910, 9400]
    assert [i["port"] for i in snapshot["instances"]] == [8301, 8302]
    assert snapshot["instances"][0]["probe"] == {"http": "https://127.0.0.1:8301/readyz",
                                                 "ca": str(LAYOUT.ca_file)}


def test_every_process_gets_a_certificate_request_named_as_the_catalog_names_it():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    requests = {r.name: r for r in plan.certificates}
    assert set(requests) == {"edge", "prometheus", "alertmanager", "builds", "identity", "deploy", "logs",
                             "agent", "node-exporter", "hello-1", "hello-2"}
    assert [r.name for r in plan.certificates if r.edge] == ["edge"]
    assert requests["hello-1"].dns_names == ("hello", "hello-1", "localhost")
    assert requests["hello-1"].ips == ("127.0.0.1",)


def test_the_logs_service_keeps_what_the_catalog_says_as_seconds_and_bytes(write_catalog):
    text = (ROOT / "ecosystem.toml").read_text().replace('retention = "7d"          # older',
                                                         'retention = "36h"         # older').replace(
        'max_size = "1GiB"', 'max_size = "500MB"')
    logs = next(p for p in render_plan(load_catalog(write_catalog(text)), LAYOUT, TOOLS).programs
                if p.name == "logs")
    assert logs.argv[3] == "sevenleague.logs.service:app"
    assert logs.environment["LEAGUE_LOGS_RETENTION"] == "129600.0"
    assert logs.environment["LEAGUE_LOGS_MAX_BYTES"] == "500000000"
    assert logs.environment["LEAGUE_OIDC_ISSUER"] == "https://127.0.0.1:9400"


def test_the_agent_knows_whose_lines_every_program_of_the_plan_logs():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml"), LAYOUT, TOOLS)
    agent = next(p for p in plan.programs if p.name == "agent")
    env = agent.environment
    owners = json.loads(env["LEAGUE_AGENT_PROGRAMS"])
    assert set(owners) == {p.name for p in plan.programs}
    assert owners["hello-2"] == {"service": "hello", "instance": "hello-2"}
    assert owners["logs"] == {"service": "logs", "instance": "logs-1"}
    assert owners["agent"] == {"service": "agent", "instance": "agent-1"}
    assert owners["haproxy"] == {"service": "edge", "instance": "edge"}
    assert owners["node-exporter"] == {"service": "node-exporter", "instance": "node-exporter"}
    assert env["LEAGUE_AGENT_HOST"] == "local"
    assert env["LEAGUE_AGENT_LOG_DIR"] == str(LAYOUT.logs)
    assert env["LEAGUE_AGENT_STATE_DIR"] == str(LAYOUT.home / "agent")
    assert env["LEAGUE_AGENT_SUPERVISOR_SOCKET"] == str(LocalHost("demo", LAYOUT.home).paths.socket)
    assert json.loads(env["LEAGUE_SERVICE_URLS"]) == {"logs": "https://127.0.0.1:9600"}
    assert (env["LEAGUE_CLIENT_ID"], env["LEAGUE_CLIENT_SECRET_FILE"]) == (
        "agent", str(LAYOUT.client_secret("agent")))
    assert agent.argv[agent.argv.index("--port") + 1] == "9610"
    clients = json.loads(next(f for f in plan.files if f.path == LAYOUT.identity_clients).text)["clients"]
    assert {"name": "agent", "audiences": ["logs"], "scopes": ["logs.write"]} in clients


def test_the_node_exporter_serves_https_on_its_port_without_the_systemd_collector():
    plan = render_plan(load_catalog(ROOT / "ecosystem.toml", port_offset=10), LAYOUT, TOOLS)
    exporter = next(p for p in plan.programs if p.name == "node-exporter")
    assert exporter.argv == ("/usr/bin/prometheus-node-exporter", "--web.listen-address=127.0.0.1:9110",
                             f"--web.config.file={LAYOUT.home}/node-exporter/web.yml",
                             "--no-collector.systemd")
    probe = next(p for p in plan.snapshot["processes"] if p["name"] == "node-exporter")["probe"]
    assert probe == {"http": "https://127.0.0.1:9110/", "ca": str(LAYOUT.ca_file)}


def test_without_a_local_host_nothing_runs_once_per_machine(write_catalog):
    text = (ROOT / "ecosystem.toml").read_text().replace('driver = "local" ', 'driver = "ssh"   ')
    plan = render_plan(load_catalog(write_catalog(text)), LAYOUT, TOOLS)
    names = {p.name for p in plan.programs}
    assert "logs" in names and not names & {"agent", "node-exporter"}
    assert not {"agent", "node-exporter"} & {c.name for c in plan.certificates}


SSH_HOSTS = (ROOT / "ecosystem.toml").read_text().replace('[environments.dev]\nhosts = ["local"]', (
    '[hosts.web]\ndriver = "ssh"\naddress = "10.0.0.9"\nssh_user = "deployer"\nssh_port = 2222\n'
    'ssh_key = "keys/id 25519"\nknown_hosts = "keys/known_hosts"\n\n'
    '[hosts.db]\ndriver = "ssh"\naddress = "db.example.org"\n\n'
    '[hosts.spare]\ndriver = "ssh"\naddress = "10.0.0.10"\n\n'
    '[environments.dev]\nhosts = ["local"]\n\n[environments.prod]\nhosts = ["web", "db", "spare"]')).replace(
    'instances = 2\nport = 8001               # hello-1 on 8001, hello-2 on 8002\nhosts = ["local"]',
    'instances = 3\nport = 8001\nhosts = ["local", "web", "db"]\npackage = "hello-app"')


def test_each_ssh_host_with_instances_gets_an_agent_here_that_follows_its_journal_over_ssh(write_catalog):
    path = write_catalog(SSH_HOSTS)
    catalog = load_catalog(path, port_offset=5)
    plan = render_plan(catalog, LAYOUT, TOOLS)
    programs = {p.name: p for p in plan.programs}
    # ssh hosts in name order: db, spare, web -> agent_port + 1, + 2, + 3; spare runs nothing yet
    assert [name for name in programs if name.startswith("agent")] == ["agent-db", "agent-web", "agent"]
    web = programs["agent-web"]
    argv = web.argv
    assert argv[3] == "sevenleague.agent.service:app"
    assert [argv[argv.index(flag) + 1] for flag in ("--host", "--port", "--service", "--instance")] == [
        "127.0.0.1", "9618", "agent", "agent-web"]
    assert argv[argv.index("--tls-bundle") + 1] == str(LAYOUT.tls_bundle("agent-web"))
    env = web.environment
    keys = path.parent / "keys"
    assert json.loads(env["LEAGUE_AGENT_JOURNAL_COMMAND"]) == [
        "ssh", "-o", f'IdentityFile="{keys}/id 25519"', "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={keys}/known_hosts", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=10",
        "-p", "2222", "deployer@10.0.0.9", "journalctl"]
    assert json.loads(programs["agent-db"].environment["LEAGUE_AGENT_JOURNAL_COMMAND"])[1:] == [
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=10", "-p", "22", "root@db.example.org", "journalctl"]
    # the units of its instances (PACKAGE@PORT), named as the catalog names them
    assert json.loads(env["LEAGUE_AGENT_PROGRAMS"]) == {
        "hello-app@8007": {"service": "hello", "instance": "hello-2"}}
    assert {key: value for key, value in env.items() if key not in (
        "LEAGUE_AGENT_JOURNAL_COMMAND", "LEAGUE_AGENT_PROGRAMS")} == {
        "LEAGUE_HOME": str(LAYOUT.home), "LEAGUE_SERVICE": "agent", "LEAGUE_INSTANCE": "agent-web",
        "LEAGUE_AGENT_HOST": "web", "LEAGUE_AGENT_SOURCE": "journal",
        "LEAGUE_AGENT_STATE_DIR": str(LAYOUT.home / "agent" / "web"),
        "LEAGUE_SERVICE_URLS": json.dumps({"logs": "https://127.0.0.1:9605"}),
        "LEAGUE_CLIENT_ID": "agent", "LEAGUE_CLIENT_SECRET_FILE": str(LAYOUT.client_secret("agent")),
        "LEAGUE_CA_FILE": str(LAYOUT.ca_file), "LEAGUE_OIDC_ISSUER": "https://127.0.0.1:9405"}
    # this machine's agent follows theirs like any program of its own
    owners = json.loads(programs["agent"].environment["LEAGUE_AGENT_PROGRAMS"])
    assert owners["agent-db"] == {"service": "agent", "instance": "agent-db"}
    # their ports are claimed, probed, given a leaf, and scraped under the host they follow
    listens = [(item.port, item.owner) for item in plan.listens if item.owner.startswith("logs.agent")]
    assert listens == [(9615, "logs.agent_port"), (9616, "logs.agent_port (agent-db)"),
                       (9618, "logs.agent_port (agent-web)")]
    probes = {p["name"]: p["probe"] for p in plan.snapshot["processes"]}
    assert probes["agent-web"] == {"http": "https://127.0.0.1:9618/readyz", "ca": str(LAYOUT.ca_file)}
    leaves = {c.name: c for c in plan.certificates}
    assert (leaves["agent-web"].dns_names, leaves["agent-web"].ips) == (
        ("agent", "agent-web", "localhost"), ("127.0.0.1",))
    assert "agent-spare" not in leaves and "agent-spare" not in programs
    agents = next(f for f in plan.files if f.path.name == "agent.json")
    assert [(group["targets"], group["labels"]["host"]) for group in json.loads(agents.text)] == [
        (["127.0.0.1:9615"], "local"), (["127.0.0.1:9616"], "db"), (["127.0.0.1:9618"], "web")]


def test_an_ssh_hosts_agent_port_that_clashes_is_refused_naming_the_rule(write_catalog):
    text = SSH_HOSTS.replace("port = 9600 ", "port = 9612 ")  # spare's agent, though it runs none yet
    with pytest.raises(CatalogError) as refused:
        load_catalog(write_catalog(text))
    [line] = refused.value.lines()
    assert line.endswith(
        "ecosystem.toml:87: logs.agent_port: port 9612 clashes with logs.port on host 'local' (hint: the "
        "agents of the ssh hosts listen on agent_port + 1, + 2, ... in host name order: move agent_port "
        "to a free range)"), line
