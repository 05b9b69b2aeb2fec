"""Wait until everything is healthy, or say exactly why not.

A program that cannot start ends the wait at once, with the last line of its log;
anything else gets until the deadline. Cannot start means supervisord gave up on it
(FATAL), or it was started `CRASH_STARTS` times during the wait: on a loaded machine a
program may take longer than supervisord's `startsecs` to fail, which supervisord then
counts as a successful start and restarts for ever.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LeagueError
from ..hosts import LocalHost
from ._layout import StateLayout
from ._probe import StatusReport, probe_status

TAIL_BYTES = 64 * 1024
CRASH_STARTS = 4  # different pids of one program seen while waiting: it keeps exiting


class NotHealthy(LeagueError):
    """Everything was started, but some part did not become healthy in time."""

    def __init__(self, message: str, *, hint: str, report: StatusReport) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class CannotStart(LeagueError):
    """A program exited every time supervisord started it; its log says why."""

    def __init__(self, failures: list[tuple[str, str, Path]]) -> None:
        self.failures = failures
        super().__init__(self.lines()[0])

    def lines(self) -> list[str]:
        return [f"{name} cannot start: {last_line} (hint: see {log})"
                for name, last_line, log in self.failures]


def last_log_line(path: Path) -> str:
    """The last meaningful line a program wrote (JSON or plain), read from the file's tail."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - TAIL_BYTES))
            text = log.read().decode(errors="replace")
    except OSError:
        return "no log written"
    for line in reversed([line for line in text.splitlines() if line.strip()]):
        if "Traceback" in line or line.startswith("  "):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            return line.strip()[:300]
        if isinstance(record, dict):
            said = str(record.get("exception", record.get("msg", line))).strip().splitlines()
            return said[-1][:300] if said else line.strip()[:300]
        return line.strip()[:300]
    return "no log written"


def wait_until_healthy(snapshot: dict[str, Any], host: LocalHost, layout: StateLayout, timeout: float,
                       on_progress: Callable[[StatusReport], None] = lambda report: None,
                       interval: float = 0.2, settle_seconds: float = 8.0) -> StatusReport:
    """The report once all is healthy; CannotStart or NotHealthy otherwise.

    When a program turns FATAL, the others still starting get `settle_seconds` to end
    up running or fatal too, so one report names every program that cannot start.
    """
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    started: dict[str, set[int]] = {}
    while True:
        report = probe_status(snapshot, host)
        on_progress(report)
        if report.healthy:
            return report
        states = {p.name: p.state for p in report.processes} | {i.name: i.state for i in report.instances}
        pids = [(p.name, p.pid) for p in report.processes] + [(i.name, i.pid) for i in report.instances]
        for name, pid in pids:
            if pid:
                started.setdefault(name, set()).add(pid)
        fatal = [name for name, state in states.items()
                 if state == "FATAL" or len(started.get(name, ())) >= CRASH_STARTS]
        if fatal:
            now = time.monotonic()
            settle_until = settle_until or now + settle_seconds
            starting = [name for name, state in states.items()
                        if state in ("STARTING", "BACKOFF") and name not in fatal]
            if not starting or now >= settle_until:
                failing = fatal + [name for name in starting if states[name] == "BACKOFF"]
                raise CannotStart([(name, last_log_line(layout.logs / f"{name}.log"),
                                    layout.logs / f"{name}.log") for name in failing])
        if time.monotonic() >= deadline:
            raise NotHealthy(
                f"not healthy after {timeout:.0f}s: {', '.join(report.unhealthy())}",
                hint=f"see the logs in {layout.logs}; `league status` shows the rest",
                report=report,
            )
        time.sleep(interval)
