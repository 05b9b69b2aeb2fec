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

Which units: when LEAGUE_AGENT_PROGRAMS names programs, journalctl is asked for their
units only (`--unit=hello@8001.service` each, exact names: a glob would be expanded once,
when journalctl starts, against the units already in the journal, so an instance deployed
later would not be followed, and before the first deploy journalctl would refuse a glob
that matches nothing). journalctl adds what systemd itself says about such a unit
("Started ...", "Main process exited ..."), written by PID 1 (`init.scope`); those records
keep program `init.scope` and get the service and instance of the unit they are about.

Where journalctl runs: LEAGUE_AGENT_JOURNAL_COMMAND is the argv that runs it,
`journalctl` here or `ssh ... USER@HOST journalctl` on another host. ssh joins its
arguments into one line for the remote user's shell, so behind an ssh prefix every
argument is quoted (a cursor has `;` in it). When the command exits (the network went
away, the host rebooted) it is started again after a backoff, from the last cursor read.
"""

from __future__ import annotations

import logging
import queue
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
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
from ._settings import DEFAULT_JOURNAL_COMMAND, ProgramLabels
from ._sources import Entry, Reading

JOURNAL_KEY = "journal"
# syslog priorities: emerg, alert, crit -> critical; err; warning; notice, info -> info; debug.
PRIORITY_LEVELS = {0: "critical", 1: "critical", 2: "critical", 3: "error", 4: "warning", 5: "info",
                   6: "info", 7: "debug"}
# Fields naming the unit an entry is about when another process wrote it: systemd (PID 1),
# journald, systemd-coredump.
ABOUT_UNIT_FIELDS = ("UNIT", "OBJECT_SYSTEMD_UNIT", "COREDUMP_UNIT")
# journalctl exiting is retried after 1 s, doubling up to 10 s while it keeps failing: one
# connection attempt per 10 s to a host that is down.
RESTART_FIRST = 1.0
RESTART_CAP = 10.0

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


def unit_names(programs: Mapping[str, ProgramLabels]) -> list[str]:
    """The units of the programs the settings name (`hello@8001` runs as `hello@8001.service`)."""
    return sorted(f"{program}.service" for program in programs)


def over_ssh(command: Sequence[str]) -> bool:
    """Whether `command` runs journalctl through ssh, whose remote shell splits its arguments again."""
    return PurePath(command[0]).name == "ssh"


def journalctl_argv(cursor: str | None, units: Sequence[str] = (),
                    command: Sequence[str] = DEFAULT_JOURNAL_COMMAND) -> list[str]:
    """The journalctl command: after the checkpoint's cursor, or from the start of this boot.

    Behind ssh every argument is quoted for the remote shell, so a cursor or a unit name
    reaches journalctl as one argument, as it would locally.
    """
    start = f"--after-cursor={cursor}" if cursor else "--boot"
    arguments = ["--output=json", "--all", "--follow", "--no-tail", "--no-pager",
                 *(f"--unit={unit}" for unit in units), start]
    if over_ssh(command):
        arguments = [shlex.quote(argument) for argument in arguments]
    return [*command, *arguments]


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


def _labels_of_subject(entry: Mapping[str, Any],
                       programs: Mapping[str, ProgramLabels]) -> ProgramLabels | None:
    """The labels of the named program an entry written by someone else is about, if any."""
    for key in ABOUT_UNIT_FIELDS:
        about = as_text(journal_text(entry.get(key))).removesuffix(".service")
        if about in programs:
            return programs[about]
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
    labels = programs.get(program) or _labels_of_subject(entry, programs) or ProgramLabels(
        program.partition("@")[0] or program, program)
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
    buffer. journalctl exiting (or failing to start) is retried after `restart_seconds`,
    doubling up to `restart_cap` while it keeps failing, from the last entry read. A run
    that gave entries, or lasted `restart_cap`, was a good one: the next wait is the first.
    """

    key = JOURNAL_KEY

    def __init__(self, host: str, programs: Mapping[str, ProgramLabels], start: JournalPosition | None, *,
                 command: Sequence[str] = DEFAULT_JOURNAL_COMMAND, run: CommandRunner = run_command,
                 queue_size: int = 1000, restart_seconds: float = RESTART_FIRST,
                 restart_cap: float = RESTART_CAP, clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.programs = programs
        self.command = tuple(command)
        self.units = unit_names(programs)
        self.run = run
        self.restart_seconds = restart_seconds
        self.restart_cap = max(restart_cap, restart_seconds)
        self.clock = clock
        self.error: str | None = None
        self.runs = 0  # how many times the command was started
        self._position: JournalPosition | None = start
        self._queue: queue.Queue[tuple[Entry | None, JournalPosition]] = queue.Queue(queue_size)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._command: RunningCommand | None = None
        self._thread = threading.Thread(target=self._follow, name="journalctl", daemon=True)

    @property
    def program(self) -> str:
        """What runs journalctl, for messages: `journalctl`, or `ssh`."""
        return PurePath(self.command[0]).name

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

    def restart_delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th bad run in a row."""
        return min(self.restart_cap, self.restart_seconds * 2 ** min(max(failures - 1, 0), 16))

    def _follow(self) -> None:
        cursor = self._position.cursor if self._position else None
        failures = 0
        while not self._stopped.is_set():
            began = time.monotonic()
            try:
                with self._lock:
                    if self._stopped.is_set():
                        return
                    self._command = command = self.run(journalctl_argv(cursor, self.units, self.command))
                    self.runs += 1
            except OSError as error:
                failures += 1
                self._failed(f"cannot run {self.program}: {error.strerror or error}", failures)
                continue
            assert command.stdout is not None
            read_from = cursor
            cursor = self._take(command.stdout, cursor)
            status = command.wait()
            if self._stopped.is_set():
                return
            good = cursor != read_from or time.monotonic() - began >= self.restart_cap
            failures = 1 if good else failures + 1
            self._failed(f"{self.program} exited with status {status}", failures)

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

    def _failed(self, why: str, failures: int) -> None:
        delay = self.restart_delay(failures)
        if why != self.error:
            log.warning("journal: %s; starting it again in %.1fs (then up to every %.0fs while it fails)",
                        why, delay, self.restart_cap)
        self.error = why
        self._stopped.wait(delay)
