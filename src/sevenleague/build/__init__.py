"""Builds: from a pushed commit to a tested, packaged, signed and published release.

The pipeline runs every kind of test, compares performance with the last passed build,
builds the wheel and the .deb, renders the docs and publishes the package into the
eco-system's signed apt repository. The build service runs it, one build at a time,
and keeps every record in its own SQLite database.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "DebSpec": "._deb_files",
    "build_deb": "._deb_package",
    "deb_spec_for_wheels": "._deb_package",
    "wheel_depends": "._deb_package",
}
__all__ = ["DebSpec", "build_deb", "deb_spec_for_wheels", "wheel_depends"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._deb_files import DebSpec
    from ._deb_package import build_deb, deb_spec_for_wheels, wheel_depends
