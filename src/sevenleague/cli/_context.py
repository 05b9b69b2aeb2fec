"""What every command shares: the catalog path, the state directory, the port offset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CATALOG = Path("ecosystem.toml")


@dataclass(frozen=True)
class Options:
    catalog: Path = DEFAULT_CATALOG
