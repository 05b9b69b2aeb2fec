"""`league status`: what runs, where, and whether it is healthy.

Reads only the state directory (not the catalog), so it works while the catalog is
being edited or is broken. Exit 0 healthy, 1 degraded, 3 not running.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from ..ecosystem._layout import StateLayout
from ..ecosystem._probe import NotRunning, StatusReport, probe_status, read_snapshot
from ..hosts.local import LocalHost


def collect_status(layout: StateLayout) -> StatusReport:
    snapshot = read_snapshot(layout.snapshot)
    return probe_status(snapshot, LocalHost(snapshot["ecosystem"], layout.home))


def status_table(report: StatusReport) -> Table:
    table = Table(title=f"eco-system {report.ecosystem!r} in {report.home}", title_justify="left")
    for column in ("name", "kind", "state", "pid", "port", "ready", "edge", "health"):
        table.add_column(column)
    for p in report.processes:
        table.add_row(p.name, "platform", p.state, str(p.pid or "-"), str(p.port),
                      "yes" if p.healthy else "no", "-", _health(p.healthy))
    for i in report.instances:
        table.add_row(i.name, "instance", i.state, str(i.pid or "-"), str(i.port),
                      "yes" if i.ready else "no", i.edge, _health(i.healthy))
    return table


def endpoints_table(endpoints: dict[str, str]) -> Table:
    table = Table(title="endpoints", title_justify="left")
    table.add_column("what")
    table.add_column("url")
    for name, url in endpoints.items():
        table.add_row(name, url)
    return table


def _health(ok: bool) -> str:
    return "[green]healthy[/green]" if ok else "[red]unhealthy[/red]"


def run_status(layout: StateLayout, console: Console, as_json: bool) -> int:
    try:
        report = collect_status(layout)
    except NotRunning:
        if not as_json:
            raise
        console.print_json(json.dumps({"running": False, "healthy": False, "home": str(layout.home),
                                       "endpoints": {}, "processes": [], "instances": []}))
        return NotRunning.exit_code
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        console.print(status_table(report))
        console.print(endpoints_table(report.endpoints))
        if not report.running:
            console.print(f"not running; start it with `league up` (state in {report.home})")
    if not report.running:
        return NotRunning.exit_code
    return 0 if report.healthy else 1
