"""`league deploy`, `rollback`, `promote`, `releases`, `audit`: thin clients of the deploy service.

A deployment runs in the deploy service; these commands start one and follow its
steps as they are recorded, one line each, and exit with its outcome:
0 succeeded, 1 rolled back, 5 refused (the lock is held, or a promotion gate failed),
6 failed (a rollback did not complete: look now).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from ..deploy.client import DeployClient, DeployRefused
from ..ecosystem._layout import state_home

EXIT = {"succeeded": 0, "rolled_back": 1, "failed": 6}
MARKS = {"done": "[green]✓[/green]", "failed": "[red]✗[/red]", "started": "[cyan]…[/cyan]"}


def client() -> DeployClient:
    """The deploy service, called with the signed-in user's token for it (`league login`)."""
    from ._session import access_token

    home = state_home()
    return DeployClient.from_home(home, token=lambda: access_token(home, "deploy"))


def _when(at: float | None) -> str:
    return "-" if not at else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _start(deploy: DeployClient, begin: Callable[[], dict[str, Any]], console: Console,
           wait: bool) -> dict[str, Any]:
    """Start it; with `wait`, queue behind a held lock (watching the lock, not knocking on it)."""
    while True:
        try:
            return begin()
        except DeployRefused as refused:
            held = refused.details.get("lock")
            if not wait or not held:
                raise
            console.print(f"waiting: {refused.message}")
            while any(lock["service"] == held["service"] and lock["environment"] == held["environment"]
                      for lock in deploy.locks()):
                time.sleep(0.5)


def follow(deploy: DeployClient, started: dict[str, Any], console: Console, as_json: bool) -> int:
    """Print each step as the service records it; the exit code is the deployment's outcome."""
    ident = int(started["id"])
    if not as_json:
        before = started["from_version"] or "(workspace)"
        console.print(f"{started['kind']} {ident}: {started['service']} {before}"
                      f" -> {started['version']} in {started['environment']}")
    seen = 0
    while True:
        current = deploy.deployment(ident, after=seen)
        for step in current["steps"]:
            seen = step["position"]
            if not as_json:
                where = step["instance"] or "-"
                detail = f"  {step['detail']}" if step["detail"] else ""
                mark = MARKS.get(step["state"], step["state"])
                console.print(f"  {mark} {where:<12} {step['action']}{detail}")
        if current["state"] != "running":
            if as_json:
                print(json.dumps({k: v for k, v in current.items() if k != "steps"}, indent=2))
            else:
                reason = f": {current['reason']}" if current["reason"] else ""
                console.print(f"{current['kind']} {ident} {current['state']}{reason}")
            return EXIT.get(current["state"], 6)
        time.sleep(0.3)


def run_deploy(service: str, version: str, environment: str, console: Console, wait: bool,
               as_json: bool) -> int:
    deploy = client()
    started = _start(deploy, lambda: deploy.deploy(service, environment, version), console, wait)
    return follow(deploy, started, console, as_json)


def run_rollback(service: str, environment: str, to: str | None, console: Console, wait: bool,
                 as_json: bool) -> int:
    deploy = client()
    started = _start(deploy, lambda: deploy.rollback(service, environment, to), console, wait)
    return follow(deploy, started, console, as_json)


def run_promote(service: str, source: str, target: str, console: Console, as_json: bool) -> int:
    deploy = client()
    try:
        started = deploy.promote(service, source, target)
    except DeployRefused as refused:
        for gate in refused.details.get("gates", []):
            mark = MARKS["done"] if gate["passed"] else MARKS["failed"]
            console.print(f"  {mark} {gate['gate']:<16} {gate['detail']}")
        raise
    if not as_json:
        for gate in started.get("gates", []):
            console.print(f"  {MARKS['done']} {gate['gate']:<16} {gate['detail']}")
    return follow(deploy, started, console, as_json)


def run_releases(service: str, environment: str | None, console: Console, as_json: bool) -> int:
    answer = client().releases(service, environment)
    if as_json:
        print(json.dumps(answer, indent=2))
        return 0
    table = Table(title=f"{service}: what runs where", title_justify="left")
    for column in ("instance", "host", "environment", "version", "since"):
        table.add_column(column)
    for row in answer["instances"]:
        table.add_row(row["instance"], row["host"], row["environment"] or "-",
                      row["version"] or "(workspace)", _when(row["since"]))
    console.print(table)
    history = Table(title="deployments, newest first", title_justify="left")
    for column in ("id", "kind", "environment", "from", "to", "by", "state", "started", "reason"):
        history.add_column(column)
    for d in answer["deployments"]:
        history.add_row(str(d["id"]), d["kind"], d["environment"], d["from_version"] or "(workspace)",
                        d["version"], d["actor"], d["state"], _when(d["started_at"]), d["reason"])
    console.print(history)
    return 0


def run_audit(service: str | None, environment: str | None, console: Console, as_json: bool) -> int:
    entries = client().audit(service, environment)
    if as_json:
        print(json.dumps(entries, indent=2))
        return 0
    table = Table(title="audit log, oldest first", title_justify="left")
    for column in ("#", "when", "who", "action", "service", "env", "from", "to", "outcome", "detail"):
        table.add_column(column)
    for e in entries:
        table.add_row(str(e["seq"]), _when(e["at"]), e["actor"], e["action"], e["service"], e["environment"],
                      e["from_version"], e["to_version"], e["outcome"], e["detail"])
    console.print(table)
    return 0
