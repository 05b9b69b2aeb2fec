"""Rolling deployments on this machine: real builds, real HAProxy, real supervisord, under load.

One eco-system for the module: hello on four instances, two in `staging` (host
127.0.0.1) and two in `prod` (host 127.0.0.2, promoted from staging). Four releases of
hello are built and published by the eco-system's own build service first: two good
ones, one that never becomes ready where it is deployed, one that fails half of the
requests that come through the edge. Every deploy below runs while clients send
requests through the edge, and counts what failed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sevenleague.hosts import LocalHost
from sevenleague.testing import SteadyLoad
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem
from sevenleague.testing.releases import fails_behind_proxy, greeting, needs_setting, publish_hello

from ..conftest import ROOT

BUILD_CACHE = ROOT / "build" / "test-cache" / "builds"

CATALOG = """
[ecosystem]
name = "deploys"

[hosts.local]
address = "127.0.0.1"

[hosts.prod]
address = "127.0.0.2"

[environments.staging]
hosts = ["local"]

[environments.prod]
hosts = ["prod"]
promote_from = "staging"
soak = "10s"

[edge]
port = 8443
stats_port = 8404

[prometheus]
port = 9090
scrape_interval = "1s"

[alertmanager]
port = 9093

[deploy.rollout]
verify = "3s"
min_requests = 10
max_error_ratio = 0.1
readiness_timeout = "12s"
drain_timeout = "10s"

[services.hello]
app = "hello.app:app"
instances = 4
port = 8001
hosts = ["local", "prod"]

[services.hello.health]
interval = "300ms"
fall = 2
rise = 2
"""
STAGING = ["hello-1", "hello-3"]
PROD = ["hello-2", "hello-4"]


@pytest.fixture(scope="module")
def eco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEcosystem]:
    directory = tmp_path_factory.mktemp("deploy-eco")
    catalog = directory / "ecosystem.toml"
    catalog.write_text(CATALOG)
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
    # Every failed request was answered inside hello-1's window (the edge stops sending to it at its end).
    assert tally.failed > 0, "the edge sent hello-1 no request in its window: the gate judged nothing"
    assert all(windows[0]["at"] <= at <= windows[1]["at"] + 0.5 for at in tally.failed_at or []), (
        tally.as_figures(), windows)
    assert running_versions(eco) == {name: versions["a"] for name in STAGING + PROD}
    print(f"half-500 release: {tally.failed} failed requests of {tally.ok + tally.failed}, "
          f"all inside hello-1's verification window")


def test_a_second_deploy_of_the_same_service_and_environment_is_refused_naming_the_holder(eco, versions):
    first = subprocess.Popen([str(ROOT / ".venv" / "bin" / "league"), "deploy", "hello", versions["b"],
                              "--env", "staging"], env=eco.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        second = league(eco, "deploy", "hello", versions["b"], "--env", "staging")
        assert second.returncode == 5, second.stdout + second.stderr
        assert "hello in staging is being deployed by admin" in second.stderr
        assert "since" in second.stderr
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    assert {running_versions(eco)[name] for name in STAGING} == {versions["b"]}


def test_rollback_returns_the_previous_release_in_seconds_without_the_build_service(eco, versions):
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
    assert back.returncode == 0, back.stdout + back.stderr
    assert tally.failed == 0, tally.as_figures()
    assert {running_versions(eco)[name] for name in STAGING} == {versions["a"]}
    assert seconds < 30, f"rollback took {seconds:.1f}s"
    print(f"rollback of 2 instances: {seconds:.1f}s")


def test_the_audit_log_has_every_action_in_order(eco, versions):
    entries = json.loads(league(eco, "audit", "hello", "--json").stdout)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    actions = [(e["action"], e["environment"], e["outcome"]) for e in entries if e["action"] != "lock"]
    a, b = versions["a"], versions["b"]
    expected = [
        ("promote", "prod", "refused"), ("promote", "staging", "refused"),
        ("deploy", "staging", "started"), ("deploy", "staging", "succeeded"),
        ("promote", "prod", "refused"),
        ("promote", "prod", "started"), ("promote", "prod", "succeeded"),
        ("deploy", "staging", "started"), ("deploy", "staging", "rolled_back"),
        ("deploy", "staging", "started"), ("deploy", "staging", "rolled_back"),
        ("deploy", "staging", "started"), ("deploy-refused", "staging", "refused"),
        ("deploy", "staging", "succeeded"),
        ("rollback", "staging", "started"), ("rollback", "staging", "succeeded"),
    ]
    assert actions == expected, actions
    assert all(e["actor"] == "admin" for e in entries)
    finished = [e for e in entries if e["outcome"] in ("succeeded", "rolled_back")]
    assert [(e["from_version"], e["to_version"]) for e in finished] == [
        ("", a), ("", a), (a, versions["never-ready"]), (a, versions["half-500"]), (a, b), (b, a)]
    locks = [e["outcome"] for e in entries if e["action"] == "lock"]
    assert locks == ["acquired", "released"] * 6
