"""The logs service's HTTP API, in-process with its real store in a temporary state directory."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from sevenleague.logs import service

NDJSON = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}


def body(*ids: int, **fields: object) -> bytes:
    lines = [orjson.dumps({"id": f"h/p/1/{n}", "ts": "2026-11-29T02:15:23.123Z", "msg": f"line {n}",
                           "service": "hello", **fields}) for n in ids]
    return gzip.compress(b"\n".join(lines))


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LEAGUE_HOME", str(tmp_path))
    with TestClient(service.app) as client:
        yield client


def test_a_batch_is_stored_once_and_found(client: TestClient, tmp_path: Path) -> None:
    answer = client.post("/api/records", content=body(1, 2, 3), headers=NDJSON)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 3, "duplicates": 0}
    assert client.post("/api/records", content=body(2, 3, 4), headers=NDJSON).json() == {
        "accepted": 1, "duplicates": 2}
    found = client.get("/api/records", params={"service": "hello", "limit": "3"}).json()
    assert [r["msg"] for r in found["records"]] == ["line 4", "line 3", "line 2"]
    rest = client.get("/api/records", params={"service": "hello", "before": str(found["next"])}).json()
    assert [r["msg"] for r in rest["records"]] == ["line 1"] and rest["next"] is None
    assert (tmp_path / "logstore" / "00000001.sqlite").exists()


def test_an_uncompressed_batch_is_accepted_too(client: TestClient) -> None:
    answer = client.post("/api/records", content=gzip.decompress(body(1)),
                         headers={"Content-Type": "application/x-ndjson"})
    assert answer.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize(("content", "headers", "status", "problem"), [
    (gzip.compress(b'{"id": "a", "ts": "2026-11-29T02:15:23Z"}\n{"id": 5}'), NDJSON, 400,
     "line 2: id must be"),
    (b"not gzip at all", NDJSON, 400, "not valid gzip"),
    (gzip.compress(b"x")[:-4], NDJSON, 400, "truncated"),
    (b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding 'br' is not supported"),
    (gzip.compress(b" " * (17 << 20)), NDJSON, 413, "over 16 MiB"),
])
def test_a_bad_batch_is_refused_whole_with_the_reason(
        client: TestClient, content: bytes, headers: dict[str, str], status: int, problem: str) -> None:
    answer = client.post("/api/records", content=content, headers=headers)
    assert answer.status_code == status
    assert problem in answer.json()["error"]
    assert client.get("/api/records").json()["records"] == []


@pytest.mark.parametrize(("params", "problem"), [
    ("colour=red", "unknown field 'colour'"),
    ("since=yesterday-ish", "since 'yesterday-ish' is neither a time"),
    ("q=%22unclosed", "unbalanced quote"),
    ("level=loud", "not a level"),
    ("service=a&service=b", "service is given twice"),
    ("after=5", "after is for /api/tail"),
])
def test_a_bad_query_is_a_400_naming_the_problem(client: TestClient, params: str, problem: str) -> None:
    answer = client.get("/api/records?" + params)
    assert answer.status_code == 400
    assert problem in answer.json()["error"]


def test_the_store_is_measured_under_registered_names(client: TestClient) -> None:
    client.post("/api/records", content=body(1, 2), headers=NDJSON)
    client.post("/api/records", content=body(2), headers=NDJSON)
    text = client.get("/metrics").text
    assert "sevenleague_logs_records_ingested_total 2.0" in text
    assert "sevenleague_logs_records_duplicate_total 1.0" in text
    assert 'sevenleague_logs_ingest_batches_total{outcome="accepted"} 2.0' in text
