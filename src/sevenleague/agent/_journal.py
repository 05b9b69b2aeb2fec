"""The systemd journal as a source: `journalctl --output=json --follow`, entry by entry.

On a host that runs its programs under systemd their output goes to the journal, not to
files. The agent runs journalctl on that host and reads one JSON object per entry. The
checkpoint keeps the cursor of the last acknowledged entry; journalctl starts right after
it (`--after-cursor`), or, the first time, at the start of the current boot (`--boot`):
older boots are history the agent does not ship. `--all` keeps messages over 4 KiB,
which journalctl would otherwise print as null.

An entry's MESSAGE is a string, or an array of bytes when it is not UTF-8; PRIORITY is
syslog's 0..7; `_SYSTEMD_UNIT` names the unit (`hello@8001.service`), whose name without
`.service` is the program, looked up in LEAGUE_AGENT_PROGRAMS. A MESSAGE that is itself
a JSON object (the kit's log lines) keeps its fields, as a line of a file does.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

import orjson

from ._records import (
    Origin,
    as_text,
    encode_record,
    format_ts,
    journal_record_id,
    make_record,
    message_fields,
)
from ._settings import ProgramLabels
from ._sources import Entry, Reading

JOURNAL_KEY = "journal"
# syslog priorities: emerg, alert, crit -> critical; err; warning; notice, info -> info; debug.
PRIORITY_LEVELS = {0: "critical", 1: "critical", 2: "critical", 3: "error", 4: "warning", 5: "info",
                   6: "info", 7: "debug"}

log = logging.getLogger("sevenleague.agent")


@dataclass(frozen=True, slots=True)
class JournalPosition:
    cursor: str

    def to_json(self) -> dict[str, str]:
        return {"cursor": self.cursor}

    @classmethod
    def from_json(cls, data: Any) -> JournalPosition:
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if not isinstance(cursor, str) or not cursor:
            raise ValueError("not a journal position: no cursor")
        return cls(cursor)


def journalctl_argv(cursor: str | None) -> list[str]:
    """The journalctl command: after the checkpoint's cursor, or from the start of this boot."""
    start = f"--after-cursor={cursor}" if cursor else "--boot"
    return ["journalctl", "--output=json", "--all", "--follow", "--no-tail", "--no-pager", start]


def journal_text(value: Any) -> bytes | str:
    """A journal field's value: a string, bytes (an array of numbers), or several values joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(item, int) and 0 <= item <= 255 for item in value):
            return bytes(value)
        return "\n".join(as_text(journal_text(item)) for item in value)
    return str(value)


def _integer(value: Any) -> int | None:
    try:
        return int(as_text(journal_text(value)))
    except ValueError:
        return None


def journal_record(entry: Mapping[str, Any], *, host: str, programs: Mapping[str, ProgramLabels],
                   read_ts: str) -> dict[str, Any] | None:
    """The record of one journal entry; None for an entry without a cursor or without a message."""
    cursor = entry.get("__CURSOR")
    message = journal_text(entry.get("MESSAGE"))
    if not isinstance(cursor, str) or not cursor or not message.strip():
        return None
    unit = as_text(journal_text(entry.get("_SYSTEMD_UNIT")))
    program = unit.removesuffix(".service") if unit else (
        as_text(journal_text(entry.get("SYSLOG_IDENTIFIER"))) or as_text(journal_text(entry.get("_COMM")))
        or JOURNAL_KEY)
    labels = programs.get(program) or ProgramLabels(program.partition("@")[0] or program, program)
    priority = _integer(entry.get("PRIORITY"))
    level = PRIORITY_LEVELS.get(6 if priority is None else priority, "info")
    fields = message_fields(message)
    if fields is None:
        fields = {"msg": as_text(message).rstrip("\n"), "level": level}
    else:
        fields.setdefault("level", level)
    if unit:
        fields.setdefault("unit", unit)
    pid = _integer(entry.get("_PID"))
    if pid is not None:
        fields.setdefault("pid", pid)
    try:
        ts = format_ts(int(as_text(journal_text(entry.get("__REALTIME_TIMESTAMP")))) / 1_000_000)
    except ValueError:
        ts = read_ts
    return make_record(fields, ident=journal_record_id(host, cursor),
                       origin=Origin(host, program, labels.service, labels.instance), ts=ts)


# --- running journalctl ---------------------------------------------------------------------


class RunningCommand(Protocol):
    """What the source needs of a started command (a subprocess.Popen is one)."""

    stdout: IO[bytes] | None

    def terminate(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


CommandRunner = Callable[[Sequence[str]], RunningCommand]


def run_command(argv: Sequence[str]) -> RunningCommand:
    """Start `argv` with its output piped to us (its errors go to the agent's own stderr)."""
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)


class JournalSource:
    """Entries of a running journalctl, read by a thread of their own into a small queue.

    The queue is bounded: when the pipeline stops taking entries (its buffer is full),
    the thread blocks, journalctl's pipe fills and it waits; the journal on disk is the
    buffer. journalctl exiting (or failing to start) is retried every `restart_seconds`,
    after the last entry read.
    """

    key = JOURNAL_KEY

    def __init__(self, host: str, programs: Mapping[str, ProgramLabels], start: JournalPosition | None, *,
                 run: CommandRunner = run_command, queue_size: int = 1000, restart_seconds: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.programs = programs
        self.run = run
        self.restart_seconds = restart_seconds
        self.clock = clock
        self.error: str | None = None
        self._position: JournalPosition | None = start
        self._queue: queue.Queue[tuple[Entry | None, JournalPosition]] = queue.Queue(queue_size)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._command: RunningCommand | None = None
        self._thread = threading.Thread(target=self._follow, name="journalctl", daemon=True)

    def start(self) -> JournalSource:
        self._thread.start()
        return self

    def read(self, limit: int) -> Reading:
        entries: list[Entry] = []
        while len(entries) < limit:
            try:
                entry, self._position = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not None:
                entries.append(entry)
        return Reading(entries, self._position)

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            if self._command is not None:
                self._command.terminate()
        self._thread.join(5.0)

    def _follow(self) -> None:
        cursor = self._position.cursor if self._position else None
        while not self._stopped.is_set():
            try:
                with self._lock:
                    if self._stopped.is_set():
                        return
                    self._command = command = self.run(journalctl_argv(cursor))
            except OSError as error:
                self._failed(f"cannot run journalctl: {error.strerror or error}")
                continue
            assert command.stdout is not None
            cursor = self._take(command.stdout, cursor)
            status = command.wait()
            if not self._stopped.is_set():
                self._failed(f"journalctl exited with status {status}")

    def _take(self, lines: Iterable[bytes], cursor: str | None) -> str | None:
        """Queue the entries of journalctl's output; returns the cursor of the last one."""
        for line in lines:
            if self._stopped.is_set():
                break
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # not an entry (journalctl prints nothing else on stdout)
            if not isinstance(entry, dict) or not isinstance(entry.get("__CURSOR"), str):
                continue
            record = journal_record(entry, host=self.host, programs=self.programs,
                                    read_ts=format_ts(self.clock()))
            cursor = entry["__CURSOR"]
            position = JournalPosition(entry["__CURSOR"])
            item = (Entry(self.key, encode_record(record), position) if record else None, position)
            while not self._stopped.is_set():
                try:
                    self._queue.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
        return cursor

    def _failed(self, why: str) -> None:
        if why != self.error:
            log.warning("journal: %s; starting it again every %.1fs", why, self.restart_seconds)
        self.error = why
        self._stopped.wait(self.restart_seconds)
