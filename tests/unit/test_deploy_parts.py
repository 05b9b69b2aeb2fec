"""The deploy's pure decisions and its database: batches, window verdicts, gates, locks, audit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sevenleague.catalog import RolloutSpec
from sevenleague.deploy._gates import Facts, check_gates
from sevenleague.deploy._rollout import Counters, batch_size, batches, judge
from sevenleague.deploy._store import FAILED, SUCCEEDED, DeployStore, LockHeld


@pytest.mark.parametrize(("settings", "total", "expected"), [
    ({}, 4, 1),
    ({"batch_size": 3}, 4, 3),
    ({"batch_size": 9}, 4, 4),
    ({"batch_percent": 50}, 4, 2),
    ({"batch_percent": 50, "batch_size": 3}, 5, 3),  # rounded up, and the percentage wins
    ({"batch_percent": 1}, 3, 1),
    ({"batch_percent": 100}, 3, 3),
])
def test_batch_size_is_a_count_or_a_rounded_up_share(settings, total, expected):
    assert batch_size(RolloutSpec(**settings), total) == expected


def test_batches_keep_the_catalog_order():
    assert batches(["a", "b", "c", "d", "e"], RolloutSpec(batch_size=2)) == [["a", "b"], ["c", "d"], ["e"]]


def test_counters_since_an_earlier_reading_and_across_a_reload():
    assert Counters(50, 5).since(Counters(20, 1)) == Counters(30, 4)
    assert Counters(3, 0).since(Counters(20, 1)) == Counters(3, 0)  # HAProxy reloaded: counted afresh


ROLLOUT = RolloutSpec(verify="10s", max_error_ratio=0.1, min_requests=10, readiness_timeout="30s")


@pytest.mark.parametrize(("window", "elapsed", "done", "healthy", "says"), [
    (Counters(10, 5), 1.0, True, False, "5 of 10 answers were 5xx (50%), above the gate of 10%"),
    (Counters(9, 9), 1.0, False, True, "9 of 9"),  # too few to judge yet
    (Counters(100, 10), 11.0, True, True, "10 of 100"),  # 10% is not above 10%
    (Counters(100, 1), 5.0, False, True, "1 of 100"),  # good so far, the window runs on
    (Counters(3, 0), 12.0, False, True, "0 of 3"),  # the window is over but too little traffic
    (Counters(3, 0), 30.0, True, True, "fewer than 10, not judged"),
])
def test_the_window_verdict(window, elapsed, done, healthy, says):
    verdict = judge(window, ROLLOUT, elapsed=elapsed, limit=30.0)
    assert (verdict.done, verdict.healthy) == (done, healthy)
    assert says in verdict.detail


def facts(**changes) -> Facts:
    now = time.time()
    base = dict(service="hello", source="staging", target="prod", promote_from="staging", soak=60.0,
                versions={"hello-1": {"version": "1.0-2", "since": now - 120},
                          "hello-3": {"version": "1.0-2", "since": now - 90}},
                instances=("hello-1", "hello-3"), unhealthy=(),
                build={"id": 2, "state": "passed", "tests": {
                    kind: {"tests": 3, "passed": 3, "failures": 0, "errors": 0}
                    for kind in ("unit", "integration", "performance")}},
                now=now)
    return Facts(**{**base, **changes})


def verdict(f: Facts) -> tuple[str, str] | None:
    results = check_gates(f)
    failed = [r for r in results if not r.passed]
    return (failed[0].gate, failed[0].detail) if failed else None


def test_every_gate_holds_for_a_soaked_release_of_a_green_build():
    results = check_gates(facts())
    assert [(r.gate, r.passed) for r in results] == [
        ("promotion-path", True), ("one-release", True), ("build-passed", True), ("soak", True)]


def test_each_gate_names_what_failed_and_stops_the_list():
    assert verdict(facts(promote_from=None)) == (
        "promotion-path", "prod takes no promotions (environments.prod.promote_from is not set)")
    assert verdict(facts(promote_from="dev"))[0] == "promotion-path"
    mixed = {"hello-1": {"version": "1.0-2", "since": 0}, "hello-3": {"version": "1.0-3", "since": 0}}
    assert verdict(facts(versions=mixed)) == (
        "one-release", "staging runs no single release of hello: 1.0-2, 1.0-3")
    assert verdict(facts(versions={}))[0] == "one-release"
    assert verdict(facts(build=None)) == ("build-passed", "no build of hello published 1.0-2")
    no_perf = facts().build | {"tests": {"unit": {"tests": 3}, "integration": {"tests": 1}}}
    assert verdict(facts(build=no_perf)) == ("build-passed", "build 2 did not pass performance tests (0 ran)")
    failing = facts().build | {"tests": {k: {"tests": 3, "failures": 1} for k in ("unit", "integration",
                                                                               "performance")}}
    assert verdict(facts(build=failing))[0] == "build-passed"
    assert verdict(facts(build=facts().build | {"state": "failed"}))[0] == "build-passed"
    assert verdict(facts(soak=100.0))[1].startswith(
        "1.0-2 has run in staging for 90s, less than the 100s soak")
    assert verdict(facts(unhealthy=("hello-3",))) == ("soak", "not healthy in staging now: hello-3 not ready")
    assert len(check_gates(facts(promote_from=None))) == 1


@pytest.fixture
def store(tmp_path: Path) -> DeployStore:
    return DeployStore(tmp_path / "deploy.db")


def test_the_lock_is_taken_with_the_deployment_and_freed_with_its_outcome(store):
    first = store.start("deploy", "hello", "dev", "1.0-2", "", "ada")
    with pytest.raises(LockHeld) as held:
        store.start("deploy", "hello", "dev", "1.0-3", "", "bob")
    assert held.value.lock.holder == "ada" and held.value.lock.deployment_id == first
    other = store.start("deploy", "hello", "prod", "1.0-2", "", "bob")  # another environment: its own lock
    store.finish(first, SUCCEEDED)
    store.finish(first, FAILED)  # a second outcome changes nothing
    assert store.get(first)["state"] == SUCCEEDED
    again = store.start("deploy", "hello", "dev", "1.0-3", "1.0-2", "bob")
    assert [lock.deployment_id for lock in store.locks()] == [again, other]
    log = [(e["actor"], e["action"], e["environment"], e["outcome"]) for e in store.audit_log()]
    assert log == [
        ("ada", "lock", "dev", "acquired"), ("ada", "deploy", "dev", "started"),
        ("bob", "deploy-refused", "dev", "refused"),
        ("bob", "lock", "prod", "acquired"), ("bob", "deploy", "prod", "started"),
        ("ada", "deploy", "dev", "succeeded"), ("ada", "lock", "dev", "released"),
        ("bob", "lock", "dev", "acquired"), ("bob", "deploy", "dev", "started"),
    ]


def test_the_audit_log_cannot_be_changed(store):
    store.audit("ada", "promote", "hello", "prod", "refused", detail="gate soak")
    for statement in ("UPDATE audit SET actor = 'eve'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.db.transaction() as conn:
            conn.execute(statement)
    assert [e["actor"] for e in store.audit_log()] == ["ada"]


def test_a_deployment_left_running_by_a_stopped_service_is_failed_and_unlocked(tmp_path):
    store = DeployStore(tmp_path / "deploy.db")
    deployment = store.start("deploy", "hello", "dev", "1.0-2", "", "ada")
    store.close()
    reopened = DeployStore(tmp_path / "deploy.db")
    assert reopened.recover() == [deployment]
    assert reopened.get(deployment)["state"] == FAILED
    assert "interrupted" in reopened.get(deployment)["reason"]
    assert reopened.locks() == []


def test_instance_versions_keep_their_since_until_the_version_changes(store):
    store.set_version("hello", "dev", "hello-1", "1.0-2")
    since = store.versions("hello")["hello-1"]["since"]
    time.sleep(0.01)
    store.set_version("hello", "dev", "hello-1", "1.0-2")
    assert store.versions("hello")["hello-1"]["since"] == since
    store.set_version("hello", "dev", "hello-1", "1.0-3")
    assert store.versions("hello", "dev")["hello-1"]["version"] == "1.0-3"
    assert store.versions("hello", "prod") == {}


def test_a_rollout_may_skip_its_waits_but_not_its_timeouts():
    skipped = RolloutSpec(verify="0s", pause="0s", drain_timeout="0s")
    assert (skipped.verify, skipped.pause, skipped.drain_timeout) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="expected a duration above zero"):
        RolloutSpec(readiness_timeout="0s")


def test_certificates_reach_other_hosts_well_inside_their_life():
    from sevenleague.deploy._certificates import sync_interval

    assert sync_interval(86400.0) == 300.0  # a day-long certificate: every 5 minutes
    assert sync_interval(60.0) == 10.0  # renewed at 40 s, copied by 50 s at the latest
    assert sync_interval(3.0) == 1.0
