"""The logs slice's pure parts and its default store, on real SQLite files in a temporary directory."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from sevenleague.logs import BadBatch, BadQuery, SqliteLogStore, TimestampParser, parse_batch, parse_query
from sevenleague.logs._query import fts_expression, parse_time
from sevenleague.logs._store import cursor_of, search_sql, split_cursor

NOW = 1_795_000_000.0


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def batch(*records: dict[str, object]) -> bytes:
    return b"\n".join(orjson.dumps(record) for record in records) + b"\n"


def record(n: int, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {"id": f"local/hello-1/7/{n}", "ts": stamp(NOW + n), "level": "info",
                               "host": "local", "service": "hello", "instance": "hello-1",
                               "msg": f"request number {n}", "request_id": f"req{n:04d}", "status": 200}
    base.update(fields)
    return base


def ingest(store: SqliteLogStore, *records: dict[str, object]) -> tuple[int, int]:
    result = store.ingest(parse_batch(batch(*records)))
    store.index_now()
    return result.accepted, result.duplicates


@pytest.fixture
def store(tmp_path: Path) -> SqliteLogStore:
    opened = SqliteLogStore(tmp_path / "logstore", retention=30 * 86400.0, max_bytes=1 << 30)
    yield opened
    opened.close()


# --- records --------------------------------------------------------------------------------

def test_a_record_keeps_every_field_it_came_with(store: SqliteLogStore) -> None:
    sent = record(1, route="/orders/{id}", nested={"a": [1, "two"]}, user="ada", trace_id="ab" * 16)
    ingest(store, sent)
    (found,) = store.search(parse_query({})).records
    assert {key: found[key] for key in sent} == sent
    assert isinstance(found["cursor"], int)


def test_timestamps_in_the_kits_format_and_other_iso_forms_parse_alike() -> None:
    parser = TimestampParser()
    assert parser.millis("2026-11-29T02:15:23.123Z") == 1795918523123
    assert parser.millis("2026-11-29T02:15:23Z") == 1795918523000
    assert parser.millis("2026-11-29T03:15:23.123+01:00") == 1795918523123
    with pytest.raises(ValueError, match="no time zone"):
        parser.millis("2026-11-29T02:15:23")
    with pytest.raises(ValueError, match="not a valid date"):
        parser.millis("2026-13-29T02:15:23.123Z")


@pytest.mark.parametrize(("line", "problem"), [
    (b'{"ts": "2026-11-29T02:15:23.123Z"}', "line 2: id must be a string"),
    (b'{"id": "x"}', "line 2: ts must be"),
    (b'{"id": "x", "ts": "yesterday"}', "line 2: ts 'yesterday' is not an ISO 8601 time"),
    (b'{"id": "x", "ts": "2026-11-29T02:15:23.123Z", "service": 7}', "line 2: service must be a string"),
    (b"[1, 2]", "line 2: a record must be a JSON object"),
    (b'{"id": "x", ', "line 2 is not JSON"),
])
def test_a_bad_line_rejects_the_batch_naming_it(line: bytes, problem: str) -> None:
    body = orjson.dumps(record(1)) + b"\n" + line + b"\n"
    with pytest.raises(BadBatch, match=problem.replace("(", r"\(")):
        parse_batch(body)


def test_an_unknown_level_is_stored_as_info_and_kept() -> None:
    (row,) = parse_batch(batch(record(1, level="NOTICE-ISH")))
    assert row.level == 20
    assert orjson.loads(row.extra or "{}")["level_given"] == "NOTICE-ISH"
    (row,) = parse_batch(batch(record(1, level="WARN")))
    assert row.level == 30


# --- queries --------------------------------------------------------------------------------

def test_free_text_is_quoted_for_fts5_so_its_operators_never_reach_the_store() -> None:
    assert fts_expression('timeout "connection refused" db*') == \
        '"timeout" AND "connection refused" AND "db"*'
    assert fts_expression("NOT OR AND") == '"NOT" AND "OR" AND "AND"'
    assert fts_expression('say "hi"') == '"say" AND "hi"'


@pytest.mark.parametrize(("params", "problem"), [
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"since": "last tuesday"}, "since 'last tuesday' is neither a time"),
    ({"until": "2026-11-29T02:15:00"}, "until .* has no time zone"),
    ({"q": 'timeout "connection'}, "unbalanced quote"),
    ({"q": "   "}, "q is empty"),
    ({"q": "--"}, "no letter or digit"),
    ({"level": "loud"}, "level 'loud' is not a level"),
    ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
    ({"before": "-3"}, "before must be a cursor"),
    ({"since": "1h", "until": "2h"}, "since must be before until"),
])
def test_a_bad_query_names_its_problem(params: dict[str, str], problem: str) -> None:
    with pytest.raises(BadQuery, match=problem):
        parse_query(params)


def test_relative_and_absolute_times() -> None:
    assert parse_time("15m", now=NOW) == int((NOW - 900) * 1000)
    assert parse_time("2026-11-29T02:15:23Z") == 1795918523000


def test_search_sql_puts_the_text_index_first_and_orders_by_arrival() -> None:
    sql, params = search_sql(parse_query({"q": "boom", "service": "hello", "level": "error"}), 10, before=99)
    assert sql.startswith("SELECT") and "FROM text JOIN records r" in sql
    assert sql.endswith("ORDER BY text.rowid DESC LIMIT ?")
    assert params == ['"boom"', "hello", 40, 50, 99, 10]
    sql, _ = search_sql(parse_query({}), 10, after=5)
    assert sql.endswith("WHERE r.id > ? ORDER BY r.id ASC LIMIT ?")


def test_cursors_order_segments_then_rows() -> None:
    assert split_cursor(cursor_of(3, 17)) == (3, 17)
    assert cursor_of(2, (1 << 40) - 1) < cursor_of(3, 1)


# --- the store ------------------------------------------------------------------------------

def test_a_batch_sent_twice_is_stored_once(store: SqliteLogStore) -> None:
    records = [record(n) for n in range(5)]
    assert ingest(store, *records) == (5, 0)
    assert ingest(store, *records[2:], record(9)) == (1, 3)
    assert ingest(store, record(10), record(10)) == (1, 1)
    assert store.stats().records == 7
    assert store.stats().duplicates == 4


def test_a_record_in_the_previous_segment_is_a_duplicate_too(tmp_path: Path) -> None:
    store = SqliteLogStore(tmp_path / "s", segment_bytes=1)  # every batch fills a segment
    try:
        assert ingest(store, record(1), record(2)) == (2, 0)
        assert len(store.segments) == 2
        assert ingest(store, record(2), record(3)) == (1, 1)
        assert [r["id"] for r in store.search(parse_query({})).records] == [
            "local/hello-1/7/3", "local/hello-1/7/2", "local/hello-1/7/1"]
    finally:
        store.close()


def test_filters_free_text_and_levels(store: SqliteLogStore) -> None:
    ingest(store,
           record(1, msg="connection refused by database", level="error"),
           record(2, msg="cache miss", service="ledger", instance="ledger-1", user="ada"),
           record(3, msg="slow query", level="warning", trace_id="c" * 32, detail={"table": "orders"}),
           record(4, msg="all good"))

    def ids(**params: str) -> list[str]:
        return [r["id"].rsplit("/", 1)[1] for r in store.search(parse_query(params)).records]

    assert ids() == ["4", "3", "2", "1"]
    assert ids(q="refused") == ["1"]
    assert ids(q='"connection refused"') == ["1"]
    assert ids(q='"refused connection"') == []
    assert ids(q="orders") == ["3"]  # a nested value is text too
    assert ids(q="data*") == ["1"]
    assert ids(q="table") == []  # field names are not
    assert ids(level="warning") == ["3", "1"]
    assert ids(service="ledger") == ["2"]
    assert ids(user="ada") == ["2"]
    assert ids(trace_id="c" * 32) == ["3"]
    assert ids(request_id="req0004") == ["4"]
    assert ids(since=stamp(NOW + 2), until=stamp(NOW + 4)) == ["3", "2"]
    assert ids(q="refused", level="error", service="hello") == ["1"]


def test_pages_follow_each_other_without_gaps_or_repeats(tmp_path: Path) -> None:
    store = SqliteLogStore(tmp_path / "s", segment_bytes=20_000)
    try:
        for start in range(0, 300, 30):
            ingest(store, *(record(n) for n in range(start, start + 30)))
        assert len(store.segments) > 2
        seen: list[str] = []
        before: str | None = None
        while True:
            params = {"limit": "47", "q": "request"}
            if before is not None:
                params["before"] = before
            page = store.search(parse_query(params))
            seen += [r["id"] for r in page.records]
            if page.next is None:
                break
            before = str(page.next)
        assert seen == [f"local/hello-1/7/{n}" for n in reversed(range(300))]
    finally:
        store.close()


def test_a_tail_returns_what_arrived_after_a_cursor_oldest_first(store: SqliteLogStore) -> None:
    ingest(store, record(1), record(2))
    mark = store.latest_cursor()
    assert store.tail(parse_query({}), mark) == []
    ingest(store, record(3), record(4, level="error"))
    assert [r["id"][-1] for r in store.tail(parse_query({}), mark)] == ["3", "4"]
    assert [r["id"][-1] for r in store.tail(parse_query({"level": "error"}), mark)] == ["4"]


def test_retention_drops_whole_segments_past_the_age_and_over_the_size(tmp_path: Path) -> None:
    store = SqliteLogStore(tmp_path / "s", retention=3600.0, max_bytes=1 << 30, segment_bytes=1)
    try:
        ingest(store, record(1, ts=stamp(NOW - 7200)))
        ingest(store, record(2, ts=stamp(NOW - 60)))
        ingest(store, record(3, ts=stamp(NOW)))
        assert len(store.segments) == 4
        files = sorted(p.name for p in (tmp_path / "s").glob("*.sqlite"))
        assert store.expire(now=NOW) == 1
        assert [r["id"][-1] for r in store.search(parse_query({})).records] == ["3", "2"]
        assert not (tmp_path / "s" / files[0]).exists()
        store.max_bytes = 1  # over the size: every sealed segment goes, the newest stays
        assert store.expire(now=NOW) == 2
        assert len(store.segments) == 1
        assert store.stats().expired == 3
    finally:
        store.close()


def test_a_backlog_of_old_records_fills_segments_by_size_not_one_per_batch(tmp_path: Path) -> None:
    store = SqliteLogStore(tmp_path / "s", retention=3600.0)
    try:
        for start in range(0, 50, 10):  # records from an hour ago, sent late
            ingest(store, *(record(n, ts=stamp(time.time() - 3000 + n)) for n in range(start, start + 10)))
        assert len(store.segments) == 1
        store.segments[-1].started -= 400  # a tenth of the retention later, by the clock
        ingest(store, record(99))
        assert len(store.segments) == 2
    finally:
        store.close()


def test_a_reopened_store_has_everything_and_goes_on_numbering(tmp_path: Path) -> None:
    store = SqliteLogStore(tmp_path / "s", segment_bytes=1)
    ingest(store, record(1))
    ingest(store, record(2))
    store.close()
    again = SqliteLogStore(tmp_path / "s", segment_bytes=1)
    try:
        assert ingest(again, record(2), record(3)) == (1, 1)
        assert [r["id"][-1] for r in again.search(parse_query({"q": "request"})).records] == ["3", "2", "1"]
    finally:
        again.close()
