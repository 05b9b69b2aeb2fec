"""Reading `ecosystem.toml`: text -> TOML -> schema -> cross-checks -> Catalog."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from ._catalog import Catalog
from ._model import CatalogSpec
from ._problems import (
    CatalogError,
    Problem,
    offset_problems,
    port_problems,
    reference_problems,
    schema_problems,
    source_name,
    syntax_problem,
)


def _with_port_offset(spec: CatalogSpec, offset: int) -> CatalogSpec:
    if offset == 0:
        return spec
    return spec.model_copy(update={
        "edge": spec.edge.model_copy(
            update={"port": spec.edge.port + offset, "stats_port": spec.edge.stats_port + offset,
                    "http_port": None if spec.edge.http_port is None else spec.edge.http_port + offset}),
        "prometheus": spec.prometheus.model_copy(update={"port": spec.prometheus.port + offset}),
        "alertmanager": spec.alertmanager.model_copy(update={"port": spec.alertmanager.port + offset}),
        "builds": spec.builds.model_copy(update={"port": spec.builds.port + offset}),
        "identity": spec.identity.model_copy(update={"port": spec.identity.port + offset}),
        "deploy": spec.deploy.model_copy(update={"port": spec.deploy.port + offset}),
        "logs": spec.logs.model_copy(
            update={"port": spec.logs.port + offset, "agent_port": spec.logs.agent_port + offset}),
        # an ssh host's exporter is the Debian package's, listening where it listens
        "hosts": {
            name: host.model_copy(update={"node_exporter_port": host.node_exporter_port + offset})
            if host.driver == "local" else host
            for name, host in spec.hosts.items()
        },
        "services": {
            name: service.model_copy(update={"port": service.port + offset})
            for name, service in spec.services.items()
        },
    })


def parse_catalog(text: str, source: str, *, port_offset: int = 0) -> CatalogSpec:
    """The validated spec of `text`, or a CatalogError listing every problem in it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(source, [syntax_problem(error)]) from None
    try:
        spec = CatalogSpec.model_validate(data)
    except ValidationError as error:
        raise CatalogError(source, schema_problems(error, text)) from None
    problems = reference_problems(spec, text)
    if not problems:
        problems = port_problems(spec, text)
    if not problems:
        problems = offset_problems(spec, port_offset)
    if problems:
        raise CatalogError(source, problems)
    return _with_port_offset(spec, port_offset)


def load_catalog(path: Path, *, port_offset: int = 0) -> Catalog:
    """Load and validate a catalog file; every failure is a CatalogError (exit 2)."""
    source = source_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(source, [Problem(
            "", "no such file", "run from the project root or pass --catalog FILE")]) from None
    except IsADirectoryError:
        raise CatalogError(source, [Problem("", "is a directory, not a catalog file",
                                            "pass the path of an ecosystem.toml")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(source, [Problem("", f"cannot be read: {error}", "")]) from None
    spec = parse_catalog(text, source, port_offset=port_offset)
    return Catalog(source=path, spec=spec, port_offset=port_offset)
