"""hello's throughput in-process: the figure a build compares with the last passed build.

The wrk test beside this one measures hello behind a real server, but on a shared
machine its figure swings by a quarter between runs, more than the 15% regression a
build is meant to catch, so it is recorded and not gated. Here the app is called
directly, with no server and no sockets. The machine still varies: neighbours can halve
its speed for tens of seconds, in CPU time as much as in wall time. So each round of
hello is followed by a round of a bare Starlette app, the yardstick, which sees the same
machine at the same moment, and the gated figure is the median over all rounds of
hello's throughput relative to the yardstick's. A round ends early when the app is
slow, so a slow change fails within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from statistics import median
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from hello.app import app
from sevenleague.testing import record_figures

MEASURE_SECONDS = 3.0
ROUND_REQUESTS = 2000
ROUND_SECONDS = 0.5
FLOOR_REQUESTS_PER_SECOND = 50.0

# A GET of "/" as a server would pass it to the app; each request gets a copy, because
# the app writes into its scope.
SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"hello")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
}


async def plain_text(request: Request) -> PlainTextResponse:
    return PlainTextResponse("yardstick\n")


YARDSTICK = Starlette(routes=[Route("/", plain_text)])


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def one_round(asgi_app: ASGIApp, statuses: Counter[int]) -> float:
    """Requests per second over one round of requests sent one after another."""

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    answered = 0
    start = time.perf_counter()
    deadline = start + ROUND_SECONDS
    while answered < ROUND_REQUESTS and time.perf_counter() < deadline:
        await asgi_app(dict(SCOPE), receive, send)
        answered += 1
    return answered / (time.perf_counter() - start)


async def measure(statuses: Counter[int]) -> tuple[list[float], list[float]]:
    """Rounds of hello, each followed by a round of the yardstick: their rates."""
    rates: list[float] = []
    yardstick_rates: list[float] = []
    end = time.perf_counter() + MEASURE_SECONDS
    while time.perf_counter() < end:
        rates.append(await one_round(app, statuses))
        yardstick_rates.append(await one_round(YARDSTICK, Counter()))
    return rates, yardstick_rates


def test_hello_answers_every_request_in_process_and_records_its_throughput() -> None:
    statuses: Counter[int] = Counter()
    rates, yardstick_rates = asyncio.run(measure(statuses))
    relative = median(a / y for a, y in zip(rates, yardstick_rates, strict=True))
    figures = {
        "relative_requests_per_second": round(relative, 4),
        "requests_per_second": round(max(rates), 1),
        "yardstick_requests_per_second": round(max(yardstick_rates), 1),
        "rounds": len(rates),
        "requests": statuses.total(),
    }
    record_figures("hello-in-process", figures, gate=("relative_requests_per_second",))
    print(f"\nhello in-process: {figures}")
    assert set(statuses) == {200}
    assert max(rates) > FLOOR_REQUESTS_PER_SECOND
