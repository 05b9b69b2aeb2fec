"""The build pipeline's pure parts and its database, without running a build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sevenleague.build._junit import failed_test_names, parse_junit
from sevenleague.build._perf import compare, direction, gated_figures, read_figures
from sevenleague.build._project import read_project, requirement_name
from sevenleague.build._settings import render_build_settings, service_settings
from sevenleague.build._store import CANCELLED, FAILED, PASSED, QUEUED, RUNNING, BuildStore
from sevenleague.build._versions import debian_version
from sevenleague.catalog import load_catalog
from sevenleague.errors import UsageError
from sevenleague.source.hook import ZERO, pushed_branches
from sevenleague.testing import record_figures

from ..conftest import ROOT

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="unit" errors="1" failures="1"
skipped="1" tests="5" time="0.25"><testcase classname="tests.unit.test_app" name="test_ok" time="0.01"/>
<testcase classname="tests.unit.test_app" name="test_bad"><failure message="assert 4 == 5"/></testcase>
<testcase classname="tests.unit.test_app" name="test_boom"><error message="ImportError"/></testcase>
</testsuite></testsuites>"""


def test_junit_counts_and_names_the_failures():
    counts = parse_junit(JUNIT)
    assert (counts.tests, counts.failures, counts.errors, counts.skipped, counts.passed) == (5, 1, 1, 1, 2)
    assert not counts.ok
    assert failed_test_names(JUNIT) == ["tests.unit.test_app::test_bad", "tests.unit.test_app::test_boom"]


def test_a_kind_with_no_tests_is_not_a_passing_kind():
    assert not parse_junit('<testsuites><testsuite tests="0" failures="0" errors="0"/></testsuites>').ok
    assert parse_junit('<testsuite tests="2" failures="0" errors="0" skipped="0"/>').ok


def test_figure_direction_comes_from_the_name():
    assert direction("requests_per_second") == 1
    assert direction("p99_seconds") == direction("p50_ms") == direction("rss_bytes") == -1
    assert direction("requests") == 0


def test_only_gated_figures_are_compared_and_a_drop_beyond_the_threshold_regresses(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAGUE_PERF_DIR", str(tmp_path))
    record_figures("svc", {"requests_per_second": 800.0, "p99_ms": 9.0, "requests": 10},
                   gate=("requests_per_second", "p99_ms"))
    record_figures("noisy", {"requests_per_second": 1.0})
    after = gated_figures(read_figures(tmp_path))
    assert after == {"svc.requests_per_second": 800.0, "svc.p99_ms": 9.0}
    before = {"svc.requests_per_second": 1000.0, "svc.p99_ms": 8.0, "gone.requests_per_second": 5.0}
    results = {c.figure: c for c in compare(before, after, threshold=0.15)}
    assert set(results) == {"svc.requests_per_second", "svc.p99_ms"}
    assert results["svc.requests_per_second"].regressed  # -20%
    assert round(results["svc.requests_per_second"].change, 3) == -0.2
    assert not results["svc.p99_ms"].regressed  # 12.5% slower: within 15%
    assert "svc.requests_per_second 1000 -> 800 (-20.0%, threshold -15%)" in results[
        "svc.requests_per_second"].describe()


def test_record_figures_refuses_to_gate_what_it_did_not_measure(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAGUE_PERF_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="requests_per_second"):
        record_figures("svc", {"requests": 3}, gate=("requests_per_second",))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("python", "debian"), [
    ("1.2.0", "1.2.0-7"), ("1.2.0rc1", "1.2.0~rc1-7"), ("1.2.0.post2", "1.2.0+post2-7"),
    ("2.0.dev3", "2.0~dev3-7"), ("1.0b2", "1.0~b2-7"),
])
def test_python_versions_become_debian_versions_that_sort_the_same(python, debian):
    assert debian_version(python, 7) == debian


def test_dpkg_agrees_with_the_order(tmp_path):
    import itertools
    import subprocess

    ordered = [debian_version(v, 1) for v in ("1.0.dev1", "1.0rc1", "1.0", "1.0.post1", "1.1")]
    for lower, higher in itertools.pairwise(ordered):
        assert subprocess.run(["dpkg", "--compare-versions", lower, "lt", higher]).returncode == 0


def test_a_version_that_is_not_pep440_is_refused_with_a_hint():
    with pytest.raises(UsageError, match="not a PEP 440"):
        debian_version("1.0+local", 3)


def write_project(root: Path, body: str, package: str = "demo_svc") -> Path:
    (root / "src" / package).mkdir(parents=True)
    (root / "pyproject.toml").write_text(body)
    return root


def test_the_project_is_read_from_standard_places(tmp_path):
    write_project(tmp_path, '[project]\nname = "demo-svc"\nversion = "0.3.0"\n'
                  'dependencies = ["sevenleague", "Starlette>=0.37"]\n'
                  '[project.optional-dependencies]\ndev = ["pytest>=8"]\n')
    project = read_project(tmp_path)
    assert (project.module, project.app, project.distribution) == ("demo_svc", "demo_svc.app:app", "demo_svc")
    assert project.build_requires == ("setuptools", "wheel")
    assert [requirement_name(r) for r in project.dependencies] == ["sevenleague", "starlette"]


@pytest.mark.parametrize(("body", "message"), [
    ('[project]\nname = "demo-svc"\n', "project.version is missing"),
    ('[tool.x]\n', r"no \[project\] table"),
    ('[project\n', "not valid TOML"),
    ('[project]\nname = "other"\nversion = "1"\n', "no package 'other'"),
])
def test_a_bad_pyproject_names_the_problem(tmp_path, body, message):
    write_project(tmp_path, body)
    with pytest.raises(UsageError, match=message):
        read_project(tmp_path)


def test_build_settings_come_from_the_catalog_and_default_for_unknown_services():
    catalog = load_catalog(ROOT / "ecosystem.toml")
    settings = json.loads(render_build_settings(catalog, "http://127.0.0.1:9300/apt/"))
    assert settings["services"]["hello"]["app"] == "hello.app:app"
    assert service_settings(settings, "hello").gates.perf_regression == 0.15
    assert service_settings(settings, "not-in-catalog").app is None
    assert service_settings({}, "anything").gates.perf_regression == 0.15


def test_only_created_or_updated_branches_are_built():
    lines = [f"{ZERO} {'a' * 40} refs/heads/main\n", f"{'a' * 40} {ZERO} refs/heads/gone\n",
             f"{ZERO} {'b' * 40} refs/tags/v1\n", "garbage\n",
             f"{'a' * 40} {'c' * 40} refs/heads/feature/x\n"]
    assert pushed_branches(lines) == [("main", "a" * 40), ("feature/x", "c" * 40)]


def test_the_queue_runs_oldest_first_and_a_final_state_is_final(tmp_path):
    store = BuildStore(tmp_path / "builds.sqlite3")
    first = store.enqueue(service="a", repo="/r", ref="main", commit="1" * 40)
    second = store.enqueue(service="a", repo="/r", ref="main", commit="2" * 40)
    assert first.state == second.state == QUEUED
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == first.id and claimed.state == RUNNING
    position = store.start_step(first.id, "checkout")
    store.finish_step(first.id, position, PASSED, "ok")
    store.update_record(first.id, version="1.0")
    store.update_record(first.id, tests={"unit": {"passed": 3}})
    done = store.finish(first.id, PASSED)
    assert done.record == {"version": "1.0", "tests": {"unit": {"passed": 3}}}
    assert store.finish(first.id, FAILED, "too late").state == PASSED
    assert store.finish(second.id, CANCELLED, "no").state == CANCELLED
    assert store.claim_next() is None
    assert store.last_passed("a", before=99).id == first.id


def test_a_build_left_running_is_failed_on_recovery_naming_its_step(tmp_path):
    path = tmp_path / "builds.sqlite3"
    store = BuildStore(path)
    build = store.enqueue(service="a", repo="/r", ref="main", commit="1" * 40)
    store.claim_next()
    store.start_step(build.id, "unit tests")
    store.close()
    reopened = BuildStore(path)  # as a new service process would
    assert reopened.recover("interrupted") == [build.id]
    after = reopened.get(build.id)
    assert after.state == FAILED and after.reason == "interrupted during step unit tests"
    assert [s.state for s in after.steps] == [FAILED]
    assert reopened.recover("interrupted") == []


def test_only_the_newest_builds_keep_their_artifacts(tmp_path):
    from sevenleague.build._worker import prune_artifacts

    for build_id in (3, 10, 7, 12):
        (tmp_path / str(build_id)).mkdir()
        (tmp_path / str(build_id) / "build.log").write_text("log")
    (tmp_path / "not-a-build").mkdir()
    removed = prune_artifacts(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["3", "7"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "12", "not-a-build"]


def test_a_build_does_not_inherit_the_build_services_identity_or_state():
    from sevenleague.build._runner import build_environment

    service = {"PATH": "/usr/bin", "LEAGUE_HOME": "/srv/league", "LEAGUE_OIDC_ISSUER": "https://id",
               "LEAGUE_CA_FILE": "/srv/league/pki/ca.pem", "LEAGUE_BUILD_CACHE": "/cache",
               "LEAGUE_SERVICE": "builds"}
    assert build_environment(service) == {"PATH": "/usr/bin", "LEAGUE_BUILD_CACHE": "/cache",
                                          "LEAGUE_SERVICE": "builds"}
