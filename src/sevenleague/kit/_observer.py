"""The per-request hot path: probes first, then request id and trace, who served it, who calls, a record.

One ASGI layer and one `send` wrapper per request, and the request's numbers go to the
ledger as one tuple: the counting and logging happen later, in batches (see
`_ledger.py` for why). Each piece stays testable alone: `request_id_from`, `trace_from`,
`route_template`, `RedMetrics.observe`, `RequestLedger.settle`. Token checks (the `guard`,
see `_auth_gate.py`) exist only when access control is on; without them the path is
the one measured before they existed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._asgi import ASGIApp, Message, Receive, Scope, Send
from ._ledger import RequestLedger
from ._lifecycle import Lifecycle
from ._log import REQUEST_FIELDS, JsonLines
from ._metrics import RedMetrics
from ._probes import METRICS, Probes, is_probe
from ._request_id import request_id_from
from ._trace import trace_from

if TYPE_CHECKING:
    from ._auth import Identity
    from ._auth_gate import Gate

UNMATCHED = "<unmatched>"
OTHER = "<other>"


def route_template(scope: Scope, status: int) -> str:
    """The route as written in the app ("/users/{id}"), never the raw path.

    Raw paths would give one time series per user id. Starlette and FastAPI leave the
    matched route in the scope; an app on another framework can set `scope["route_template"]`.
    """
    route = scope.get("route")
    if route is not None:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    template = scope.get("route_template")
    if isinstance(template, str):
        return template
    return UNMATCHED if status == 404 else OTHER


class RequestObserver:
    """Answers probes, and measures and logs every other request the app answers."""

    def __init__(self, app: ASGIApp, *, service: str, instance: str, metrics: RedMetrics,
                 log: JsonLines, lifecycle: Lifecycle, flush_interval: float = 0.2,
                 guard: Gate | None = None) -> None:
        self.app = app
        self.guard = guard
        self.ledger = RequestLedger(service=service, instance=instance, metrics=metrics, log=log,
                                    flush_interval=flush_interval)
        self.probes = Probes(app, lifecycle=lifecycle, metrics=metrics, before_scrape=self.ledger.settle)
        self._served_by = (b"x-served-by", f"{service}/{instance}".encode())
        self._in_flight = metrics.in_flight_counter()

    def settle(self) -> None:
        """Count and log every request answered so far (normally done on a timer)."""
        self.ledger.settle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            guard = self.guard
            if kind != "websocket" or guard is None or await guard.admit_websocket(scope, send):
                await self.probes(scope, receive, send)  # lifespan, websockets
            return
        if is_probe(scope):
            if scope["path"] == METRICS and self.guard is not None and not await self.guard.admit_scrape(
                    scope, send):
                return
            await self.probes.answer(scope, send)
            return
        method = scope["method"]
        start = time.perf_counter()
        headers = scope["headers"]
        request_id = request_id_from(headers)
        trace = trace_from(headers)
        state = scope.setdefault("state", {})
        rid = state["request_id"] = request_id.decode()
        # the app sees its trace as request.state.trace_id/span_id; the service client reads `trace`
        trace_id = state["trace_id"] = trace.trace_id
        span_id = state["span_id"] = trace.span_id
        state["trace"] = trace
        extra = ((b"x-request-id", request_id), self._served_by)
        status = 500  # what the server answers when the app fails before it responds

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        in_flight = self._in_flight
        in_flight.count += 1
        guard = self.guard
        identity: Identity | None = None
        context = {"request_id": rid, "trace_id": trace_id, "span_id": span_id}
        reset = REQUEST_FIELDS.set(context)
        try:
            if guard is None:
                await self.app(scope, receive, send_with_headers)
            else:
                admitted, identity = await guard.admit(scope, send_with_headers)
                if identity is not None:
                    context.update(identity.to_log())
                if admitted:
                    await self.app(scope, receive, send_with_headers)
        finally:
            REQUEST_FIELDS.reset(reset)
            in_flight.count -= 1
            self.ledger.record(route_template(scope, status), method, scope["path"], status,
                               time.perf_counter() - start, request_id, trace, identity)
