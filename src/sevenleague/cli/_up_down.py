"""`league up` and `league down`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..errors import LeagueError
from ._status import endpoints_table, status_table


class NotHealthy(LeagueError):
    """`league up` started everything, but some part did not become healthy in time."""


class CannotStart(LeagueError):
    """A program exited every time supervisord started it; its log says why."""

    def __init__(self, failures: list[tuple[str, str, Path]]) -> None:
        self.failures = failures
        super().__init__(self.lines()[0])

    def lines(self) -> list[str]:
        return [f"{name} cannot start: {last_line} (hint: see {log})"
                for name, last_line, log in self.failures]


def last_log_line(path: Path) -> str:
    """The last meaningful line a program wrote, JSON or plain."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log written"
    for line in reversed(lines):
        if "Traceback" in line or line.startswith("  "):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            return line.strip()[:300]
        if isinstance(record, dict):
            return str(record.get("exception", record.get("msg", line))).strip().splitlines()[-1][:300]
        return line.strip()[:300]
    return "no log written"


def run_up(catalog_path: Path, console: Console, timeout: float) -> int:
    from ..catalog import load_catalog
    from ..ecosystem import (
        StateLayout,
        apply_plan,
        find_tools,
        port_offset,
        probe_status,
        render_plan,
        state_home,
    )
    from ..hosts import LocalHost

    started = time.monotonic()
    catalog = load_catalog(catalog_path, port_offset=port_offset())
    layout = StateLayout(state_home())
    tools = find_tools(sys.executable)
    host = LocalHost(catalog.name, layout.home)
    plan = render_plan(catalog, layout, tools)
    report = apply_plan(plan, layout, host, tools)
    if report.programs.started_supervisord:
        console.print(f"started supervisord for {catalog.name!r} in {layout.home}", highlight=False)
    for name in report.programs.added if not report.programs.started_supervisord else []:
        console.print(f"added {name}", highlight=False)
    for name in report.programs.changed:
        console.print(f"restarted {name} (its program changed)", highlight=False)
    for name in report.programs.removed:
        console.print(f"removed {name}", highlight=False)
    for name in report.reloaded:
        console.print(f"reloaded {name} (new config)", highlight=False)

    deadline = time.monotonic() + timeout
    total = len(plan.snapshot["processes"]) + len(plan.snapshot["instances"])
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} healthy"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("waiting for everything to be healthy", total=total)
        while True:
            status = probe_status(plan.snapshot, host)
            waiting = status.unhealthy()
            progress.update(task, completed=total - len(waiting),
                            description="waiting for " + (", ".join(waiting) or "nothing"))
            if status.healthy:
                break
            states = {p.name: p.state for p in status.processes} | {
                i.name: i.state for i in status.instances}
            fatal = [name for name, state in states.items() if state == "FATAL"]
            if fatal:  # those still retrying (BACKOFF) are failing the same way
                fatal += [name for name, state in states.items() if state == "BACKOFF"]
                raise CannotStart([(name, last_log_line(layout.logs / f"{name}.log"),
                                    layout.logs / f"{name}.log") for name in fatal])
            if time.monotonic() >= deadline:
                console.print(status_table(status))
                raise NotHealthy(
                    f"not healthy after {timeout:.0f}s: {', '.join(waiting)}",
                    hint=f"see the logs in {layout.logs}; `league status` shows the rest",
                )
            time.sleep(0.2)
    console.print(status_table(status))
    console.print(endpoints_table(status.endpoints))
    console.print(f"all healthy in {time.monotonic() - started:.1f}s; "
                  "`league status` to look again, `league down` to stop", highlight=False)
    return 0


def run_down(console: Console) -> int:
    from ..ecosystem import StateLayout, state_home
    from ..hosts import LocalHost

    layout = StateLayout(state_home())
    host = LocalHost("league", layout.home)
    if not host.is_running() and host.supervisord_pid() is None:
        console.print(f"nothing is running in {layout.home}", highlight=False)
        return 0
    count = len(host.statuses())
    killed = host.shutdown()
    layout.haproxy.admin_socket.unlink(missing_ok=True)
    console.print(f"stopped {count} processes and supervisord in {layout.home}", highlight=False)
    if killed:
        console.print(f"had to kill {len(killed)} that did not stop in time: {killed}")
    return 0
