"""Drivers that make a host run what was rendered.

One small interface: put files, run a command, start/stop/restart/status of a program.
`local` drives supervisord on this machine; `ssh` drives systemd, apt and dpkg on Debian
hosts over one SSH connection each (its names load asyncssh on first use only: the CLI's
start-up does not pay for it).
"""

from .._lazy import lazy_exports
from ._errors import HostError
from ._program import Program
from ._supervisord_conf import SupervisordPaths, render_program, render_supervisord_conf
from .local import Changes, LocalHost, ProgramStatus, pid_alive, wait_until, write_bytes, write_file

__getattr__, _ = lazy_exports(__name__, {
    name: ".ssh" for name in ("CommandResult", "HostsFailed", "SshHost", "UnitState", "on_hosts")})

__all__ = [
    "Changes",
    "CommandResult",
    "HostError",
    "HostsFailed",
    "LocalHost",
    "Program",
    "ProgramStatus",
    "SshHost",
    "SupervisordPaths",
    "UnitState",
    "on_hosts",
    "pid_alive",
    "render_program",
    "render_supervisord_conf",
    "wait_until",
    "write_bytes",
    "write_file",
]
