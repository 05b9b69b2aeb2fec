"""Following one program's log file the way supervisord writes it: whole lines, across rotations.

supervisord appends a program's output to `P.log`; past 10 MB it closes the file, renames
`P.log.2` to `P.log.3`, `P.log.1` to `P.log.2`, `P.log` to `P.log.1` (dropping the old
`P.log.3`), and opens a new `P.log`. A follower keeps its file open by descriptor, so a
rename does not disturb it: it reads the old file to its end, and only once `P.log` is
another file and the old one has nothing more does it move on, to the file that came
next (usually the new `P.log`; when it fell several rotations behind, `P.log.2` first).

Only whole lines are lines: bytes after the last newline wait for the rest, except at the
end of a rotated file (supervisord closed it; the rest went to the next file). A line
longer than `MAX_LINE` comes out in pieces of `MAX_LINE` bytes, always cut at the same
places, so a restart reads the same pieces with the same ids.

A file is named in record ids by `inode.number`: the inode finds it again after a
restart, wherever rotation moved it; `number` tells it apart from an earlier file that
had the same inode. ext4 reuses a freed inode at once, and supervisord frees one
(`P.log.3`) right before it creates the new `P.log`, so without it every fourth file
would repeat the ids of one still in the logs service and be dropped as duplicates. The
number counts the files of a program (+1 for the next file, +1 when a file is
truncated), starts from the time in milliseconds when the agent first sees a program,
and is kept in the checkpoint, so a restart names every file as before.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ_CHUNK = 1 << 20
MAX_LINE = 256 * 1024
BACKUPS = 3  # supervisord's stdout_logfile_backups in the rendered configuration
FINGERPRINT_BYTES = 1024
FINISHED_KEPT = 8  # more than a program ever has files on disk (P.log and three backups)

log = logging.getLogger("sevenleague.agent")


@dataclass(frozen=True, slots=True)
class FinishedFile:
    """A file read to its end; never to be read again, even if a later scan still finds it."""

    inode: int
    size: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Where a follower is: which file, how far in, and which files it already finished.

    `fingerprint` is a digest of the file's first line (known once it has been read): with
    the inode it recognises the file after a restart, where the inode alone may now name a
    newer file.
    """

    inode: int
    number: int
    fingerprint: str
    offset: int
    finished: tuple[FinishedFile, ...] = ()

    @property
    def file_key(self) -> str:
        return f"{self.inode}.{self.number}"

    def to_json(self) -> dict[str, Any]:
        return {"inode": self.inode, "file": self.number, "fingerprint": self.fingerprint,
                "offset": self.offset, "finished": [[f.inode, f.size, f.fingerprint] for f in self.finished]}

    @classmethod
    def from_json(cls, data: Any) -> FilePosition:
        """A position as `to_json` wrote it; ValueError when it is not one."""
        try:
            finished = tuple(FinishedFile(int(i), int(s), str(f)) for i, s, f in data.get("finished", ()))
            position = cls(int(data["inode"]), int(data["file"]), str(data["fingerprint"]),
                           int(data["offset"]), finished)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a file position: {error}") from None
        if position.offset < 0 or position.inode < 0:
            raise ValueError("not a file position: negative inode or offset")
        return position


@dataclass(frozen=True, slots=True)
class Line:
    """One line (without its newline) at `offset`; `end` is where the next one starts."""

    offset: int
    end: int
    data: bytes
    cut: bool = False


@dataclass(frozen=True)
class Chunk:
    """Lines of one file, and the position after them (None: no file seen yet)."""

    lines: list[Line]
    position: FilePosition | None


def fingerprint(head: bytes) -> str:
    """The digest of a file's first line (at most FINGERPRINT_BYTES of it); "" for an empty file."""
    if not head:
        return ""
    first = head[:FINGERPRINT_BYTES].split(b"\n", 1)[0]
    return hashlib.sha1(first).hexdigest()[:16]  # noqa: S324 - recognition, not security


def rotated_paths(path: Path) -> list[Path]:
    """`P.log.3`, `P.log.2`, `P.log.1`, `P.log`: oldest first, as supervisord leaves them."""
    return [*(path.with_name(f"{path.name}.{n}") for n in range(BACKUPS, 0, -1)), path]


@dataclass(frozen=True)
class _OnDisk:
    path: Path
    inode: int
    size: int


class FileFollower:
    """Reads the whole lines `P.log` gets, file after file; blocking (run it in a worker thread).

    `start` is the checkpoint's position (None: the program was never followed, start at
    the beginning of the current `P.log`); `first_number` gives the number of the first
    file of a program never followed before.
    """

    def __init__(self, path: Path, start: FilePosition | None, *,
                 first_number: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.path = path
        self._start = start
        self._first_number = first_number
        self._fd: int | None = None
        self._inode = 0
        self._number = 0
        self._fingerprint = ""
        self._offset = 0
        self._finished: tuple[FinishedFile, ...] = start.finished if start else ()
        self._next_number: int | None = None  # set while waiting for the file after a finished one
        self._last_position: FilePosition | None = start

    @property
    def position(self) -> FilePosition | None:
        if self._fd is None:
            return self._last_position
        return FilePosition(self._inode, self._number, self._fingerprint, self._offset, self._finished)

    def poll(self, limit: int) -> Chunk:
        """Up to `limit` new whole lines (fewer, or none, when that is all there is)."""
        if self._fd is None and not self._open_first():
            return Chunk([], self.position)
        lines = self._read(limit)
        if not lines:
            lines = self._at_end(limit)
        return Chunk(lines, self.position)

    def close(self) -> None:
        if self._fd is not None:
            self._last_position = self.position
            os.close(self._fd)
            self._fd = None

    # --- opening --------------------------------------------------------------------------

    def _on_disk(self) -> list[_OnDisk]:
        found = []
        for path in rotated_paths(self.path):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append(_OnDisk(path, st.st_ino, st.st_size))
        return found

    def _open_first(self) -> bool:
        """Open the file to read: the checkpoint's, or what follows it, or (never followed) `P.log`."""
        files = self._on_disk()
        start, self._start = self._start, None
        if self._next_number is not None:  # waiting for the successor of a finished file
            return self._open_next(files, after=None, number=self._next_number)
        if start is None:
            current = files[-1] if files and files[-1].path == self.path else None
            if current is None:
                return False
            # Rotated files from before the agent followed this program are history it does not ship.
            for older in files[:-1]:
                self._mark_finished(older.inode, older.size, self._fingerprint_at(older.path))
            return self._open(current, self._first_number(), 0, "")
        for candidate in files:
            if candidate.inode == start.inode and (
                    not start.fingerprint or self._fingerprint_at(candidate.path) == start.fingerprint):
                if not self._open(candidate, start.number, start.offset, start.fingerprint):
                    self._start = start  # it moved while being opened: look again next time
                    return False
                if candidate.size < start.offset:
                    self._truncated()
                return True
        log.warning("%s: the file being read when the agent stopped (inode %d) is gone; lines of it "
                    "not shipped by then are lost", self.path.name, start.inode)
        self._last_position = start
        return self._open_next(files, after=None, number=start.number + 1)

    def _open_next(self, files: list[_OnDisk], *, after: int | None, number: int) -> bool:
        """Open the first file not yet finished after the one with inode `after` (None: the oldest)."""
        index = next((i for i, f in enumerate(files) if f.inode == after), None)
        for candidate in files[0 if after is None or index is None else index + 1:]:
            if not self._is_finished(candidate):
                if self._open(candidate, number, 0, ""):
                    self._next_number = None
                    return True
                break
        self._next_number = number
        return False

    def _open(self, found: _OnDisk, number: int, offset: int, print_: str) -> bool:
        try:
            fd = os.open(found.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return False
            raise
        if os.fstat(fd).st_ino != found.inode:
            os.close(fd)
            return False
        self._fd, self._inode, self._number = fd, found.inode, number
        self._offset, self._fingerprint = offset, print_
        return True

    def _fingerprint_at(self, path: Path) -> str:
        try:
            with path.open("rb") as file:
                return fingerprint(file.read(FINGERPRINT_BYTES))
        except FileNotFoundError:
            return ""

    def _is_finished(self, candidate: _OnDisk) -> bool:
        matches = [f for f in self._finished if (f.inode, f.size) == (candidate.inode, candidate.size)]
        return bool(matches) and self._fingerprint_at(candidate.path) in {f.fingerprint for f in matches}

    def _mark_finished(self, inode: int, size: int, print_: str) -> None:
        done = FinishedFile(inode, size, print_)
        if done not in self._finished:
            self._finished = (*self._finished, done)[-FINISHED_KEPT:]

    # --- reading --------------------------------------------------------------------------

    def _read(self, limit: int, *, final: bool = False) -> list[Line]:
        """Whole lines from the offset on; with `final`, the bytes after the last newline too."""
        assert self._fd is not None
        lines: list[Line] = []
        while len(lines) < limit:
            base = self._offset
            data = os.pread(self._fd, READ_CHUNK, base)
            if not data:
                break
            start = 0
            while len(lines) < limit:
                newline = data.find(b"\n", start, start + MAX_LINE + 1)
                if newline >= 0:
                    lines.append(Line(base + start, base + newline + 1, data[start:newline]))
                    start = newline + 1
                    continue
                rest = len(data) - start
                if rest > MAX_LINE:
                    piece = data[start:start + MAX_LINE]
                    lines.append(Line(base + start, base + start + MAX_LINE, piece, cut=True))
                    start += MAX_LINE
                    continue
                if final and rest and len(data) < READ_CHUNK:
                    lines.append(Line(base + start, base + len(data), data[start:]))
                    start = len(data)
                break
            if base == 0 and start > 0:
                self._fingerprint = fingerprint(data)
            self._offset = base + start
            if start == 0:
                break
        return lines

    def _at_end(self, limit: int) -> list[Line]:
        """Nothing new in the file: was it truncated, or rotated away (then finish it and move on)?"""
        assert self._fd is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []  # between supervisord's rename and its new file, or removed: wait
        if st.st_ino == self._inode:
            if os.fstat(self._fd).st_size < self._offset:
                self._truncated()
                return self._read(limit)
            return []
        # P.log is another file now; supervisord closed this one before renaming it.
        lines = self._read(limit, final=True)
        if lines:
            return lines
        finished_inode, number = self._inode, self._number
        self._mark_finished(finished_inode, os.fstat(self._fd).st_size, self._fingerprint)
        files = self._on_disk()  # while this file is open its inode cannot name another one
        self.close()
        if self._open_next(files, after=finished_inode, number=number + 1):
            return self._read(limit)
        return []

    def _truncated(self) -> None:
        log.warning("%s was truncated (inode %d, at byte %d): reading it again from its start as a new file",
                    self.path.name, self._inode, self._offset)
        self._number += 1
        self._offset = 0
        self._fingerprint = ""


def followers(log_dir: Path, programs: Iterable[str],
              checkpoint: Mapping[str, Any]) -> dict[str, FileFollower]:
    """A follower for each program's `P.log`, starting where the checkpoint says."""
    made = {}
    for program in programs:
        start = None
        if program in checkpoint:
            try:
                start = FilePosition.from_json(checkpoint[program])
            except ValueError as error:
                log.error("checkpoint of %s is unusable (%s): following it as a new program", program, error)
        made[program] = FileFollower(log_dir / f"{program}.log", start)
    return made

