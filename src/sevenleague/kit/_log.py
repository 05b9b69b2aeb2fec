"""JSON lines on stdout: one object per line, cheap enough for every request.

Records are serialised with orjson and written in batches (every `flush_interval`
seconds or every 64 KiB), because a write system call per request costs more than the
rest of the logging. Whoever reads stdout (supervisord, the journal) sees whole lines.
The batch is one growing bytearray: keeping each record's bytes object alive until the
flush measured several times slower than the serialisation itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from contextvars import ContextVar
from typing import Any

import orjson

_OPTIONS = orjson.OPT_APPEND_NEWLINE


# ".000Z" ... ".999Z": the millisecond suffix of a timestamp, looked up rather than formatted
MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


class UtcClock:
    """ISO 8601 timestamps with milliseconds; the date part is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def date_prefix(self, second: int) -> str:
        """"2026-11-29T02:15:23" for a whole second; formatted once per second."""
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return self._prefix

    def timestamp(self, now: float | None = None) -> str:
        if now is None:
            now = time.time()
        second = int(now)
        return self.date_prefix(second) + MILLIS[int((now - second) * 1000)]


class JsonLines:
    """A buffered writer of JSON records to a file descriptor (stdout by default)."""

    def __init__(self, fd: int = 1, *, flush_interval: float = 0.2, max_buffer: int = 64 * 1024) -> None:
        self.fd = fd
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.clock = UtcClock()
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        data = orjson.dumps(record, option=_OPTIONS, default=str)
        with self._lock:
            self._buffer += data
            full = len(self._buffer) >= self.max_buffer
        if full:
            self.flush()
        elif self._timer is None:
            self._schedule_flush()

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        """Serialise and write many records at once (they are flushed right away)."""
        with self._lock:
            for record in records:
                self._buffer += orjson.dumps(record, option=_OPTIONS, default=str)
        self.flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no event loop in this thread: nothing would flush later
            return
        self._timer = loop.call_later(self.flush_interval, self.flush)

    def flush(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._buffer:
                return
            data = bytes(self._buffer)
            self._buffer.clear()
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError:
                return  # stdout is gone (reader exited): dropping logs beats crashing
            view = view[written:]


# The request being answered, as its log lines name it: request id, and once the token is
# checked the caller (`user`, `client`, `actor`). Set by the kit around each request, so a
# line the app logs while answering carries them too, whatever logger it uses.
REQUEST_FIELDS: ContextVar[dict[str, str] | None] = ContextVar("sevenleague_request", default=None)


class JsonLogHandler(logging.Handler):
    """Routes stdlib logging (the server's, the app's) through the same JSON lines."""

    def __init__(self, writer: JsonLines, fields: dict[str, Any]) -> None:
        super().__init__()
        self.writer = writer
        self.fields = fields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry: dict[str, Any] = {
                "ts": self.writer.clock.timestamp(record.created),
                "level": record.levelname.lower(),
                **self.fields,
                "logger": record.name,
                "msg": record.getMessage(),
            }
            request = REQUEST_FIELDS.get()
            if request:
                entry.update(request)
            if record.exc_info:
                entry["exception"] = logging.Formatter().formatException(record.exc_info)
            self.writer.write(entry)
        except Exception:  # logging must never take the process down
            self.handleError(record)


# The process' stdout writer: the access log and the logging handler share it, so
# their lines never interleave mid-line.
STDOUT = JsonLines()
