"""Metrics plumbing: Prometheus and Alertmanager config, file_sd targets for everything, and the
register of metric names with its check (`metric_register`, `metric_check`)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "REGISTER": ".metric_register",
    "CheckReport": ".metric_check",
    "MetricSpec": ".metric_register",
    "Problem": ".metric_check",
    "UnknownMetric": ".metric_register",
    "check_exposition": ".metric_check",
    "check_metrics": ".metric_check",
    "naming_problems": ".metric_check",
    "register_problems": ".metric_check",
    "render_metrics_page": ".metric_register",
    "spec": ".metric_register",
    "AlertmanagerPaths": "._paths",
    "PrometheusPaths": "._paths",
    "ScrapeJob": "._targets",
    "ServerTls": "._paths",
    "Target": "._targets",
    "alertmanager_argv": "._prometheus_yml",
    "node_exporter_argv": "._prometheus_yml",
    "prometheus_argv": "._prometheus_yml",
    "render_alertmanager_yml": "._prometheus_yml",
    "render_file_sd": "._targets",
    "render_web_config": "._prometheus_yml",
    "render_prometheus_yml": "._prometheus_yml",
    "scrape_jobs": "._targets",
    "target_file": "._prometheus_yml",
}
__all__ = [
    "REGISTER",
    "AlertmanagerPaths",
    "CheckReport",
    "MetricSpec",
    "Problem",
    "PrometheusPaths",
    "ScrapeJob",
    "ServerTls",
    "Target",
    "UnknownMetric",
    "alertmanager_argv",
    "check_exposition",
    "check_metrics",
    "naming_problems",
    "node_exporter_argv",
    "prometheus_argv",
    "register_problems",
    "render_alertmanager_yml",
    "render_file_sd",
    "render_metrics_page",
    "render_prometheus_yml",
    "render_web_config",
    "scrape_jobs",
    "spec",
    "target_file",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._paths import AlertmanagerPaths, PrometheusPaths, ServerTls
    from ._prometheus_yml import (
        alertmanager_argv,
        node_exporter_argv,
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
    from .metric_check import (
        CheckReport,
        Problem,
        check_exposition,
        check_metrics,
        naming_problems,
        register_problems,
    )
    from .metric_register import REGISTER, MetricSpec, UnknownMetric, render_metrics_page, spec
