"""HAProxy's runtime API over its admin socket: read server states, drain, ready.

Used to see what the edge thinks of each instance and, for deployments, to take an
instance out of rotation before touching it.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import LeagueError

ANSWER_KINDS = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")  # HAProxy's hrsp_* columns


class ProxyError(LeagueError):
    """The edge (HAProxy) refused a config or did not answer its runtime API."""


@dataclass(frozen=True)
class ServerState:
    backend: str
    server: str
    status: str  # UP, DOWN, MAINT, DRAIN, "UP 1/2"... as HAProxy says it
    check: str
    current_sessions: int
    responses: int = 0  # every HTTP answer the server gave (hrsp_1xx ... hrsp_other)
    errors: int = 0  # of those, 5xx (hrsp_5xx)

    @property
    def up(self) -> bool:
        return self.status == "UP"


def runtime_command(admin_socket: Path, command: str, timeout: float = 5.0) -> str:
    """Send one command, return HAProxy's whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(admin_socket))
        except OSError as error:
            raise ProxyError(f"HAProxy runtime API at {admin_socket} is not reachable: {error}",
                             hint="is the eco-system up? `league status`") from None
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def parse_show_stat(text: str) -> list[ServerState]:
    """Rows of `show stat` for real servers (not the FRONTEND/BACKEND summary rows)."""
    body = text.lstrip("# ")
    states = []
    for row in csv.DictReader(io.StringIO(body)):
        name = row.get("svname", "")
        if name in ("FRONTEND", "BACKEND") or not name:
            continue
        states.append(ServerState(
            backend=row["pxname"], server=name, status=row["status"], check=row.get("check_status", ""),
            current_sessions=int(row.get("scur") or 0),
            responses=sum(int(row.get(f"hrsp_{kind}") or 0) for kind in ANSWER_KINDS),
            errors=int(row.get("hrsp_5xx") or 0),
        ))
    return states


def server_states(admin_socket: Path) -> list[ServerState]:
    return parse_show_stat(runtime_command(admin_socket, "show stat"))


def worker_pid(admin_socket: Path) -> int:
    """Pid of the worker answering the runtime API; a reload replaces it."""
    for line in runtime_command(admin_socket, "show info").splitlines():
        if line.startswith("Pid:"):
            return int(line.split(":", 1)[1])
    raise ProxyError(f"HAProxy at {admin_socket} did not report its pid")


def server_state(admin_socket: Path, backend: str, server: str) -> ServerState:
    """One server's row of `show stat`, read with HAProxy's own filter (backend, servers only)."""
    for state in parse_show_stat(runtime_command(admin_socket, f"show stat {backend} 4 -1")):
        if state.server == server:
            return state
    raise ProxyError(f"HAProxy has no server {backend}/{server}",
                     hint="is the catalog the one `league up` applied? `league status`")


def set_server_state(admin_socket: Path, backend: str, server: str, state: str) -> None:
    """state: ready, drain or maint (HAProxy's words)."""
    answer = runtime_command(admin_socket, f"set server {backend}/{server} state {state}").strip()
    if answer:
        raise ProxyError(f"HAProxy refused to set {backend}/{server} to {state}: {answer}")
