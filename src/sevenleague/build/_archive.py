"""The eco-system's apt archive exists from the first `league up`, before any build.

The signing key is made then (0600 under the state directory, outside what is served)
and the repository starts signed and empty, so a host can add it with `signed-by`
right away and the first published package needs nothing more.
"""

from __future__ import annotations

from ._apt_repo import AptRepository
from ._gpg import SigningKey, ensure_signing_key
from ._paths import BuildPaths


def open_archive(paths: BuildPaths, ecosystem: str) -> AptRepository:
    key: SigningKey = ensure_signing_key(paths.gnupg, ecosystem)
    return AptRepository(paths.apt, key)


def prepare_archive(paths: BuildPaths, ecosystem: str) -> AptRepository:
    """Key and signed (possibly empty) index; cheap when both exist already."""
    paths.apt.mkdir(parents=True, exist_ok=True)
    archive = open_archive(paths, ecosystem)
    if not (paths.apt / "dists").exists():
        archive.reindex()
    return archive
