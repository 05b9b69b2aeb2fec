"""`/healthz`, `/readyz` and `/metrics`: what supervisors, load balancers and Prometheus ask.

These answers come before the app and bypass the request log and metrics: a probe every
half second per instance would otherwise drown the lines and numbers that matter.
`Probes` is an ASGI wrapper on its own; the kit's `RequestObserver` uses its `answer`
and `lifespan` directly, so a request crosses one layer, not two.
"""

from __future__ import annotations

from collections.abc import Callable

from ._asgi import ASGIApp, Message, Receive, Scope, Send, header, respond
from ._lifecycle import Lifecycle
from ._metrics import RedMetrics

HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"
PROBE_PATHS = frozenset({HEALTHZ, READYZ, METRICS})


def is_probe(scope: Scope) -> bool:
    return scope["path"] in PROBE_PATHS and scope["method"] in ("GET", "HEAD")


class Probes:
    """Answers the three probe paths; everything else goes to `app`.

    It also watches the ASGI lifespan: while the app's startup runs, the process is
    alive but not ready.
    """

    def __init__(self, app: ASGIApp, *, lifecycle: Lifecycle, metrics: RedMetrics,
                 before_scrape: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.before_scrape = before_scrape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and is_probe(scope):
            await self.answer(scope, send)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def answer(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path == HEALTHZ:
            await respond(send, 200, b"ok\n")
        elif path == READYZ:
            if self.lifecycle.ready:
                await respond(send, 200, b"ready\n")
            else:
                reason = b"draining\n" if self.lifecycle.draining else b"starting\n"
                await respond(send, 503, reason)
        else:
            self.before_scrape()
            accept = (header(scope, b"accept") or b"").decode("latin-1")
            body, content_type = self.metrics.exposition(accept)
            await respond(send, 200, body, content_type.encode())

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        lifecycle = self.lifecycle

        async def watch(message: Message) -> None:
            if message["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
                lifecycle.startup_finished()
            await send(message)

        lifecycle.startup_began()
        try:
            await self.app(scope, receive, watch)
        finally:
            # An app without lifespan support raises here; it is ready as soon as served.
            lifecycle.startup_finished()
