"""Run an ASGI app under uvicorn the way the eco-system expects.

    python -m sevenleague.kit.serve hello.app:app --port 8001 --drain-seconds 1.5

SIGTERM starts a drain instead of an exit: `/readyz` turns 503 at once, the server keeps
answering for `--drain-seconds` (long enough for the load balancer's health checks to
notice and stop sending), then stops accepting, lets in-flight requests finish and
exits 0. A second SIGTERM, or SIGINT, skips the wait.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import uvicorn

from ._identity import INSTANCE_ENV, SERVICE_ENV
from ._lifecycle import LIFECYCLE, Lifecycle
from ._log import STDOUT, JsonLogHandler
from ._tls import BundleWatch

TLS_CHECK_TICKS = 10  # uvicorn ticks every 0.1 s: look at the certificate bundle every second
# A systemd unit's EnvironmentFile can name the bundle per instance without a new ExecStart.
TLS_BUNDLE_ENV = "LEAGUE_TLS_BUNDLE"


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with SIGTERM meaning "drain, then stop"."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float,
                 lifecycle: Lifecycle = LIFECYCLE, tls_watch: BundleWatch | None = None) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.lifecycle = lifecycle
        self.drain_deadline: float | None = None
        self.tls_watch = tls_watch

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.drain_deadline is None and self.drain_seconds > 0:
            self.lifecycle.begin_drain()
            self.drain_deadline = time.monotonic() + self.drain_seconds
            logging.getLogger("sevenleague.kit").info(
                "SIGTERM: draining for %.1fs before shutdown", self.drain_seconds)
            return
        self.lifecycle.begin_drain()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            self.should_exit = True
        if (self.tls_watch is not None and counter % TLS_CHECK_TICKS == 0 and self.config.ssl is not None
                and self.tls_watch.changed()):
            self.tls_watch.reload_into(self.config.ssl)
        return await super().on_tick(counter)


def configure_logging(service: str, instance: str, level: str = "INFO") -> None:
    """Every log record of the process as a JSON line on stdout, with service and instance."""
    handler = JsonLogHandler(STDOUT, {"service": service, "instance": instance})
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    atexit.register(STDOUT.flush)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sevenleague.kit.serve", description="Run an ASGI app with graceful drain.")
    parser.add_argument("app", help='ASGI application as "module:attribute"')
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--drain-seconds", type=float, default=1.5,
                        help="how long to keep serving after SIGTERM while /readyz says 503")
    parser.add_argument("--graceful-seconds", type=float, default=20.0,
                        help="how long in-flight requests may take to finish at shutdown")
    parser.add_argument("--service", default=os.environ.get(SERVICE_ENV, ""))
    parser.add_argument("--instance", default=os.environ.get(INSTANCE_ENV, ""))
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--tls-bundle", default=os.environ.get(TLS_BUNDLE_ENV) or None, metavar="PEM",
                        help="serve HTTPS only, with the private key and certificate chain in this one file "
                             "(one file, so a renewal can never pair a new certificate with an old key); "
                             f"default: ${TLS_BUNDLE_ENV}; unset or empty serves plain HTTP")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    service = args.service or args.app.partition(":")[0].partition(".")[0]
    instance = args.instance or f"{service}-{args.port}"
    # The app reads these when it is imported (kit.instrument names the instance).
    os.environ[SERVICE_ENV] = service
    os.environ[INSTANCE_ENV] = instance
    configure_logging(service, instance, args.log_level.upper())
    config = uvicorn.Config(
        args.app,
        host=args.host,
        port=args.port,
        access_log=False,  # the kit writes one richer line per request
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=args.graceful_seconds,
        ssl_certfile=args.tls_bundle or None,
    )
    watch = BundleWatch(Path(args.tls_bundle)) if args.tls_bundle else None
    server = DrainingServer(config, drain_seconds=args.drain_seconds, tls_watch=watch)
    try:
        server.run()
    finally:
        STDOUT.flush()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
