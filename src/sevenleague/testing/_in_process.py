"""Throughput of an ASGI app measured in-process, stable enough for a build to gate on.

A shared machine varies too much for an absolute figure: neighbours halve its speed for
tens of seconds, in CPU time as much as in wall time, and wrk throughput swings by a
quarter between runs. So each round of the app is followed by a round of a bare
Starlette app, the yardstick, which sees the same machine at the same moment, and the
figure to gate on is the median over all rounds of the app's rate relative to the
yardstick's. No server and no sockets: only the app's own code is measured. A round
ends early when the app is slow, so a slow change fails within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

GATED_FIGURE = "relative_requests_per_second"


async def _yardstick_answer(request: Request) -> PlainTextResponse:
    return PlainTextResponse("yardstick\n")


def _scope(path: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    """A GET as a server passes it to the app."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"in-process"), *headers], "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


@dataclass(frozen=True)
class InProcessThroughput:
    rates: list[float]
    yardstick_rates: list[float]
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def relative(self) -> float:
        return median(a / y for a, y in zip(self.rates, self.yardstick_rates, strict=True))

    def figures(self) -> dict[str, float | int]:
        """What to record; gate on `GATED_FIGURE` only."""
        return {
            GATED_FIGURE: round(self.relative, 4),
            "requests_per_second": round(max(self.rates), 1),
            "yardstick_requests_per_second": round(max(self.yardstick_rates), 1),
            "rounds": len(self.rates),
            "requests": self.statuses.total(),
        }


async def _one_round(app: ASGIApp, scope: dict[str, Any], statuses: Counter[int], requests: int,
                     seconds: float) -> float:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    answered = 0
    start = time.perf_counter()
    deadline = start + seconds
    while answered < requests and time.perf_counter() < deadline:
        await app(dict(scope), _receive, send)  # a fresh scope each time: apps write into it
        answered += 1
    return answered / (time.perf_counter() - start)


def throughput_in_process(app: ASGIApp, *, path: str = "/", seconds: float = 3.0,
                          round_requests: int = 2000, round_seconds: float = 0.5,
                          headers: Sequence[tuple[bytes, bytes]] = ()) -> InProcessThroughput:
    """Rounds of `app`, each followed by a round of the yardstick, for about `seconds`."""
    yardstick = Starlette(routes=[Route(path, _yardstick_answer)])
    scope = _scope(path, headers)

    async def measure() -> InProcessThroughput:
        result = InProcessThroughput([], [])
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or not result.rates:
            result.rates.append(await _one_round(app, scope, result.statuses, round_requests, round_seconds))
            result.yardstick_rates.append(
                await _one_round(yardstick, scope, Counter(), round_requests, round_seconds))
        return result

    return asyncio.run(measure())
