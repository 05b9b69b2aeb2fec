from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HaproxyPaths:
    config: Path
    admin_socket: Path
