"""Log records from what programs write: pure functions, no files, no clock, no network.

A line that is a JSON object keeps its own fields (the kit writes every line that way); any
other line becomes `{"msg": line, "level": "info"}`. The agent then adds where the line came
from (`host`, `program`, `service`, `instance`) and an `id` that names the line's place:
the same line read twice, after a restart or a retry, gets the same id, and the logs service
stores it once.

The logs service refuses a whole batch for one record it cannot index (a `ts` that is not an
ISO 8601 time with a zone, a `user` that is a number...). A program is free to log such a
line, so the record is made acceptable here instead, without losing what was said: the
offending value moves to `<field>_given` and the agent's own value takes its place.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

MAX_INDEXED_LENGTH = 200  # the logs service's limit for an indexed field
# Fields the agent owns: a line's own value is kept under `<field>_given`.
OWNED = ("id", "host", "program")
# Indexed fields a line may set itself; the logs service wants each a string of <= 200 characters.
LINE_INDEXED = ("service", "instance", "request_id", "trace_id", "user")
_KIT_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


@dataclass(frozen=True, slots=True)
class Origin:
    """Where records come from: the host, the program, and the service and instance it runs."""

    host: str
    program: str
    service: str
    instance: str


def format_ts(seconds: float) -> str:
    """Seconds since the epoch as the kit writes times: "2026-11-29T02:15:23.123Z"."""
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + _MILLIS[int((seconds - whole) * 1000)]


def file_record_id(host: str, program: str, file_key: str, offset: int) -> str:
    """The id of the line starting at `offset` of the file `file_key` (see FilePosition.file_key)."""
    return f"{host}/{program}/{file_key}/{offset}"


def journal_record_id(host: str, cursor: str) -> str:
    """The id of a journal entry: its cursor is unique and stable, but long; a digest of it is enough."""
    return f"{host}/journal/{hashlib.sha1(cursor.encode()).hexdigest()[:24]}"  # noqa: S324 - a name, not a secret


def is_iso_time(value: object) -> bool:
    """True for what the logs service takes as `ts`: an ISO 8601 time string with a time zone."""
    if not isinstance(value, str):
        return False
    if _KIT_TS.fullmatch(value):
        return True
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def message_fields(text: bytes | str) -> dict[str, Any] | None:
    """The fields of a line that is a JSON object; None for any other line."""
    stripped = text.lstrip()
    if stripped[:1] not in (b"{", "{"):
        return None
    try:
        fields = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return fields if isinstance(fields, dict) else None


def as_text(text: bytes | str) -> str:
    return text if isinstance(text, str) else text.decode("utf-8", errors="replace")


def make_record(fields: dict[str, Any], *, ident: str, origin: Origin, ts: str) -> dict[str, Any]:
    """`fields` as a record the logs service accepts: id and origin added, unusable values set aside.

    `ts` is used when the fields have no usable time of their own.
    """
    record: dict[str, Any] = {"id": ident}
    if "ts" in fields and not is_iso_time(fields["ts"]):
        fields["ts_given"] = fields.pop("ts")
    record["ts"] = fields.pop("ts", ts)
    for key in OWNED:
        given = fields.pop(key, None)
        if given is not None and given != (ident if key == "id" else getattr(origin, key)):
            fields[f"{key}_given"] = given
    for key in LINE_INDEXED:
        value = fields.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_INDEXED_LENGTH):
            fields[f"{key}_given"] = fields.pop(key)
    record["host"] = origin.host
    record["program"] = origin.program
    record["service"] = fields.pop("service", None) or origin.service
    record["instance"] = fields.pop("instance", None) or origin.instance
    record.update(fields)
    return record


def line_record(line: bytes, *, origin: Origin, file_key: str, offset: int, read_ts: str,
                cut: bool = False) -> dict[str, Any] | None:
    """The record of one line of a program's log file; None for a blank line (no record).

    `cut` marks a piece of a line longer than the agent reads as one (see _follow.MAX_LINE).
    """
    text = line[:-1] if line.endswith(b"\r") else line
    if not text.strip():
        return None
    fields = None if cut else message_fields(text)
    if fields is None:
        fields = {"msg": as_text(text), "level": "info"}
        if cut:
            fields["line_cut"] = True
    return make_record(fields, ident=file_record_id(origin.host, origin.program, file_key, offset),
                       origin=origin, ts=read_ts)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One NDJSON line."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
