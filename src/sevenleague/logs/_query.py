"""What a search asks for, parsed from query parameters and checked before any store sees it.

Every mistake a user can make in a query (a field that does not exist, a time that is
not one, an unclosed quote) is a `BadQuery` whose message names the problem: the
service answers it with a 400, never a 500, and the CLI prints it as one line.

Free text is words and "quoted phrases", all of which must appear in a record (in its
message or any of its other values, not in its field names); a word may end in `*` to
match as a prefix. The text is turned into an FTS5 query here, quoting every term, so
FTS5's own operators never reach the store unescaped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ._records import INDEXED, LEVELS, MAX_FIELD_LENGTH, level_number

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_TEXT = 500
PARAMETERS = ("q", "level", "since", "until", "limit", "before", "after", *INDEXED)
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_WORD = re.compile(r"\w", re.UNICODE)


class BadQuery(ValueError):
    """A query that cannot run; the message says what to change."""


@dataclass(frozen=True)
class LogQuery:
    """A search: equality on indexed fields, a minimum level, a time range, free text, a page."""

    fields: tuple[tuple[str, str], ...] = ()  # (field, value) pairs, each field at most once
    min_level: int | None = None
    since: int | None = None  # ms since the epoch, inclusive
    until: int | None = None  # ms since the epoch, exclusive
    text: str | None = None  # an FTS5 MATCH expression, already quoted
    limit: int = DEFAULT_LIMIT
    before: int | None = None  # cursor: only records stored before this one (the next page)
    after: int | None = None  # cursor: only records stored after this one (a tail)

    def field(self, name: str) -> str | None:
        return dict(self.fields).get(name)


def parse_time(value: str, now: float | None = None, *, name: str = "since") -> int:
    """An absolute ISO 8601 time, or a duration back from now ("15m", "1h", "2d"), as ms since the epoch."""
    value = value.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        now = time.time() if now is None else now
        return int((now - float(relative.group(1)) * _UNITS[relative.group(2)]) * 1000)
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} {value[:40]!r} is neither a time (2026-11-29T02:15:00Z) nor a duration "
                       "back from now (30s, 15m, 1h, 2d)") from None
    if moment.tzinfo is None:
        raise BadQuery(f"{name} {value[:40]!r} has no time zone: end it with Z for UTC")
    return int(moment.timestamp() * 1000)


def _terms(text: str) -> list[tuple[str, bool]]:
    """Words and quoted phrases, each with whether it is a prefix (ends in `*`)."""
    terms: list[tuple[str, bool]] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char == '"':
            end = text.find('"', index + 1)
            if end < 0:
                raise BadQuery(f'q has an unbalanced quote: the phrase starting at character {index + 1} '
                               'is never closed')
            phrase = text[index + 1:end]
            index = end + 1
            prefix = index < length and text[index] == "*"
            index += prefix
            terms.append((phrase, prefix))
            continue
        end = index
        while end < length and not text[end].isspace() and text[end] != '"':
            end += 1
        word = text[index:end]
        index = end
        prefix = word.endswith("*")
        terms.append((word.rstrip("*"), prefix))
    return terms


def fts_expression(text: str) -> str:
    """The FTS5 MATCH expression for free text; BadQuery for text that cannot be searched."""
    if len(text) > MAX_TEXT:
        raise BadQuery(f"q is {len(text)} characters long; at most {MAX_TEXT}")
    parts = []
    for term, prefix in _terms(text):
        if not _WORD.search(term):
            raise BadQuery(f"q: {term or '<empty>'!r} has no letter or digit to search for")
        quoted = '"' + term.replace('"', '""') + '"'
        parts.append(quoted + ("*" if prefix else ""))
    if not parts:
        raise BadQuery("q is empty: give a word to search for, or leave q out")
    return " AND ".join(parts)


def _cursor(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise BadQuery(f"{name} must be a cursor (a whole number from a previous answer), got {raw[:30]!r}")
    return int(raw)


def parse_query(params: Mapping[str, str], now: float | None = None) -> LogQuery:
    """A LogQuery from query parameters; every parameter not listed in PARAMETERS is an error."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise BadQuery(f"unknown field {unknown[0]!r}: a query may use {', '.join(PARAMETERS)}")
    fields = []
    for name in INDEXED:
        value = params.get(name)
        if value is not None:
            if not value or len(value) > MAX_FIELD_LENGTH:
                raise BadQuery(f"{name} must be 1 to {MAX_FIELD_LENGTH} characters")
            fields.append((name, value))
    level = None
    if "level" in params:
        level = level_number(params["level"])
        if level is None:
            raise BadQuery(f"level {params['level'][:20]!r} is not a level: one of {', '.join(LEVELS)}")
    since = parse_time(params["since"], now, name="since") if "since" in params else None
    until = parse_time(params["until"], now, name="until") if "until" in params else None
    if since is not None and until is not None and since >= until:
        raise BadQuery("since must be before until")
    limit = DEFAULT_LIMIT
    if "limit" in params:
        raw = params["limit"]
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw[:20]!r}")
        limit = int(raw)
    text = fts_expression(params["q"]) if "q" in params else None
    return LogQuery(tuple(fields), level, since, until, text, limit, _cursor(params, "before"),
                    _cursor(params, "after"))
