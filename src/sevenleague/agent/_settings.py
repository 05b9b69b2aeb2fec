"""What the host agent reads from its environment at startup, checked before anything runs.

`league up` gives the agent its settings through the environment (see the contract in
docs/logs.md). Every one is read once, here: a missing or malformed value stops the
agent at startup with a message naming the variable, rather than showing up later as a
program whose lines never arrive.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson

from ..errors import LeagueError

HOST_ENV = "LEAGUE_AGENT_HOST"
SOURCE_ENV = "LEAGUE_AGENT_SOURCE"
LOG_DIR_ENV = "LEAGUE_AGENT_LOG_DIR"
PROGRAMS_ENV = "LEAGUE_AGENT_PROGRAMS"
STATE_DIR_ENV = "LEAGUE_AGENT_STATE_DIR"
SUPERVISOR_SOCKET_ENV = "LEAGUE_AGENT_SUPERVISOR_SOCKET"
JOURNAL_COMMAND_ENV = "LEAGUE_AGENT_JOURNAL_COMMAND"
DEFAULT_JOURNAL_COMMAND = ("journalctl",)

SourceKind = Literal["supervisord", "journal"]
SOURCES: tuple[SourceKind, ...] = ("supervisord", "journal")
# A host or program name goes into record ids ("host/program/..."), a program name into a file
# name ("program.log"): no slash, no whitespace, nothing that is not printable ASCII.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")
MAX_LABEL_LENGTH = 200  # what the logs service indexes


class AgentError(LeagueError):
    """The host agent cannot run as configured; the message names the setting to fix."""


@dataclass(frozen=True)
class ProgramLabels:
    """The service and instance a program runs, as its records name them."""

    service: str
    instance: str


@dataclass(frozen=True)
class AgentSettings:
    host: str
    state_dir: Path
    source: SourceKind = "supervisord"
    log_dir: Path | None = None
    programs: Mapping[str, ProgramLabels] = field(default_factory=dict)
    supervisor_socket: Path | None = None
    # The argv that runs journalctl: itself on this host, or `ssh ... USER@HOST journalctl` for another.
    journal_command: tuple[str, ...] = DEFAULT_JOURNAL_COMMAND

    @property
    def checkpoint(self) -> Path:
        return self.state_dir / "checkpoint.json"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if environ is None else environ
        host = _required(env, HOST_ENV, "the catalog name of the host the agent runs on")
        if not _NAME.fullmatch(host):
            raise AgentError(f"{HOST_ENV}={host[:80]!r} is not a host name",
                             hint="letters, digits and . _ @ : - only, at most 64 characters")
        source = env.get(SOURCE_ENV, "").strip() or "supervisord"
        if source not in SOURCES:
            raise AgentError(f"{SOURCE_ENV}={source[:40]!r} is not a log source",
                             hint=" or ".join(SOURCES))
        state_dir = _absolute(STATE_DIR_ENV, _required(env, STATE_DIR_ENV, "where the checkpoint lives"))
        programs = parse_programs(env.get(PROGRAMS_ENV, "").strip() or ("{}" if source == "journal" else ""))
        if source == "journal":
            socket = env.get(SUPERVISOR_SOCKET_ENV, "").strip()
            return cls(host=host, state_dir=state_dir, source="journal", programs=programs,
                       supervisor_socket=_absolute(SUPERVISOR_SOCKET_ENV, socket) if socket else None,
                       journal_command=parse_journal_command(env.get(JOURNAL_COMMAND_ENV, "").strip()))
        log_dir = _absolute(LOG_DIR_ENV, _required(env, LOG_DIR_ENV, "supervisord's childlogdir"))
        if not log_dir.is_dir():
            raise AgentError(f"{LOG_DIR_ENV}={str(log_dir)!r} is not a directory",
                             hint="point it at supervisord's childlogdir ($LEAGUE_HOME/logs)")
        socket_path = _absolute(SUPERVISOR_SOCKET_ENV,
                                _required(env, SUPERVISOR_SOCKET_ENV, "supervisord's unix socket"))
        return cls(host=host, state_dir=state_dir, source="supervisord", log_dir=log_dir, programs=programs,
                   supervisor_socket=socket_path)


def parse_programs(text: str) -> dict[str, ProgramLabels]:
    """`LEAGUE_AGENT_PROGRAMS`: {"program": {"service": S, "instance": I}, ...}."""
    if not text:
        raise AgentError(f"{PROGRAMS_ENV} is not set: the agent follows the logs of the programs it names",
                         hint='e.g. {"hello-1": {"service": "hello", "instance": "hello-1"}}')
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise AgentError(f"{PROGRAMS_ENV} is not JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise AgentError(f"{PROGRAMS_ENV} must be a JSON object of program -> {{service, instance}}")
    programs = {}
    for program, labels in document.items():
        if not _NAME.fullmatch(program):
            raise AgentError(f"{PROGRAMS_ENV}: {program[:80]!r} is not a program name",
                             hint="letters, digits and . _ @ : - only, at most 64 characters")
        if not isinstance(labels, dict):
            raise AgentError(f"{PROGRAMS_ENV}[{program!r}] must be an object with service and instance")
        values = []
        for key in ("service", "instance"):
            value = labels.get(key)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_LABEL_LENGTH:
                raise AgentError(f"{PROGRAMS_ENV}[{program!r}].{key} must be a non-empty string, "
                                 f"got {value!r:.80}")
            values.append(value)
        programs[program] = ProgramLabels(*values)
    return programs


def parse_journal_command(text: str) -> tuple[str, ...]:
    """`LEAGUE_AGENT_JOURNAL_COMMAND`: a JSON array, the argv that runs journalctl (default: journalctl)."""
    if not text:
        return DEFAULT_JOURNAL_COMMAND
    hint = '["journalctl"], or ["ssh", "-p", "22", "root@h1.example.org", "journalctl"] for another host'
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise AgentError(f"{JOURNAL_COMMAND_ENV} is not JSON ({error.msg})", hint=hint) from None
    if not isinstance(document, list) or not document or not all(
            isinstance(part, str) and part and "\0" not in part for part in document):
        raise AgentError(f"{JOURNAL_COMMAND_ENV} must be a JSON array of non-empty strings, "
                         f"got {text[:80]!r}", hint=hint)
    return tuple(document)


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise AgentError(f"{name} is not set: it names {what}")
    return value


def _absolute(name: str, value: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        raise AgentError(f"{name}={value[:200]!r} is not an absolute path")
    return path
