"""The per-request hot path: request id, who served it, RED metrics and one JSON log line.

These four concerns share one `send` wrapper on purpose. Each is a small piece that can
be tested alone (`request_id_from`, `RedMetrics.observe`, `JsonLines.write`), but
wrapping `send` four times would cost a closure and an await per layer per message.
"""

from __future__ import annotations

import time
from typing import Any

from ._asgi import ASGIApp, Message, Receive, Scope, Send
from ._log import JsonLines
from ._metrics import RedMetrics
from ._request_id import request_id_from

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
    """Measures and logs every request the app answers."""

    def __init__(self, app: ASGIApp, *, service: str, instance: str, metrics: RedMetrics,
                 log: JsonLines) -> None:
        self.app = app
        self.service = service
        self.instance = instance
        self.metrics = metrics
        self.log = log
        self._served_by = (b"x-served-by", f"{service}/{instance}".encode())
        self._in_flight = metrics.in_flight_counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        request_id_text = request_id.decode()
        scope.setdefault("state", {})["request_id"] = request_id_text
        extra = ((b"x-request-id", request_id), self._served_by)
        status = 500
        sent_start = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        in_flight = self._in_flight
        in_flight.count += 1
        try:
            await self.app(scope, receive, send_with_headers)
        except BaseException:
            status = 500 if not sent_start else status
            raise
        finally:
            in_flight.count -= 1
            seconds = time.perf_counter() - start
            route = route_template(scope, status)
            method = scope["method"]
            self.metrics.observe(route, method, status, seconds)
            self._log(scope, route, method, status, seconds, request_id_text)

    def _log(self, scope: Scope, route: str, method: str, status: int, seconds: float,
             request_id: str) -> None:
        record: dict[str, Any] = {
            "ts": self.log.clock.timestamp(),
            "level": "error" if status >= 500 else "info",
            "service": self.service,
            "instance": self.instance,
            "msg": "request",
            "method": method,
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": int(seconds * 1_000_000) / 1000,  # 3 decimals, cheaper than round()
            "request_id": request_id,
        }
        self.log.write(record)
