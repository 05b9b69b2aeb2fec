"""Which release each local instance runs: the one record `league up` and the deploy share.

`league up` starts instances from the workspace (the project's own virtualenv) until a
deploy switches one to a release: the release's venv, built from its .deb. The deploy
service writes this record as it switches each instance; `league up` reads it, so
starting the eco-system again never quietly reverts a deployed instance to the
workspace. One small JSON file under the state directory, replaced atomically under a
lock, so two deployments of two services never lose each other's change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LeagueError
from ..hosts import write_file


@dataclass(frozen=True)
class InstanceRelease:
    version: str
    python: Path  # the interpreter of the release's venv


def read_instance_releases(path: Path) -> dict[str, InstanceRelease]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise LeagueError(f"{path} cannot be read: {error}",
                          hint="it records deployed releases; `league deploy` writes it again") from None
    return {name: InstanceRelease(entry["version"], Path(entry["python"])) for name, entry in raw.items()}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def record_instance_release(path: Path, instance: str, release: InstanceRelease | None) -> None:
    """`instance` now runs `release`; None: it runs from the workspace again."""
    with _locked(path):
        current = read_instance_releases(path)
        if release is None:
            current.pop(instance, None)
        else:
            current[instance] = release
        text = json.dumps({name: {"version": r.version, "python": str(r.python)}
                           for name, r in sorted(current.items())}, indent=2) + "\n"
        write_file(path, text)
