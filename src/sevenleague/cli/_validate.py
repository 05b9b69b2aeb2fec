from __future__ import annotations

from pathlib import Path

from rich.console import Console


def run_validate(path: Path, console: Console) -> int:
    from ..catalog import load_catalog
    from ..catalog._problems import source_name

    catalog = load_catalog(path)
    spec = catalog.spec
    console.print(
        f"{source_name(path)}: valid ({len(spec.services)} services, {len(catalog.instances)} "
        f"instances, {len(spec.hosts)} hosts, {len(spec.environments)} environments)",
        highlight=False,
    )
    return 0
