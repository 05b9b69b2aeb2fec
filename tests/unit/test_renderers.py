"""Every config sevenleague writes is a pure function of the catalog; here against golden files.

The real tools check the same output in tests/integration/test_checkers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sevenleague.catalog import load_catalog
from sevenleague.ecosystem import StateLayout, Tools, render_plan
from sevenleague.hosts import SupervisordPaths, render_supervisord_conf
from sevenleague.proxy import render_haproxy_cfg
from sevenleague.telemetry import (
    render_alertmanager_yml,
    render_file_sd,
    render_prometheus_yml,
    scrape_jobs,
)

from ..conftest import MINIMAL_CATALOG, ROOT
from .golden import assert_golden

HOME = Path("/srv/league")
LAYOUT = StateLayout(HOME)
TOOLS = Tools(python=Path("/opt/venv/bin/python"), haproxy=Path("/usr/sbin/haproxy"),
              prometheus=Path("/usr/bin/prometheus"), promtool=Path("/usr/bin/promtool"),
              alertmanager=Path("/usr/bin/prometheus-alertmanager"), amtool=Path("/usr/bin/amtool"),
              node_exporter=Path("/usr/bin/prometheus-node-exporter"))

TWO_SERVICES = MINIMAL_CATALOG + """
[services.ledger]
app = "ledger.app:app"
instances = 3
port = 8101
hosts = ["local"]
route = "/ledger"

[services.ledger.health]
path = "/ready"
interval = "1s"
fall = 3
rise = 1
"""


@pytest.fixture
def demo():
    return load_catalog(ROOT / "ecosystem.toml")


@pytest.fixture
def two_services(write_catalog):
    return load_catalog(write_catalog(TWO_SERVICES))


def test_haproxy_cfg_of_the_demo(demo):
    assert_golden("demo-haproxy.cfg", render_haproxy_cfg(demo, LAYOUT.haproxy))


def test_haproxy_cfg_routes_by_longest_prefix(two_services):
    text = render_haproxy_cfg(two_services, LAYOUT.haproxy)
    assert_golden("two-services-haproxy.cfg", text)
    assert "use_backend svc_ledger if { path /ledger } || { path_beg /ledger/ }" in text
    assert "default_backend svc_hello" in text


def test_haproxy_checks_each_service_on_its_own_readiness_path(two_services):
    text = render_haproxy_cfg(two_services, LAYOUT.haproxy)
    assert "http-check send meth GET uri /ready ver HTTP/1.1 hdr Host ledger" in text
    assert "default-server inter 1s fall 3 rise 1" in text
    assert "server ledger-3 127.0.0.1:8103 check" in text


def test_haproxy_retries_only_idempotent_requests(demo):
    text = render_haproxy_cfg(demo, LAYOUT.haproxy)
    assert "retry-on conn-failure empty-response response-timeout" in text
    assert "http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_PUT" in text


def test_without_a_root_route_the_edge_answers_404(write_catalog):
    catalog = load_catalog(write_catalog(MINIMAL_CATALOG.replace(
        'port = 8001\n', 'port = 8001\nroute = "/hello"\n')))
    text = render_haproxy_cfg(catalog, LAYOUT.haproxy)
    assert "default_backend no_route" in text
    assert 'http-request return status 404' in text


def test_prometheus_yml_of_the_demo(demo):
    jobs = scrape_jobs(demo)
    assert_golden("demo-prometheus.yml", render_prometheus_yml(demo, jobs, LAYOUT.prometheus))


def test_every_instance_haproxy_and_platform_process_is_a_target(two_services):
    jobs = {job.name: job for job in scrape_jobs(two_services)}
    assert set(jobs) == {"prometheus", "alertmanager", "haproxy", "node", "builds", "identity", "deploy",
                         "logs", "agent", "hello", "ledger"}
    assert [t.address for t in jobs["ledger"].targets] == [
        "127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8103"]
    assert jobs["haproxy"].targets[0].address == "127.0.0.1:8404"
    assert jobs["node"].targets[0].address == "127.0.0.1:9100"
    # kit processes are scraped with a token for themselves; the exporters need none
    assert {name: job.audience for name, job in jobs.items() if job.audience} == {
        "builds": "builds", "identity": "identity", "deploy": "deploy", "logs": "logs", "agent": "agent",
        "hello": "hello", "ledger": "ledger"}
    assert_golden("two-services-ledger-targets.json", render_file_sd(jobs["ledger"]))


SSH_HOSTS = MINIMAL_CATALOG.replace('[environments.dev]', (
    '[hosts.other]\naddress = "127.0.0.2"\nnode_exporter_port = 9101\n\n'
    '[hosts.far]\ndriver = "ssh"\naddress = "10.0.0.9"\n\n'
    '[hosts.named]\ndriver = "ssh"\naddress = "db.example.org"\nnode_exporter_port = 9200\n\n'
    '[environments.dev]'))


def test_the_node_job_scrapes_this_machine_once_and_every_ssh_host_at_its_own_port(write_catalog):
    catalog = load_catalog(write_catalog(SSH_HOSTS), port_offset=5)
    jobs = {job.name: job for job in scrape_jobs(catalog)}
    assert [(t.address, t.labels) for t in jobs["node"].targets] == [
        ("127.0.0.1:9105", {"host": "local", "component": "node"}),  # "other" is this machine too
        ("10.0.0.9:9100", {"host": "far", "component": "node"}),  # the offset stays here
        ("db.example.org:9200", {"host": "named", "component": "node"})]
    assert jobs["node"].audience is None  # an exporter: no token, only the CA
    config = render_prometheus_yml(catalog, list(jobs.values()), LAYOUT.prometheus)
    node = next(job for job in yaml.safe_load(config)["scrape_configs"] if job["job_name"] == "node")
    assert node["scheme"] == "https"
    assert node["tls_config"] == {"ca_file": str(LAYOUT.ca_file)}


def test_without_a_local_host_the_node_job_still_scrapes_the_ssh_hosts(write_catalog):
    text = SSH_HOSTS.replace('address = "127.0.0.1"', 'driver = "ssh"\naddress = "10.0.0.8"')
    text = text.replace('address = "127.0.0.2"', 'driver = "ssh"\naddress = "10.0.0.7"')
    jobs = {job.name: job for job in scrape_jobs(load_catalog(write_catalog(text)))}
    assert [t.labels["host"] for t in jobs["node"].targets] == ["local", "other", "far", "named"]
    assert "agent" not in jobs


def test_each_ssh_hosts_exporter_gets_a_leaf_for_its_address(write_catalog):
    requests = {r.name: r for r in render_plan(load_catalog(write_catalog(SSH_HOSTS)), LAYOUT, TOOLS)
                .certificates}
    assert {name for name in requests if name.startswith("node-exporter")} == {
        "node-exporter", "node-exporter-far", "node-exporter-named"}
    assert (requests["node-exporter-far"].dns_names, requests["node-exporter-far"].ips) == (
        ("node-exporter-far", "localhost"), ("10.0.0.9", "127.0.0.1"))
    assert requests["node-exporter-named"].dns_names == (
        "node-exporter-named", "localhost", "db.example.org")
    assert not requests["node-exporter-far"].edge


def test_alertmanager_yml(demo):
    assert_golden("demo-alertmanager.yml", render_alertmanager_yml(demo))


def test_supervisord_conf_of_the_demo(demo):
    plan = render_plan(demo, LAYOUT, TOOLS)
    paths = SupervisordPaths(config=HOME / "supervisord.conf", socket=HOME / "supervisord.sock",
                             pidfile=HOME / "supervisord.pid", logfile=HOME / "logs/supervisord.log",
                             log_dir=HOME / "logs")
    assert_golden("demo-supervisord.conf", render_supervisord_conf("demo", plan.programs, paths))


@pytest.mark.parametrize("value", ["plain", '{"echo": "https://127.0.0.1:8443/echo"}', "a\\b", "x,y=z"])
def test_supervisord_reads_back_every_environment_value_as_written(value):
    from supervisor.datatypes import dict_of_key_value_pairs

    from sevenleague.hosts import Program
    from sevenleague.hosts._supervisord_conf import render_program

    text = render_program(Program("p", ("true",), environment={"K": value, "L": "after"}), Path("/logs"))
    [line] = [line for line in text.splitlines() if line.startswith("environment = ")]
    parsed = dict_of_key_value_pairs(line.removeprefix("environment = "))
    assert parsed == {"K": value, "L": "after"}
