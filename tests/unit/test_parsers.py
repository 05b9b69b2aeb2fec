"""Parsers of what real tools print: HAProxy's `show stat`, wrk's report."""

from __future__ import annotations

from pathlib import Path

import pytest

from sevenleague.proxy import parse_show_stat
from sevenleague.testing import parse_wrk

FIXTURES = Path(__file__).parent / "fixtures"

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:8080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.11ms  512.33us  12.40ms   88.20%
    Req/Sec     7.62k   301.12     8.01k    80.00%
  Latency Distribution
     50%    2.03ms
     75%    2.30ms
     90%    2.61ms
     99%    3.90ms
  15230 requests in 2.00s, 2.63MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   7613.51
Transfer/sec:      1.31MB
"""


def test_show_stat_lists_the_servers_with_their_states():
    # captured from HAProxy 2.6 with hello-2 set to drain through the runtime API
    states = parse_show_stat((FIXTURES / "haproxy-show-stat.txt").read_text())
    assert [(s.backend, s.server, s.status) for s in states] == [
        ("svc_hello", "hello-1", "UP"), ("svc_hello", "hello-2", "DRAIN")]
    assert states[0].up and not states[1].up
    assert states[0].check.startswith("L7OK")


def test_wrk_report_becomes_figures():
    result = parse_wrk(WRK_OUTPUT)
    assert (result.requests, result.seconds, result.requests_per_second) == (15230, 2.0, 7613.51)
    assert (result.p50_ms, result.p99_ms) == (2.03, 3.9)
    assert (result.non_2xx, result.socket_errors, result.errors) == (4, 3, 7)


def test_wrk_latency_units_are_converted_to_milliseconds():
    result = parse_wrk(WRK_OUTPUT.replace("3.90ms", "1.20s").replace("2.03ms", "950.00us"))
    assert (result.p50_ms, result.p99_ms) == (pytest.approx(0.95), 1200.0)


def test_an_unexpected_wrk_report_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="unexpected wrk output"):
        parse_wrk("wrk: connection refused\n")
