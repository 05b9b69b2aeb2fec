"""What supervisord says about its programs: up or not, and since when.

Read over supervisord's own XML-RPC (`getAllProcessInfo`, what `supervisorctl status`
shows) through its unix socket, every few seconds; the metrics show the last reading,
so a scrape never waits for supervisord.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hosts._supervisor_rpc import supervisor_rpc


@dataclass(frozen=True)
class ProgramState:
    program: str
    up: bool  # supervisord's state is RUNNING
    started: float  # when supervisord last started it, seconds since the epoch; 0 when never


def program_states(infos: Iterable[Mapping[str, Any]]) -> list[ProgramState]:
    """supervisord's process infos as states, by program name."""
    states = (ProgramState(str(info["name"]), info.get("statename") == "RUNNING",
                           float(info.get("start") or 0)) for info in infos)
    return sorted(states, key=lambda state: state.program)


class SupervisorUnavailable(Exception):
    """supervisord did not answer (not running, socket missing, or an XML-RPC fault)."""


def read_program_states(socket: Path, timeout: float = 2.0) -> list[ProgramState]:
    """Blocking: one `getAllProcessInfo` over `socket`."""
    try:
        infos = supervisor_rpc(socket, timeout).supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error) as error:
        raise SupervisorUnavailable(f"supervisord at {socket} did not answer: {error}") from error
    return program_states(infos)
