from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HaproxyPaths:
    config: Path
    admin_socket: Path
    instance_ca: Path | None = None  # instances serve TLS signed by this CA; None: plain HTTP
