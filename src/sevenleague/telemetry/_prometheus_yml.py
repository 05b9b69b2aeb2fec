"""Render prometheus.yml and alertmanager.yml, and the argv that runs each (and the node exporter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..catalog import Catalog, format_duration
from ._paths import AlertmanagerPaths, PrometheusPaths, ServerTls
from ._targets import ScrapeJob


def _header(catalog: Catalog) -> str:
    return (f"# Rendered by sevenleague for eco-system {catalog.name!r}; "
            "edits are overwritten by `league up`.\n")


def target_file(paths: PrometheusPaths, job: ScrapeJob) -> Path:
    return paths.targets_dir / f"{job.name}.json"


def _scrape_config(job: ScrapeJob, paths: PrometheusPaths) -> dict[str, Any]:
    config: dict[str, Any] = {
        "job_name": job.name,
        "metrics_path": job.metrics_path,
        "file_sd_configs": [{"files": [str(target_file(paths, job))]}],
    }
    if job.honor_labels:
        config["honor_labels"] = True
    if paths.ca_file:
        config["scheme"] = "https"
        config["tls_config"] = {"ca_file": str(paths.ca_file)}
    if job.audience and paths.credentials_dir:  # read again on every scrape: the renewer keeps it fresh
        config["authorization"] = {"type": "Bearer",
                                   "credentials_file": str(paths.credentials_dir / f"{job.audience}.token")}
    return config


def render_web_config(tls: ServerTls) -> str:
    """exporter-toolkit's web config: HTTPS with the process' own leaf, TLS 1.2 at least.

    The files are read again for every new connection, so a renewed certificate is served
    from the next handshake on, with no restart.
    """
    document = {"tls_server_config": {"cert_file": str(tls.certificate), "key_file": str(tls.key),
                                      "min_version": "TLS12"}}
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def _alertmanager_config(target: str, paths: PrometheusPaths) -> dict[str, Any]:
    config: dict[str, Any] = {"static_configs": [{"targets": [target]}]}
    if paths.ca_file:
        config["scheme"] = "https"
        config["tls_config"] = {"ca_file": str(paths.ca_file)}
    return config


def render_prometheus_yml(catalog: Catalog, jobs: list[ScrapeJob], paths: PrometheusPaths) -> str:
    spec = catalog.spec
    interval = spec.prometheus.scrape_interval
    am = spec.alertmanager
    document = {
        "global": {
            "scrape_interval": format_duration(interval),
            # A scrape may not outlast the interval; 10s is Prometheus' own default cap.
            "scrape_timeout": format_duration(min(interval, 10.0)),
            "evaluation_interval": format_duration(interval),
            "external_labels": {"ecosystem": catalog.name},
        },
        "alerting": {
            "alertmanagers": [_alertmanager_config(f"{catalog.address_of(am.host)}:{am.port}", paths)]
        },
        "scrape_configs": [_scrape_config(job, paths) for job in jobs],
    }
    return _header(catalog) + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def render_alertmanager_yml(catalog: Catalog) -> str:
    """Alerts are grouped per alert and service; the receiver gains its webhook with incidents."""
    document = {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "service"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "default"}],
    }
    return _header(catalog) + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def prometheus_argv(prometheus: Path, catalog: Catalog, paths: PrometheusPaths) -> tuple[str, ...]:
    spec = catalog.spec.prometheus
    return (
        str(prometheus),
        f"--config.file={paths.config}",
        f"--storage.tsdb.path={paths.data_dir}",
        f"--storage.tsdb.retention.time={format_duration(spec.retention)}",
        f"--web.listen-address={catalog.address_of(spec.host)}:{spec.port}",
        *([f"--web.config.file={paths.tls.web_config}"] if paths.tls else []),
    )


def alertmanager_argv(alertmanager: Path, catalog: Catalog, paths: AlertmanagerPaths) -> tuple[str, ...]:
    spec = catalog.spec.alertmanager
    return (
        str(alertmanager),
        f"--config.file={paths.config}",
        f"--storage.path={paths.data_dir}",
        f"--web.listen-address={catalog.address_of(spec.host)}:{spec.port}",
        "--cluster.listen-address=",  # one Alertmanager: no gossip port to clash with
        *([f"--web.config.file={paths.tls.web_config}"] if paths.tls else []),
    )


# Collectors that cannot work where the eco-system runs, and would log an error on every
# scrape if left on: Debian turns the systemd collector on, but it needs systemd's bus
# (absent in a container), and the programs sevenleague runs here are supervisord's,
# whose state the log agent exports (sevenleague_process_up).
NODE_EXPORTER_OFF = ("systemd",)


def node_exporter_argv(node_exporter: Path, address: str, port: int, tls: ServerTls) -> tuple[str, ...]:
    """The machine's exporter: every other collector as packaged, HTTPS with its own leaf."""
    host = f"[{address}]" if ":" in address else address
    return (
        str(node_exporter),
        f"--web.listen-address={host}:{port}",
        f"--web.config.file={tls.web_config}",
        *(f"--no-collector.{name}" for name in NODE_EXPORTER_OFF),
    )
