"""Log records as they arrive (JSON objects) and as they are stored (one row each).

A batch is newline-delimited JSON, one record per line. The fields every query filters
on become columns of their own (time, level, host, service, instance, request id, trace
id, user) and the message; everything else a record carries is kept, as it came, in one
JSON column. A batch is checked whole before any of it is stored: a malformed line
rejects the batch with its line number, so an agent never half-delivers one.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime
from typing import Any, NamedTuple

import orjson

MAX_ID_LENGTH = 200
MAX_FIELD_LENGTH = 200  # an indexed field (host, service, request id...) longer than this is not an id
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
LEVEL_ALIASES = {"warn": "warning", "fatal": "critical", "err": "error", "crit": "critical",
                 "notice": "info", "trace": "debug", "emerg": "critical", "alert": "critical"}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}
_LEVEL_OF = {**LEVELS, **{alias: LEVELS[name] for alias, name in LEVEL_ALIASES.items()}}
# The fields stored as columns; `id`, `ts`, `level` and `msg` have their own handling.
INDEXED = ("host", "service", "instance", "request_id", "trace_id", "user")
KNOWN = frozenset({"id", "ts", "level", "msg", *INDEXED})

_KIT_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


class BadBatch(ValueError):
    """A batch that cannot be stored; the message names the line and what is wrong with it."""


class StoredRecord(NamedTuple):
    """One row as stored: the record id, the time in ms since the epoch, the level as a number, the
    indexed fields, the message, and the remaining fields as JSON (None when there are none)."""

    id: str
    ts: int
    level: int
    host: str | None
    service: str | None
    instance: str | None
    request_id: str | None
    trace_id: str | None
    user: str | None
    msg: str
    extra: str | None


class TimestampParser:
    """ISO 8601 times to milliseconds; the kit's own format ("...:23.123Z") takes a fast path.

    The whole seconds of a timestamp are looked up in a small cache: a batch's records
    share their seconds, and `calendar.timegm` is the slow part.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}

    def millis(self, value: str) -> int:
        size = len(value)
        if size == 24 and value[19] == "." and value[23] == "Z" and value[20:23].isdigit():
            second = self._seconds.get(value[:19])
            if second is None:
                second = self._second(value[:19])
            return second * 1000 + int(value[20:23])
        if size == 20 and value[19] == "Z":  # whole seconds, as HAProxy writes them
            second = self._seconds.get(value[:19])
            return (self._second(value[:19]) if second is None else second) * 1000
        if _KIT_TS.fullmatch(value):
            fraction = value[20:-1]
            return self._second(value[:19]) * 1000 + (int(fraction[:3].ljust(3, "0")) if fraction else 0)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"ts {value[:40]!r} is not an ISO 8601 time (e.g. 2026-11-29T02:15:23.123Z)") \
                from None
        if moment.tzinfo is None:
            raise ValueError(f"ts {value[:40]!r} has no time zone (end it with Z for UTC)")
        return int(moment.timestamp() * 1000)

    def _second(self, head: str) -> int:
        """Seconds since the epoch of "2026-11-29T02:15:23"; a head not cached yet is checked by strptime."""
        second = self._seconds.get(head)
        if second is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            try:
                second = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
            except ValueError:
                raise ValueError(f"ts {head!r} is not a valid date and time") from None
            self._seconds[head] = second
        return second


def level_number(value: Any) -> int | None:
    """The level as a number, or None for a level this store does not know."""
    return _LEVEL_OF.get(value.lower()) if isinstance(value, str) else None


def format_ts(millis: int) -> str:
    second, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + f".{ms:03d}Z"


def _checked_fields(fields: tuple[Any, ...]) -> tuple[str | None, ...]:
    """The indexed fields with empty strings as None; ValueError names a field that is not a short string."""
    checked = []
    for key, value in zip(INDEXED, fields, strict=True):
        if value is not None and (type(value) is not str or len(value) > MAX_FIELD_LENGTH):
            raise ValueError(f"{key} must be a string of at most {MAX_FIELD_LENGTH} characters")
        checked.append(value or None)
    return tuple(checked)


def to_stored(record: Any, timestamps: TimestampParser) -> StoredRecord:
    """One decoded JSON record as a row (the dict is consumed); ValueError says what is wrong with it.

    This runs for every line ingested, so it pops the known keys off the record instead of
    building a second dict, and checks types with `type(...) is` rather than isinstance.
    """
    if type(record) is not dict:
        raise ValueError("a record must be a JSON object")
    pop = record.pop
    ident = pop("id", None)
    if type(ident) is not str or not 0 < len(ident) <= MAX_ID_LENGTH:
        raise ValueError(f"id must be a string of 1 to {MAX_ID_LENGTH} characters (the record's dedupe key)")
    ts = pop("ts", None)
    if type(ts) is not str:
        raise ValueError("ts must be an ISO 8601 time string")
    millis = timestamps.millis(ts)
    raw_level = pop("level", "info")
    level = _LEVEL_OF.get(raw_level) if type(raw_level) is str else None
    if level is None:
        level = level_number(raw_level)
        if level is None:
            level = LEVELS["info"]
            record["level_given"] = raw_level  # kept, so nothing the process said is lost
    fields: tuple[Any, ...] = (pop("host", None), pop("service", None), pop("instance", None),
                               pop("request_id", None), pop("trace_id", None), pop("user", None))
    for value in fields:
        if value is not None and (type(value) is not str or len(value) > MAX_FIELD_LENGTH or not value):
            fields = _checked_fields(fields)
            break
    msg = pop("msg", "")
    if type(msg) is not str:
        msg = orjson.dumps(msg).decode()
    return StoredRecord(ident, millis, level, fields[0], fields[1], fields[2], fields[3], fields[4],
                        fields[5], msg, orjson.dumps(record).decode() if record else None)


# Shared by every batch: the seconds of recent timestamps stay cached from one batch to the next.
SHARED_TIMESTAMPS = TimestampParser()


def parse_batch(body: bytes, timestamps: TimestampParser | None = None) -> list[StoredRecord]:
    """Every record of an NDJSON batch, in order; `BadBatch` names the first bad line."""
    timestamps = timestamps or SHARED_TIMESTAMPS
    records: list[StoredRecord] = []
    append = records.append
    loads = orjson.loads
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            append(to_stored(loads(line), timestamps))
        except orjson.JSONDecodeError as error:
            raise BadBatch(f"line {number} is not JSON ({error.msg})") from None
        except ValueError as error:
            raise BadBatch(f"line {number}: {error}") from None
    return records


def to_json(row: tuple[Any, ...], cursor: int) -> dict[str, Any]:
    """A stored row (id, ts, level, host, service, instance, request_id, trace_id, user, msg, extra)
    as the record it came as, with its `cursor` (its place in the store, for paging and tailing)."""
    ident, ts, level, *indexed, msg, extra = row
    record: dict[str, Any] = {"ts": format_ts(ts), "level": LEVEL_NAMES.get(level, "info")}
    for key, value in zip(INDEXED, indexed, strict=True):
        if value is not None:
            record[key] = value
    record["msg"] = msg
    if extra:
        record.update(orjson.loads(extra))
    record["id"] = ident
    record["cursor"] = cursor
    return record
