"""Where records come from, as the shipping pipeline sees it: sources that read entries.

A source reads in a worker thread (file reads and pipes block) and hands over entries:
one encoded record each, with the source's position just after it. The pipeline keeps
the entries in order and, once the logs service acknowledged one, knows how far that
source's checkpoint may move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._follow import FileFollower, FilePosition
from ._records import Origin, encode_record, format_ts, line_record
from ._settings import ProgramLabels


class Position(Protocol):
    def to_json(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """One record, encoded as an NDJSON line, and its source's position after it."""

    key: str
    data: bytes
    position: Position


@dataclass(frozen=True)
class Reading:
    """What one read gave: entries, and the source's position after all it read (None: nothing yet).

    `start` is the position just before the first entry, when the source knows it: the
    pipeline checkpoints it before shipping anything of a source it has no checkpoint for,
    so a restart after a crash resumes there rather than starting the source afresh.
    """

    entries: list[Entry]
    position: Position | None
    start: Position | None = None


class Source(Protocol):
    key: str

    def read(self, limit: int) -> Reading:
        """Up to `limit` new entries; blocking, called from a worker thread, one call at a time."""
        ...

    def close(self) -> None: ...


class FileSource:
    """A program's supervisord log file (`P.log` and its rotations) as records."""

    def __init__(self, origin: Origin, follower: FileFollower, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.key = origin.program
        self.origin = origin
        self.follower = follower
        self.clock = clock

    def read(self, limit: int) -> Reading:
        chunk = self.follower.poll(limit)
        if not chunk.lines:
            return Reading([], chunk.position)
        assert chunk.position is not None
        position = chunk.position
        read_ts = format_ts(self.clock())
        file_key, inode, number, print_, finished = (position.file_key, position.inode, position.number,
                                                     position.fingerprint, position.finished)
        entries = []
        for line in chunk.lines:
            record = line_record(line.data, origin=self.origin, file_key=file_key, offset=line.offset,
                                 read_ts=read_ts, cut=line.cut)
            if record is not None:
                after = FilePosition(inode, number, print_, line.end, finished)
                entries.append(Entry(self.key, encode_record(record), after))
        start = FilePosition(position.inode, position.number, position.fingerprint, chunk.lines[0].offset,
                             position.finished)
        return Reading(entries, position, start)

    def close(self) -> None:
        self.follower.close()


def origin_of(host: str, program: str, programs: Mapping[str, ProgramLabels]) -> Origin:
    """A program's origin; one the settings do not name is its own service and instance."""
    labels = programs.get(program)
    if labels is None:
        return Origin(host, program, program, program)
    return Origin(host, program, labels.service, labels.instance)
