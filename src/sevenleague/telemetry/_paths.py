from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PrometheusPaths:
    config: Path
    targets_dir: Path
    data_dir: Path
    instance_ca: Path | None = None  # instances serve TLS signed by this CA; None: plain HTTP


@dataclass(frozen=True)
class AlertmanagerPaths:
    config: Path
    data_dir: Path
