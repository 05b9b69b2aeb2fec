"""The runtime library every service imports: platform services and user apps alike.

`instrument(app, service=...)` wraps any ASGI app (Starlette, FastAPI, a bare callable)
and gives it what running in the eco-system needs:

- `/healthz` (alive), `/readyz` (ready: false while starting and once draining began),
  `/metrics` (RED metrics under conventional names, build info);
- one JSON log line per request on stdout, with service, instance and request id;
- `X-Request-ID` taken from the caller (or made up) and returned, `X-Served-By` naming
  service and instance;
- when access control is on (`auth=AuthSettings(...)` or `LEAGUE_OIDC_ISSUER`), a valid
  bearer token on every route not declared `PUBLIC` in `access`, with the scopes the route
  declares; the caller goes to `request.state.identity` and into the request's log line.

`ServiceClient` calls other services while a request is handled, on the caller's
behalf (their token exchanged for one addressed to the callee) or as the service itself.

`python -m sevenleague.kit.serve module:app` runs it under uvicorn and turns SIGTERM
into a graceful drain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry

from .._lazy import lazy_exports
from ._asgi import ASGIApp
from ._auth import (
    ISSUER_ENV,
    JWKS_URI_ENV,
    PUBLIC,
    Access,
    AccessPolicy,
    AuthConfigError,
    AuthSettings,
    Identity,
    InvalidToken,
    app_routes,
    route_templates,
)
from ._identity import INSTANCE_ENV, SERVICE_ENV, instance_name
from ._ledger import RequestLedger
from ._lifecycle import LIFECYCLE, Lifecycle
from ._log import STDOUT, JsonLines
from ._metrics import NAMES, RedMetrics, red_metrics
from ._observer import RequestObserver, route_template
from ._probes import Probes
from ._request_id import new_request_id, request_id_from
from ._trace import TraceContext, Traceparent, new_traceparent, parse_traceparent, trace_from


def instrument(
    app: ASGIApp,
    *,
    service: str,
    version: str = "0.0.0",
    instance: str | None = None,
    registry: CollectorRegistry = REGISTRY,
    log: JsonLines = STDOUT,
    lifecycle: Lifecycle = LIFECYCLE,
    access: Mapping[str, Access] | None = None,
    auth: AuthSettings | None = None,
) -> RequestObserver:
    """`app` with probes, metrics, request ids, the request log and (when on) token checks around it.

    `access` maps route templates to `PUBLIC`, a scope, or a tuple of scopes all needed;
    it is checked against the app's routes even while token checks are off, so a
    mistake shows at startup, not on the day checks are turned on.
    """
    metrics = red_metrics(registry)
    metrics.set_build_info(service, version)
    routes = app_routes(app)
    policy = AccessPolicy(access, known_routes=None if routes is None else route_templates(routes))
    settings = auth if auth is not None else AuthSettings.from_environment()
    guard = None
    if settings is not None:
        from ._auth_gate import Gate  # the crypto loads only in services that check tokens

        guard = Gate.from_settings(settings, service=service, policy=policy, routes=routes)
    return RequestObserver(app, service=service, instance=instance or instance_name(), metrics=metrics,
                           log=log, lifecycle=lifecycle, guard=guard)


if TYPE_CHECKING:
    from ._auth_jwks import JwksCache, JwksUnavailable
    from ._auth_tokens import TokenVerifier
    from .client import (
        CLIENT_ID_ENV,
        CLIENT_SECRET_FILE_ENV,
        SERVICE_URLS_ENV,
        CallFailed,
        CallRefused,
        ClientConfigError,
        ServiceClient,
        ServiceResponse,
        UnknownService,
    )

# The token verifier and key cache load joserfc and cryptography, the service client an
# HTTP stack: only on first use, so a service that needs neither does not pay for them.
__getattr__, _ = lazy_exports(__name__, {
    "JwksCache": "._auth_jwks",
    "JwksUnavailable": "._auth_jwks",
    "TokenVerifier": "._auth_tokens",
    **{name: ".client" for name in (
        "CLIENT_ID_ENV", "CLIENT_SECRET_FILE_ENV", "SERVICE_URLS_ENV", "CallFailed", "CallRefused",
        "ClientConfigError", "ServiceClient", "ServiceResponse", "UnknownService")},
})


__all__ = [
    "CLIENT_ID_ENV",
    "CLIENT_SECRET_FILE_ENV",
    "INSTANCE_ENV",
    "ISSUER_ENV",
    "JWKS_URI_ENV",
    "LIFECYCLE",
    "NAMES",
    "PUBLIC",
    "SERVICE_ENV",
    "SERVICE_URLS_ENV",
    "STDOUT",
    "Access",
    "AccessPolicy",
    "AuthConfigError",
    "AuthSettings",
    "CallFailed",
    "CallRefused",
    "ClientConfigError",
    "Identity",
    "InvalidToken",
    "JsonLines",
    "JwksCache",
    "JwksUnavailable",
    "Lifecycle",
    "Probes",
    "RedMetrics",
    "RequestLedger",
    "RequestObserver",
    "ServiceClient",
    "ServiceResponse",
    "TokenVerifier",
    "TraceContext",
    "Traceparent",
    "UnknownService",
    "instance_name",
    "instrument",
    "new_request_id",
    "new_traceparent",
    "parse_traceparent",
    "red_metrics",
    "request_id_from",
    "route_template",
    "trace_from",
]
