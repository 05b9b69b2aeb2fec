"""Builds: from a pushed commit to a tested, packaged, signed and published release.

The pipeline runs every kind of test, compares performance with the last passed build,
builds the wheel and the .deb, renders the docs and publishes the package into the
eco-system's signed apt repository. The build service runs it, one build at a time,
and keeps every record in its own SQLite database.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "AptRepository": "._apt_repo",
    "Build": "._store",
    "BuildClient": ".client",
    "BuildPaths": "._paths",
    "BuildStore": "._store",
    "DebSpec": "._deb_files",
    "PublishedPackage": "._apt_repo",
    "SigningKey": "._gpg",
    "build_deb": "._deb_package",
    "deb_spec_for_wheels": "._deb_package",
    "ensure_signing_key": "._gpg",
    "prepare_archive": "._archive",
    "render_build_settings": "._settings",
    "wheel_depends": "._deb_package",
}
__all__ = [
    "AptRepository",
    "Build",
    "BuildClient",
    "BuildPaths",
    "BuildStore",
    "DebSpec",
    "PublishedPackage",
    "SigningKey",
    "build_deb",
    "deb_spec_for_wheels",
    "ensure_signing_key",
    "prepare_archive",
    "render_build_settings",
    "wheel_depends",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._apt_repo import AptRepository, PublishedPackage
    from ._archive import prepare_archive
    from ._deb_files import DebSpec
    from ._deb_package import build_deb, deb_spec_for_wheels, wheel_depends
    from ._gpg import SigningKey, ensure_signing_key
    from ._paths import BuildPaths
    from ._settings import render_build_settings
    from ._store import Build, BuildStore
    from .client import BuildClient
