"""The catalog's build settings, rendered by `league up` for the build service to read.

The service reads this file at every build rather than the catalog itself: it always
sees what the last `league up` applied (a catalog being edited does not leak into a
build), and a change of gates needs no restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import Catalog


@dataclass(frozen=True)
class Gates:
    perf_regression: float = 0.15
    min_coverage: float = 0.0
    ruff_clean: bool = False


@dataclass(frozen=True)
class ServiceBuildSettings:
    gates: Gates
    app: str | None  # "module:attribute" from the catalog; None means the convention


def render_build_settings(catalog: Catalog, apt_url: str) -> str:
    spec = catalog.spec
    services = {
        name: {"app": service.app, "gates": (service.build or spec.builds.gates).model_dump()}
        for name, service in spec.services.items()
    }
    settings = {
        "ecosystem": catalog.name,
        "apt_url": apt_url,
        "workers": spec.builds.workers,
        "defaults": spec.builds.gates.model_dump(),
        "services": services,
    }
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"


def read_settings(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def service_settings(settings: dict[str, Any], service: str) -> ServiceBuildSettings:
    """A service the catalog does not list yet builds with the defaults."""
    entry = settings.get("services", {}).get(service, {})
    gates = entry.get("gates") or settings.get("defaults") or {}
    return ServiceBuildSettings(
        gates=Gates(**{k: v for k, v in gates.items() if k in Gates.__dataclass_fields__}),
        app=entry.get("app"),
    )
