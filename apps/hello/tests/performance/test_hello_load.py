"""A short, bounded load on hello: every request answered; figures recorded as JSON."""

from __future__ import annotations

from sevenleague.testing import record_figures, run_wrk, serve_app


def test_hello_answers_every_request_under_load(tmp_path):
    with serve_app("hello.app:app", tmp_path) as hello:
        result = run_wrk(hello.url + "/", seconds=2, connections=16)
    record_figures("hello-direct", result)
    print(f"\nhello direct: {result.requests_per_second:.0f} req/s, p99 {result.p99_ms:.1f} ms")
    assert result.requests > 500
    assert result.errors == 0
