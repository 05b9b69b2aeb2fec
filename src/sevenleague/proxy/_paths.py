from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HaproxyPaths:
    config: Path
    admin_socket: Path
    ca_file: Path | None = None  # instances serve TLS signed by this CA; None: plain HTTP
    certificate: Path | None = None  # the edge's own key and chain (one PEM); None: the edge speaks HTTP
