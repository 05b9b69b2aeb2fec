"""`league repo ...`, `league build ...`, `league builds`: thin clients of the build service."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..build.client import BuildClient
from ..ecosystem._layout import StateLayout, state_home

FINISHED = ("passed", "failed", "cancelled")
_MARKS = {"passed": "[green]✓[/green]", "failed": "[red]✗[/red]", "cancelled": "[yellow]-[/yellow]",
          "running": "[cyan]…[/cyan]"}


def client() -> BuildClient:
    """The build service, called with the signed-in user's token for it (`league login`)."""
    from ._session import access_token

    home = state_home()
    return BuildClient.from_home(home, token=lambda: access_token(home, "builds"))


def run_repo_create(name: str, console: Console) -> int:
    from ..source import create_repository

    home = state_home()
    repo = create_repository(StateLayout(home).builds.repos, name, home)
    console.print(f"created repository {repo.name}: {repo.clone_url}")
    console.print("push to build it:")
    console.print(f"    git remote add league {repo.clone_url}")
    console.print("    git push league main")
    return 0


def run_repo_list(console: Console, as_json: bool) -> int:
    from ..source import list_repositories

    repos = list_repositories(StateLayout(state_home()).builds.repos)
    if as_json:
        print(json.dumps([r.to_json() for r in repos], indent=2))
        return 0
    table = Table(title="repositories", title_justify="left")
    for column in ("name", "branches", "head", "clone url"):
        table.add_column(column)
    for repo in repos:
        table.add_row(repo.name, ", ".join(repo.branches) or "(empty)", repo.head[:12] or "-", repo.clone_url)
    console.print(table)
    return 0


def _duration(build: dict[str, Any]) -> str:
    start, end = build.get("started_at"), build.get("finished_at") or time.time()
    return f"{end - start:.1f}s" if start else "-"


def _counts(build: dict[str, Any]) -> str:
    tests = build.get("tests", {})
    return " ".join(f"{kind[0]}:{tests[kind].get('passed', 0)}" if kind in tests else f"{kind[0]}:-"
                    for kind in ("unit", "integration", "performance"))


def run_builds(service: str | None, console: Console, as_json: bool, limit: int) -> int:
    builds = client().list(service, limit)
    if as_json:
        print(json.dumps(builds, indent=2))
        return 0
    table = Table(title="builds", title_justify="left")
    for column in ("id", "service", "state", "commit", "version", "tests", "time", "reason"):
        table.add_column(column)
    for b in builds:
        table.add_row(str(b["id"]), b["service"], _MARKS.get(b["state"], "") + " " + b["state"],
                      b["commit"][:10], b.get("version", "-"), _counts(b), _duration(b), b.get("reason", ""))
    console.print(table)
    return 0


def _step_line(step: dict[str, Any]) -> str:
    seconds = f" ({step['seconds']:.1f}s)" if step.get("seconds") is not None else ""
    return f"{_MARKS.get(step['state'], ' ')} {step['name']}{seconds}  [dim]{step.get('summary', '')}[/dim]"


def print_build(build: dict[str, Any], console: Console) -> None:
    commit = build.get("commit_info") or {}
    console.print(f"build {build['id']} of {build['service']} at {build['commit'][:12]}: "
                  f"{_MARKS.get(build['state'], '')} {build['state']}"
                  + (f" — {build['reason']}" if build.get("reason") else ""))
    if commit:
        console.print(f"  {commit.get('author', '')}: {commit.get('subject', '')}")
    for step in build.get("steps", []):
        console.print("  " + _step_line(step))
    deb = build.get("deb")
    if deb:
        console.print(f"  package: {deb.get('name', '')} {deb.get('version', '')} ({deb.get('path', '')})")


def run_build_show(build_id: int, console: Console, show_log: bool, as_json: bool) -> int:
    api = client()
    build = api.get(build_id)
    if as_json:
        print(json.dumps(build, indent=2))
    else:
        print_build(build, console)
    if show_log:
        text, _ = api.log(build_id)
        console.out(text, end="", highlight=False)
    return 0 if build["state"] in ("passed", "queued", "running") else 1


def follow(api: BuildClient, build_id: int, console: Console, poll: float = 0.5) -> dict[str, Any]:
    """Print each step as it ends, with a spinner for the one running, until the build ends."""
    printed = 0
    with console.status(f"build {build_id} queued") as status:
        while True:
            build = api.get(build_id)
            steps = build.get("steps", [])
            for step in steps[printed:]:
                if step["state"] == "running":
                    break
                console.print(_step_line(step))
                printed += 1
            if build["state"] in FINISHED:
                return build
            running = [s["name"] for s in steps if s["state"] == "running"]
            status.update(f"build {build_id}: {running[0] if running else build['state']}")
            time.sleep(poll)


def run_build(service: str, ref: str, console: Console, as_json: bool) -> int:
    api = client()
    build = api.queue(service, ref, requested_by="league build")
    if not as_json:
        console.print(f"build {build['id']} of {service} at {build['commit'][:12]} ({ref}) queued")
    done = follow(api, build["id"], Console(quiet=True) if as_json else console)
    if as_json:
        print(json.dumps(done, indent=2))
    else:
        console.print(f"build {done['id']} {_MARKS.get(done['state'], '')} {done['state']}"
                      + (f": {done['reason']}" if done.get("reason") else ""))
        deb = done.get("deb")
        if deb:
            console.print(f"published {Path(deb.get('path', '')).name}")
    return 0 if done["state"] == "passed" else 1
