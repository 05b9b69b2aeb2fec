"""The issuer's public keys, cached by key id, fetched again only when they must be.

A token names the key that signed it (`kid`). Keys are fetched from the issuer's JWKS
once and kept; a token naming a key the cache has not seen triggers a refresh, because
that is how a key rotation shows up. Refreshes are rate-limited (`min_refresh_seconds`):
a kid is chosen by whoever made the token, so without a limit a flood of made-up kids
would turn every forged request into a request to the issuer. When the keys are older
than `max_age_seconds`, the next lookup refreshes them too, so a key the issuer withdrew
stops verifying within that time.

The fetch is a plain blocking HTTP GET run in a worker thread: the event loop keeps
serving while it waits, and concurrent lookups share one fetch instead of starting
their own. A failed fetch keeps the keys already known.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, import_key

from ._auth import Fetch
from ._tls import client_context

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 256 * 1024
# Members that only a private or symmetric key has: a JWKS that carries them is a
# mistake on the issuer's side, and a verifier must not hold them.
_SECRET_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

log = logging.getLogger("sevenleague.kit.auth")


class JwksUnavailable(Exception):
    """The issuer's discovery document or key set could not be fetched or understood."""


def fetch_json(url: str, timeout: float) -> dict[str, Any]:
    """GET a small JSON object over HTTP(S), refusing anything larger than a JWKS can be."""
    if not url.startswith(("https://", "http://")):
        raise JwksUnavailable(f"{url}: only http and https URLs are fetched")
    headers = {"Accept": "application/json", "User-Agent": "sevenleague-kit"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout,  # noqa: S310
                                    context=client_context()) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise JwksUnavailable(f"{url}: {error}") from error
    if len(body) > MAX_DOCUMENT_BYTES:
        raise JwksUnavailable(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise JwksUnavailable(f"{url}: not JSON") from error
    if not isinstance(document, dict):
        raise JwksUnavailable(f"{url}: not a JSON object")
    return document


def discover_jwks_uri(issuer: str, fetch: Fetch, timeout: float) -> str:
    """The `jwks_uri` of an OpenID provider, from its discovery document.

    The document must name the same issuer (OpenID Connect Discovery 4.3): otherwise a
    wrong configuration would have us trust another issuer's keys.
    """
    document = fetch(issuer.rstrip("/") + DISCOVERY_PATH, timeout)
    if document.get("issuer") != issuer:
        raise JwksUnavailable(f"discovery document of {issuer} names issuer {document.get('issuer')!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise JwksUnavailable(f"discovery document of {issuer} has no jwks_uri")
    return jwks_uri


def public_signing_keys(document: Mapping[str, Any]) -> list[Key]:
    """The usable public signing keys of a JWKS; keys without a kid, or not for signing, are left out."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise JwksUnavailable("key set has no 'keys' list")
    keys: list[Key] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") == "oct" or entry.get("use", "sig") != "sig":
            continue
        try:
            keys.append(import_key({k: v for k, v in entry.items() if k not in _SECRET_MEMBERS}))
        except (JoseError, ValueError, TypeError) as error:
            log.warning("JWKS key %r skipped: %s", entry.get("kid"), error)
    return keys


class JwksCache:
    """The keys tokens are checked against, by kid; see the module docstring for when it refreshes."""

    def __init__(self, jwks_uri: str | None = None, *, issuer: str | None = None,
                 keys: Mapping[str, Any] | None = None, fetch: Fetch = fetch_json,
                 min_refresh_seconds: float = 30.0, max_age_seconds: float = 3600.0,
                 timeout: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.jwks_uri = jwks_uri
        self.issuer = issuer
        self.fetch = fetch
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0
        self.generation = 0
        self._key_set = KeySet([])
        self._kids: frozenset[str] = frozenset()
        self._loaded_at = -math.inf
        self._last_attempt = -math.inf
        self._refreshing: asyncio.Future[None] | None = None
        if keys is not None:
            self.load(keys)

    @property
    def kids(self) -> frozenset[str]:
        return self._kids

    @property
    def can_fetch(self) -> bool:
        return self.jwks_uri is not None or self.issuer is not None

    @property
    def stale(self) -> bool:
        """Older than `max_age_seconds`: the next lookup fetches again (at most once per interval)."""
        return self.clock() - self._loaded_at > self.max_age_seconds

    def load(self, document: Mapping[str, Any]) -> None:
        """Replace the keys with those of a JWKS document (the whole set: withdrawn keys go)."""
        keys = public_signing_keys(document)
        self._key_set = KeySet(keys)
        self._kids = frozenset(key.kid for key in keys if key.kid is not None)
        self._loaded_at = self.clock()
        self.generation += 1

    async def key_set_for(self, kid: str) -> KeySet | None:
        """The key set when it holds `kid` (after at most one refresh), else None."""
        if kid not in self._kids or self.stale:
            await self.refresh()
        return self._key_set if kid in self._kids else None

    async def refresh(self) -> None:
        """Fetch the keys again, unless one was fetched too recently; a fetch in progress is shared."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        now = self.clock()
        if not self.can_fetch or now - self._last_attempt < self.min_refresh_seconds:
            return
        self._last_attempt = now
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._refreshing = done
        try:
            self.fetches += 1
            document = await asyncio.to_thread(self._fetch_document)
            self.load(document)
        except Exception as error:  # a broken issuer must not break requests with known keys
            log.warning("JWKS refresh failed, keeping %d known keys: %s", len(self._kids), error)
        finally:
            self._refreshing = None
            done.set_result(None)

    def _fetch_document(self) -> Mapping[str, Any]:
        if self.jwks_uri is None:
            if self.issuer is None:
                raise JwksUnavailable("neither a jwks_uri nor an issuer to discover it from")
            self.jwks_uri = discover_jwks_uri(self.issuer, self.fetch, self.timeout)
        return self.fetch(self.jwks_uri, self.timeout)
