"""Generate docs/catalog.md from the catalog models: the reference and the validator are one.

    python -m sevenleague.catalog.reference > docs/catalog.md

A unit test fails when docs/catalog.md differs from what this prints.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ._duration import format_duration
from ._model import NAME_RULE, CatalogSpec

DURATION_FIELDS = {"scrape_interval", "retention", "interval", "token_lifetime", "leaf_lifetime"}

SECTIONS = [
    ("[ecosystem]", "ecosystem"),
    ("[hosts.NAME]", "hosts"),
    ("[environments.NAME]", "environments"),
    ("[edge]", "edge"),
    ("[prometheus]", "prometheus"),
    ("[alertmanager]", "alertmanager"),
    ("[services.NAME]", "services"),
    ("[services.NAME.health]", "health"),
    ("[services.NAME.build]", "gates"),
    ("[builds]", "builds"),
    ("[builds.gates]", "gates"),
    ("[identity]", "identity"),
    ("[pki]", "pki"),
]


def _section_model(key: str) -> type[BaseModel]:
    if key == "health":
        from ._model import HealthCheckSpec

        return HealthCheckSpec
    if key == "gates":
        from ._model import BuildGatesSpec

        return BuildGatesSpec
    annotation = CatalogSpec.model_fields[key].annotation
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    assert isinstance(annotation, type)
    return annotation


def _type_name(name: str, annotation: Any) -> str:
    if name in DURATION_FIELDS:
        return "duration"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(f'"{v}"' for v in typing.get_args(annotation))
    if origin is list:
        return "list of names"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if origin is typing.Annotated:
        return _type_name(name, typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _type_name(name, kept[0]) + " (optional)"
    return {int: "integer", str: "string", float: "number", bool: "boolean"}.get(annotation, str(annotation))


def _default(name: str, field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        return "see below" if isinstance(value, BaseModel) else f"`{value!r}`".replace("'", '"')
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "see below"
    if name in DURATION_FIELDS:
        return f'`"{format_duration(value)}"`'
    if isinstance(value, str):
        return f'`"{value}"`'
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def render_reference(example: str) -> str:
    lines = [
        "# Catalog reference: `ecosystem.toml`",
        "",
        "Generated from the models in `src/sevenleague/catalog/_model.py` by",
        "`python -m sevenleague.catalog.reference`; do not edit by hand.",
        "",
        "The catalog is the one description of the eco-system: every config sevenleague",
        "renders (HAProxy, Prometheus, Alertmanager, supervisord, the build service) comes",
        "from it. Check a change with `league validate`; every problem is reported as one",
        "line naming the file, the line, the key, what was expected and a hint, and the",
        "exit code is 2.",
        "",
        "Rules that hold everywhere:",
        "",
        f"- Names (of hosts, environments, services): {NAME_RULE}.",
        "- Unknown keys are errors (a typo never silently becomes a default); numbers are",
        "  written without quotes.",
        '- Durations are strings with a unit: `"500ms"`, `"5s"`, `"1m"`, `"2h"`, `"15d"`.',
        "- No two things listen on the same port of the same host; instance N of a service",
        "  listens on `port + N - 1`.",
        "- `LEAGUE_PORT_OFFSET` is added to every port, so a second eco-system can run beside",
        "  the first.",
        "",
    ]
    for title, key in SECTIONS:
        model = _section_model(key)
        lines += [f"## `{title}`", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            lines.append(f"| `{name}` | {_type_name(name, field.annotation)} | {_default(name, field)} | "
                         f"{field.description or ''} |")
        lines.append("")
    lines += ["## Example: the demo catalog", "", "```toml", example.rstrip(), "```", ""]
    return "\n".join(lines)


def main() -> int:
    root = Path(__file__).resolve().parents[3]
    sys.stdout.write(render_reference((root / "ecosystem.toml").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
