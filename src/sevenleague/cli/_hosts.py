"""`league host add/list/check`: the catalog's hosts, and whether each can take a deploy.

`add` appends a `[hosts.NAME]` table to the catalog as text (comments and layout stay
as the team wrote them) and keeps the change only if the whole catalog still
validates. `check` asks each host what a deploy will need of it, in parallel, and
prints one line per check: reachable over SSH, systemd running, the eco-system's apt
source and key in place, the clock in step with this machine, free disk space.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..catalog import Catalog, CatalogError, HostSpec, load_catalog
from ..errors import LeagueError, UsageError

MAX_CLOCK_OFFSET = 1.0  # seconds: token lifetimes and certificates start now, on both sides
MIN_FREE_BYTES = 1 << 30  # a release (venv + .deb) takes ~100 MB; keep three and room to work


@dataclass(frozen=True)
class Check:
    host: str
    check: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class HostRow:
    name: str
    driver: str
    address: str
    environment: str | None
    instances: list[str]


def run_host_add(catalog_path: Path, name: str, address: str, driver: str, environment: str | None,
                 ssh_user: str, ssh_key: str, known_hosts: str, console: Console) -> int:
    text = catalog_path.read_text(encoding="utf-8")
    if re.search(rf"^\[hosts\.{re.escape(name)}\]", text, re.MULTILINE):
        raise UsageError(f"host {name!r} is in {catalog_path} already", hint="pick another name")
    lines = [f"\n[hosts.{name}]", f'driver = "{driver}"', f'address = "{address}"']
    if driver == "ssh":
        lines += [f'ssh_user = "{ssh_user}"'] if ssh_user != "root" else []
        lines += [f'ssh_key = "{ssh_key}"'] if ssh_key else []
        lines += [f'known_hosts = "{known_hosts}"'] if known_hosts else []
    candidate = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    if environment:
        candidate = _add_to_environment(candidate, environment, name)
    scratch = catalog_path.with_name(f".{catalog_path.name}.new")
    scratch.write_text(candidate, encoding="utf-8")
    try:
        load_catalog(scratch)
    except CatalogError:
        scratch.unlink()
        raise
    scratch.replace(catalog_path)
    console.print(f"added host {name} ({driver}, {address}) to {catalog_path}"
                  + (f", environment {environment}" if environment else ""))
    return 0


def _add_to_environment(text: str, environment: str, host: str) -> str:
    table = re.search(rf"^\[environments\.{re.escape(environment)}\]\n(?:(?!\[).*\n)*?hosts = \[([^\]]*)\]",
                      text, re.MULTILINE)
    if table is None:
        return text.rstrip("\n") + f'\n\n[environments.{environment}]\nhosts = ["{host}"]\n'
    listed = table.group(1).strip()
    joined = f'{listed}, "{host}"' if listed else f'"{host}"'
    return text[:table.start(1)] + joined + text[table.end(1):]


def run_host_list(catalog: Catalog, console: Console, as_json: bool) -> int:
    rows = [HostRow(name, spec.driver, spec.address, catalog.environment_of(name),
                    [i.name for i in catalog.instances if i.host == name])
            for name, spec in catalog.spec.hosts.items()]
    if as_json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    table = Table(title="hosts", title_justify="left")
    for column in ("name", "driver", "address", "environment", "instances"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.name, row.driver, row.address, row.environment or "-",
                      ", ".join(row.instances) or "-")
    console.print(table)
    return 0


async def _check_ssh(catalog: Catalog, name: str, spec: HostSpec) -> list[Check]:
    from ..hosts.ssh import SshHost

    base = catalog.source.parent
    host = SshHost(name, spec.address, user=spec.ssh_user, port=spec.ssh_port,
                   client_key=(base / spec.ssh_key) if spec.ssh_key else None,
                   known_hosts=(base / spec.known_hosts) if spec.known_hosts else None)
    checks = []
    try:
        await host.connect()
    except LeagueError as error:
        return [Check(name, "ssh", False, str(error))]
    try:
        checks.append(Check(name, "ssh", True, f"{spec.ssh_user}@{spec.address}:{spec.ssh_port}"))
        state = await host.system_state()
        checks.append(Check(name, "systemd", state in ("running", "degraded"), f"system is {state}"))
        sources = f"/etc/apt/sources.list.d/sevenleague-{catalog.name}.sources"
        present = await host.run(["sh", "-c", f"test -s {sources} && grep -o 'Signed-By: .*' {sources}"],
                                 check=False)
        keyring = present.stdout.strip().removeprefix("Signed-By: ")
        has_key = bool(keyring) and (await host.run(["test", "-s", keyring], check=False)).returncode == 0
        checks.append(Check(name, "apt source", present.returncode == 0 and has_key,
                            f"{sources} signed by {keyring}" if has_key
                            else f"no {sources} with its key (a deploy writes them)"))
        offset = await host.clock_offset()
        checks.append(Check(name, "clock", abs(offset) <= MAX_CLOCK_OFFSET,
                            f"{offset:+.3f}s from this machine"))
        free = await host.free_bytes("/")
        checks.append(Check(name, "disk", free >= MIN_FREE_BYTES,
                            f"{free / 2**30:.1f} GiB free on /"))
    except LeagueError as error:
        checks.append(Check(name, "ssh", False, str(error)))
    finally:
        await host.close()
    return checks


def _check_local(name: str) -> list[Check]:
    free = shutil.disk_usage(".").free
    return [Check(name, "local", True, "this machine, supervisord"),
            Check(name, "clock", True, time.strftime("%H:%M:%S UTC", time.gmtime())),
            Check(name, "disk", free >= MIN_FREE_BYTES, f"{free / 2**30:.1f} GiB free here")]


async def _check_all(catalog: Catalog, names: list[str]) -> list[Check]:
    async def one(name: str) -> list[Check]:
        spec = catalog.spec.hosts[name]
        return _check_local(name) if spec.driver == "local" else await _check_ssh(catalog, name, spec)

    return [check for checks in await asyncio.gather(*(one(n) for n in names)) for check in checks]


def run_host_check(catalog: Catalog, name: str | None, console: Console, as_json: bool) -> int:
    if name is not None and name not in catalog.spec.hosts:
        raise UsageError(f"no host {name!r} in the catalog",
                         hint=f"hosts: {', '.join(sorted(catalog.spec.hosts))}")
    checks = asyncio.run(_check_all(catalog, [name] if name else sorted(catalog.spec.hosts)))
    if as_json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            mark = "[green]✓[/green]" if c.ok else "[red]✗[/red]"
            console.print(f"{mark} {c.host:<12} {c.check:<11} {c.detail}")
    return 0 if all(c.ok for c in checks) else 1
