"""Where the build service keeps its data, the repositories and the apt repository."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "LEAGUE_BUILD_CACHE"


@dataclass(frozen=True)
class BuildPaths:
    root: Path  # the build service's own: database, work, artifacts
    cache: Path  # wheels and environments; shareable between eco-systems ($LEAGUE_BUILD_CACHE)
    repos: Path  # bare git repositories, one per service
    apt: Path  # the apt repository, served over HTTP as it is
    gnupg: Path  # the eco-system's signing key; never under a served directory
    settings: Path  # rendered by `league up` from the catalog, read by the service per build

    @classmethod
    def under(cls, home: Path) -> BuildPaths:
        root = home / "build"
        cache = Path(os.environ.get(CACHE_ENV) or root / "cache").absolute()
        return cls(root=root, cache=cache, repos=home / "repos", apt=home / "apt", gnupg=home / "gnupg",
                   settings=root / "settings.json")

    @property
    def database(self) -> Path:
        return self.root / "builds.sqlite3"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"
