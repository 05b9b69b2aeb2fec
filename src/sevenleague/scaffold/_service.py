"""A new service: its files rendered (pure), then written into a new or empty directory.

Writing refuses a directory that holds anything, rather than merging into it: the
scaffold is known to build green only as a whole, and overwriting someone's files is
never what `league new` was asked for. A write that fails midway removes what it wrote.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from ..errors import UsageError
from . import _templates
from ._names import check_service_name, module_name

DEFAULT_PORT = 8100
DEFAULT_INSTANCES = 2

_FILES = {
    "pyproject.toml": _templates.PYPROJECT,
    "README.md": _templates.README,
    ".gitignore": _templates.GITIGNORE,
    "docs/index.md": _templates.DOCS_INDEX,
    "src/__MODULE__/__init__.py": _templates.INIT,
    "src/__MODULE__/app.py": _templates.APP,
    "tests/unit/test_app.py": _templates.TEST_UNIT,
    "tests/integration/test_server.py": _templates.TEST_INTEGRATION,
    "tests/performance/test_throughput.py": _templates.TEST_PERFORMANCE,
}


def _fill(text: str, name: str, version: str) -> str:
    return (text.replace("__NAME__", name).replace("__MODULE__", module_name(name))
            .replace("__VERSION__", version))


def render_service(name: str, *, version: str = "0.1.0") -> dict[PurePosixPath, str]:
    """Every file of service `name`, by path relative to its directory."""
    check_service_name(name)
    return {PurePosixPath(_fill(path, name, version)): _fill(text, name, version)
            for path, text in _FILES.items()}


def render_catalog_entry(name: str, *, port: int = DEFAULT_PORT, instances: int = DEFAULT_INSTANCES,
                         host: str = "local") -> str:
    """The `[services.NAME]` table that runs the service, for the user to add to ecosystem.toml."""
    check_service_name(name)
    lines = [
        (f"[services.{name}]", ""),
        (f'description = "What {name} does, in one line."', ""),
        (f'app = "{module_name(name)}.app:app"', ""),
        (f"instances = {instances}", ""),
        (f"port = {port}", "choose a free port: instance N listens on port + N - 1"),
        (f'hosts = ["{host}"]', ""),
        (f'route = "/{name}"', "the edge sends this path and all below it here, unchanged"),
    ]
    column = max(len(line) for line, comment in lines if comment) + 2
    return "".join(f"{line.ljust(column)}# {comment}\n" if comment else f"{line}\n"
                   for line, comment in lines)


def _refuse_unless_empty(directory: Path) -> None:
    try:
        if not directory.exists():
            return
        if not directory.is_dir():
            raise UsageError(f"{directory} exists and is not a directory",
                             hint="choose a new directory with --dir")
        if any(directory.iterdir()):
            raise UsageError(f"{directory} exists and is not empty",
                             hint="choose a new or empty directory with --dir, or another service name")
    except OSError as error:
        raise UsageError(f"cannot read {directory}: {error.strerror or error}",
                         hint="choose a directory you can write to with --dir") from error


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_service(name: str, directory: Path) -> Path:
    """Write service `name` into `directory` (new, or empty); returns its absolute path."""
    files = render_service(name)
    _refuse_unless_empty(directory)
    target = directory.resolve()
    made: list[Path] = []  # only what this call created, so a failure removes nothing else
    try:
        if not target.exists():
            target.mkdir(parents=True)
            made.append(target)
        for relative, text in files.items():
            path = target.joinpath(*relative.parts)
            for parent in reversed(path.relative_to(target).parents[:-1]):
                folder = target / parent
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            made.append(path)
            path.write_text(text, encoding="utf-8")
    except OSError as error:
        _remove(made)
        raise UsageError(f"cannot write service {name!r} to {directory}: {error.strerror or error}",
                         hint="choose a directory you can write to with --dir") from error
    return target
