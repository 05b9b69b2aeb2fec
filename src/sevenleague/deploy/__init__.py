"""Deployments: install exact versions on an eco-system's hosts and roll instances one by one.

Public names resolve lazily (see `.._lazy`): importing the package imports nothing else.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "HostFile": "._host_files",
    "apt_source_files": "._host_files",
    "instance_files": "._host_files",
}
__all__ = [
    "HostFile",
    "apt_source_files",
    "instance_files",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._host_files import HostFile, apt_source_files, instance_files
