"""What every step of one build shares: the build, its directories, the runner, results so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._environment import BuildCache
from ._paths import BuildPaths
from ._project import Project
from ._runner import CommandRunner
from ._settings import ServiceBuildSettings
from ._store import Build, BuildStore


class StepFailed(Exception):
    """The step failed; the message is the build's reason.

    With `go_on`, the build still fails but the next steps run, so one build reports
    every kind of test instead of stopping at the first one that failed.
    """

    def __init__(self, reason: str, *, go_on: bool = False) -> None:
        super().__init__(reason)
        self.go_on = go_on


@dataclass
class BuildContext:
    build: Build
    store: BuildStore
    paths: BuildPaths
    settings: ServiceBuildSettings
    runner: CommandRunner
    python: Path
    apt_url: str = ""
    ecosystem: str = "sevenleague"
    work: Path = Path()
    artifacts: Path = Path()
    checkout: Path = Path()
    project: Project | None = None
    shared_env: Path = Path()
    venv: Path = Path()
    local_wheels: list[Path] = field(default_factory=list)
    app_wheel: Path = Path()
    deb: Path | None = None
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    commit: dict[str, str] = field(default_factory=dict)  # sha, author, email, date, subject

    @property
    def cache(self) -> BuildCache:
        return BuildCache(self.paths.cache)

    @property
    def needs_project(self) -> Project:
        assert self.project is not None, "checkout runs first"
        return self.project

    def record(self, **fields: Any) -> None:
        self.store.update_record(self.build.id, **fields)

    def run(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 1800.0) -> int:
        return self.runner.run(argv, cwd=cwd or self.checkout, env=env, timeout=timeout)
