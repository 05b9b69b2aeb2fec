"""hello's throughput in-process: the figure a build compares with the last passed build.

The wrk test beside this one measures hello behind a real server, but on a shared
machine its figure swings by a quarter between runs, more than the 15% regression a
build is meant to catch, so it is recorded and not gated. `throughput_in_process` calls
the app directly, each round followed by a round of a bare Starlette app that sees the
same machine at the same moment, and gives hello's rate relative to it.
"""

from __future__ import annotations

from hello.app import app
from sevenleague.testing import record_figures, throughput_in_process


def test_hello_answers_every_request_in_process_and_records_its_throughput() -> None:
    result = throughput_in_process(app, path="/")
    record_figures("hello-in-process", result.figures(), gate=("relative_requests_per_second",))
    print(f"\nhello in-process: {result.figures()}")
    assert set(result.statuses) == {200}
    assert max(result.rates) > 50
