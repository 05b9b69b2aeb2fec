"""The pure parts of a rollout: batches, and the verdict of a verification window.

Kept apart from the engine so the decisions (who goes together, when an instance is
judged bad) can be read and tested without a single process running.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..catalog import RolloutSpec

T = TypeVar("T")


def batch_size(rollout: RolloutSpec, total: int) -> int:
    """Instances switched together: a percentage (rounded up) wins over a count; never 0."""
    if total <= 0:
        return 1
    size = math.ceil(total * rollout.batch_percent / 100) if rollout.batch_percent else rollout.batch_size
    return max(1, min(size, total))


def batches(items: Sequence[T], rollout: RolloutSpec) -> list[list[T]]:
    size = batch_size(rollout, len(items))
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class Counters:
    """An instance's answers as the edge counted them (HAProxy's hrsp_* of its server)."""

    responses: int
    errors: int

    def since(self, earlier: Counters) -> Counters:
        # A reload of HAProxy starts its counters again: what is lower than before is new.
        if self.responses < earlier.responses or self.errors < earlier.errors:
            return self
        return Counters(self.responses - earlier.responses, self.errors - earlier.errors)


@dataclass(frozen=True)
class Verdict:
    done: bool
    healthy: bool
    detail: str


def judge(window: Counters, rollout: RolloutSpec, *, elapsed: float, limit: float) -> Verdict:
    """What a verification window says so far.

    Bad as soon as enough answers show too many errors (no need to wait out the window
    while users get 500s); good once the window is over with enough answers; with too
    few answers the window runs on until `limit`, then passes as "not judged": an
    instance nobody calls cannot be shown bad by its error rate.
    """
    ratio = window.errors / window.responses if window.responses else 0.0
    shown = f"{window.errors} of {window.responses} answers were 5xx ({ratio:.0%})"
    if window.responses >= rollout.min_requests and ratio > rollout.max_error_ratio:
        return Verdict(True, False, f"{shown}, above the gate of {rollout.max_error_ratio:.0%}")
    if elapsed < rollout.verify:
        return Verdict(False, True, shown)
    if window.responses >= rollout.min_requests:
        return Verdict(True, True, shown)
    if elapsed >= limit:
        return Verdict(True, True, f"{shown}: fewer than {rollout.min_requests}, not judged")
    return Verdict(False, True, shown)
