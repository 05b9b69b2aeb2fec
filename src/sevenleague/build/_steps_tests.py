"""The steps that judge the code: all three kinds of tests, performance, analysis.

"All 3 kinds, all 3 passing": a service without unit, integration or performance
tests does not pass, however green the kinds it has. Each kind runs on its own (the
way `make test` runs them), so a kind with no tests shows up as missing instead of
hiding behind the others, and each leaves its JUnit XML as an artifact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._context import BuildContext, StepFailed
from ._junit import failed_test_names, read_junit
from ._perf import compare, gated_figures, read_figures

KINDS = ("unit", "integration", "performance")
_NO_TESTS_COLLECTED = 5
PERF_DIR_ENV = "LEAGUE_PERF_DIR"


def _test_environment(ctx: BuildContext) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ctx.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env.update({PERF_DIR_ENV: str(ctx.artifacts / "perf"), "PYTHONDONTWRITEBYTECODE": "1",
                "LEAGUE_SERVICE": ctx.build.service})
    return env


def run_kind(ctx: BuildContext, kind: str) -> str:
    project = ctx.needs_project
    folder = ctx.checkout / "tests" / kind
    junit = ctx.artifacts / "tests" / f"{kind}.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        ctx.tests[kind] = {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0, "missing": True}
        ctx.record(tests=ctx.tests)
        raise StepFailed(f"no {kind} tests: tests/{kind}/ does not exist", go_on=True)
    argv = [str(ctx.venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
            f"tests/{kind}", f"--junitxml={junit}", "-o", f"junit_suite_name={kind}"]
    if kind == "unit":
        coverage = ctx.artifacts / "analysis" / "coverage.json"
        argv += [f"--cov={project.module}", f"--cov-report=json:{coverage}", "--cov-report=term"]
    code = ctx.run(argv, env=_test_environment(ctx), timeout=1200)
    counts = read_junit(junit)
    ctx.tests[kind] = {**counts.to_json(), "exit_code": code, "junit": str(junit)}
    ctx.record(tests=ctx.tests)
    if code == _NO_TESTS_COLLECTED or counts.tests == 0:
        raise StepFailed(f"no {kind} tests: pytest collected none in tests/{kind}/", go_on=True)
    if code != 0 or not counts.ok:
        names = failed_test_names(junit.read_text()) if junit.exists() else []
        which = f" ({', '.join(names)})" if names else ""
        raise StepFailed(f"{kind} tests failed: {counts.failures + counts.errors} of {counts.tests}{which}"
                         + ("" if junit.exists() else f"; pytest exited {code}"), go_on=True)
    return f"{counts.passed} passed" + (f", {counts.skipped} skipped" if counts.skipped else "")


def step_unit(ctx: BuildContext) -> str:
    return run_kind(ctx, "unit")


def step_integration(ctx: BuildContext) -> str:
    return run_kind(ctx, "integration")


def step_performance(ctx: BuildContext) -> str:
    return run_kind(ctx, "performance")


def step_all_kinds(ctx: BuildContext) -> str:
    """The gate the three test steps feed: every kind present, every kind green."""
    problems = []
    for kind in KINDS:
        result = ctx.tests.get(kind, {})
        if result.get("missing") or not result.get("tests"):
            problems.append(f"no {kind} tests")
        elif result.get("failures") or result.get("errors") or result.get("exit_code"):
            problems.append(f"{kind} tests failed ({result.get('failures', 0) + result.get('errors', 0)}"
                            f" of {result.get('tests')})")
    if problems:
        raise StepFailed("; ".join(problems) + " (all 3 kinds must exist and pass)")
    return ", ".join(f"{kind} {ctx.tests[kind]['passed']}" for kind in KINDS)


def step_compare_performance(ctx: BuildContext) -> str:
    """Gated figures against the last passed build of the same service."""
    figures = read_figures(ctx.artifacts / "perf")
    gated = gated_figures(figures)
    baseline = ctx.store.last_passed(ctx.build.service, before=ctx.build.id)
    before: dict[str, float] = baseline.record.get("performance", {}).get("gated", {}) if baseline else {}
    threshold = ctx.settings.gates.perf_regression
    comparisons = compare(before, gated, threshold)
    ctx.record(performance={
        "figures": figures, "gated": gated, "threshold": threshold,
        "baseline_build": baseline.id if baseline else None,
        "comparisons": [c.to_json() for c in comparisons],
    })
    regressed = [c for c in comparisons if c.regressed]
    if regressed:
        raise StepFailed("performance regressed: " + "; ".join(c.describe() for c in regressed))
    if not gated:
        return f"{len(figures)} figure files, none gated: nothing to compare"
    if baseline is None:
        return f"{len(gated)} gated figures; the first passed build of {ctx.build.service} is the baseline"
    return "; ".join(c.describe() for c in comparisons) or f"no figure in common with build {baseline.id}"


def _coverage_percent(path: Path) -> float | None:
    try:
        return round(float(json.loads(path.read_text())["totals"]["percent_covered"]), 2)
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _ruff_findings(path: Path) -> list[dict[str, Any]]:
    try:
        findings: list[dict[str, Any]] = json.loads(path.read_text() or "[]")
        return findings
    except (FileNotFoundError, ValueError):
        return []


def step_analysis(ctx: BuildContext) -> str:
    """ruff findings and coverage are kept as assets; they gate only when the catalog says so."""
    analysis = ctx.artifacts / "analysis"
    analysis.mkdir(parents=True, exist_ok=True)
    ruff_json = analysis / "ruff.json"
    targets = [p for p in ("src", "tests") if (ctx.checkout / p).exists()]
    ctx.run([str(ctx.shared_env / "bin" / "ruff"), "check", "--no-cache", "--exit-zero",
             "--output-format=json", f"--output-file={ruff_json}", *targets])
    findings = _ruff_findings(ruff_json)
    coverage = _coverage_percent(analysis / "coverage.json")
    rules: dict[str, int] = {}
    for finding in findings:
        code = str(finding.get("code") or "syntax")
        rules[code] = rules.get(code, 0) + 1
    ctx.record(analysis={"ruff_findings": len(findings), "ruff_rules": rules, "coverage_percent": coverage})
    gates = ctx.settings.gates
    if gates.ruff_clean and findings:
        first = findings[0]
        where = f"{Path(str(first.get('filename', ''))).name}:{first.get('location', {}).get('row', '?')}"
        raise StepFailed(f"ruff reports {len(findings)} findings (first: {first.get('code')} at {where});"
                         " the catalog asks for ruff_clean")
    if gates.min_coverage and (coverage or 0.0) < gates.min_coverage:
        raise StepFailed(f"unit-test coverage {coverage}% is below the catalog's min_coverage"
                         f" {gates.min_coverage}%")
    return f"ruff: {len(findings)} findings; coverage {coverage if coverage is not None else '?'}%"


def step_metric_names(ctx: BuildContext) -> str:
    """What the app's /metrics serves, checked against the register (and the app's own `METRICS`).

    Report only: the problems go to the log and the build record, and the build goes on.
    The app is imported in its own environment and asked for /metrics in-process, with
    token checks off (no LEAGUE_OIDC_ISSUER), so no server and no port are needed.
    """
    project = ctx.needs_project
    report = ctx.artifacts / "analysis" / "metric-names.json"
    env = _test_environment(ctx)
    env.pop("LEAGUE_OIDC_ISSUER", None)
    code = ctx.run([str(ctx.venv / "bin" / "python"), "-m", "sevenleague.telemetry.metric_check",
                    "--app", project.app, "--report", str(report)], env=env, timeout=120)
    try:
        found = json.loads(report.read_text())
    except (FileNotFoundError, ValueError):
        ctx.record(metric_names={"exit_code": code})
        return f"not checked: the check could not render {project.app}'s /metrics (exit {code}, see the log)"
    families, problems = len(found["families"]), found["problems"]
    ctx.record(metric_names={"families": families, "problems": problems, "report": str(report)})
    if not problems:
        return f"{families} metric families, all registered and well named"
    first = problems[0]
    return (f"{len(problems)} problems in {families} metric families (report only; first: "
            f"{first['metric'] or 'exposition'}: {first['message']})")
