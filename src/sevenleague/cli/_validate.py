from __future__ import annotations

from pathlib import Path

from rich.console import Console


def run_validate(path: Path, console: Console) -> int:
    from ..catalog import load_catalog
    from ..catalog._problems import source_name

    catalog = load_catalog(path)
    spec = catalog.spec
    counts = ", ".join(_count(n, word) for n, word in (
        (len(spec.services), "service"), (len(catalog.instances), "instance"),
        (len(spec.hosts), "host"), (len(spec.environments), "environment")))
    console.print(f"{source_name(path)}: valid ({counts})", highlight=False)
    return 0


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"
