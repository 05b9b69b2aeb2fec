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

from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticUndefined

from ._duration import format_duration, parse_duration, parse_wait
from ._model import NAME_RULE, CatalogSpec
from ._size import format_size, parse_size

# A field's spelling is told by the validator that reads it, not by its name.
_SPELLINGS = {parse_duration: "duration", parse_wait: "duration", parse_size: "size"}

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
    ("[deploy]", "deploy"),
    ("[deploy.rollout]", "rollout"),
    ("[logs]", "logs"),
]


def _section_model(key: str) -> type[BaseModel]:
    if key == "health":
        from ._model import HealthCheckSpec

        return HealthCheckSpec
    if key == "gates":
        from ._model import BuildGatesSpec

        return BuildGatesSpec
    if key == "rollout":
        from ._model import RolloutSpec

        return RolloutSpec
    annotation = CatalogSpec.model_fields[key].annotation
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    assert isinstance(annotation, type)
    return annotation


def _spelling(field: Any) -> str | None:
    """"duration" or "size" for a field read from such a string, None for the rest."""
    for meta in field.metadata:
        if isinstance(meta, BeforeValidator) and meta.func in _SPELLINGS:
            return _SPELLINGS[meta.func]
    return None


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(f'"{v}"' for v in typing.get_args(annotation))
    if origin is list:
        return "list of names"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _type_name(kept[0]) + " (optional)"
    return {int: "integer", str: "string", float: "number", bool: "boolean"}.get(annotation, str(annotation))


def _default(field: Any) -> str:
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
    spelling = _spelling(field)
    if spelling == "duration":
        return f'`"{format_duration(value)}"`' if value else '`"0s"`'
    if spelling == "size":
        return f'`"{format_size(value)}"`'
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
        '- Sizes are strings with a unit: `"500MB"`, `"1GiB"`. KiB, MiB, GiB and TiB are powers',
        "  of 1024 and kB, MB, GB and TB powers of 1000 (IEC 80000-13); the ambiguous `KB`, `K`",
        "  or `G` are refused rather than guessed.",
        "- No two things listen on the same port of the same host; instance N of a service",
        "  listens on `port + N - 1`.",
        "- `LEAGUE_PORT_OFFSET` is added to every port, so a second eco-system can run beside",
        "  the first (but not to an ssh host's `node_exporter_port`: an ssh host is another",
        "  machine, with ports of its own).",
        "",
    ]
    for title, key in SECTIONS:
        model = _section_model(key)
        lines += [f"## `{title}`", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            kind = _spelling(field) or _type_name(field.annotation)
            lines.append(f"| `{name}` | {kind} | {_default(field)} | {field.description or ''} |")
        lines.append("")
    lines += ["## Example: the demo catalog", "", "```toml", example.rstrip(), "```", ""]
    return "\n".join(lines)


def main() -> int:
    root = Path(__file__).resolve().parents[3]
    sys.stdout.write(render_reference((root / "ecosystem.toml").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
