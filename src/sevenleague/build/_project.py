"""What a pushed service says about itself in its pyproject.toml.

The pipeline needs the distribution name and version (for the wheel and the package),
the import name (for the API reference, coverage and the ASGI app), and the
dependencies (for the test environment). A service says it in the standard places;
nothing sevenleague-specific is required.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    description: str
    module: str
    dependencies: tuple[str, ...]
    dev_dependencies: tuple[str, ...]
    build_requires: tuple[str, ...]
    app: str  # "module:attribute" of the ASGI app

    @property
    def distribution(self) -> str:
        """The name as it appears in wheel file names (PEP 427)."""
        return re.sub(r"[-_.]+", "_", self.name).lower()


def requirement_name(requirement: str) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def read_project(checkout: Path, *, app: str | None = None) -> Project:
    """Read `checkout/pyproject.toml`; bad or missing fields are a UsageError naming the key."""
    path = checkout / "pyproject.toml"
    if not path.exists():
        raise UsageError("the pushed commit has no pyproject.toml at its root",
                         hint="`league new service NAME` scaffolds one")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"pyproject.toml is not valid TOML: {error}") from None
    project = data.get("project")
    if not isinstance(project, dict):
        raise UsageError("pyproject.toml has no [project] table", hint="see PEP 621")
    name = project.get("name")
    version = project.get("version")
    if not isinstance(name, str) or not name:
        raise UsageError("pyproject.toml: project.name is missing")
    if not isinstance(version, str) or not version:
        raise UsageError("pyproject.toml: project.version is missing or dynamic",
                         hint='write a static version, e.g. version = "0.1.0"')
    module = name.replace("-", "_").lower()
    if not (checkout / "src" / module).is_dir() and not (checkout / module).is_dir():
        raise UsageError(f"no package {module!r} in src/{module} or {module}/",
                         hint="the import name must be the project name with '-' as '_'")
    extras = project.get("optional-dependencies", {})
    return Project(
        name=name,
        version=version,
        description=str(project.get("description", "")) or f"The {name} service",
        module=module,
        dependencies=tuple(project.get("dependencies", [])),
        dev_dependencies=tuple(extras.get("dev", []) if isinstance(extras, dict) else []),
        build_requires=tuple(data.get("build-system", {}).get("requires", ["setuptools", "wheel"])),
        app=app or f"{module}.app:app",
    )
