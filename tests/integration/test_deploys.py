"""Rolling deployments: real builds, real HAProxy, supervisord here and systemd on real hosts, under load.

One eco-system for the module. hello runs five instances: `staging` is this machine
(hello-1 and hello-5, supervisord), `prod` is three Debian hosts booted with
systemd-nspawn on a test bridge (hello-2, hello-3, hello-4: systemd units of the
installed .deb, reached over SSH). Every platform service listens on this machine's
bridge address, so the hosts reach the apt repository and the identity service there.
Four releases of hello are built and published by the eco-system's own build service
first: two good ones, one that never becomes ready where it is deployed, one that fails
half the requests that come through the edge. Every deploy below runs while clients
send requests through the edge, and counts what failed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from sevenleague.catalog import load_catalog
from sevenleague.hosts import LocalHost, SshHost
from sevenleague.logs.client import LogsClient
from sevenleague.pki import ensure_ca, issue_leaf
from sevenleague.testing import SteadyLoad, record_figures
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem
from sevenleague.testing.nspawn import NspawnHosts, nspawn_hosts_for_tests
from sevenleague.testing.releases import (
    deploy_catalog,
    fails_behind_proxy,
    greeting,
    needs_setting,
    publish_hello,
)

from ..conftest import ROOT

# A hang guard, not a time limit: the first test's setup builds the hosts' root filesystem
# when none is cached (debootstrap, minutes on a fresh machine), boots them, starts the
# eco-system and builds two releases.
pytestmark = pytest.mark.timeout(1200)

BUILD_CACHE = ROOT / "build" / "test-cache" / "builds"
NSPAWN_CACHE = ROOT / "build" / "test-cache" / "nspawn"

STAGING = ["hello-1", "hello-5"]
PROD = ["hello-2", "hello-3", "hello-4"]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHosts]:
    with nspawn_hosts_for_tests(NSPAWN_CACHE, 3, tmp_path_factory.mktemp("nspawn")) as booted:
        yield booted
    assert booted.leftovers() == []


@pytest.fixture(scope="module")
def eco(hosts: NspawnHosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEcosystem]:
    directory = tmp_path_factory.mktemp("deploy-eco")
    catalog = directory / "ecosystem.toml"
    catalog.write_text(deploy_catalog(hosts))
    running = start_ecosystem(catalog, extra_env={"LEAGUE_BUILD_CACHE": str(BUILD_CACHE)})
    running.login()
    yield running
    left = running.stop()
    shutil.rmtree(running.home, ignore_errors=True)
    assert left == [], f"processes left running after league down: {left}"


@pytest.fixture(scope="module")
def versions(eco: RunningEcosystem, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return publish_hello(eco, tmp_path_factory.mktemp("hello-src"), {
        "a": greeting("Hello from release A"),
        "b": greeting("Hello from release B"),
        "never-ready": needs_setting,
        "half-500": fails_behind_proxy,
    })


def league(eco: RunningEcosystem, *args: str) -> subprocess.CompletedProcess[str]:
    return eco.league(*args, check=False, timeout=300)


def running_versions(eco: RunningEcosystem) -> dict[str, str]:
    shown = json.loads(league(eco, "releases", "hello", "--json").stdout)
    return {row["instance"]: row["version"] for row in shown["instances"]}


def greetings(eco: RunningEcosystem, count: int = 40) -> set[str]:
    return {eco.get(eco.endpoints["edge"]).body.decode().strip() for _ in range(count)}


def deployment(eco: RunningEcosystem, output: str) -> dict[str, Any]:
    return json.loads(output)


def load(eco: RunningEcosystem) -> SteadyLoad:
    return SteadyLoad(eco.endpoints["edge"], clients=4, ca_file=eco.ca_file, pause=0.005)


def test_bad_deploys_are_refused_with_a_reason_and_change_nothing(eco, versions):
    unknown_env = league(eco, "deploy", "hello", versions["a"], "--env", "qa")
    assert unknown_env.returncode == 1
    assert unknown_env.stderr.strip() == (
        "league: no environment 'qa' in the catalog (hint: environments: prod, staging)")
    bad_version = league(eco, "deploy", "hello", "latest", "--env", "staging")
    assert bad_version.returncode == 1 and "version must be a Debian version" in bad_version.stderr
    missing = league(eco, "deploy", "hello", "9.9.9-1", "--env", "staging")
    assert missing.returncode == 6, missing.stdout + missing.stderr
    assert "hello 9.9.9-1 is not in the apt repository" in missing.stdout
    assert "switch" not in missing.stdout  # it failed before touching any instance
    for output in (unknown_env, bad_version, missing):
        assert "Traceback" not in output.stderr
    assert set(running_versions(eco).values()) == {""}


def test_promotion_is_refused_naming_the_gate_while_staging_runs_no_release(eco, versions):
    refused = league(eco, "promote", "hello", "--from", "staging", "--to", "prod")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "gate one-release failed: staging runs no single release of hello" in refused.stderr
    backwards = league(eco, "promote", "hello", "--from", "prod", "--to", "staging")
    assert backwards.returncode == 5
    assert "gate promotion-path failed: staging takes no promotions" in backwards.stderr


def test_a_rolling_deploy_and_a_promotion_under_load_fail_no_request(eco, versions):
    with load(eco) as steady:
        deployed = league(eco, "deploy", "hello", versions["a"], "--env", "staging")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        too_soon = league(eco, "promote", "hello", "--from", "staging", "--to", "prod")
        assert too_soon.returncode == 5 and "gate soak failed" in too_soon.stderr, too_soon.stderr
        time.sleep(10.5)
        promoted = league(eco, "promote", "hello", "--from", "staging", "--to", "prod")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        tally = steady.stop()
    assert tally.failed == 0, tally.as_figures()
    assert tally.ok > 100
    for step in ("drain", "switch", "ready", "in rotation", "verify"):
        assert f"hello-1      {step}" in deployed.stdout.replace("✓ ", ""), deployed.stdout
    for gate in ("promotion-path", "one-release", "build-passed", "soak"):
        assert gate in promoted.stdout
    assert running_versions(eco) == {name: versions["a"] for name in STAGING + PROD}
    assert greetings(eco) == {"Hello from release A"}


def test_a_request_served_on_a_host_is_in_the_logs_named_as_the_catalog_names_its_host_and_instance(
        eco, versions):
    """Each ssh host's journal is followed from this machine by an agent of its own, over SSH."""
    catalog = load_catalog(eco.catalog, port_offset=eco.offset)
    host_of = {i.name: i.host for i in catalog.instances}
    snapshot = json.loads((eco.home / "ecosystem.json").read_text())
    agents = {p["name"]: p["probe"]["http"] for p in snapshot["processes"] if p["name"].startswith("agent-")}
    assert sorted(agents) == ["agent-h1", "agent-h2", "agent-h3"]
    for name, readyz in agents.items():
        assert eco.get(readyz).status == 200, name
    served_by = ""
    for _ in range(50):  # the edge balances over five instances; three of them run on the hosts
        answer = eco.get(eco.endpoints["edge"])
        served_by = answer.headers["x-served-by"].removeprefix("hello/")
        if served_by in PROD:
            break
    assert served_by in PROD, "the edge sent no request to an instance on a host"
    request_id = answer.headers["x-request-id"]
    served = time.monotonic()
    client = LogsClient.from_home(eco.home, token=lambda: eco.token("logs", "logs.read"))
    records: list[dict[str, Any]] = []
    while time.monotonic() - served < 10:
        records = [r for r in client.search({"request_id": request_id})["records"] if r["service"] == "hello"]
        if records:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"after 10 s no line of request {request_id} served by {served_by} in the logs")
    [line] = records
    assert (line["host"], line["instance"], line["status"]) == (host_of[served_by], served_by, 200), line
    assert line["program"] == f"hello@{next(i.port for i in catalog.instances if i.name == served_by)}"
    print(f"a line of {served_by} on {line['host']} was found in the logs "
          f"{time.monotonic() - served:.1f}s after the request")


def instances_on(eco: RunningEcosystem, hosts: NspawnHosts) -> dict[str, Any]:
    """Each booted host's hello instance, by host name, from the catalog the eco-system runs."""
    catalog = load_catalog(eco.catalog, port_offset=eco.offset)
    addresses = {spec.address: name for name, spec in catalog.spec.hosts.items()}
    return {host.name: i for host in hosts.hosts for i in catalog.instances
            if addresses.get(host.address) == i.host}


async def on_every_host(hosts: NspawnHosts, argv: Callable[[str], list[str]]) -> dict[str, Any]:
    async def one(host: Any) -> Any:
        async with SshHost(host.name, host.address, client_key=hosts.client_key,
                           known_hosts=hosts.known_hosts) as ssh:
            return await ssh.run(argv(host.name), check=False)

    results = await asyncio.gather(*(one(h) for h in hosts.hosts))
    return {h.name: r for h, r in zip(hosts.hosts, results, strict=True)}


def test_on_the_real_hosts_instances_are_units_of_the_installed_package(eco, versions, hosts):
    instance = instances_on(eco, hosts)
    unit = {host: f"hello@{i.port}.service" for host, i in instance.items()}
    assert len(unit) == 3
    status = asyncio.run(on_every_host(hosts, lambda h: ["systemctl", "status", "--no-pager", unit[h]]))
    owner = asyncio.run(on_every_host(hosts, lambda h: ["dpkg", "-S", "/lib/systemd/system/hello@.service"]))
    installed = asyncio.run(on_every_host(hosts, lambda h: ["dpkg-query", "-W", "-f=${Version}", "hello"]))
    journal = asyncio.run(on_every_host(hosts, lambda h: ["journalctl", "--no-pager", "-o", "cat",
                                                          "-u", unit[h]]))
    verify = asyncio.run(on_every_host(hosts, lambda h: ["systemd-analyze", "verify", unit[h]]))
    for host in hosts.hosts:
        said = status[host.name].stdout
        assert status[host.name].returncode == 0, said
        assert "Loaded: loaded (/lib/systemd/system/hello@.service; enabled" in said, said
        assert "Active: active (running)" in said and "/etc/systemd/system/hello@.service.d" in said, said
        assert owner[host.name].stdout.startswith("hello: "), owner[host.name]
        assert installed[host.name].stdout == versions["a"]
        lines = [json.loads(line) for line in journal[host.name].stdout.splitlines() if line.startswith("{")]
        assert any(line.get("route") == "/" and line.get("status") == 200 for line in lines), lines[-5:]
        # named as the catalog names it, in the logs as in Prometheus and at the edge
        assert {line.get("instance") for line in lines} == {instance[host.name].name}
        assert verify[host.name].returncode == 0, verify[host.name].stdout + verify[host.name].stderr


def served_certificate(address: str, port: int, ca_file: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False
    with socket.create_connection((address, port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        return tls.getpeercert(binary_form=True) or b""


def test_a_renewed_certificate_reaches_the_instance_on_its_host(eco, versions, hosts):
    first = hosts.hosts[0]  # "h1" in the catalog
    instance = instances_on(eco, hosts)[first.name]
    snapshot = json.loads((eco.home / "ecosystem.json").read_text())
    wanted = {c["name"]: c for c in snapshot["certificates"]}[instance.name]
    renewed = issue_leaf(ensure_ca(eco.home / "pki", "deploys"), instance.name, wanted["dns_names"],
                         wanted["ips"], timedelta(seconds=wanted["lifetime"]))
    local = (eco.home / "pki" / "leaves" / instance.name / "bundle.pem").read_bytes()
    new_der = x509.load_pem_x509_certificate(renewed.cert.read_bytes()).public_bytes(Encoding.DER)
    assert served_certificate(first.address, instance.port, eco.ca_file) != new_der
    answer = eco.get(eco.endpoints["deploy"] + "/api/certificates", method="POST", timeout=60,
                     headers={"Authorization": f"Bearer {eco.token('deploy')}"})
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["copied"] == {"h1": [instance.name]}
    remote = asyncio.run(on_every_host(hosts, lambda h: ["cat", f"/etc/sevenleague/tls/{instance.name}.pem"]))
    assert remote[first.name].stdout.encode() == local
    deadline = time.monotonic() + 15  # the kit notices a changed bundle within a few seconds
    while served_certificate(first.address, instance.port, eco.ca_file) != new_der:
        assert time.monotonic() < deadline, "the instance still serves the old certificate"
        time.sleep(0.5)


def prometheus_query(eco: RunningEcosystem, promql: str) -> list[dict[str, Any]]:
    done = league(eco, "metrics", "query", promql, "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["result"])


def test_every_hosts_node_exporter_serves_https_and_prometheus_has_it_up_with_systemds_units(eco, hosts):
    """The deploy service enrolled each host's packaged exporter when it started (the hosts had
    booted before the eco-system): the exporter's own leaf, HTTPS only, systemd collector on."""
    started = time.monotonic()
    while True:
        up = {s["metric"]["host"]: s["value"][1] for s in prometheus_query(eco, 'up{job="node"}')}
        if up == {"local": "1", "h1": "1", "h2": "1", "h3": "1"}:
            break
        deploy_log = (eco.home / "logs" / "deploy.log").read_text(errors="replace").splitlines()
        assert time.monotonic() - started < 30, (up, [line for line in deploy_log if "node exporter" in line])
        time.sleep(1)
    # systemd's own word on each host's processes (the hello@PORT units are there the same way)
    active = prometheus_query(eco, 'node_systemd_unit_state{name="ssh.service", state="active"} == 1')
    assert {s["metric"]["host"] for s in active} == {"h1", "h2", "h3"}
    first = hosts.hosts[0]
    leaf = x509.load_der_x509_certificate(served_certificate(first.address, 9100, eco.ca_file))
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node-exporter-h1"
    with pytest.raises(urllib.error.HTTPError) as plain:  # no plain-HTTP way in
        urllib.request.urlopen(f"http://{first.address}:9100/metrics", timeout=5)
    assert plain.value.code == 400
    print(f"node exporters of 4 hosts up {time.monotonic() - started:.1f}s after the test began")
    # a renewed leaf travels like an instance's, and is served from the next handshake, no restart
    wanted = {c["name"]: c for c in json.loads((eco.home / "ecosystem.json").read_text())["certificates"]}
    renewed = issue_leaf(ensure_ca(eco.home / "pki", "deploys"), "node-exporter-h1",
                         wanted["node-exporter-h1"]["dns_names"], wanted["node-exporter-h1"]["ips"],
                         timedelta(seconds=wanted["node-exporter-h1"]["lifetime"]))
    answer = eco.get(eco.endpoints["deploy"] + "/api/certificates", method="POST", timeout=60,
                     headers={"Authorization": f"Bearer {eco.token('deploy')}"})
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["node_exporters"] == {"h1": ["certificate"], "h2": [], "h3": []}
    new_der = x509.load_pem_x509_certificate(renewed.cert.read_bytes()).public_bytes(Encoding.DER)
    assert served_certificate(first.address, 9100, eco.ca_file) == new_der


def test_host_check_finds_every_host_ready_for_a_deploy(eco, versions, hosts):
    checked = league(eco, "host", "check", "--json")
    results = json.loads(checked.stdout)
    assert checked.returncode == 0, results
    for name in ("h1", "h2", "h3"):
        assert {r["check"] for r in results if r["host"] == name} == {
            "ssh", "systemd", "apt source", "clock", "disk"}
    assert all(r["ok"] for r in results)
    hosts.nsenter(hosts.hosts[0], ["systemctl", "stop", "ssh.service"])
    down = league(eco, "host", "check", "h1")
    assert down.returncode == 1 and "✗ h1" in down.stdout and "Traceback" not in down.stderr
    hosts.nsenter(hosts.hosts[0], ["systemctl", "start", "ssh.service"])


def test_a_release_that_never_becomes_ready_is_rolled_back_failing_no_request(eco, versions):
    with load(eco) as steady:
        started = time.monotonic()
        bad = league(eco, "deploy", "hello", versions["never-ready"], "--env", "staging")
        seconds = time.monotonic() - started
        tally = steady.stop()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "was not ready within 12s" in bad.stdout and "rolled_back" in bad.stdout
    assert tally.failed == 0, tally.as_figures()
    assert running_versions(eco) == {name: versions["a"] for name in STAGING + PROD}
    assert greetings(eco) == {"Hello from release A"}
    print(f"never-ready release rolled back in {seconds:.1f}s")


def test_a_release_failing_half_its_requests_is_rolled_back_within_the_first_window(eco, versions):
    with load(eco) as steady:
        bad = league(eco, "deploy", "hello", versions["half-500"], "--env", "staging", "--json")
        tally = steady.stop()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    outcome = json.loads(bad.stdout)
    steps = json.loads(eco.get(eco.endpoints["deploy"] + f"/api/deployments/{outcome['id']}",
                               headers={"Authorization": f"Bearer {eco.token('deploy')}"}).body)["steps"]
    windows = [s for s in steps if s["action"] == "verify"]
    assert [(s["instance"], s["state"]) for s in windows] == [("hello-1", "started"), ("hello-1", "failed")]
    assert "above the gate of 10%" in windows[1]["detail"]
    assert [s["instance"] for s in steps if s["action"] == "switch" and s["state"] == "done"] == [
        "hello-1", "hello-1"], "only hello-1 was switched, and switched back"
    # Users could reach the bad release from the moment hello-1 went back in rotation until its
    # window failed and the rollback drained it: every failed request falls in there.
    exposed = next(s["at"] for s in steps if s["action"] == "in rotation" and s["state"] == "started")
    drained = next(s["at"] for s in steps if s["action"] == "drain" and s["at"] > windows[1]["at"])
    assert tally.failed > 0, "the edge sent hello-1 no request in its window: the gate judged nothing"
    outside = [at for at in tally.failed_at or [] if not exposed <= at <= drained + 0.5]
    assert outside == [], (tally.as_figures(), exposed, drained)
    assert running_versions(eco) == {name: versions["a"] for name in STAGING + PROD}
    print(f"half-500 release: {tally.failed} failed requests of {tally.ok + tally.failed}, "
          f"all inside hello-1's verification window")


def test_a_second_deploy_of_the_same_service_and_environment_is_refused_naming_the_holder(eco, versions):
    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(ROOT / ".venv" / "bin" / "league"), *args], env=eco.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start("deploy", "hello", versions["b"], "--env", "staging")
    try:
        time.sleep(1.0)
        second = league(eco, "deploy", "hello", versions["b"], "--env", "staging")
        assert second.returncode == 5, second.stdout + second.stderr
        assert "hello in staging is being deployed by admin (deployment" in second.stderr
        assert " since 20" in second.stderr
        queued = start("deploy", "hello", versions["b"], "--env", "staging", "--wait")
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    out, err = queued.communicate(timeout=120)
    assert queued.returncode == 0, out + err
    assert "waiting: hello in staging is being deployed by admin" in out
    assert f"every instance runs {versions['b']} already" in out
    assert {running_versions(eco)[name] for name in STAGING} == {versions["b"]}


def test_rollback_returns_the_previous_release_without_the_build_service_a_whole_batch_at_once(eco, versions):
    """Both staging instances in one batch (batch_percent = 100): they switch side by side."""
    catalog = eco.catalog.read_text()
    eco.catalog.write_text(catalog.replace("[deploy.rollout]\n", "[deploy.rollout]\nbatch_percent = 100\n"))
    host = LocalHost("deploys", eco.home)
    host.stop("builds")
    try:
        started = time.monotonic()
        with load(eco) as steady:
            back = league(eco, "rollback", "hello", "--env", "staging")
            tally = steady.stop()
        seconds = time.monotonic() - started
    finally:
        host.start("builds")
        eco.catalog.write_text(catalog)
    assert back.returncode == 0, back.stdout + back.stderr
    assert tally.failed == 0, tally.as_figures()
    assert {running_versions(eco)[name] for name in STAGING} == {versions["a"]}
    drained = [line.split()[1] for line in back.stdout.splitlines() if line.strip().startswith("✓")
               and line.split()[2:3] == ["drain"]]
    switched = back.stdout.index("switch")
    assert sorted(drained) == STAGING and all(back.stdout.index(f"{n}      drain") < switched
                                              for n in STAGING), back.stdout
    record_figures("deploy-local-rollback", {"instances": 2, "seconds": round(seconds, 1)})
    print(f"rollback of 2 instances in one batch: {seconds:.1f}s")


def test_on_real_hosts_a_deploy_fails_no_request_and_a_rollback_needs_no_build_service(eco, versions):
    with load(eco) as steady:
        started = time.monotonic()
        forward = league(eco, "deploy", "hello", versions["b"], "--env", "prod")
        forward_seconds = time.monotonic() - started
        assert forward.returncode == 0, forward.stdout + forward.stderr
        host = LocalHost("deploys", eco.home)
        host.stop("builds")
        try:
            started = time.monotonic()
            back = league(eco, "rollback", "hello", "--env", "prod")
            back_seconds = time.monotonic() - started
        finally:
            host.start("builds")
        tally = steady.stop()
    assert back.returncode == 0, back.stdout + back.stderr
    assert tally.failed == 0, tally.as_figures()
    assert {running_versions(eco)[name] for name in PROD} == {versions["a"]}
    record_figures("deploy-real-hosts", {"instances": len(PROD), "deploy_seconds": round(forward_seconds, 1),
                                         "rollback_seconds": round(back_seconds, 1),
                                         "requests_ok": tally.ok, "requests_failed": tally.failed})
    print(f"3 nspawn hosts: deploy {forward_seconds:.1f}s, rollback {back_seconds:.1f}s")


def test_the_audit_log_has_every_action_in_order(eco, versions):
    entries = json.loads(league(eco, "audit", "hello", "--json").stdout)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    actions = [(e["action"], e["environment"], e["outcome"]) for e in entries if e["action"] != "lock"]
    a, b = versions["a"], versions["b"]
    expected = [
        ("deploy", "staging", "started"), ("deploy", "staging", "failed"),
        ("promote", "prod", "refused"), ("promote", "staging", "refused"),
        ("deploy", "staging", "started"), ("deploy", "staging", "succeeded"),
        ("promote", "prod", "refused"),
        ("promote", "prod", "started"), ("promote", "prod", "succeeded"),
        ("deploy", "staging", "started"), ("deploy", "staging", "rolled_back"),
        ("deploy", "staging", "started"), ("deploy", "staging", "rolled_back"),
        ("deploy", "staging", "started"), ("deploy-refused", "staging", "refused"),
        ("deploy-refused", "staging", "refused"), ("deploy", "staging", "succeeded"),
        ("deploy", "staging", "started"), ("deploy", "staging", "succeeded"),
        ("rollback", "staging", "started"), ("rollback", "staging", "succeeded"),
        ("deploy", "prod", "started"), ("deploy", "prod", "succeeded"),
        ("rollback", "prod", "started"), ("rollback", "prod", "succeeded"),
    ]
    assert actions == expected, actions
    assert all(e["actor"] == "admin" for e in entries)
    finished = [e for e in entries if e["outcome"] in ("succeeded", "rolled_back")]
    assert [(e["from_version"], e["to_version"]) for e in finished] == [
        ("", a), ("", a), (a, versions["never-ready"]), (a, versions["half-500"]), (a, b), (b, b), (b, a),
        (a, b), (b, a)]
    locks = [e["outcome"] for e in entries if e["action"] == "lock"]
    assert locks == ["acquired", "released"] * 10
