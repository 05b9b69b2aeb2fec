"""The `local` driver: this machine, with one supervisord per state directory.

It does what it is told and decides nothing: callers hand it rendered files and
programs; it writes them, reconciles supervisord with them (adding, restarting or
removing only what changed) and reports what runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import HostError
from ._program import Program
from ._supervisor_rpc import supervisor_rpc
from ._supervisord_conf import SupervisordPaths, render_supervisord_conf

# sockaddr_un.sun_path is 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class ProgramStatus:
    name: str
    state: str  # supervisord's: STOPPED STARTING RUNNING BACKOFF STOPPING EXITED FATAL UNKNOWN
    pid: int
    uptime: float
    description: str

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    started_supervisord: bool = False

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.started_supervisord)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def write_file(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write atomically (temp file + rename) and only when the content differs."""
    return write_bytes(path, text.encode(), mode)


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """`write_file` for bytes: readers see the old file or the new one, never a part."""
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):  # it ended while we looked
        return False


class LocalHost:
    """Programs on this machine, kept running by the state directory's own supervisord."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.state_dir = state_dir
        self.paths = SupervisordPaths(
            config=state_dir / "supervisord.conf",
            socket=state_dir / "supervisord.sock",
            pidfile=state_dir / "supervisord.pid",
            logfile=state_dir / "logs" / "supervisord.log",
            log_dir=state_dir / "logs",
        )
        if len(str(self.paths.socket)) > MAX_SOCKET_PATH:
            raise HostError(
                f"state directory {state_dir} is too long for a unix socket path "
                f"({len(str(self.paths.socket))} > {MAX_SOCKET_PATH} bytes)",
                hint="set LEAGUE_HOME to a shorter path",
            )

    # --- files and commands ------------------------------------------------------------

    def put_file(self, path: Path, text: str, mode: int = 0o644) -> bool:
        return write_file(path, text, mode)

    def run(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise HostError(f"{argv[0]}: command not found", hint="run `make up` to install it") from None

    # --- supervisord ---------------------------------------------------------------------

    def _rpc(self, timeout: float = 30.0) -> Any:
        return supervisor_rpc(self.paths.socket, timeout).supervisor

    def supervisord_pid(self) -> int | None:
        try:
            pid = int(self.paths.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def is_running(self) -> bool:
        if not self.paths.socket.exists():
            return False
        try:
            return self._rpc(timeout=2.0).getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def apply(self, programs: Iterable[Program]) -> Changes:
        """Make supervisord run exactly `programs`: start it, or add/restart/remove the difference."""
        programs = list(programs)
        conf = render_supervisord_conf(self.name, programs, self.paths)
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        write_file(self.paths.config, conf, 0o600)
        if not self.is_running():
            self._start_supervisord()
            return Changes(added=[p.name for p in programs], started_supervisord=True)
        rpc = self._rpc()
        [[added, changed, removed]] = rpc.reloadConfig()
        for group in removed + changed:
            with contextlib.suppress(xmlrpc.client.Fault):
                rpc.stopProcessGroup(group)
            rpc.removeProcessGroup(group)
        for group in changed + added:
            rpc.addProcessGroup(group)
        return Changes(added=added, changed=changed, removed=removed)

    def _start_supervisord(self) -> None:
        if self.supervisord_pid() is not None:
            raise HostError(
                f"supervisord (pid {self.supervisord_pid()}) owns {self.state_dir} but does not answer "
                f"on {self.paths.socket}",
                hint="stop it with `league down`, or kill that pid",
            )
        self.paths.socket.unlink(missing_ok=True)
        result = self.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.paths.config)])
        if result.returncode != 0 or not wait_until(self.is_running, timeout=15):
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise HostError(
                f"supervisord did not start for {self.state_dir}"
                + (f": {detail[-1]}" if detail else ""),
                hint=f"see {self.paths.logfile}",
            )

    def statuses(self) -> dict[str, ProgramStatus]:
        """Every program supervisord knows, or nothing when supervisord does not answer."""
        if not self.paths.socket.exists():
            return {}
        try:
            infos = self._rpc(timeout=5.0).getAllProcessInfo()
        except (OSError, xmlrpc.client.Error):
            return {}
        out = {}
        for info in infos:
            uptime = float(info["now"] - info["start"]) if info["statename"] == "RUNNING" else 0.0
            out[info["name"]] = ProgramStatus(
                name=info["name"], state=info["statename"], pid=int(info["pid"]), uptime=uptime,
                description=info["description"],
            )
        return out

    def start(self, name: str) -> None:
        self._call("startProcess", name, True)

    def stop(self, name: str) -> None:
        self._call("stopProcess", name, True)

    def restart(self, name: str) -> None:
        with contextlib.suppress(HostError):
            self.stop(name)
        self.start(name)

    def signal(self, name: str, signame: str) -> None:
        self._call("signalProcess", name, signame)

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._rpc(), method)(*args)
        except xmlrpc.client.Fault as fault:
            raise HostError(f"supervisord {method}{args}: {fault.faultString}") from None
        except OSError as error:
            raise HostError(f"supervisord for {self.state_dir} is not reachable: {error}",
                            hint="start the eco-system with `league up`") from None

    def shutdown(self, timeout: float = 60.0) -> list[int]:
        """Stop every program and supervisord itself; returns pids that had to be killed."""
        pids = [s.pid for s in self.statuses().values() if s.pid]
        supervisord = self.supervisord_pid()
        if supervisord is not None:
            if self.is_running():
                # Signal every program at once: supervisord's own shutdown stops them one
                # after the other, each taking its full drain time.
                try:
                    self._rpc(timeout=10).stopAllProcesses(False)
                except (OSError, xmlrpc.client.Error):
                    pass  # supervisord's own shutdown below stops them, one by one
                else:
                    wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout, interval=0.1)
                with contextlib.suppress(OSError, xmlrpc.client.Error):
                    self._rpc(timeout=10).shutdown()
            else:
                os.kill(supervisord, signal.SIGTERM)
            if not wait_until(lambda: not pid_alive(supervisord), timeout, interval=0.1):
                os.kill(supervisord, signal.SIGKILL)
                pids.append(supervisord)
        killed = []
        for pid in pids:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        self.paths.socket.unlink(missing_ok=True)
        return killed
