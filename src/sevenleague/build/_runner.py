"""Run a build's commands: output into the build log, every process findable and killable.

Each command starts in its own session and carries `LEAGUE_BUILD_ID` in its
environment. Its process group can be killed on cancel, and `kill_build_processes`
finds every process of a build by that mark (even grandchildren that left the group,
such as a server a test started) when a build service that died is started again.
The direct child also gets SIGKILL from the kernel if the build service dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

BUILD_ID_ENV = "LEAGUE_BUILD_ID"
_PR_SET_PDEATHSIG = 1


class Cancelled(Exception):
    """The build was cancelled while one of its commands ran."""


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# What the build service itself runs with and a build must not inherit: where the
# eco-system's state is, whom it trusts and which tokens it checks. A project's tests
# that saw LEAGUE_OIDC_ISSUER would check tokens nobody sends; a build that saw the
# state directory could read the eco-system's keys.
SERVICE_ONLY_ENV = frozenset({
    "LEAGUE_HOME", "LEAGUE_INSTANCE", "LEAGUE_OIDC_ISSUER", "LEAGUE_OIDC_JWKS_URI", "LEAGUE_CA_FILE",
    "LEAGUE_CLIENT_ID", "LEAGUE_CLIENT_SECRET_FILE", "LEAGUE_SERVICE_URLS",
})


def build_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a build's commands: the service's own, without what is only the service's."""
    return {key: value for key, value in base.items() if key not in SERVICE_ONLY_ENV}


class CommandRunner:
    """Runs one build's commands one after another, and can stop the current one."""

    def __init__(self, mark: str, log: IO[str]) -> None:
        self.mark = mark
        self.log = log
        self._process: subprocess.Popen[str] | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def say(self, line: str) -> None:
        self.log.write(line.rstrip("\n") + "\n")
        self.log.flush()

    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
            timeout: float = 1800.0) -> int:
        """Run `argv`, copying its output into the log; returns the exit code."""
        if self.cancelled:
            raise Cancelled()
        environment = build_environment(os.environ if env is None else env)
        environment[BUILD_ID_ENV] = self.mark
        self.say("$ " + " ".join(argv))
        with self._lock:
            self._process = subprocess.Popen(
                list(argv), cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        process = self._process
        deadline = time.monotonic() + timeout
        timer = threading.Timer(timeout, self._kill_group, args=(process,))
        timer.daemon = True
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                self.log.write(line)
            self.log.flush()
            code = process.wait()
        finally:
            timer.cancel()
            self._kill_group(process)  # leftovers the command started and did not stop
            with self._lock:
                self._process = None
        if self.cancelled:
            raise Cancelled()
        if time.monotonic() >= deadline:
            self.say(f"timed out after {timeout:.0f} s")
        return code

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            if self._process is not None:
                self._kill_group(self._process)

    @staticmethod
    def _kill_group(process: subprocess.Popen[str]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def build_mark(database: Path, build_id: int) -> str:
    """Unique to one build of one eco-system, so two eco-systems never touch each other's."""
    return f"{database}#{build_id}"


def build_processes(mark: str) -> list[int]:
    """Pids of processes carrying a build's mark, found through /proc."""
    pids = []
    wanted = f"{BUILD_ID_ENV}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            pids.append(int(entry.name))
    return pids


def kill_build_processes(mark: str) -> int:
    """SIGKILL what a build left behind; returns how many processes were found."""
    pids = build_processes(mark)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
