"""The edge: HAProxy config rendered from the catalog, graceful reloads, runtime API."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "HaproxyPaths": "._paths",
    "ProxyError": "._runtime",
    "ServerState": "._runtime",
    "backend_name": "._haproxy_cfg",
    "check_argv": "._haproxy_cfg",
    "haproxy_argv": "._haproxy_cfg",
    "parse_show_stat": "._runtime",
    "render_haproxy_cfg": "._haproxy_cfg",
    "runtime_command": "._runtime",
    "server_state": "._runtime",
    "server_states": "._runtime",
    "set_server_state": "._runtime",
    "worker_pid": "._runtime",
}
__all__ = [
    "HaproxyPaths",
    "ProxyError",
    "ServerState",
    "backend_name",
    "check_argv",
    "haproxy_argv",
    "parse_show_stat",
    "render_haproxy_cfg",
    "runtime_command",
    "server_state",
    "server_states",
    "set_server_state",
    "worker_pid",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._haproxy_cfg import (
        backend_name,
        check_argv,
        haproxy_argv,
        render_haproxy_cfg,
    )
    from ._paths import HaproxyPaths
    from ._runtime import (
        ProxyError,
        ServerState,
        parse_show_stat,
        runtime_command,
        server_state,
        server_states,
        set_server_state,
        worker_pid,
    )
