"""Metrics plumbing: Prometheus and Alertmanager config, file_sd targets for everything."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "AlertmanagerPaths": "._paths",
    "PrometheusPaths": "._paths",
    "ScrapeJob": "._targets",
    "ServerTls": "._paths",
    "Target": "._targets",
    "alertmanager_argv": "._prometheus_yml",
    "prometheus_argv": "._prometheus_yml",
    "render_alertmanager_yml": "._prometheus_yml",
    "render_file_sd": "._targets",
    "render_web_config": "._prometheus_yml",
    "render_prometheus_yml": "._prometheus_yml",
    "scrape_jobs": "._targets",
    "target_file": "._prometheus_yml",
}
__all__ = [
    "AlertmanagerPaths",
    "PrometheusPaths",
    "ScrapeJob",
    "ServerTls",
    "Target",
    "alertmanager_argv",
    "prometheus_argv",
    "render_alertmanager_yml",
    "render_file_sd",
    "render_prometheus_yml",
    "render_web_config",
    "scrape_jobs",
    "target_file",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._paths import AlertmanagerPaths, PrometheusPaths, ServerTls
    from ._prometheus_yml import (
        alertmanager_argv,
        prometheus_argv,
        render_alertmanager_yml,
        render_prometheus_yml,
        render_web_config,
        target_file,
    )
    from ._targets import (
        ScrapeJob,
        Target,
        render_file_sd,
        scrape_jobs,
    )
