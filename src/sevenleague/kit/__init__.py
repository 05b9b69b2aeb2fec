"""The runtime library every service imports: platform services and user apps alike.

`instrument(app, service=...)` wraps any ASGI app (Starlette, FastAPI, a bare callable)
and gives it what running in the eco-system needs:

- `/healthz` (alive), `/readyz` (ready: false while starting and once draining began),
  `/metrics` (RED metrics under conventional names, build info);
- one JSON log line per request on stdout, with service, instance and request id;
- `X-Request-ID` taken from the caller (or made up) and returned, `X-Served-By` naming
  service and instance.

`python -m sevenleague.kit.serve module:app` runs it under uvicorn and turns SIGTERM
into a graceful drain.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from ._asgi import ASGIApp
from ._identity import INSTANCE_ENV, SERVICE_ENV, instance_name
from ._ledger import RequestLedger
from ._lifecycle import LIFECYCLE, Lifecycle
from ._log import STDOUT, JsonLines
from ._metrics import NAMES, RedMetrics, red_metrics
from ._observer import RequestObserver, route_template
from ._probes import Probes
from ._request_id import new_request_id, request_id_from


def instrument(
    app: ASGIApp,
    *,
    service: str,
    version: str = "0.0.0",
    instance: str | None = None,
    registry: CollectorRegistry = REGISTRY,
    log: JsonLines = STDOUT,
    lifecycle: Lifecycle = LIFECYCLE,
) -> RequestObserver:
    """`app` with probes, metrics, request ids and the request log around it."""
    metrics = red_metrics(registry)
    metrics.set_build_info(service, version)
    return RequestObserver(app, service=service, instance=instance or instance_name(), metrics=metrics,
                           log=log, lifecycle=lifecycle)


__all__ = [
    "INSTANCE_ENV",
    "LIFECYCLE",
    "NAMES",
    "SERVICE_ENV",
    "STDOUT",
    "JsonLines",
    "Lifecycle",
    "Probes",
    "RedMetrics",
    "RequestLedger",
    "RequestObserver",
    "instance_name",
    "instrument",
    "new_request_id",
    "red_metrics",
    "request_id_from",
    "route_template",
]
