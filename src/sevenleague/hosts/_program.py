"""A program to keep running on a host: the unit both drivers understand.

The local driver renders it into a supervisord `[program:x]` section; the ssh driver
will render the same description into a systemd unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Program:
    """What to run and how to stop it; nothing about where it came from."""

    name: str
    argv: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None
    stop_signal: str = "TERM"
    stop_timeout: float = 10.0
    start_seconds: float = 1.0
    kind: str = "platform"  # "platform" for the eco-system's own processes, "instance" for apps
