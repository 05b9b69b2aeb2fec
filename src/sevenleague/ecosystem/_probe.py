"""Is it healthy? Ask every part the question it can answer, all at once.

supervisord says whether a process runs; the process' own probe says whether it is
ready; HAProxy's runtime API says whether the edge sends it traffic. An instance is
healthy only when all three agree.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import LeagueError
from ..hosts import LocalHost, ProgramStatus
from ..proxy import ProxyError, server_states

PROBE_TIMEOUT = 1.0


class NotRunning(LeagueError):
    """Nothing of this eco-system runs in the state directory."""

    exit_code = 3


@dataclass
class ProcessHealth:
    name: str
    port: int
    state: str
    pid: int
    healthy: bool
    detail: str = ""


@dataclass
class InstanceHealth:
    name: str
    service: str
    host: str
    port: int
    state: str
    pid: int
    ready: bool
    edge: str
    healthy: bool


@dataclass
class StatusReport:
    ecosystem: str
    home: str
    running: bool
    endpoints: dict[str, str]
    processes: list[ProcessHealth] = field(default_factory=list)
    instances: list[InstanceHealth] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.running and all(p.healthy for p in self.processes) and all(
            i.healthy for i in self.instances)

    def unhealthy(self) -> list[str]:
        return [p.name for p in self.processes if not p.healthy] + [
            i.name for i in self.instances if not i.healthy]

    def to_json(self) -> dict[str, Any]:
        return {
            "ecosystem": self.ecosystem,
            "home": self.home,
            "running": self.running,
            "healthy": self.healthy,
            "endpoints": self.endpoints,
            "processes": [asdict(p) for p in self.processes],
            "instances": [asdict(i) for i in self.instances],
        }


def read_snapshot(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotRunning(f"no eco-system has been started in {path.parent}",
                         hint="start it with `league up`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise LeagueError(f"{path} cannot be read: {error}",
                          hint="run `league up` to write it again") from None


def probe_http(url: str, timeout: float = PROBE_TIMEOUT, ca_file: str | None = None) -> tuple[bool, str]:
    """GET `url`; an https URL is verified against `ca_file` (the eco-system's CA)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except OSError as error:
            return False, f"cannot read the CA {ca_file}: {error.strerror or error}"
        connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        response.read()
        return response.status == 200, f"HTTP {response.status}"
    except OSError as error:
        return False, str(error) or type(error).__name__
    finally:
        connection.close()


def probe_tcp(address: str, port: int, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True, "accepting"
    except OSError as error:
        return False, str(error)


def _probe(spec: dict[str, Any]) -> tuple[bool, str]:
    if "http" in spec:
        return probe_http(spec["http"], ca_file=spec.get("ca"))
    address, port = spec["tcp"]
    return probe_tcp(address, port)


def probe_status(snapshot: dict[str, Any], host: LocalHost) -> StatusReport:
    running = host.is_running()
    report = StatusReport(ecosystem=snapshot["ecosystem"], home=snapshot["home"], running=running,
                          endpoints=snapshot["endpoints"])
    statuses: dict[str, ProgramStatus] = host.statuses() if running else {}
    edge: dict[str, str] = {}
    if running:
        try:
            edge = {s.server: s.status for s in server_states(Path(snapshot["haproxy_admin_socket"]))}
        except ProxyError:
            edge = {}
    parts = snapshot["processes"] + snapshot["instances"]
    with ThreadPoolExecutor(max_workers=min(16, len(parts) or 1)) as pool:
        probes = list(pool.map(_probe, [p["probe"] for p in parts])) if running else [
            (False, "not running")] * len(parts)
    answers = dict(zip([p["name"] for p in parts], probes, strict=True))

    def state(name: str) -> tuple[str, int]:
        status = statuses.get(name)
        return (status.state, status.pid) if status else ("ABSENT" if running else "STOPPED", 0)

    for process in snapshot["processes"]:
        name = process["name"]
        st, pid = state(name)
        ok, detail = answers[name]
        report.processes.append(ProcessHealth(name=name, port=process["port"], state=st, pid=pid,
                                              healthy=st == "RUNNING" and ok, detail=detail))
    for instance in snapshot["instances"]:
        name = instance["name"]
        st, pid = state(name)
        ready, _ = answers[name]
        edge_state = edge.get(name, "UNKNOWN")
        report.instances.append(InstanceHealth(
            name=name, service=instance["service"], host=instance["host"], port=instance["port"],
            state=st, pid=pid, ready=ready, edge=edge_state,
            healthy=st == "RUNNING" and ready and edge_state == "UP",
        ))
    return report
