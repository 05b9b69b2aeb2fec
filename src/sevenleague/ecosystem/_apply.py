"""Make this machine run a plan: vet and write files, reconcile supervisord, reload.

Every config file is checked by its own tool (`haproxy -c`, `promtool check config`,
`amtool check-config`) before it replaces the live one, so a bad render never reaches a
running process. Only what changed is touched: a second `league up` with nothing new
writes nothing and restarts nothing.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..build._archive import prepare_archive
from ..errors import LeagueError
from ..hosts import Changes, LocalHost, wait_until, write_file
from ..proxy import ProxyError, check_argv, worker_pid
from ..telemetry.scrape_tokens import ensure_placeholders
from ._layout import StateLayout, Tools
from ._plan import CertificateRequest, Listen, Plan, RenderedFile


class ConfigRejected(LeagueError):
    """A rendered config failed its tool's own check; the live config was left alone."""


class PortsInUse(LeagueError):
    """Ports the plan needs are taken by programs that are not part of this eco-system."""

    def __init__(self, busy: list[Listen]) -> None:
        self.busy = busy
        super().__init__(self.lines()[0])

    def lines(self) -> list[str]:
        return [
            f"port {b.port} on {b.address} ({b.owner}) is already in use by another program "
            "(hint: stop that program, change the port in the catalog, or set LEAGUE_PORT_OFFSET "
            "to move every port)"
            for b in self.busy
        ]


def port_taken(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return True
    return False


def check_ports(plan: Plan, layout: StateLayout, running: bool) -> None:
    """Refuse to start anything when a port is taken by something that is not ours.

    Ports the running eco-system of this state directory already holds are its own.
    """
    ours: set[tuple[str, int]] = set()
    if running:
        try:
            previous = json.loads(layout.snapshot.read_text())
            ours = {(address, port) for address, port in previous.get("listens", [])}
        except (OSError, ValueError):
            ours = set()
    busy = [listen for listen in plan.listens
            if (listen.address, listen.port) not in ours and port_taken(listen.address, listen.port)]
    if busy:
        raise PortsInUse(busy)


@dataclass
class ApplyReport:
    written: list[Path] = field(default_factory=list)
    programs: Changes = field(default_factory=Changes)
    reloaded: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)  # certificates issued or renewed


def _checker_argv(kind: str, path: Path, tools: Tools) -> list[str]:
    if kind == "haproxy":
        return list(check_argv(tools.haproxy, path))
    if kind == "prometheus":
        return [str(tools.promtool), "check", "config", str(path)]
    if kind == "alertmanager":
        return [str(tools.amtool), "check-config", str(path)]
    raise ValueError(f"unknown checker {kind!r}")


def vet(files: list[RenderedFile], changed: list[RenderedFile], home: Path, host: LocalHost,
        tools: Tools) -> None:
    """When anything changed, check every config with its own tool before writing any.

    The whole plan is written to a scratch copy of the state directory (its paths moved
    there), because the checkers read what a config names: promtool reads the target
    files prometheus.yml lists, so a changed target file is checked through it. The live
    directory is not touched.
    """
    if not changed:
        return
    to_check = [file for file in files if file.checker]
    scratch = Path(tempfile.mkdtemp(prefix="league-vet-"))

    def moved(path: Path) -> Path:
        return scratch / path.relative_to(home)

    try:
        for file in files:  # throwaway copies: no atomic rename, no fsync
            path = moved(file.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file.text.replace(f"{home}/", f"{scratch}/"))
        for entry in home.iterdir() if home.is_dir() else []:  # what configs name but the plan keeps
            if not (scratch / entry.name).exists():  # as it is: certificates, say
                (scratch / entry.name).symlink_to(entry)
        for file in to_check:
            _check(file, moved(file.path), host, tools)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check(file: RenderedFile, candidate: Path, host: LocalHost, tools: Tools) -> None:
    result = host.run(_checker_argv(file.checker, candidate, tools))
    if result.returncode != 0:
        said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        raise ConfigRejected(
            f"{file.checker} rejected the rendered {file.path.name}: {' | '.join(said[-3:])}",
            hint="this is a bug in sevenleague's renderer; the running config was not changed",
        )


def _unchanged(file: RenderedFile) -> bool:
    try:
        return file.path.read_text() == file.text
    except (FileNotFoundError, UnicodeDecodeError):
        return False


def reload_haproxy(host: LocalHost, layout: StateLayout, timeout: float = 15.0) -> None:
    """Seamless reload: the master starts a new worker that takes over the listeners."""
    socket = layout.haproxy.admin_socket
    before = worker_pid(socket)
    host.signal("haproxy", "USR2")

    def replaced() -> bool:
        try:
            return worker_pid(socket) != before
        except ProxyError:
            return False

    if not wait_until(replaced, timeout, interval=0.1):
        raise ProxyError(
            f"HAProxy did not take the new config within {timeout:.0f}s; the old one still serves",
            hint=f"see {layout.logs / 'haproxy.log'}",
        )


def prepare_certificates(pki_dir: Path, ecosystem: str,
                         requests: tuple[CertificateRequest, ...]) -> list[str]:
    """The CA on first use, then every certificate the plan asks for; names of those (re)issued."""
    from ..pki.renewer import ensure_certificates

    return ensure_certificates(pki_dir, ecosystem, requests)


def prepare_scrape_credentials(plan: Plan) -> None:
    """The token files prometheus.yml names, empty until the renewer fills them (promtool wants them)."""
    scraping = plan.snapshot.get("scrape_tokens")
    if scraping:
        ensure_placeholders(Path(scraping["directory"]), scraping["audiences"])


def apply_plan(plan: Plan, layout: StateLayout, host: LocalHost, tools: Tools) -> ApplyReport:
    was_running = host.is_running()
    check_ports(plan, layout, was_running)
    report = ApplyReport()
    # Certificates first: the configs vetted below name them (HAProxy's ca-file, say).
    if plan.certificates:
        report.renewed = prepare_certificates(layout.pki, str(plan.snapshot["ecosystem"]), plan.certificates)
    for directory in (layout.logs, layout.haproxy.config.parent, layout.prometheus.targets_dir,
                      layout.prometheus.data_dir, layout.alertmanager.data_dir):
        directory.mkdir(parents=True, exist_ok=True)
    prepare_scrape_credentials(plan)
    changed = [file for file in plan.files if not _unchanged(file)]
    # A rejected render leaves the live configs exactly as they were, never half new.
    vet(list(plan.files), changed, layout.home, host, tools)
    for file in changed:  # target files come before prometheus.yml, which names them
        host.put_file(file.path, file.text, file.mode)
        report.written.append(file.path)

    prepare_archive(layout.builds, str(plan.snapshot["ecosystem"]))
    report.programs = host.apply(plan.programs)
    if was_running:
        restarted = set(report.programs.added + report.programs.changed)
        written = set(report.written)
        if layout.haproxy.config in written and "haproxy" not in restarted:
            reload_haproxy(host, layout)
            report.reloaded.append("haproxy")
        if "edge" in report.renewed and "haproxy" not in restarted and "haproxy" not in report.reloaded:
            from ..pki.renewer import hand_edge_certificate_to_haproxy

            hand_edge_certificate_to_haproxy(layout.pki, layout.haproxy.admin_socket)
        for name, config in (("prometheus", layout.prometheus.config),
                             ("alertmanager", layout.alertmanager.config)):
            if config in written and name not in restarted:
                host.signal(name, "HUP")
                report.reloaded.append(name)
    write_file(layout.snapshot, json.dumps(plan.snapshot, indent=2) + "\n")
    return report
