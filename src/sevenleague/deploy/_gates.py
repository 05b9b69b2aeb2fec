"""Promotion gates: the rules a release must pass to move from one environment to the next.

A gate is a name and a pure check of facts gathered beforehand (what runs where and
since when, the build that made the release, whether the source environment is healthy
now). The list is ordered and small on purpose: adding a gate (an approved review,
say) is one more entry, and a refusal names the first gate that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog import format_duration

TEST_KINDS = ("unit", "integration", "performance")


@dataclass(frozen=True)
class Facts:
    service: str
    source: str
    target: str
    promote_from: str | None  # what the catalog allows the target to promote from
    soak: float  # seconds
    versions: Mapping[str, Mapping[str, Any]]  # instance -> {"version", "since"} in the source
    instances: tuple[str, ...]  # the service's instances in the source environment
    unhealthy: tuple[str, ...]  # of those, the ones not ready right now
    build: Mapping[str, Any] | None  # the build that published the release, as the build service says
    now: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def release(self) -> str | None:
        """The one version every instance of the source runs, or None when they differ or none runs."""
        found = {self.versions.get(name, {}).get("version", "") for name in self.instances}
        return found.pop() if len(found) == 1 and "" not in found else None


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "detail": self.detail}


def promotion_path(facts: Facts) -> str | None:
    if facts.promote_from != facts.source:
        if facts.promote_from is None:
            return f"{facts.target} takes no promotions (environments.{facts.target}.promote_from is not set)"
        return (f"{facts.target} takes promotions from {facts.promote_from} only "
                f"(environments.{facts.target}.promote_from)")
    return None


def one_release(facts: Facts) -> str | None:
    if not facts.instances:
        return f"{facts.service} has no instances in {facts.source}"
    if facts.release is None:
        seen = sorted({facts.versions.get(n, {}).get("version", "") or "(workspace)"
                       for n in facts.instances})
        return f"{facts.source} runs no single release of {facts.service}: {', '.join(seen)}"
    return None


def build_passed(facts: Facts) -> str | None:
    build = facts.build
    if build is None:
        return f"no build of {facts.service} published {facts.release}"
    if build.get("state") != "passed":
        return f"build {build.get('id')} of {facts.release} is {build.get('state')}"
    tests = build.get("tests") or {}
    for kind in TEST_KINDS:
        result = tests.get(kind) or {}
        if not result.get("tests") or result.get("failures") or result.get("errors"):
            return f"build {build.get('id')} did not pass {kind} tests ({result.get('tests', 0)} ran)"
    return None


def soaked_and_healthy(facts: Facts) -> str | None:
    if facts.unhealthy:
        return f"not healthy in {facts.source} now: {', '.join(facts.unhealthy)} not ready"
    since = max(float(facts.versions[name]["since"]) for name in facts.instances)
    ran = facts.now - since
    if ran < facts.soak:
        return (f"{facts.release} has run in {facts.source} for {ran:.0f}s, "
                f"less than the {format_duration(facts.soak)} soak (environments.{facts.target}.soak)")
    return None


GATES: tuple[tuple[str, Callable[[Facts], str | None]], ...] = (
    ("promotion-path", promotion_path),
    ("one-release", one_release),
    ("build-passed", build_passed),
    ("soak", soaked_and_healthy),
)


def check_gates(facts: Facts) -> list[GateResult]:
    """Every gate in order; the ones after a failed gate are not run (their facts may not hold)."""
    results = []
    for name, check in GATES:
        failed = check(facts)
        results.append(GateResult(name, failed is None, failed or "ok"))
        if failed is not None:
            break
    return results
