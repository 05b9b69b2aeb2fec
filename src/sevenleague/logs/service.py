"""The logs service: every process' log records in, searches and live tails out, over HTTP.

A platform service like the others: built with `kit`, run by `python -m
sevenleague.kit.serve sevenleague.logs.service:app`, its store under
`$LEAGUE_HOME/logstore`. Host agents push batches (`POST /api/records`, scope
`logs.write`); `league logs` and the console search (`GET /api/records`) and follow
(`GET /api/tail`, server-sent events), with scope `logs.read`.

A malformed batch is refused whole with a 400 that names the line, so the agent can
find the bad record; a bad query is a 400 that names the problem. Neither is ever a 500.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .. import __version__, kit
from ..kit.api import API_EXCEPTION_HANDLERS, api_schemas, openapi_route, problem
from ..telemetry.metric_register import spec
from ._query import BadQuery, LogQuery, parse_query
from ._records import BadBatch, parse_batch
from ._store import LogStore, SqliteLogStore

HOME_ENV = "LEAGUE_HOME"
RETENTION_ENV = "LEAGUE_LOGS_RETENTION"
MAX_BYTES_ENV = "LEAGUE_LOGS_MAX_BYTES"
MAX_BATCH_BYTES = 16 << 20  # decompressed
EXPIRE_EVERY = 30.0
KEEPALIVE = 15.0  # seconds between comments on an idle tail, so proxies keep it open
TAIL_PAGE = 500

schemas = api_schemas("sevenleague logs", __version__)
log = logging.getLogger("sevenleague.logs")


class Settings:
    """Where the store lives and what it keeps, from the environment `league up` gives the service."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.directory = Path(env.get(HOME_ENV, ".league")) / "logstore"
        self.retention = _number(env, RETENTION_ENV, 7 * 86400.0)
        self.max_bytes = int(_number(env, MAX_BYTES_ENV, float(1 << 30)))


def _number(env: Any, name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SystemExit(f"{name} must be above 0, got {raw!r}")
    return value


class _State:
    store: LogStore
    ingested: asyncio.Condition
    batches: dict[str, int]


state = _State()


class StoreCollector:
    """The store's size and traffic as Prometheus metrics, read at scrape time (names from the register)."""

    NAMES = ("sevenleague_logs_records_ingested_total", "sevenleague_logs_records_duplicate_total",
             "sevenleague_logs_records_expired_total", "sevenleague_logs_store_records",
             "sevenleague_logs_store_bytes", "sevenleague_logs_store_segments",
             "sevenleague_logs_oldest_record_timestamp_seconds", "sevenleague_logs_ingest_batches_total")

    def describe(self) -> list[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        store = getattr(state, "store", None)
        return self._families(store.stats() if store is not None else None)

    def _families(self, stats: Any) -> Iterator[Metric]:
        def counter(name: str, value: float | None) -> Metric:
            return CounterMetricFamily(name.removesuffix("_total"), spec(name).help, value=value)

        def gauge(name: str, value: float | None) -> Metric:
            return GaugeMetricFamily(name, spec(name).help, value=value)

        have = stats is not None
        yield counter(self.NAMES[0], stats.ingested if have else None)
        yield counter(self.NAMES[1], stats.duplicates if have else None)
        yield counter(self.NAMES[2], stats.expired if have else None)
        yield gauge(self.NAMES[3], stats.records if have else None)
        yield gauge(self.NAMES[4], stats.bytes if have else None)
        yield gauge(self.NAMES[5], stats.segments if have else None)
        yield gauge(self.NAMES[6], (stats.oldest or 0.0) if have else None)
        batches = CounterMetricFamily(self.NAMES[7].removesuffix("_total"), spec(self.NAMES[7]).help,
                                      labels=["outcome"])
        if have:
            for outcome, count in sorted(getattr(state, "batches", {}).items()):
                batches.add_metric([outcome], count)
        yield batches


def _count_batch(outcome: str) -> None:
    state.batches[outcome] = state.batches.get(outcome, 0) + 1


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > MAX_BATCH_BYTES:
            raise _TooLarge()
        return body
    if encoding != "gzip":
        raise BadBatch(f"Content-Encoding {encoding!r} is not supported: send gzip or no encoding")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_BATCH_BYTES + 1)
    except zlib.error as error:
        raise BadBatch(f"the body is not valid gzip ({error})") from None
    if len(data) > MAX_BATCH_BYTES or inflater.unconsumed_tail:
        raise _TooLarge()
    if not inflater.eof:
        raise BadBatch("the gzip body is truncated")
    return data


class _TooLarge(Exception):
    pass


async def _bounded_body(request: Request) -> bytes:
    """The body, read no further than the largest batch: a client cannot make the service hold more."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BATCH_BYTES:
            raise _TooLarge()
    return bytes(body)


async def ingest(request: Request) -> Response:
    """
    summary: Store a batch of log records (newline-delimited JSON, usually gzip-compressed).
    description: >
      Every line is one JSON object with at least `id` (unique per record: a record whose id
      is stored already is counted as a duplicate and not stored again) and `ts` (ISO 8601).
      `level`, `host`, `service`, `instance`, `msg`, `request_id`, `trace_id` and `user` are
      indexed; any other field is kept as it came. A batch with a bad line is refused whole.
    requestBody:
      content:
        application/x-ndjson:
          schema: {type: string}
    responses:
      200:
        description: stored
        content:
          application/json:
            schema:
              type: object
              properties:
                accepted: {type: integer, description: records stored}
                duplicates: {type: integer, description: records already stored before}
      400: {$ref: "#/components/responses/BadRequest"}
      413: {description: the batch is larger than 16 MiB once decompressed}
    """
    try:
        body = await _bounded_body(request)
        data = _decompress(body, request.headers.get("content-encoding", ""))
        result = await asyncio.to_thread(_store_batch, data)
    except BadBatch as error:
        _count_batch("rejected")
        return problem(400, str(error), "fix or drop that record and send the batch again")
    except _TooLarge:
        _count_batch("rejected")
        return problem(413, f"the batch is over {MAX_BATCH_BYTES >> 20} MiB once decompressed",
                       "send smaller batches")
    _count_batch("accepted")
    async with state.ingested:
        state.ingested.notify_all()
    return Response(orjson.dumps({"accepted": result[0], "duplicates": result[1]}),
                    media_type="application/json")


def _store_batch(data: bytes) -> tuple[int, int]:
    result = state.store.ingest(parse_batch(data))
    return result.accepted, result.duplicates


def _query(request: Request) -> LogQuery:
    params = request.query_params
    twice = sorted({key for key in params if len(params.getlist(key)) > 1})
    if twice:
        raise BadQuery(f"{twice[0]} is given twice: give each parameter once")
    return parse_query(dict(params))


async def search(request: Request) -> Response:
    """
    summary: Find log records, newest first.
    description: >
      Filters: `service`, `host`, `instance`, `request_id`, `trace_id`, `user` (equal),
      `level` (this level or worse), `since` and `until` (ISO 8601 or a duration back from
      now: 15m, 1h, 2d), `q` (free text: words and "quoted phrases", all must appear; `word*`
      matches a prefix). `limit` (1-1000, default 100); `before` (the `next` of an answer)
      pages on. Any other parameter is an error.
    responses:
      200:
        description: the records, newest first, and the cursor of the next page (null at the end)
        content:
          application/json:
            schema:
              type: object
              properties:
                records: {type: array, items: {type: object}}
                next: {type: integer, nullable: true}
      400: {$ref: "#/components/responses/BadRequest"}
    """
    try:
        query = _query(request)
    except BadQuery as error:
        return problem(400, str(error))
    if query.after is not None:
        return problem(400, "after is for /api/tail; page a search with before")
    page = await asyncio.to_thread(state.store.search, query)
    return Response(orjson.dumps({"records": page.records, "next": page.next}), media_type="application/json")


async def tail(request: Request) -> Response:
    """
    summary: Follow new log records as they arrive (server-sent events).
    description: >
      The same filters as a search. Starts after cursor `after` (or the `Last-Event-ID`
      a reconnecting client sends), by default after the newest record stored now. Each
      record is an event `record` whose id is its cursor; a comment every 15 s keeps an
      idle stream open.
    responses:
      200:
        description: an event stream
        content:
          text/event-stream:
            schema: {type: string}
      400: {$ref: "#/components/responses/BadRequest"}
    """
    try:
        query = _query(request)
        resume = request.headers.get("last-event-id")
        if resume is not None:
            query = parse_query({**dict(request.query_params), "after": resume})
    except BadQuery as error:
        return problem(400, str(error))
    if query.before is not None:
        return problem(400, "before is for searches; a tail starts after a cursor")
    start = query.after if query.after is not None else state.store.latest_cursor()
    paged = LogQuery(query.fields, query.min_level, query.since, query.until, query.text, TAIL_PAGE)
    return StreamingResponse(_events(request, paged, start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(request: Request, query: LogQuery, cursor: int) -> AsyncIterator[bytes]:
    yield b": following\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        records = await asyncio.to_thread(state.store.tail, query, cursor)
        if records:
            chunk = bytearray()
            for record in records:
                cursor = record["cursor"]
                chunk += b"id: %d\nevent: record\ndata: %s\n\n" % (cursor, orjson.dumps(record))
            yield bytes(chunk)
            quiet_since = time.monotonic()
            continue
        if time.monotonic() - quiet_since >= KEEPALIVE:
            yield b": keepalive\n\n"
            quiet_since = time.monotonic()
        async with state.ingested:
            with suppress(TimeoutError):
                await asyncio.wait_for(state.ingested.wait(), timeout=1.0)


async def _expire_forever() -> None:
    while True:
        await asyncio.sleep(EXPIRE_EVERY)
        try:
            await asyncio.to_thread(state.store.expire)
        except Exception:  # retention must never stop the service; the next round tries again
            log.exception("expiring old log records failed")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings = Settings()
    store = SqliteLogStore(settings.directory, retention=settings.retention, max_bytes=settings.max_bytes)
    store.start_indexer()
    state.store = store
    state.ingested = asyncio.Condition()
    state.batches = {}
    expiring = asyncio.create_task(_expire_forever())
    try:
        yield
    finally:
        expiring.cancel()
        await asyncio.to_thread(store.close)


routes = [
    Route("/api/records", ingest, methods=["POST"]),
    Route("/api/records", search, methods=["GET"]),
    Route("/api/tail", tail, methods=["GET"]),
    openapi_route(schemas),
]

# Agents write, people and tools read; nobody else touches the records.
ACCESS: dict[str, kit.Access] = {
    "POST /api/records": "logs.write",
    "/api/records": "logs.read",
    "/api/tail": "logs.read",
    "/openapi.json": kit.PUBLIC,
}

schemas.declare_access(ACCESS)
REGISTRY.register(StoreCollector())
app = kit.instrument(Starlette(routes=routes, lifespan=lifespan, exception_handlers=API_EXCEPTION_HANDLERS),
                     service="logs", version=__version__, access=ACCESS)

__all__ = ["app"]
