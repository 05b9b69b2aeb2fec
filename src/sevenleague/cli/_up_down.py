"""`league up` and `league down`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ._status import endpoints_table, status_table

if TYPE_CHECKING:
    from ..ecosystem import StatusReport


def run_up(catalog_path: Path, console: Console, timeout: float) -> int:
    from ..catalog import load_catalog
    from ..ecosystem import (
        NotHealthy,
        StateLayout,
        apply_plan,
        find_tools,
        port_offset,
        read_instance_releases,
        render_plan,
        state_home,
        wait_until_healthy,
    )
    from ..hosts import LocalHost

    started = time.monotonic()
    catalog = load_catalog(catalog_path, port_offset=port_offset())
    layout = StateLayout(state_home())
    tools = find_tools(sys.executable)
    host = LocalHost(catalog.name, layout.home)
    plan = render_plan(catalog, layout, tools, read_instance_releases(layout.instance_releases))
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
    if report.renewed:
        console.print(f"issued certificates for {', '.join(report.renewed)} (`league pki status`)",
                      highlight=False)

    total = len(plan.snapshot["processes"]) + len(plan.snapshot["instances"])
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} healthy"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("waiting for everything to be healthy", total=total)

        def show(current: StatusReport) -> None:
            waiting = current.unhealthy()
            progress.update(task, completed=total - len(waiting),
                            description="waiting for " + (", ".join(waiting) or "nothing"))

        try:
            status = wait_until_healthy(plan.snapshot, host, layout, timeout, show)
        except NotHealthy as unhealthy:
            console.print(status_table(unhealthy.report))
            raise
    console.print(status_table(status))
    console.print(endpoints_table(status.endpoints))
    first_admin = layout.home / "identity" / "admin-password"
    if first_admin.exists():
        console.print(f"the first admin's one-time password is in {first_admin} (0600): sign in as admin, "
                      "create your own admin user, then delete the file", highlight=False)
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
