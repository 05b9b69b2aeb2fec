from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerTls:
    """The files a Prometheus-family server (exporter-toolkit) serves HTTPS with."""

    web_config: Path  # --web.config.file: names the two below
    certificate: Path  # leaf then intermediates
    key: Path


@dataclass(frozen=True)
class PrometheusPaths:
    config: Path
    targets_dir: Path
    data_dir: Path
    ca_file: Path | None = None  # targets serve TLS signed by this CA; None: plain HTTP
    tls: ServerTls | None = None  # None: Prometheus serves plain HTTP
    credentials_dir: Path | None = None  # AUDIENCE.token files to scrape kit processes with; None: no token


@dataclass(frozen=True)
class AlertmanagerPaths:
    config: Path
    data_dir: Path
    tls: ServerTls | None = None
