"""Lazy public exports for slice packages (PEP 562).

A slice lists its public names in `__init__.py`, but importing the package must not
import every module: `league status` has a 0.5 s budget and has no use for the catalog's
validation models. Each name is imported from its module on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for a package whose names live in submodules.

    `exports` maps each public name to the relative module that defines it.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
