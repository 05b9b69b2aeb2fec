"""Where log records are kept: the interface the service uses, and the default SQLite store.

The service knows only `LogStore`: ingest rows, search newest first, tail after a
cursor, expire, report its size. A larger installation can put another store behind
it (Loki's push and query APIs map onto these calls) without touching the API.

The default store is a directory of segments, each two SQLite files: `N.sqlite` holds
the records (the indexed fields as columns, the rest as JSON), `N.text.sqlite` the FTS5
index of their text. Records go to the newest segment until it reaches its size (a
sixteenth of the store's `max_bytes`, within 4 MiB..64 MiB) or its first record ages
past a tenth of the retention; then it is sealed and a new one starts.

Why segments rather than one table:
- retention drops whole files: instant, the space goes back to the file system at once,
  and no index is rewritten (deleting millions of rows from one table rewrites every
  index and leaves the file as large as before);
- the newest records are in the smallest files, and most searches end there (newest
  first, stop at the limit).

Why the indexing is split the way it is (measured; docs/logs.md has the figures):
ingesting must keep up with every process of the eco-system at once, and one core
parses JSON (Python) while SQLite's own work runs without the GIL. So the ingest path
writes the row and its record-id index (the dedupe key) and nothing else; a background
indexer, on its own connections and its own file, adds each record to the full-text
index a moment later, and builds the field indexes (time, service, level, request id,
trace id, user) in bulk once a segment is sealed, which costs a fraction of keeping
them row by row. Until then the newest segment, small by construction, is scanned.
A free-text search first waits (briefly) for the indexer to catch up, so it sees every
record ingested before it.

A cursor is (segment << 40) | rowid: it orders every record by arrival, pages a search
(`before`) and resumes a tail (`after`). The record id is unique within a segment and
checked against the previous one too, so a batch sent again is not stored twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._query import LogQuery
from ._records import INDEXED, LEVELS, StoredRecord, to_json

LOG = logging.getLogger("sevenleague.logs.store")
SEGMENT_SHIFT = 40
ROWID_MASK = (1 << SEGMENT_SHIFT) - 1
MIN_SEGMENT_BYTES = 4 << 20
MAX_SEGMENT_BYTES = 64 << 20
INDEX_CHUNK = 20_000  # rows the indexer adds to the full-text index per transaction
TEXT_WAIT = 5.0  # longest a free-text search waits for the indexer
_IN_CHUNK = 500  # ids per `IN (...)` when looking for duplicates
FINALIZED = 1  # PRAGMA user_version of a sealed segment whose field indexes are built

RECORDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    rid TEXT NOT NULL,
    ts INTEGER NOT NULL,
    level INTEGER NOT NULL,
    host TEXT,
    service TEXT,
    instance TEXT,
    request_id TEXT,
    trace_id TEXT,
    user TEXT,
    msg TEXT NOT NULL,
    extra TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS records_rid ON records(rid);
"""
# Built by the indexer once a segment is sealed.
FIELD_INDEXES = """
CREATE INDEX IF NOT EXISTS r.records_ts ON records(ts);
CREATE INDEX IF NOT EXISTS r.records_service ON records(service, ts);
CREATE INDEX IF NOT EXISTS r.records_level ON records(level, ts);
CREATE INDEX IF NOT EXISTS r.records_request ON records(request_id) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS r.records_trace ON records(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS r.records_user ON records(user) WHERE user IS NOT NULL;
"""
TEXT_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS text USING fts5(body, content='');
CREATE TABLE IF NOT EXISTS progress (upto INTEGER NOT NULL);
"""
# What free text matches: the message and every other value (nested ones too), not the field
# names, and not the indexed fields: each has a filter of its own.
_TEXT_OF_ROW = """
SELECT id, msg || coalesce(' ' || CASE
    WHEN instr(substr(extra, 2), '{') + instr(extra, '[') = 0
    THEN (SELECT group_concat(atom, ' ') FROM json_each(extra) WHERE type IN ('text', 'integer', 'real'))
    ELSE (SELECT group_concat(atom, ' ') FROM json_tree(extra) WHERE type IN ('text', 'integer', 'real'))
END, '')
FROM r.records WHERE id > ? AND id <= ? ORDER BY id
"""
_COLUMNS = "r.id, r.rid, r.ts, r.level, r.host, r.service, r.instance, r.request_id, r.trace_id, r.user, " \
           "r.msg, r.extra"
assert len(INDEXED) == 6  # the columns above, in this order


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next: int | None  # the `before` cursor of the next page, None when this is the last


@dataclass(frozen=True)
class StoreStats:
    records: int
    bytes: int
    segments: int
    oldest: float | None  # seconds since the epoch of the oldest stored record
    ingested: int  # since the process started
    duplicates: int
    expired: int


class LogStore(Protocol):
    """What the logs service needs from a store; records come back as JSON-ready dicts."""

    def ingest(self, records: Sequence[StoredRecord]) -> IngestResult: ...

    def search(self, query: LogQuery) -> Page: ...

    def tail(self, query: LogQuery, after: int) -> list[dict[str, Any]]: ...

    def latest_cursor(self) -> int: ...

    def expire(self, now: float | None = None) -> int: ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


def segment_bytes_for(max_bytes: int) -> int:
    return max(MIN_SEGMENT_BYTES, min(MAX_SEGMENT_BYTES, max_bytes // 16))


def cursor_of(segment: int, rowid: int) -> int:
    return (segment << SEGMENT_SHIFT) | rowid


def split_cursor(cursor: int) -> tuple[int, int]:
    return cursor >> SEGMENT_SHIFT, cursor & ROWID_MASK


def search_sql(query: LogQuery, limit: int, *, before: int | None = None,
               after: int | None = None) -> tuple[str, list[Any]]:
    """The SELECT of one segment for `query`: newest first, or oldest first after a cursor (a tail).

    With free text the full-text index leads and walks its rowids in order, so a common
    word with a small limit stops early instead of collecting every match.
    """
    where: list[str] = []
    params: list[Any] = []
    key = "r.id"
    source = "records r"
    if query.text is not None:
        source = "text JOIN records r ON r.id = text.rowid"
        key = "text.rowid"
        where.append("text MATCH ?")
        params.append(query.text)
    for name, value in query.fields:
        where.append(f"r.{name} = ?")
        params.append(value)
    if query.min_level is not None:
        levels = [number for number in LEVELS.values() if number >= query.min_level]
        where.append(f"r.level IN ({', '.join('?' * len(levels))})")
        params.extend(levels)
    if query.since is not None:
        where.append("r.ts >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("r.ts < ?")
        params.append(query.until)
    if before is not None:
        where.append(f"{key} < ?")
        params.append(before)
    if after is not None:
        where.append(f"{key} > ?")
        params.append(after)
    order = "ASC" if after is not None else "DESC"
    sql = f"SELECT {_COLUMNS} FROM {source}"  # noqa: S608 - fixed names; values are bound
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {key} {order} LIMIT ?"
    params.append(limit)
    return sql, params


def _connect(path: Path, *, cache_kib: int = 8000) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA cache_size=-{cache_kib}")
    return connection


class Segment:
    """One segment: its records file, its full-text file, and a connection per role.

    The ingest path writes records through `writer` (the newest segment only), searches
    read through `reader` (the text file attached), and the indexer writes the text
    file and, once sealed, the field indexes through `indexer`. Each connection is used
    under its own lock, so the three roles never wait for one another in Python.
    """

    def __init__(self, number: int, records_path: Path, text_path: Path) -> None:
        self.number = number
        self.path = records_path
        self.text_path = text_path
        self.writer = _connect(records_path, cache_kib=32000)
        self.writer.executescript(RECORDS_SCHEMA)
        self.writer_lock = threading.Lock()
        indexer = _connect(text_path)
        indexer.executescript(TEXT_SCHEMA)
        indexer.execute("ATTACH DATABASE ? AS r", (str(records_path),))
        self.indexer = indexer
        self.indexer_lock = threading.Lock()
        reader = _connect(records_path)
        reader.execute("ATTACH DATABASE ? AS t", (str(text_path),))
        self.reader = reader
        self.reader_lock = threading.Lock()
        row = self.writer.execute("SELECT max(id), min(ts), max(ts) FROM records").fetchone()
        self.next_rowid = (row[0] or 0) + 1
        self.min_ts: int | None = row[1]
        self.max_ts: int | None = row[2]
        self.finalized = self.writer.execute("PRAGMA user_version").fetchone()[0] == FINALIZED
        progress = indexer.execute("SELECT upto FROM progress").fetchone()
        if progress is None:
            indexer.execute("INSERT INTO progress VALUES (0)")
        self.indexed_upto: int = progress[0] if progress else 0
        self.sealed = False
        self.started = time.time()  # when this process first wrote to it, or opened it
        self.readers = 0
        self.dropped = False

    @property
    def records(self) -> int:
        return self.next_rowid - 1

    def size(self) -> int:
        total = 0
        for path in (self.path, self.text_path):
            for suffix in ("", "-wal"):
                with suppress(FileNotFoundError):
                    total += path.with_name(path.name + suffix).stat().st_size
        return total

    def overlaps(self, since: int | None, until: int | None) -> bool:
        if self.min_ts is None or self.max_ts is None:
            return False
        return (since is None or self.max_ts >= since) and (until is None or self.min_ts < until)

    def existing(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.reader_lock:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                sql = f"SELECT rid FROM records WHERE rid IN ({', '.join('?' * len(chunk))})"  # noqa: S608
                found.update(row[0] for row in self.reader.execute(sql, chunk))
        return found

    def append(self, records: Sequence[StoredRecord]) -> int:
        """Store the records whose id this segment does not hold yet; returns how many it stored."""
        with self.writer_lock:
            connection = self.writer
            before = connection.total_changes
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT OR IGNORE INTO records (rid, ts, level, host, service, instance, request_id, "
                    "trace_id, user, msg, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            stored = connection.total_changes - before
        self.next_rowid += stored  # rowids are handed out in order, and never taken back
        stamps = [record.ts for record in records]
        low, high = min(stamps), max(stamps)
        self.min_ts = low if self.min_ts is None else min(self.min_ts, low)
        self.max_ts = high if self.max_ts is None else max(self.max_ts, high)
        return stored

    # --- the indexer's work (background thread) ----------------------------------------------

    def index_text(self) -> bool:
        """Add the next chunk of records to the full-text index; False when there was nothing to add."""
        upto = self.indexed_upto
        last = min(self.records, upto + INDEX_CHUNK)
        if last <= upto:
            return False
        with self.indexer_lock:
            connection = self.indexer
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(f"INSERT INTO text(rowid, body) {_TEXT_OF_ROW}", (upto, last))
                connection.execute("UPDATE progress SET upto = ?", (last,))
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        self.indexed_upto = last
        return True

    def finalize(self) -> None:
        """A sealed segment's field indexes, built in bulk; statistics; its full-text index merged."""
        with self.indexer_lock:
            connection = self.indexer
            connection.executescript(FIELD_INDEXES)
            connection.execute("PRAGMA r.analysis_limit=1000")
            connection.execute("ANALYZE r")
            connection.execute("INSERT INTO text(text) VALUES ('optimize')")
            connection.execute("PRAGMA r.user_version = 1")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA r.wal_checkpoint(TRUNCATE)")
        self.finalized = True

    # --- reading -----------------------------------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.reader_lock:
            return self.reader.execute(sql, params).fetchall()

    def close(self) -> None:
        for lock, connection in ((self.writer_lock, self.writer), (self.indexer_lock, self.indexer),
                                 (self.reader_lock, self.reader)):
            with lock:
                connection.close()

    def remove_files(self) -> None:
        for path in (self.path, self.text_path):
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)


class SqliteLogStore:
    """The default store: SQLite segments under one directory (see the module docstring).

    `start_indexer()` runs the background indexer; without it (a short-lived store in a
    tool or a test) `index_now()` does the same work in the caller's thread.
    """

    def __init__(self, directory: Path, *, retention: float = 7 * 86400.0, max_bytes: int = 1 << 30,
                 segment_bytes: int | None = None) -> None:
        self.directory = directory
        self.retention = retention
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or segment_bytes_for(max_bytes)
        directory.mkdir(parents=True, exist_ok=True)
        self._write = threading.Lock()
        self._list = threading.Lock()
        self._work = threading.Condition()
        self._stopping = False
        self._indexer: threading.Thread | None = None
        numbers = sorted(int(path.name.split(".")[0]) for path in directory.glob("*.sqlite")
                         if path.name.split(".")[0].isdigit() and not path.name.endswith(".text.sqlite"))
        self.segments: list[Segment] = [self._open(number) for number in numbers] or [self._open(1)]
        for segment in self.segments[:-1]:
            segment.sealed = True
        self.ingested = self.duplicates = self.expired = 0

    def _open(self, number: int) -> Segment:
        return Segment(number, self.directory / f"{number:08d}.sqlite",
                       self.directory / f"{number:08d}.text.sqlite")

    # --- writing ---------------------------------------------------------------------------

    def ingest(self, records: Sequence[StoredRecord]) -> IngestResult:
        if not records:
            return IngestResult(0, 0)
        with self._write:
            current = self.segments[-1]
            fresh: Sequence[StoredRecord] = records
            if len(self.segments) > 1:
                # A record the previous segment holds is no newer than its newest record.
                previous = self.segments[-2]
                newest = previous.max_ts if previous.max_ts is not None else -1
                maybe = [record.id for record in records if record.ts <= newest]
                if maybe:
                    seen = previous.existing(maybe)
                    fresh = [record for record in records if record.id not in seen]
            stored = current.append(fresh) if fresh else 0
            self.ingested += stored
            self.duplicates += len(records) - stored
            if self._full(current):
                self._roll(current)
        self._wake()
        return IngestResult(stored, len(records) - stored)

    def _full(self, segment: Segment, now: float | None = None) -> bool:
        """Big enough, or written to for a tenth of the retention (by the clock, not by its records'
        times: a backlog of old records arriving at once fills segments by size, not one per batch)."""
        if segment.min_ts is None:
            return False
        now = time.time() if now is None else now
        return segment.size() >= self.segment_bytes or now - segment.started >= self.retention / 10

    def _roll(self, current: Segment) -> None:
        fresh = self._open(current.number + 1)
        with self._list:
            current.sealed = True
            self.segments.append(fresh)
        with current.writer_lock:
            current.writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def expire(self, now: float | None = None) -> int:
        """Drop the sealed segments past the retention, then the oldest while the store is too large."""
        now = time.time() if now is None else now
        with self._write:
            current = self.segments[-1]
            if self._full(current, now):
                self._roll(current)
            doomed: list[Segment] = []
            with self._list:
                total = sum(segment.size() for segment in self.segments)
                for segment in self.segments[:-1]:
                    too_old = segment.max_ts is not None and segment.max_ts < (now - self.retention) * 1000
                    if not too_old and total <= self.max_bytes:
                        break
                    doomed.append(segment)
                    total -= segment.size()
                    segment.dropped = True
                self.segments = [s for s in self.segments if not s.dropped]
        dropped = sum(segment.records for segment in doomed)
        for segment in doomed:
            self._release_if_unused(segment)
        self.expired += dropped
        if doomed:
            LOG.info("expired %d log segments (%d records)", len(doomed), dropped)
        return dropped

    def _release_if_unused(self, segment: Segment) -> None:
        with self._list:
            if not segment.dropped or segment.readers:
                return
            segment.readers = -1  # released: never twice
        with self._work:  # not while the indexer is working on it
            segment.close()
        segment.remove_files()

    # --- the indexer -------------------------------------------------------------------------

    def start_indexer(self) -> None:
        if self._indexer is None:
            self._indexer = threading.Thread(target=self._index_forever, name="logs-indexer", daemon=True)
            self._indexer.start()

    def _wake(self) -> None:
        with self._work:
            self._work.notify_all()

    def index_now(self) -> bool:
        """One round of the indexer's work; True when it did something."""
        with self._work:
            with self._list:
                segments = [s for s in self.segments if not s.dropped]
            did = False
            for segment in segments:
                while segment.index_text():
                    did = True
                    self._work.notify_all()  # searches waiting for the text index
                if segment.sealed and not segment.finalized:
                    segment.finalize()
                    LOG.info("sealed log segment %d: %d records, %d bytes", segment.number, segment.records,
                             segment.size())
                    did = True
            self._work.notify_all()
            return did

    def _index_forever(self) -> None:
        while not self._stopping:
            try:
                did = self.index_now()
            except sqlite3.Error:
                LOG.exception("the log indexer failed; trying again in a second")
                time.sleep(1.0)
                continue
            if not did:
                with self._work:
                    if not self._stopping:
                        self._work.wait(0.2)

    def _text_indexed(self, segments: Sequence[Segment], timeout: float = TEXT_WAIT) -> None:
        """Wait until every record of `segments` ingested so far is in the full-text index."""
        if self._indexer is None:
            self.index_now()
            return
        deadline = time.monotonic() + timeout
        with self._work:
            while any(s.indexed_upto < s.records for s in segments) and time.monotonic() < deadline:
                self._work.notify_all()
                self._work.wait(0.05)

    # --- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[list[Segment]]:
        """The segments as they are now, kept open until the reader is done even if one expires meanwhile."""
        with self._list:
            segments = list(self.segments)
            for segment in segments:
                segment.readers += 1
        try:
            yield segments
        finally:
            with self._list:
                for segment in segments:
                    segment.readers -= 1
            for segment in segments:
                if segment.dropped:
                    self._release_if_unused(segment)

    def search(self, query: LogQuery) -> Page:
        found: list[dict[str, Any]] = []
        before_segment, before_rowid = (None, None) if query.before is None else split_cursor(query.before)
        with self._reading() as segments:
            if query.text is not None:
                self._text_indexed(segments)
            for segment in reversed(segments):
                if before_segment is not None and segment.number > before_segment:
                    continue
                if not segment.overlaps(query.since, query.until):
                    continue
                bound = before_rowid if segment.number == before_segment else None
                sql, params = search_sql(query, query.limit - len(found), before=bound)
                found += [to_json(row[1:], cursor_of(segment.number, row[0]))
                          for row in segment.rows(sql, params)]
                if len(found) >= query.limit:
                    break
        following = found[-1]["cursor"] if len(found) >= query.limit else None
        return Page(found, following)

    def tail(self, query: LogQuery, after: int) -> list[dict[str, Any]]:
        """Records stored after cursor `after` that match, oldest first, at most `query.limit`."""
        after_segment, after_rowid = split_cursor(after)
        found: list[dict[str, Any]] = []
        with self._reading() as segments:
            if query.text is not None:
                self._text_indexed(segments)
            for segment in segments:
                if segment.number < after_segment:
                    continue
                bound = after_rowid if segment.number == after_segment else 0
                sql, params = search_sql(query, query.limit - len(found), after=bound)
                found += [to_json(row[1:], cursor_of(segment.number, row[0]))
                          for row in segment.rows(sql, params)]
                if len(found) >= query.limit:
                    break
        return found

    def latest_cursor(self) -> int:
        with self._list:
            current = self.segments[-1]
            return cursor_of(current.number, current.next_rowid - 1)

    def stats(self) -> StoreStats:
        with self._reading() as segments:
            stamps = [s.min_ts for s in segments if s.min_ts is not None]
            return StoreStats(sum(s.records for s in segments), sum(s.size() for s in segments),
                              len(segments), min(stamps) / 1000 if stamps else None, self.ingested,
                              self.duplicates, self.expired)

    def close(self) -> None:
        self._stopping = True
        self._wake()
        if self._indexer is not None:
            self._indexer.join(timeout=30)
        with self._write, self._list:
            for segment in self.segments:
                segment.close()
