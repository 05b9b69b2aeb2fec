"""Whether this process should receive traffic.

Liveness and readiness are different questions: a process that is starting up or
draining is alive (do not restart it) but not ready (do not send it requests). The
load balancer asks `/readyz`; the supervisor only cares that the process runs.
"""

from __future__ import annotations


class Lifecycle:
    """Readiness of one process: false while the app starts up and once draining began."""

    def __init__(self) -> None:
        self.starting = False
        self.draining = False

    @property
    def ready(self) -> bool:
        return not (self.starting or self.draining)

    def startup_began(self) -> None:
        self.starting = True

    def startup_finished(self) -> None:
        self.starting = False

    def begin_drain(self) -> None:
        """From now on `/readyz` says no, so the load balancer stops sending new requests."""
        self.draining = True


# One per process, like the default Prometheus registry: a process serves one app, and
# the server runner (which receives SIGTERM) must reach the same object as the app.
LIFECYCLE = Lifecycle()
