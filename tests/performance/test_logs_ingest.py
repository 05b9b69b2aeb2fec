"""A bounded ingest through the real logs service over HTTP: every line stored once, and found again.

50,000 records as the agents ship them (sevenleague.testing.logs_corpus), in gzip NDJSON
batches of 5,000 from two concurrent clients, to `python -m sevenleague.kit.serve
sevenleague.logs.service:app` (plain HTTP, no token checks). The figures are recorded, not
gated: benchmarks/bench_logs.py measures the rate on 5 million lines.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from sevenleague.testing import ServedApp, http_request, record_figures, serve_app
from sevenleague.testing.logs_corpus import RARE_COUNT, LogCorpus, gzip_batches, metric_value, post_batches

LINES = 50_000


@pytest.fixture
def logs_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("LEAGUE_OIDC_ISSUER", raising=False)
    monkeypatch.delenv("LEAGUE_TLS_BUNDLE", raising=False)
    env = {"LEAGUE_HOME": str(tmp_path / "home"), "LEAGUE_LOGS_MAX_BYTES": str(1 << 34),
           "LEAGUE_INSTANCE": "logs-1"}
    with serve_app("sevenleague.logs.service:app", tmp_path, env=env, service="logs") as served:
        yield served


def search(served: ServedApp, **params: str) -> list[dict[str, Any]]:
    answer = http_request(f"{served.url}/api/records?{urllib.parse.urlencode(params)}", timeout=30)
    assert answer.status == 200, answer.body[:300]
    records: list[dict[str, Any]] = answer.json()["records"]
    return records


def metric(served: ServedApp, name: str) -> float | None:
    return metric_value(http_request(f"{served.url}/metrics").body.decode(), name)


def test_every_line_sent_over_http_is_stored_once_and_found_by_its_request_id(logs_service: ServedApp,
                                                                              tmp_path: Path) -> None:
    corpus = LogCorpus(LINES, end=time.time(), span=3600.0)
    lines = list(corpus)
    bodies = list(gzip_batches(lines))
    facts = corpus.facts

    run = post_batches(logs_service.url, bodies, clients=2)
    assert run.errors == [] and run.statuses == {200: len(bodies)}
    assert (run.accepted, run.duplicates) == (LINES, 0)

    again = post_batches(logs_service.url, bodies[:1], clients=1)
    assert (again.accepted, again.duplicates) == (0, bodies[0][1])
    assert metric(logs_service, "sevenleague_logs_store_records") == LINES
    assert metric(logs_service, "sevenleague_logs_records_ingested_total") == LINES
    assert metric(logs_service, "sevenleague_logs_records_duplicate_total") == bodies[0][1]

    found = search(logs_service, request_id=facts.request_id)
    assert sorted(record["id"] for record in found) == sorted(facts.request_record_ids)
    assert {record["request_id"] for record in found} == {facts.request_id}
    assert 2 <= len(found) <= 5 and len({record["service"] for record in found}) >= 2

    started = time.monotonic()
    rare = search(logs_service, q=facts.rare_term)  # waits for the full-text indexer to catch up
    text_seconds = time.monotonic() - started
    assert len(rare) == RARE_COUNT
    newest = search(logs_service, q=facts.last_term)
    assert [record["id"] for record in newest] == [json.loads(lines[-1])["id"]]

    figures = {"lines": LINES, "batches": len(bodies), "clients": 2, "seconds": round(run.seconds, 3),
               "lines_per_second": round(run.lines_per_second),
               "first_text_search_seconds": round(text_seconds, 3),
               "store_bytes": metric(logs_service, "sevenleague_logs_store_bytes"),
               "corpus_bytes": sum(len(line) + 1 for line in lines)}
    record_figures("logs-ingest", figures)
    print(f"\nlogs ingest over HTTP: {figures}")
