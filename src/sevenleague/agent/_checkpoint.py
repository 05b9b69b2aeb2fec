"""The checkpoint: how far each source is shipped, on disk, replaced whole or not at all.

It holds, per source (a program's log file, or the journal), the position up to which
the logs service acknowledged every record. After a restart, even after `kill -9`, the
agent reads again from there: a record is never lost, and one shipped again is dropped
by the logs service as a duplicate (same id).

Written as the text editors do: a temporary file beside it, fsync, rename over the old
one, fsync of the directory. A crash at any moment leaves the old checkpoint or the new
one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ._settings import AgentError

VERSION = 1


class CheckpointUnreadable(AgentError):
    """The checkpoint file exists but is not one (edited by hand, or a disk that lied)."""


class CheckpointFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        """The positions by source; empty when there is no checkpoint yet."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise CheckpointUnreadable(f"cannot read the checkpoint {self.path}: {error.strerror}") from error
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise CheckpointUnreadable(f"the checkpoint {self.path} is not JSON ({error.msg})") from None
        if not isinstance(document, dict) or document.get("version") != VERSION \
                or not isinstance(document.get("sources"), dict):
            raise CheckpointUnreadable(f"the checkpoint {self.path} is not a version {VERSION} checkpoint")
        return dict(document["sources"])

    def save(self, positions: Mapping[str, Any]) -> None:
        """Replace the checkpoint with `positions`, atomically and durably."""
        data = orjson.dumps({"version": VERSION, "sources": dict(positions)},
                            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def set_aside(self) -> Path:
        """Move an unreadable checkpoint out of the way (kept for a post-mortem); returns where to."""
        aside = self.path.with_name(self.path.name + ".unreadable")
        self.path.replace(aside)
        return aside
