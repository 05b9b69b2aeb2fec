"""The eco-system on this machine: plan it from the catalog, apply it, probe it, stop it."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "ApplyReport": "._apply",
    "CannotStart": "._wait",
    "ConfigRejected": "._apply",
    "DEFAULT_HOME": "._layout",
    "HOME_ENV": "._layout",
    "InstanceHealth": "._probe",
    "Listen": "._plan",
    "NotHealthy": "._wait",
    "NotRunning": "._probe",
    "OFFSET_ENV": "._layout",
    "Plan": "._plan",
    "PortsInUse": "._apply",
    "ProcessHealth": "._probe",
    "RenderedFile": "._plan",
    "StateLayout": "._layout",
    "StatusReport": "._probe",
    "Tools": "._layout",
    "apply_plan": "._apply",
    "check_ports": "._apply",
    "drain_seconds": "._plan",
    "find_tools": "._layout",
    "port_offset": "._layout",
    "probe_http": "._probe",
    "probe_status": "._probe",
    "read_snapshot": "._probe",
    "reload_haproxy": "._apply",
    "render_plan": "._plan",
    "render_snapshot": "._plan",
    "state_home": "._layout",
    "vet": "._apply",
    "wait_until_healthy": "._wait",
    "last_log_line": "._wait",
}
__all__ = [
    "DEFAULT_HOME",
    "HOME_ENV",
    "OFFSET_ENV",
    "ApplyReport",
    "CannotStart",
    "ConfigRejected",
    "InstanceHealth",
    "Listen",
    "NotHealthy",
    "NotRunning",
    "Plan",
    "PortsInUse",
    "ProcessHealth",
    "RenderedFile",
    "StateLayout",
    "StatusReport",
    "Tools",
    "apply_plan",
    "check_ports",
    "drain_seconds",
    "find_tools",
    "last_log_line",
    "port_offset",
    "probe_http",
    "probe_status",
    "read_snapshot",
    "reload_haproxy",
    "render_plan",
    "render_snapshot",
    "state_home",
    "vet",
    "wait_until_healthy",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._apply import (
        ApplyReport,
        ConfigRejected,
        PortsInUse,
        apply_plan,
        check_ports,
        reload_haproxy,
        vet,
    )
    from ._layout import (
        DEFAULT_HOME,
        HOME_ENV,
        OFFSET_ENV,
        StateLayout,
        Tools,
        find_tools,
        port_offset,
        state_home,
    )
    from ._plan import (
        Listen,
        Plan,
        RenderedFile,
        drain_seconds,
        render_plan,
        render_snapshot,
    )
    from ._probe import (
        InstanceHealth,
        NotRunning,
        ProcessHealth,
        StatusReport,
        probe_http,
        probe_status,
        read_snapshot,
    )
    from ._wait import CannotStart, NotHealthy, last_log_line, wait_until_healthy
