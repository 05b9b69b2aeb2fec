"""Render supervisord.conf: pure text from a list of programs and a state directory.

One supervisord per state directory, reachable only through its unix socket (mode 0700
directory, no TCP port), so eco-systems beside each other never see each other.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._program import Program


@dataclass(frozen=True)
class SupervisordPaths:
    config: Path
    socket: Path
    pidfile: Path
    logfile: Path
    log_dir: Path


def _quote_env(value: str) -> str:
    """A value for supervisord's `environment=`, which it splits with shlex and expands `%(...)s` in.

    Its parser takes no escaped quote inside quotes, so a value is wrapped in the quote
    it does not contain: double quotes usually, single quotes around JSON.
    """
    literal = value.replace("%", "%%")
    if '"' not in value and "\\" not in value:
        return f'"{literal}"'
    if "'" not in value:
        return f"'{literal}'"
    raise ValueError(f"an environment value cannot hold both kinds of quotes for supervisord: {value[:40]!r}")


def _command(argv: Iterable[str]) -> str:
    # '%' starts an expansion in supervisord's config; a literal one is written '%%'.
    return " ".join(shlex.quote(arg) for arg in argv).replace("%", "%%")


def render_program(program: Program, log_dir: Path) -> str:
    lines = [
        f"[program:{program.name}]",
        f"command = {_command(program.argv)}",
        "autostart = true",
        "autorestart = true",
        f"startsecs = {math.ceil(program.start_seconds)}",
        "startretries = 3",
        f"stopsignal = {program.stop_signal}",
        f"stopwaitsecs = {math.ceil(program.stop_timeout)}",
        "stopasgroup = true",
        "killasgroup = true",
        f"stdout_logfile = {log_dir / (program.name + '.log')}",
        "stdout_logfile_maxbytes = 10MB",
        "stdout_logfile_backups = 3",
        "redirect_stderr = true",
    ]
    if program.directory is not None:
        lines.append(f"directory = {program.directory}")
    if program.environment:
        env = ",".join(f"{k}={_quote_env(v)}" for k, v in sorted(program.environment.items()))
        lines.append(f"environment = {env}")
    return "\n".join(lines) + "\n"


def render_supervisord_conf(name: str, programs: Iterable[Program], paths: SupervisordPaths) -> str:
    """The whole supervisord.conf for one eco-system on this machine."""
    head = f"""\
; Rendered by sevenleague for eco-system {name!r}; edits are overwritten by `league up`.

[unix_http_server]
file = {paths.socket}
chmod = 0600

[supervisord]
identifier = league-{name}
logfile = {paths.logfile}
logfile_maxbytes = 10MB
logfile_backups = 3
pidfile = {paths.pidfile}
childlogdir = {paths.log_dir}
nodaemon = false
minfds = 4096

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{paths.socket}
"""
    sections = [render_program(p, paths.log_dir) for p in sorted(programs, key=lambda p: p.name)]
    return head + "\n" + "\n".join(sections)
