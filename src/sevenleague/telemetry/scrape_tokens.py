"""Prometheus' own tokens: one per service it scrapes, kept fresh in files it reads every scrape.

Every kit process answers `/metrics` only to a token for itself with scope
`SERVICE.metrics`, so Prometheus scrapes like any other client: with a credential of
its own, the `prometheus` service account that `league up` has the identity service
keep. Prometheus reads a bearer token from a file (`authorization.credentials_file`)
on every scrape but cannot fetch one (its OAuth 2 client cannot be told to trust the
eco-system's CA before version 2.43), so the renewer, which already wakes up to renew
certificates, fetches them: client credentials, one audience each, written 0600 and
replaced atomically at half their life. A token that cannot be fetched is tried again a
few seconds later; the old one serves until it expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LeagueError
from ..hosts.local import write_bytes

LOG = logging.getLogger("sevenleague.telemetry.scrape_tokens")
TOKEN_MODE = 0o600
RETRY_SECONDS = 5.0
METRICS_ACTION = "metrics"

# (client_id, secret, audience, scope) -> the token endpoint's answer
Fetch = Callable[[str, str, str, str], Mapping[str, Any]]


def token_file(directory: Path, audience: str) -> Path:
    return directory / f"{audience}.token"


def ensure_placeholders(directory: Path, audiences: Iterable[str]) -> list[Path]:
    """Empty token files where none exist yet, so Prometheus' config names files that are there.

    promtool refuses a config naming a missing credentials file; an empty one only makes
    the first scrapes answer 401 until the renewer has written a real token.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = []
    for audience in audiences:
        path = token_file(directory, audience)
        if not path.exists():
            write_bytes(path, b"", TOKEN_MODE)
            made.append(path)
    return made


@dataclass
class ScrapeTokens:
    """The tokens of one scraping client, and when each is due for a new one (monotonic seconds)."""

    client: str
    directory: Path
    audiences: tuple[str, ...]
    secret_file: Path
    fetch: Fetch
    due: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, home: Path, entry: Mapping[str, Any]) -> ScrapeTokens:
        from ..identity._settings import IdentityPaths
        from ..identity.client import IdentityClient

        def fetch(client: str, secret: str, audience: str, scope: str) -> Mapping[str, Any]:
            return IdentityClient.from_home(home).client_credentials(client, secret, audience, scope=scope)

        client = str(entry["client"])
        return cls(client, Path(entry["directory"]), tuple(entry["audiences"]),
                   IdentityPaths.under(home).client_secret(client), fetch)

    def refresh(self, now: float | None = None) -> float:
        """Fetch every token that is due; returns the seconds until the next one is."""
        now = time.monotonic() if now is None else now
        secret: str | None = None
        for audience in self.audiences:
            if self.due.get(audience, 0.0) > now:
                continue
            try:
                if secret is None:
                    secret = self.secret_file.read_text().strip()
                answer = self.fetch(self.client, secret, audience, f"{audience}.{METRICS_ACTION}")
                write_bytes(token_file(self.directory, audience), str(answer["access_token"]).encode(),
                            TOKEN_MODE)
                self.due[audience] = now + max(RETRY_SECONDS, float(answer.get("expires_in", 600)) / 2)
            except (OSError, LeagueError, KeyError, ValueError) as error:
                LOG.warning("no new scrape token for %s yet (%s); trying again in %.0fs", audience,
                            type(error).__name__, RETRY_SECONDS)
                self.due[audience] = now + RETRY_SECONDS
        return max(0.0, min(self.due.values(), default=now + 300.0) - now)
