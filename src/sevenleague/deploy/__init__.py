"""Deployments: install exact versions on an eco-system's hosts and roll instances one by one.

The deploy service (`sevenleague.deploy.service:app`) runs them; `DeployClient` is its
API from Python. Public names resolve lazily (see `.._lazy`): importing the package
imports nothing else.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "DeployClient": ".client",
    "DeployRefused": ".client",
    "DeployServiceUnavailable": ".client",
    "HostFile": "._host_files",
    "apt_source_files": "._host_files",
    "check_gates": "._gates",
    "instance_files": "._host_files",
}
__all__ = [
    "DeployClient",
    "DeployRefused",
    "DeployServiceUnavailable",
    "HostFile",
    "apt_source_files",
    "check_gates",
    "instance_files",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._gates import check_gates
    from ._host_files import HostFile, apt_source_files, instance_files
    from .client import DeployClient, DeployRefused, DeployServiceUnavailable
