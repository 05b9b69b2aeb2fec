"""Performance figures of a build, and how they compare with the last passed build.

A test records figures as JSON (`sevenleague.testing.record_figures`) and names the
ones stable enough to gate on. Direction comes from the name, as Prometheus names do:
`..._per_second` is better higher, `..._seconds`/`..._ms` better lower. Only gated
figures can fail a build; the rest are kept in the record for people to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HIGHER_IS_BETTER = ("_per_second", "_per_sec", "_rps")
LOWER_IS_BETTER = ("_seconds", "_ms", "_us", "_ns", "_bytes")


@dataclass(frozen=True)
class Comparison:
    figure: str  # "<record name>.<key>"
    before: float
    after: float
    change: float  # relative: +0.10 is 10% better, -0.20 is 20% worse
    threshold: float

    @property
    def regressed(self) -> bool:
        return self.change < -self.threshold

    def describe(self) -> str:
        return (f"{self.figure} {self.before:g} -> {self.after:g} "
                f"({self.change * 100:+.1f}%, threshold -{self.threshold * 100:.0f}%)")

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "before": self.before, "after": self.after,
                "change": round(self.change, 4), "threshold": self.threshold, "regressed": self.regressed}


def direction(key: str) -> int:
    """+1 when more is better, -1 when less is better, 0 when the name does not say."""
    if key.endswith(HIGHER_IS_BETTER):
        return 1
    if key.endswith(LOWER_IS_BETTER):
        return -1
    return 0


def read_figures(directory: Path) -> dict[str, dict[str, Any]]:
    """Every recorded figure file in `directory`, by record name."""
    figures = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        data = json.loads(path.read_text())
        figures[str(data.get("name", path.stem))] = data
    return figures


def gated_figures(figures: dict[str, dict[str, Any]]) -> dict[str, float]:
    """`record.key` -> value for every gated figure whose name tells its direction."""
    gated = {}
    for name, data in figures.items():
        for key in data.get("gate", []):
            value = data.get(key)
            if isinstance(value, int | float) and direction(key):
                gated[f"{name}.{key}"] = float(value)
    return gated


def compare(before: dict[str, float], after: dict[str, float], threshold: float) -> list[Comparison]:
    """Compare the figures both builds have; a figure only one side has is not compared."""
    comparisons = []
    for figure in sorted(before.keys() & after.keys()):
        old, new = before[figure], after[figure]
        if old <= 0:
            continue
        sign = direction(figure.rsplit(".", 1)[-1])
        change = (new - old) / old * sign
        comparisons.append(Comparison(figure, old, new, change, threshold))
    return comparisons
