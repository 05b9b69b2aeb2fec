"""Service names, checked before anything is written: a name becomes a directory, a
Python package, a catalog key, a metrics label and a Debian package name at once.

The rule is the catalog's own (lowercase letters, digits and '-', a letter first, no '-'
last, at most 32 characters): a name the catalog would refuse could be scaffolded but
never run. The package name is the service name with '-' as '_'; a package that shares
its name with a standard library module or with one the service depends on would hide
that module from every import in the service, so such names are refused too.
"""

from __future__ import annotations

import keyword
import re
import sys

from ..catalog import RESERVED_NAMES
from ..errors import UsageError

MAX_LENGTH = 32
NAME_RULE = (
    "use lowercase letters, digits and '-', start with a letter, end with a letter or digit, "
    f"at most {MAX_LENGTH} characters (e.g. 'billing' or 'order-history')"
)
_NAME = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")

# Packages a scaffolded service imports (itself, through the kit, in its tests), and its
# test folder.
_TAKEN_MODULES = frozenset({
    "sevenleague", "starlette", "httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi",
    "uvicorn", "pytest", "pluggy", "prometheus_client", "orjson", "pydantic", "typer", "click",
    "rich", "yaml", "supervisor", "tests",
})


def module_name(name: str) -> str:
    """The Python package of service `name` (`order-history` -> `order_history`)."""
    return name.replace("-", "_")


def check_service_name(name: str) -> str:
    """`name` if a service may take it; otherwise a UsageError saying what to change."""
    if len(name) > MAX_LENGTH:
        raise UsageError(f"service name {name!r} is {len(name)} characters long", hint=NAME_RULE)
    if not _NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a valid service name", hint=NAME_RULE)
    if name in RESERVED_NAMES:
        raise UsageError(f"the service name {name!r} is taken by the eco-system itself",
                         hint=f"pick another; reserved: {', '.join(sorted(RESERVED_NAMES))}")
    module = module_name(name)
    if keyword.iskeyword(module):
        raise UsageError(f"the service name {name!r} is a Python keyword, so it cannot name a package",
                         hint=f"pick another, e.g. '{name}-service'")
    if module in sys.stdlib_module_names or module in _TAKEN_MODULES:
        raise UsageError(
            f"the service name {name!r} would make a package {module!r} that hides the module of "
            "that name from every import in the service", hint=f"pick another, e.g. '{name}-service'")
    return name
