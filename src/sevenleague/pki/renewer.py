"""Keep every certificate of a running eco-system fresh, and Prometheus' tokens: the renewer program.

`league up` issues and renews certificates when it runs, but a leaf lives a day, so
something must renew it while nobody runs anything. This small process, run by
supervisord beside the others, reads which certificates the eco-system needs from the
snapshot `league up` wrote, renews each at two thirds of its life, and sleeps until the
next one is due. Servers pick the new files up themselves (`kit.serve` watches its
bundle), so a renewal drops no request. It also keeps the bearer tokens Prometheus
scrapes with (`sevenleague.telemetry.scrape_tokens`), which live minutes, not hours.

    python -m sevenleague.pki.renewer --home .league
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LeagueError
from ._ca import ensure_ca
from ._edge import EDGE_NAME, ensure_edge_certificate
from ._haproxy import push_certificate_to_haproxy
from ._inventory import certificate_inventory
from ._leaf import ensure_leaf
from ._store import LeafPaths, PkiPaths

if TYPE_CHECKING:
    from ..telemetry.scrape_tokens import ScrapeTokens

LOG = logging.getLogger("sevenleague.pki.renewer")
MIN_SLEEP, MAX_SLEEP = 1.0, 300.0


class CertificateWanted(Protocol):
    """What the plan's certificate requests and the snapshot's entries both say."""

    @property
    def name(self) -> str: ...
    @property
    def dns_names(self) -> tuple[str, ...]: ...
    @property
    def ips(self) -> tuple[str, ...]: ...
    @property
    def edge(self) -> bool: ...
    @property
    def lifetime(self) -> float: ...


@dataclass(frozen=True)
class Wanted:
    """One certificate the eco-system needs, as the plan describes it."""

    name: str
    dns_names: tuple[str, ...]
    ips: tuple[str, ...]
    edge: bool = False
    lifetime: float = 86400.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Wanted:
        return cls(str(data["name"]), tuple(data["dns_names"]), tuple(data["ips"]), bool(data.get("edge")),
                   float(data.get("lifetime", 86400.0)))


def ensure_certificates(pki_dir: Path, ecosystem: str, wanted: Iterable[CertificateWanted],
                        now: datetime | None = None) -> list[str]:
    """The CA on first use, then every wanted certificate; names of those issued or renewed."""
    ca = ensure_ca(pki_dir, ecosystem, now=now)
    renewed = []
    for each in wanted:
        if each.edge:
            _, changed = ensure_edge_certificate(ca, each.dns_names, each.ips, now=now)
        else:
            _, changed = ensure_leaf(ca, each.name, each.dns_names, each.ips,
                                     lifetime=timedelta(seconds=each.lifetime), now=now)
        if changed:
            renewed.append(each.name)
    return renewed


def seconds_until_next_renewal(pki_dir: Path, now: datetime) -> float:
    """Sleep until the first certificate is due, but never so long that a new one waits."""
    due = [(info.renew_at - now).total_seconds() for info in certificate_inventory(pki_dir, now)
           if info.kind != "root"]  # the root is renewed by hand (docs/security.md)
    return min(MAX_SLEEP, max(MIN_SLEEP, min(due, default=MAX_SLEEP)))


def read_snapshot(home: Path) -> dict[str, Any]:
    snapshot: dict[str, Any] = json.loads((home / "ecosystem.json").read_text())
    return snapshot


def renew_once(home: Path, snapshot: dict[str, Any] | None = None) -> float:
    """One pass over the snapshot's certificates; returns how long to sleep."""
    snapshot = read_snapshot(home) if snapshot is None else snapshot
    wanted = [Wanted.from_json(item) for item in snapshot.get("certificates", [])]
    pki_dir = home / "pki"
    for name in ensure_certificates(pki_dir, str(snapshot["ecosystem"]), wanted):
        LOG.info("renewed the certificate of %s", name)
        if name == EDGE_NAME and snapshot.get("haproxy_admin_socket"):
            hand_edge_certificate_to_haproxy(pki_dir, Path(snapshot["haproxy_admin_socket"]))
    return seconds_until_next_renewal(pki_dir, datetime.now(UTC))


def hand_edge_certificate_to_haproxy(pki_dir: Path, admin_socket: Path) -> None:
    """HAProxy reads its certificate once; a renewed one goes in through the runtime API, no reload."""
    edge = LeafPaths(PkiPaths(pki_dir).edge, PkiPaths(pki_dir).ca_bundle)
    try:
        push_certificate_to_haproxy(admin_socket, edge.bundle, edge)
    except (OSError, LeagueError) as error:  # HAProxy not running: it reads the new file when it starts
        LOG.warning("HAProxy did not take the renewed edge certificate now (%s)", error)
    else:
        LOG.info("HAProxy serves the renewed edge certificate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sevenleague.pki.renewer", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the eco-system's state directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format='{"level":"%(levelname)s","service":"renewer","msg":"%(message)s"}')
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    home = args.home.absolute()
    tokens: ScrapeTokens | None = None
    while not stop.is_set():
        try:
            snapshot = read_snapshot(home)
            pause = renew_once(home, snapshot)
            tokens = scrape_tokens(home, snapshot, tokens)
            if tokens is not None:
                pause = min(pause, max(MIN_SLEEP, tokens.refresh()))
        except (OSError, ValueError, KeyError) as error:  # a snapshot being rewritten, say
            LOG.warning("renewal pass failed (%s); trying again shortly", type(error).__name__)
            pause = MIN_SLEEP * 5
        stop.wait(pause)
    return 0


def scrape_tokens(home: Path, snapshot: dict[str, Any], previous: ScrapeTokens | None) -> ScrapeTokens | None:
    """Prometheus' tokens as the snapshot describes them; the same object while that is unchanged."""
    entry = snapshot.get("scrape_tokens")
    if not entry:
        return None
    from ..telemetry.scrape_tokens import ScrapeTokens

    wanted = ScrapeTokens.from_snapshot(home, entry)
    if previous is not None and (previous.client, previous.directory, previous.audiences) == (
            wanted.client, wanted.directory, wanted.audiences):
        return previous
    return wanted


if __name__ == "__main__":
    sys.exit(main())
