"""The `ssh` host driver: a Debian server with systemd, driven over one SSH connection.

A deploy reads a host's state before changing it (facts, then operations): `put_file`
compares checksum, mode and owner remotely and writes nothing when they match;
`apt_install`/`dpkg_install` do nothing when that exact version is installed. So applying
the same release twice changes nothing the second time.

Why asyncssh and not the `ssh` binary: one connection per host is kept open and shared
by every command (no handshake per step), many hosts are driven in parallel from one
event loop (`on_hosts`), and failures arrive as typed exceptions that become one clear
`HostError` naming the host and the command, instead of exit code 255 and stderr.

Commands are argv lists quoted with `shlex.join` for the remote shell; nothing is
interpolated into a shell string.
"""

from __future__ import annotations

import asyncio
import hashlib
import shlex
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import asyncssh

from ._errors import HostError

NONINTERACTIVE = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
# apt and dpkg never ask: keep the admin's config files, wait for a lock another apt holds.
APT_INSTALL_OPTIONS = (
    "-y", "-q", "--no-install-recommends", "--allow-downgrades",
    "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
    "-o", "DPkg::Lock::Timeout=120",
)
DPKG_INSTALL_OPTIONS = ("--force-confdef", "--force-confold")

# put_file: one round trip to read the facts, one to write (only when they differ).
_FILE_FACTS = """[ -f "$1" ] && [ ! -L "$1" ] || exit 0
stat -c '%a %U %G' -- "$1" && sha256sum -- "$1" | cut -d' ' -f1"""
_WRITE_FILE = """set -e
dir=$(dirname -- "$1")
mkdir -p -- "$dir"
tmp=$(mktemp -- "$dir/.sevenleague.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chown -- "$3:$4" "$tmp"
chmod -- "$2" "$tmp"
mv -f -- "$tmp" "$1"
trap - EXIT"""
_REMOVE_FILE = """if [ -e "$1" ] || [ -L "$1" ]; then rm -f -- "$1" && echo removed; fi"""


@dataclass(frozen=True)
class CommandResult:
    """What a remote command did; stdout and stderr decoded as UTF-8 (bad bytes replaced)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class UnitState:
    """A systemd unit as `systemctl show` reports it (main_pid 0 when none runs)."""

    active_state: str
    sub_state: str
    main_pid: int
    result: str


class HostsFailed(HostError):
    """Some hosts of a parallel step failed; `results` has the others, `errors` one per failed host."""

    def __init__(self, results: Mapping[str, object], errors: Mapping[str, HostError]) -> None:
        super().__init__(f"{len(errors)} of {len(results) + len(errors)} hosts failed: {', '.join(errors)}")
        self.results = dict(results)
        self.errors = dict(errors)

    def lines(self) -> list[str]:
        return [line for error in self.errors.values() for line in error.lines()]


# --- pure helpers -------------------------------------------------------------------------------


def remote_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The shell line for `argv`; environment through `env(1)`, which sshd cannot refuse
    (it drops variables sent over the protocol unless AcceptEnv names them)."""
    if not argv:
        raise ValueError("an empty command")
    prefix = ["env", *(f"{key}={value}" for key, value in env.items())] if env else []
    return shlex.join([*prefix, *argv])


def apt_source_options(sources_file: str) -> list[str]:
    """apt options that make `sources_file` its only source, leaving the host's other lists alone."""
    return ["-o", f"Dir::Etc::sourcelist={sources_file}", "-o", "Dir::Etc::sourceparts=-",
            "-o", "APT::Get::List-Cleanup=0"]


def parse_unit_state(text: str) -> UnitState:
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return UnitState(props.get("ActiveState", ""), props.get("SubState", ""),
                     int(props.get("MainPID") or 0), props.get("Result", ""))


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


# --- the driver ---------------------------------------------------------------------------------


class SshHost:
    """One host reached over SSH; the connection opens on first use and is shared until `close()`.

    Commands may run concurrently on one host (each is a session on the shared connection).
    The connection belongs to the event loop that opened it: use one SshHost per loop.

    `client_key` and `known_hosts` pin the identity both ways (tests pass the files the
    test hosts were booted with); left out, asyncssh uses the agent, ~/.ssh keys and
    ~/.ssh/known_hosts like `ssh` does.
    """

    def __init__(self, name: str, address: str, *, user: str = "root", port: int = 22,
                 client_key: Path | None = None, known_hosts: Path | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.name = name
        self.address = address
        self.user = user
        self.port = port
        self.client_key = client_key
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self._connection: asyncssh.SSHClientConnection | None = None
        self._connecting = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SshHost({self.name!r}, {self.user}@{self.address}:{self.port})"

    @property
    def where(self) -> str:
        return f"{self.name} ({self.user}@{self.address}:{self.port})"

    async def __aenter__(self) -> SshHost:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        await self._connected()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            await connection.wait_closed()

    async def _connected(self) -> asyncssh.SSHClientConnection:
        async with self._connecting:
            if self._connection is not None and not self._connection.is_closed():
                return self._connection
            options: dict[str, object] = {}
            for path in (self.client_key, self.known_hosts):
                if path is not None and not path.is_file():
                    raise HostError(f"{self.where}: {path} does not exist",
                                    hint="the client key and known_hosts are files on this machine")
            if self.client_key is not None:
                options.update(client_keys=[str(self.client_key)], agent_path=None)
            if self.known_hosts is not None:
                options["known_hosts"] = str(self.known_hosts)
            try:
                self._connection = await asyncssh.connect(
                    self.address, self.port, username=self.user, connect_timeout=self.connect_timeout,
                    keepalive_interval=30, **options)
            except asyncssh.PermissionDenied:
                raise HostError(f"{self.where}: ssh login refused",
                                hint=f"is the public key of {self.client_key or 'your ssh keys'} in "
                                     f"{self.user}'s authorized_keys on {self.address}?") from None
            except asyncssh.HostKeyNotVerifiable as error:
                raise HostError(f"{self.where}: host key not trusted ({error.reason})",
                                hint=f"check the entry for {self.address} in "
                                     f"{self.known_hosts or '~/.ssh/known_hosts'}; a rebuilt host has a "
                                     "new key") from None
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
                raise HostError(f"{self.where}: cannot use the client key {self.client_key}: {error}",
                                hint="an unencrypted OpenSSH private key (ssh-keygen -N '')") from None
            except (OSError, asyncssh.Error) as error:
                reason = str(error) or type(error).__name__
                if isinstance(error, TimeoutError):
                    reason = f"no answer within {self.connect_timeout:g} s"
                raise HostError(f"{self.where}: cannot connect: {reason}",
                                hint=f"is the host up, and sshd listening on {self.address}:{self.port}?"
                                ) from None
            return self._connection

    async def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 120,
                  input: bytes | None = None, env: Mapping[str, str] | None = None) -> CommandResult:
        """Run `argv` on the host; with `check`, a non-zero exit is a HostError naming host and command."""
        command = remote_command(argv, env)
        connection = await self._connected()
        try:
            if input is None:
                done = await connection.run(command, check=False, timeout=timeout, encoding=None,
                                            stdin=asyncssh.DEVNULL)
            else:
                done = await connection.run(command, check=False, timeout=timeout, encoding=None,
                                            input=input)
        except asyncssh.TimeoutError:
            raise HostError(f"{self.where}: `{shlex.join(argv)}` did not finish within {timeout:g} s",
                            hint="it may still run on the host; look there before retrying") from None
        except asyncssh.ChannelOpenError as error:  # the connection is fine; this session was refused
            raise HostError(f"{self.where}: cannot open a session for `{shlex.join(argv)}`: {error.reason}",
                            hint="sshd limits sessions per connection (MaxSessions, 10 by default); "
                                 "run fewer commands at once on one host") from None
        except (OSError, asyncssh.Error) as error:
            await self.close()
            raise HostError(f"{self.where}: lost the connection running `{shlex.join(argv)}`: {error}",
                            hint="the next command reconnects; check the host if it keeps happening"
                            ) from None
        stdout, stderr = (_decode(done.stdout), _decode(done.stderr))
        result = CommandResult(tuple(argv), _returncode(done), stdout, stderr)
        if check and result.returncode != 0:
            said = _tail(stderr) or _tail(stdout) or "no output"
            raise HostError(f"{self.name}: `{shlex.join(argv)}` exited {result.returncode}: {said}")
        return result

    async def _sh(self, script: str, *args: str, input: bytes | None = None,
                  timeout: float = 120) -> CommandResult:
        return await self.run(["sh", "-c", script, "sh", *args], input=input, timeout=timeout)

    # files

    async def put_file(self, path: str, data: bytes, mode: int = 0o644, owner: str = "root",
                       group: str = "root") -> bool:
        """Make `path` hold `data` with that mode and owner; False (nothing written) when it already does.

        Written to a temporary file in the same directory and renamed over `path`, so a
        reader sees the old or the new content, never half of it.
        """
        wanted = f"{mode:o} {owner} {group}\n{hashlib.sha256(data).hexdigest()}"
        if (await self._sh(_FILE_FACTS, path)).stdout.strip() == wanted:
            return False
        await self._sh(_WRITE_FILE, path, f"{mode:o}", owner, group, input=data, timeout=300)
        return True

    async def remove_file(self, path: str) -> bool:
        """Remove `path`; False when there was nothing to remove."""
        return (await self._sh(_REMOVE_FILE, path)).stdout.strip() == "removed"

    # systemd

    async def systemctl(self, *args: str, check: bool = True) -> CommandResult:
        return await self.run(["systemctl", *args], check=check)

    async def unit_state(self, unit: str) -> UnitState:
        done = await self.systemctl("show", "--property=ActiveState,SubState,MainPID,Result", "--", unit)
        return parse_unit_state(done.stdout)

    async def daemon_reload(self) -> None:
        await self.systemctl("daemon-reload")

    async def system_state(self) -> str:
        """`systemctl is-system-running`: running, degraded, starting... (it exits non-zero for most)."""
        return (await self.systemctl("is-system-running", check=False)).stdout.strip()

    # packages

    async def installed_version(self, package: str) -> str | None:
        """The version dpkg has installed (status "install ok installed"), else None."""
        done = await self.run(["dpkg-query", "-W", "-f=${Status}\n${Version}\n", "--", package], check=False)
        lines = done.stdout.splitlines()
        if done.returncode == 0 and len(lines) >= 2 and lines[0] == "install ok installed":
            return lines[1]
        return None

    async def apt_install(self, package: str, version: str, *, sources_file: str | None = None,
                          timeout: float = 600) -> bool:
        """Install exactly `version` of `package` (up or down); False when it is installed already.

        With `sources_file` (a path on the host), `apt-get update` and the install read that
        source only: the eco-system's own repository, not the host's mirrors. Without it the
        lists the host already has are used, and nothing is updated.
        """
        if await self.installed_version(package) == version:
            return False
        sources = apt_source_options(sources_file) if sources_file else []
        if sources_file:
            await self.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=120", *sources],
                           env=NONINTERACTIVE, timeout=timeout)
        await self.run(["apt-get", "install", *APT_INSTALL_OPTIONS, *sources, f"{package}={version}"],
                       env=NONINTERACTIVE, timeout=timeout)
        await self._expect_version(package, version)
        return True

    async def dpkg_install(self, deb_path: str, *, timeout: float = 600) -> bool:
        """`dpkg -i` a .deb already on the host; False when its version is installed already."""
        fields = (await self.run(["dpkg-deb", "--field", deb_path, "Package", "Version"])).stdout
        values = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
        package, version = values.get("Package", ""), values.get("Version", "")
        if not package or not version:
            raise HostError(f"{self.where}: {deb_path} names no package or version")
        if await self.installed_version(package) == version:
            return False
        await self.run(["dpkg", "-i", *DPKG_INSTALL_OPTIONS, deb_path], env=NONINTERACTIVE, timeout=timeout)
        await self._expect_version(package, version)
        return True

    async def _expect_version(self, package: str, version: str) -> None:
        installed = await self.installed_version(package)
        if installed != version:
            raise HostError(f"{self.where}: {package} is at {installed or 'nothing'} after installing "
                            f"{version}",
                            hint=f"look at `dpkg --audit` and /var/log/dpkg.log on {self.name}")

    # facts

    async def clock_offset(self) -> float:
        """Seconds the host's clock is ahead of this machine's, corrected by half the round trip."""
        await self._connected()
        before = time.time()
        done = await self.run(["date", "+%s.%N"])
        after = time.time()
        return float(done.stdout) - (before + after) / 2

    async def free_bytes(self, path: str = "/") -> int:
        done = await self.run(["df", "--output=avail", "-B1", "--", path])
        return int(done.stdout.split()[-1])


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def _returncode(done: asyncssh.SSHCompletedProcess) -> int:
    if done.returncode is not None:
        return int(done.returncode)
    return -1  # the channel closed without an exit status


# --- many hosts ---------------------------------------------------------------------------------


class _Named(Protocol):
    name: str


H = TypeVar("H", bound=_Named)
T = TypeVar("T")


async def on_hosts(hosts: Iterable[H], step: Callable[[H], Awaitable[T]]) -> dict[str, T]:
    """Run `step` on every host at once; their results by host name.

    Every host runs to its end even when another fails (a half-applied step on one host is
    not interrupted by another's error); then HostsFailed reports each failed host. Any
    other exception is a bug and is raised as is.
    """
    targets = list(hosts)
    outcomes = await asyncio.gather(*(step(host) for host in targets), return_exceptions=True)
    results: dict[str, T] = {}
    errors: dict[str, HostError] = {}
    for host, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, HostError):
            errors[host.name] = outcome
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results[host.name] = outcome
    if errors:
        raise HostsFailed(results, errors)
    return results
