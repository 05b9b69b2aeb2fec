"""The eco-system as data: `ecosystem.toml` -> a validated, typed `Catalog`.

Errors name the file, the key and the fix (`CatalogError`, exit 2).
"""

from ._catalog import RESERVED_NAMES, Catalog, Instance
from ._duration import format_duration, parse_duration
from ._load import load_catalog, parse_catalog
from ._model import (
    AlertmanagerSpec,
    CatalogSpec,
    DeploySpec,
    EdgeSpec,
    EnvironmentSpec,
    HealthCheckSpec,
    HostSpec,
    LogsSpec,
    PrometheusSpec,
    RolloutSpec,
    ServiceSpec,
)
from ._problems import CatalogError, Problem
from ._size import format_size, parse_size

__all__ = [
    "RESERVED_NAMES",
    "AlertmanagerSpec",
    "Catalog",
    "CatalogError",
    "CatalogSpec",
    "DeploySpec",
    "EdgeSpec",
    "EnvironmentSpec",
    "HealthCheckSpec",
    "HostSpec",
    "Instance",
    "LogsSpec",
    "Problem",
    "PrometheusSpec",
    "RolloutSpec",
    "ServiceSpec",
    "format_duration",
    "format_size",
    "load_catalog",
    "parse_catalog",
    "parse_duration",
    "parse_size",
]
