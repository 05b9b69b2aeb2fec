"""Bounded load through the edge: both instances share it and nothing fails."""

from __future__ import annotations

import time

from sevenleague.testing import record_figures, run_wrk


def test_load_through_the_edge_is_answered_by_both_instances_without_errors(ecosystem):
    edge = ecosystem.endpoints["edge"]
    result = run_wrk(edge, seconds=3, connections=32)
    record_figures("edge-hello", result)
    print(f"\nthrough HAProxy: {result.requests_per_second:.0f} req/s, p99 {result.p99_ms:.1f} ms")
    assert result.requests > 500
    assert result.errors == 0
    prometheus = ecosystem.endpoints["prometheus"]
    query = 'sum by (instance) (http_requests_total{job="hello"})'
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = ecosystem.get(f"{prometheus}api/v1/query?query={query.replace(' ', '%20')}").json()
        counts = [float(r["value"][1]) for r in answer["data"]["result"]]
        if len(counts) == 2 and sum(counts) >= result.requests:
            break
        time.sleep(0.5)
    assert len(counts) == 2 and min(counts) > result.requests * 0.3


def test_status_stays_correct_while_the_edge_is_loaded(ecosystem):
    import threading

    edge = ecosystem.endpoints["edge"]
    load = threading.Thread(target=run_wrk, args=(edge,), kwargs={"seconds": 3, "connections": 16})
    load.start()
    time.sleep(0.5)
    status = ecosystem.status()
    load.join()
    assert status["healthy"]
