"""Read, buffer, ship, acknowledge, checkpoint: the agent's one loop, at least once.

Three tasks share one buffer, all on the event loop (reads run in a worker thread):

- the reader takes new entries from every source while the buffer has room. The buffer
  is bounded (`max_buffered` records read ahead of the last acknowledgement): when it is
  full the reader stops, and the files on disk (or the journal) are the buffer;
- the shipper sends the oldest records as one gzip NDJSON batch (up to `batch_records`
  or `batch_bytes`, or whatever waited `flush_seconds`), one batch at a time, so
  acknowledgements arrive in reading order. A batch the logs service cannot take now
  (no answer, 5xx, a token problem) is sent again after a backoff, never dropped; a batch
  it refuses as malformed (400, 413) is split in halves until the record at fault is
  alone, which is logged and skipped;
- the keeper writes the checkpoint: per source, the position after the last record the
  logs service acknowledged, or, when nothing of the source waits for an answer, how far
  the source has read (it may have read lines that make no record, or moved to a new file).
  A source the checkpoint does not name yet (a program seen for the first time) is
  written there, at the position before its first record, before any of it is sent: a
  crash before the first checkpoint would otherwise start it afresh at the next start,
  past files rotated meanwhile.

The checkpoint never moves past a record that was not acknowledged; after a crash the
agent reads again from it and sends some records twice, which the logs service drops by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from ._checkpoint import CheckpointFile
from ._records import format_ts
from ._sources import Entry, Position, Reading, Source

BACKOFF_FIRST = 0.2
BACKOFF_CAP = 5.0
# A malformed batch: split it to find the record at fault. 413 is a batch too big to take.
REFUSED = frozenset({400, 413})

log = logging.getLogger("sevenleague.agent")


@dataclass(frozen=True)
class Limits:
    max_buffered: int = 50_000
    batch_records: int = 5_000
    batch_bytes: int = 1 << 20
    flush_seconds: float = 0.5
    poll_seconds: float = 0.25
    checkpoint_seconds: float = 0.25


@dataclass(frozen=True)
class Answer:
    """What the logs service answered a batch."""

    status: int
    body: bytes = b""

    @property
    def kind(self) -> Literal["accepted", "refused", "retry"]:
        if 200 <= self.status < 300:
            return "accepted"
        return "refused" if self.status in REFUSED else "retry"

    @property
    def detail(self) -> str:
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            return str(document["error"])[:300]
        return self.body[:200].decode("utf-8", errors="replace") or "(no body)"


class Deliver(Protocol):
    """POST one gzip NDJSON body to the logs service; raises when no answer came."""

    async def __call__(self, body: bytes) -> Answer: ...


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before try `attempt + 1`: 0.2 s doubling up to 5 s, jittered down by up to half.

    The jitter keeps agents that lost the logs service at the same moment from all coming
    back at the same moment.
    """
    nominal = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(attempt, 16))
    return nominal / 2 + rng.random() * nominal / 2


def encode_batch(entries: Sequence[Entry]) -> bytes:
    return gzip.compress(b"".join(entry.data for entry in entries), compresslevel=6)


def _record_id(entry: Entry) -> str:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
        return str(orjson.loads(entry.data).get("id"))
    return "(unreadable)"


@dataclass
class Counters:
    records_read: int = 0
    records_shipped: int = 0
    records_duplicate: int = 0
    records_skipped: int = 0
    ship_failures: int = 0
    last_shipped: float | None = None  # seconds since the epoch
    last_error: str | None = None
    last_error_at: float | None = None
    source_errors: dict[str, str] = field(default_factory=dict)


class Pipeline:
    """The sources, the buffer, the shipper and the checkpoint of one agent.

    `acknowledged` is the checkpoint as loaded (positions as JSON, by source key).
    """

    def __init__(self, sources: Sequence[Source], deliver: Deliver, checkpoint: CheckpointFile, *,
                 acknowledged: Mapping[str, Any] | None = None, limits: Limits = Limits(),
                 rng: random.Random | None = None) -> None:
        self.sources = list(sources)
        self.deliver = deliver
        self.checkpoint = checkpoint
        self.limits = limits
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.counters = Counters()
        self.buffer: deque[Entry] = deque()
        self.buffered_bytes = 0
        self.pending = {source.key: 0 for source in self.sources}
        self.read_positions: dict[str, Position | None] = {}
        self.acknowledged: dict[str, Any] = dict(acknowledged or {})
        self._unsent_since: float | None = None
        self._starts_unsaved = False  # a source got its first checkpoint position, not yet on disk
        self._turn = 0
        self._failing = False
        self._saved: dict[str, Any] | None = None
        self._saving = asyncio.Lock()  # the keeper, the shipper and stop() all save; one at a time
        self._stopping = asyncio.Event()
        self._data = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- running --------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read_loop(), name="agent-reader"),
                       asyncio.create_task(self._ship_loop(), name="agent-shipper"),
                       asyncio.create_task(self._keep_checkpoint(), name="agent-checkpoint")]

    async def stop(self, grace: float = 2.0) -> None:
        """Stop reading, ship what is buffered for up to `grace` seconds, write the checkpoint."""
        if not self._tasks:
            return
        self._stopping.set()
        self._data.set()
        reader, shipper, keeper = self._tasks
        await asyncio.gather(reader, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shipper, grace)
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await self.save_checkpoint()
        for source in self.sources:
            await asyncio.to_thread(source.close)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- reading --------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._stopping.is_set():
            room = self.limits.max_buffered - len(self.buffer)
            taken = 0
            try:
                if room > 0:
                    taken = self._take(await asyncio.to_thread(self._read_round, room))
            except Exception:  # a bug in one round must not stop the agent reading for good
                log.exception("reading the sources failed; trying again")
            if taken == 0:
                await self._pause(self.limits.poll_seconds)

    def _read_round(self, room: int) -> list[tuple[str, Reading | BaseException]]:
        """One read of every source, in a worker thread; the sources take turns at going first."""
        results: list[tuple[str, Reading | BaseException]] = []
        count = len(self.sources)
        self._turn = (self._turn + 1) % max(count, 1)
        for index in range(count):
            if room <= 0:
                break
            source = self.sources[(self._turn + index) % count]
            try:
                reading = source.read(min(room, self.limits.batch_records))
            except Exception as error:  # one broken source must not stop the others
                results.append((source.key, error))
                continue
            room -= len(reading.entries)
            results.append((source.key, reading))
        return results

    def _take(self, results: list[tuple[str, Reading | BaseException]]) -> int:
        taken = 0
        errors = self.counters.source_errors
        for key, result in results:
            if isinstance(result, BaseException):
                why = f"{type(result).__name__}: {result}"
                if errors.get(key) != why:
                    log.error("reading %s failed: %s", key, why, exc_info=result)
                errors[key] = why
                continue
            if key in errors:
                log.info("reading %s works again", key)
                del errors[key]
            self.read_positions[key] = result.position
            if result.entries and key not in self.acknowledged and result.start is not None:
                self.acknowledged[key] = result.start.to_json()
                self._starts_unsaved = True
            if result.entries:
                self.buffer.extend(result.entries)
                self.buffered_bytes += sum(len(entry.data) for entry in result.entries)
                self.pending[key] += len(result.entries)
                taken += len(result.entries)
        if taken:
            self.counters.records_read += taken
            if self._unsent_since is None:
                self._unsent_since = time.monotonic()
            self._data.set()
        return taken

    # --- shipping -------------------------------------------------------------------------

    async def _ship_loop(self) -> None:
        limits = self.limits
        while True:
            stopping = self._stopping.is_set()
            if not self.buffer:
                if stopping:
                    return
                await self._wait_for_data(limits.flush_seconds)
                continue
            waited = time.monotonic() - (self._unsent_since or time.monotonic())
            if (not stopping and len(self.buffer) < limits.batch_records
                    and self.buffered_bytes < limits.batch_bytes and waited < limits.flush_seconds):
                await self._wait_for_data(limits.flush_seconds - waited)
                continue
            if self._starts_unsaved:  # on disk before anything of those sources is sent
                self._starts_unsaved = False
                await self.save_checkpoint()
                continue
            batch = self._next_batch()
            # What is left has waited at least as long as this batch: it goes right after it.
            self._unsent_since = time.monotonic() - limits.flush_seconds if len(self.buffer) > len(batch) \
                else None
            try:
                await self._deliver_batch(batch)
            except Exception:  # a bug; what is not acknowledged stays in the buffer and goes again
                log.exception("shipping a batch failed; trying again")
                self._unsent_since = time.monotonic() - limits.flush_seconds
                await self._pause(1.0)

    async def _wait_for_data(self, seconds: float) -> None:
        self._data.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._data.wait(), seconds)

    def _next_batch(self) -> list[Entry]:
        batch: list[Entry] = []
        size = 0
        most, most_bytes = self.limits.batch_records, self.limits.batch_bytes
        for entry in self.buffer:
            if batch and (len(batch) >= most or size + len(entry.data) > most_bytes):
                break
            batch.append(entry)
            size += len(entry.data)
        return batch

    async def _deliver_batch(self, batch: list[Entry]) -> None:
        """Deliver `batch`, halving a refused part until the record at fault is alone (then skipped)."""
        parts = [batch]
        while parts:
            part = parts.pop()
            answer = await self._send(part)
            if answer.kind == "accepted":
                self._acknowledge(part, answer)
            elif len(part) == 1:
                log.error("the logs service refused record %s (%d: %s); it is skipped",
                          _record_id(part[0]), answer.status, answer.detail)
                self.counters.records_skipped += 1
                self._acknowledge(part, None)
            else:
                middle = len(part) // 2
                parts += [part[middle:], part[:middle]]  # the first half goes first

    async def _send(self, part: list[Entry]) -> Answer:
        """The logs service's answer to `part`, once it is one worth acting on (tries again until then)."""
        body = await asyncio.to_thread(encode_batch, part)
        attempt = 0
        while True:
            try:
                answer = await self.deliver(body)
            except Exception as error:  # no answer: the same batch goes again
                problem = str(error) or type(error).__name__
            else:
                if answer.kind != "retry":
                    if self._failing:
                        log.info("the logs service takes records again")
                        self._failing = False
                    return answer
                problem = f"the logs service answered {answer.status}: {answer.detail}"
            self.counters.ship_failures += 1
            self._note_error(problem)
            await asyncio.sleep(backoff_delay(attempt, self.rng))
            attempt += 1

    def _note_error(self, problem: str) -> None:
        if not self._failing or problem != self.counters.last_error:
            log.warning("shipping %d buffered records failed (%s); trying again with backoff",
                        len(self.buffer), problem)
        self._failing = True
        self.counters.last_error = problem
        self.counters.last_error_at = time.time()

    def _acknowledge(self, part: list[Entry], answer: Answer | None) -> None:
        """`part`, the head of the buffer, is done with: the sources' acknowledged positions move on."""
        last: dict[str, Position] = {}
        size = 0
        for entry in part:
            head = self.buffer.popleft()
            assert head is entry, "acknowledged out of order"
            self.pending[entry.key] -= 1
            size += len(entry.data)
            last[entry.key] = entry.position
        self.buffered_bytes -= size
        for key, position in last.items():
            self.acknowledged[key] = position.to_json()
        if answer is not None:
            self.counters.records_shipped += len(part)
            self.counters.last_shipped = time.time()
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                self.counters.records_duplicate += int(orjson.loads(answer.body).get("duplicates", 0))

    # --- the checkpoint -------------------------------------------------------------------

    def checkpoint_positions(self) -> dict[str, Any]:
        """Per source: how far every record is acknowledged (positions of sources gone are kept)."""
        positions = dict(self.acknowledged)
        for key, pending in self.pending.items():
            read = self.read_positions.get(key)
            if pending == 0 and read is not None:
                positions[key] = read.to_json()
        return positions

    async def save_checkpoint(self) -> None:
        async with self._saving:
            positions = self.checkpoint_positions()
            if positions == self._saved:
                return
            try:
                await asyncio.to_thread(self.checkpoint.save, positions)
            except OSError as error:
                log.error("writing the checkpoint %s failed: %s", self.checkpoint.path, error)
                return
            self._saved = positions

    async def _keep_checkpoint(self) -> None:
        while True:
            await asyncio.sleep(self.limits.checkpoint_seconds)
            try:
                await self.save_checkpoint()
            except Exception:  # the next round tries again
                log.exception("writing the checkpoint failed")

    # --- what it reports ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        counters = self.counters
        acknowledged = self.checkpoint_positions()
        sources = {}
        for source in self.sources:
            read = self.read_positions.get(source.key)
            sources[source.key] = {
                "read": read.to_json() if read is not None else None,
                "acknowledged": acknowledged.get(source.key),
                "buffered": self.pending[source.key],
                "error": counters.source_errors.get(source.key) or getattr(source, "error", None),
            }
        return {
            "buffered": len(self.buffer),
            "buffered_bytes": self.buffered_bytes,
            "max_buffered": self.limits.max_buffered,
            "records_read": counters.records_read,
            "records_shipped": counters.records_shipped,
            "records_duplicate": counters.records_duplicate,
            "records_skipped": counters.records_skipped,
            "ship_failures": counters.ship_failures,
            "last_shipped": format_ts(counters.last_shipped) if counters.last_shipped else None,
            "last_error": None if counters.last_error is None else {
                "message": counters.last_error, "at": format_ts(counters.last_error_at or 0.0),
                "ongoing": self._failing},
            "sources": sources,
        }
