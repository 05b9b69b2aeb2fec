"""Bare repositories under the state directory, and the hook that turns a push into a build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..catalog._model import NAME_PATTERN, NAME_RULE
from ..errors import LeagueError, UsageError

HOOK_MODULE = "sevenleague.source.hook"


@dataclass(frozen=True)
class Repository:
    name: str
    path: Path
    branches: tuple[str, ...]
    head: str  # commit of the default branch, "" while empty

    @property
    def clone_url(self) -> str:
        return str(self.path)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "clone_url": self.clone_url,
                "branches": list(self.branches), "head": self.head}


def render_post_receive(python: str, home: Path) -> str:
    """The hook: this eco-system's Python and state directory, baked in when it is written.

    It must never fail the push (the objects are already stored): it reports what it
    queued, or how to queue it by hand when the build service does not answer.
    """
    return (
        f"#!{python}\n"
        "# Queues a build of every pushed branch; written by `league repo create`.\n"
        "import sys\n"
        f"from {HOOK_MODULE} import main\n"
        f"sys.exit(main({str(home)!r}, sys.stdin))\n"
    )


def _git(*args: str, cwd: Path | None = None) -> str:
    if shutil.which("git") is None:
        raise LeagueError("git is not installed", hint="apt-get install git")
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd, timeout=60)
    if done.returncode != 0:
        raise LeagueError(f"git {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageError(f"{name!r} is not a valid repository name", hint=NAME_RULE)


def create_repository(repos: Path, name: str, home: Path, python: str = sys.executable) -> Repository:
    """A bare repository named after the service, with the build hook; refuses to overwrite."""
    check_name(name)
    path = repos / f"{name}.git"
    if path.exists():
        raise UsageError(f"repository {name!r} already exists at {path}",
                         hint=f"push to it: git remote add league {path}")
    repos.mkdir(parents=True, exist_ok=True)
    scratch = repos / f".{name}.git.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        _git("init", "--quiet", "--bare", "--initial-branch=main", str(scratch))
        _git("config", "receive.denyNonFastForwards", "true", cwd=scratch)
        _git("config", "http.receivepack", "true", cwd=scratch)
        hook = scratch / "hooks" / "post-receive"
        hook.write_text(render_post_receive(python, home))
        hook.chmod(0o755)
        scratch.rename(path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return read_repository(path)


def read_repository(path: Path) -> Repository:
    refs = _git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=path).split()
    head = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], capture_output=True,
                          text=True, cwd=path).stdout.strip()
    return Repository(path.name.removesuffix(".git"), path, tuple(refs), head)


def list_repositories(repos: Path) -> list[Repository]:
    if not repos.is_dir():
        return []
    return [read_repository(p) for p in sorted(repos.glob("*.git")) if p.is_dir()]
