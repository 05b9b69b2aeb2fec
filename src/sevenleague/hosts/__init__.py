"""Drivers that make a host run what was rendered.

One small interface: put files, run a command, start/stop/restart/status of a program.
`local` drives supervisord on this machine; `ssh` (systemd on real hosts) comes with
deployments.
"""

from ._errors import HostError
from ._program import Program
from ._supervisord_conf import SupervisordPaths, render_program, render_supervisord_conf
from .local import Changes, LocalHost, ProgramStatus, pid_alive, wait_until, write_bytes, write_file

__all__ = [
    "Changes",
    "HostError",
    "LocalHost",
    "Program",
    "ProgramStatus",
    "SupervisordPaths",
    "pid_alive",
    "render_program",
    "render_supervisord_conf",
    "wait_until",
    "write_bytes",
    "write_file",
]
