"""Requests answered but not yet counted and logged: settled in batches.

Measured under a real server, counting and logging each request as it finished cost
about twice what the same code costs in a tight loop: between two requests the event
loop, the HTTP parser and the kernel's TCP stack push the kit's code and data out of
the CPU caches. So the request path only appends one tuple here, and the batch is
settled (metrics observed, JSON lines written) every `flush_interval`, when it grows
to `max_pending`, before every scrape of `/metrics`, and at exit. Prometheus therefore
never sees a stale count, and a log line is at most `flush_interval` late; its `ts` is
when the request ended. A request whose caller was verified carries the caller's
identity, and its line says who (`user`, `client`, `actor`; never the token). Every
line names the request's trace (`trace_id`), its own span (`span_id`) and, when the
request came from a traced caller, the caller's span (`parent_id`): see `_trace.py`.
"""

from __future__ import annotations

import asyncio
import atexit
import time
from typing import TYPE_CHECKING, Any

from ._log import MILLIS, JsonLines
from ._metrics import RedMetrics

if TYPE_CHECKING:
    from ._auth import Identity
    from ._trace import TraceContext

# wall time, route, method, path, status, seconds, request id, trace, verified caller
Record = tuple[float, str, str, str, int, float, bytes, "TraceContext", "Identity | None"]


class RequestLedger:
    def __init__(self, *, service: str, instance: str, metrics: RedMetrics, log: JsonLines,
                 flush_interval: float = 0.2, max_pending: int = 1000) -> None:
        self.service = service
        self.instance = instance
        self.metrics = metrics
        self.log = log
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: list[Record] = []
        self._timer: asyncio.TimerHandle | None = None
        atexit.register(self.settle)

    def record(self, route: str, method: str, path: str, status: int, seconds: float, request_id: bytes,
               trace: TraceContext, identity: Identity | None = None) -> None:
        pending = self._pending
        pending.append((time.time(), route, method, path, status, seconds, request_id, trace, identity))
        if len(pending) >= self.max_pending:
            self.settle()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.settle)
            except RuntimeError:  # no event loop here: settle now rather than never
                self.settle()

    def settle(self) -> None:
        """Observe every pending request in the metrics and write its log line."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        observe = self.metrics.observe
        date_prefix = self.log.clock.date_prefix
        service, instance = self.service, self.instance
        lines: list[dict[str, Any]] = []
        for wall, route, method, path, status, seconds, request_id, trace, identity in batch:
            observe(route, method, status, seconds)
            second = int(wall)
            line: dict[str, Any] = {
                "ts": date_prefix(second) + MILLIS[int((wall - second) * 1000)],
                "level": "error" if status >= 500 else "info",
                "service": service,
                "instance": instance,
                "msg": "request",
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": int(seconds * 1_000_000) / 1000,
                "request_id": request_id.decode(),
                "trace_id": trace.trace_id,
                "span_id": trace.span_id,
            }
            if trace.parent_id is not None:
                line["parent_id"] = trace.parent_id
            if identity is not None:
                line.update(identity.to_log())
            lines.append(line)
        self.log.write_batch(lines)
