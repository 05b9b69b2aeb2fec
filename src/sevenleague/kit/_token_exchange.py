"""Tokens for outgoing calls: the caller's exchanged (RFC 8693), or this service's own, kept while good.

A service calling another on a user's behalf shows the issuer the user's token (which
must be addressed to this service) and its own client credentials, and gets a token
addressed to the callee: the user stays the subject, this service becomes the actor,
and the scope can only shrink. Without a caller it uses client credentials (RFC 6749
4.4) and calls as itself.

Each token costs a round trip to the issuer (a TLS handshake, a check of the client
secret, a signature), likely more than the call it is for. A token is therefore kept,
per (caller's token, callee, scopes asked), and reused until shortly before it expires
(`RENEW_MARGIN_SECONDS`, at most half its life, so it never reaches the callee expired);
the table is bounded (`CACHED_TOKENS`, oldest out first), and keyed by a SHA-256 of the
caller's token so the raw token does not outlive its request here. Concurrent calls
needing the same token share one request to the issuer. A refusal is not kept: the next
call asks again.

The client secret is read from its file at each request to the issuer, so a rotated
secret is picked up without a restart, and the file must be private to this user
(mode 0600 or stricter), as ssh insists for a private key. The token endpoint comes from
the issuer's discovery document, which must name the same issuer.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

import orjson

from ._auth import Fetch
from ._call_errors import CallFailed, CallRefused, ClientConfigError, shown
from ._caller_token import CallerToken
from ._http import Unreachable, send
from ._service_urls import ServiceURL, parse_base_url

CLIENT_ID_ENV = "LEAGUE_CLIENT_ID"
CLIENT_SECRET_FILE_ENV = "LEAGUE_CLIENT_SECRET_FILE"  # noqa: S105 - a variable name
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
CACHED_TOKENS = 1024
RENEW_MARGIN_SECONDS = 30.0
MAX_TOKEN_ANSWER_BYTES = 64 * 1024
# Refusals that mean "not allowed" (RFC 6749 5.2, RFC 8693 2.2.2), unlike "broken" or "misconfigured".
REFUSALS = frozenset({"invalid_grant", "invalid_scope", "invalid_target", "unauthorized_client",
                      "access_denied"})
CREDENTIALS_HINT = "check LEAGUE_CLIENT_ID and the secret in LEAGUE_CLIENT_SECRET_FILE"
# RFC 6749 3.3 scope-token characters.
_SCOPE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
# (SHA-256 of the caller's token, or b"" for this service itself; audience; scopes asked for)
CacheKey = tuple[bytes, str, tuple[str, ...]]
# url, form, headers, timeout -> (status, JSON object answered)
PostForm = Callable[[ServiceURL, Mapping[str, str], Mapping[str, str], float], tuple[int, Mapping[str, Any]]]


@dataclass(frozen=True)
class Grant:
    """A token the issuer gave, and for how many seconds (None when it did not say)."""

    access_token: str = field(repr=False)
    expires_in: float | None


# --- pure helpers -------------------------------------------------------------------------


def scopes_asked(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """The scopes to ask for, sorted and each once (so the cache key does not depend on their order)."""
    names = scopes.split() if isinstance(scopes, str) else list(scopes)
    for scope in names:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise ValueError(f"{shown(scope, 40)!r} is not a scope")
    return tuple(sorted(set(names)))


def caller_key(token: CallerToken | None) -> bytes:
    """The cache key part for whose authority a token carries: the caller's token hashed, or this service."""
    return b"" if token is None else hashlib.sha256(token.reveal().encode()).digest()


def usable_seconds(expires_in: float | None, margin: float = RENEW_MARGIN_SECONDS) -> float:
    """How long a token is worth reusing: its life less a margin, the margin at most half the life."""
    if expires_in is None or expires_in <= 0:
        return 0.0
    return expires_in - min(margin, expires_in / 2)


def grant_from(service: str, status: int, answer: Mapping[str, Any]) -> Grant:
    """The token in the issuer's answer, or the exception that says, safely, why there is none."""
    if status == 200:
        token, kind = answer.get("access_token"), answer.get("token_type")
        if not isinstance(token, str) or not token or not isinstance(kind, str) or kind.lower() != "bearer":
            raise CallFailed(service, "the issuer's answer holds no bearer access token")
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            return Grant(token, None)  # not kept: nobody said how long it is good for
        return Grant(token, float(expires_in))
    error = answer.get("error")
    description = answer.get("error_description")
    error = error if isinstance(error, str) else ""
    description = description if isinstance(description, str) else ""
    if error in REFUSALS:
        raise CallRefused(service, error, description)
    if error == "invalid_client":
        raise CallFailed(service, "the issuer did not accept this service's client credentials",
                         hint=CREDENTIALS_HINT)
    raise CallFailed(service, f"the issuer answered {status}" + (f" ({shown(error, 64)})" if error else ""))


def basic_authorization(client_id: str, secret: str) -> str:
    """HTTP Basic for a client (RFC 6749 2.3.1: each part form-encoded first)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class TokenCache:
    """Tokens by `CacheKey` until shortly before they expire; at most `capacity`, the oldest out first."""

    def __init__(self, capacity: int = CACHED_TOKENS, margin: float = RENEW_MARGIN_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.margin = margin
        self.clock = clock
        self._entries: dict[CacheKey, tuple[str, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        token, until = entry
        if self.clock() >= until:
            del self._entries[key]
            return None
        return token

    def put(self, key: CacheKey, grant: Grant) -> None:
        seconds = usable_seconds(grant.expires_in, self.margin)
        if seconds <= 0 or self.capacity <= 0:
            return
        entries = self._entries
        entries.pop(key, None)
        while len(entries) >= self.capacity:
            del entries[next(iter(entries))]  # the oldest: tokens live alike, so it expires first
        entries[key] = (grant.access_token, self.clock() + seconds)


# --- this service's credentials ----------------------------------------------------------------


@dataclass(frozen=True)
class ClientCredentials:
    """This service's account at the issuer: its client id, and the file holding its secret."""

    client_id: str
    secret_file: Path

    def secret(self) -> str:
        """The secret, read now; refused when the file is missing, empty or readable by other users."""
        path = self.secret_file
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise ClientConfigError(f"{path}: the client secret cannot be read ({reason})",
                                    hint=f"{CLIENT_SECRET_FILE_ENV} names it") from error
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ClientConfigError(f"{path}: the client secret is open to other users "
                                    f"(mode {stat.S_IMODE(mode):o})", hint=f"chmod 600 {path}")
        if not text:
            raise ClientConfigError(f"{path}: the client secret file is empty")
        return text

    @classmethod
    def from_environment(cls, service: str,
                         environ: Mapping[str, str] | None = None) -> ClientCredentials | None:
        """From `LEAGUE_CLIENT_SECRET_FILE` and `LEAGUE_CLIENT_ID` (default: the service); None when unset."""
        env = os.environ if environ is None else environ
        secret_file = env.get(CLIENT_SECRET_FILE_ENV, "").strip()
        if not secret_file:
            return None
        return cls(env.get(CLIENT_ID_ENV, "").strip() or service, Path(secret_file))


# --- the issuer's token endpoint -------------------------------------------------------------


def post_form(url: ServiceURL, form: Mapping[str, str], headers: Mapping[str, str],
              timeout: float) -> tuple[int, Mapping[str, Any]]:
    """POST a form to a token endpoint; the status and the JSON object answered (empty when it is not one)."""
    answer = send(url, "POST", url.prefix or "/", body=urlencode(form).encode(), timeout=timeout,
                  limit=MAX_TOKEN_ANSWER_BYTES,
                  headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                           "User-Agent": "sevenleague-kit", **headers})
    try:
        document = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        document = {}
    return answer.status, document if isinstance(document, dict) else {}


def discover_token_endpoint(issuer: str, fetch: Fetch, timeout: float) -> str:
    """The `token_endpoint` of an OpenID provider, from a discovery document naming the same issuer."""
    from ._auth_jwks import DISCOVERY_PATH

    document = fetch(issuer.rstrip("/") + DISCOVERY_PATH, timeout)
    if document.get("issuer") != issuer:
        raise ValueError(f"its discovery document names issuer {shown(document.get('issuer'), 100)!r}")
    endpoint = document.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError("its discovery document has no token_endpoint")
    return endpoint


class TokenSource:
    """Access tokens for outgoing calls from one issuer, as one client, kept while they are good."""

    def __init__(self, issuer: str, credentials: ClientCredentials | None, *, timeout: float = 5.0,
                 fetch: Fetch | None = None, post: PostForm = post_form,
                 cache: TokenCache | None = None) -> None:
        self.issuer = issuer
        self.credentials = credentials
        self.timeout = timeout
        self.fetch = fetch
        self.post = post
        self.cache = cache or TokenCache()
        self.requests = 0  # requests made to the token endpoint: what the cache saves shows here
        self._endpoint: ServiceURL | None = None
        self._pending: dict[CacheKey, asyncio.Future[Grant]] = {}

    def check(self) -> None:
        """Fail at startup, not at the first call, when the secret cannot be used or would go out in clear.

        A secret file that does not exist yet is not a mistake: the identity service writes it
        when it first starts, which may be a moment after this service does.
        """
        if self.credentials is not None:
            parse_base_url(self.issuer, "LEAGUE_OIDC_ISSUER")
            if self.credentials.secret_file.exists():
                self.credentials.secret()

    async def for_caller(self, caller: CallerToken, audience: str, scopes: tuple[str, ...]) -> str:
        """The caller's token exchanged for one addressed to `audience`."""
        if self.credentials is None:
            raise CallFailed(audience, "this service has no client credentials to exchange the caller's "
                             "token with",
                             hint=f"set {CLIENT_SECRET_FILE_ENV} (and {CLIENT_ID_ENV} when the account is "
                                  "not named after the service)")
        form = {"grant_type": EXCHANGE_GRANT, "subject_token": caller.reveal(),
                "subject_token_type": ACCESS_TOKEN_TYPE, "requested_token_type": ACCESS_TOKEN_TYPE,
                "audience": audience}
        return await self._shared((caller_key(caller), audience, scopes), form)

    async def for_service(self, audience: str, scopes: tuple[str, ...]) -> str | None:
        """This service's own token for `audience`; None when it has no credentials."""
        if self.credentials is None:
            return None
        form = {"grant_type": "client_credentials", "audience": audience}
        return await self._shared((caller_key(None), audience, scopes), form)

    async def _shared(self, key: CacheKey, form: dict[str, str]) -> str:
        found = self.cache.get(key)
        if found is not None:
            return found
        pending = self._pending.get(key)
        if pending is None:
            if key[2]:
                form["scope"] = " ".join(key[2])
            pending = asyncio.ensure_future(asyncio.to_thread(self._request, key[1], form))
            self._pending[key] = pending
            pending.add_done_callback(functools.partial(self._settle, key))
        grant = await asyncio.shield(pending)
        return grant.access_token

    def _settle(self, key: CacheKey, done: asyncio.Future[Grant]) -> None:
        """Runs before any waiter resumes: the token is in the cache by then, a failure is not kept."""
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            self.cache.put(key, done.result())

    def _request(self, audience: str, form: Mapping[str, str]) -> Grant:
        """One request to the token endpoint (blocking: run in a worker thread)."""
        credentials = self.credentials
        assert credentials is not None
        try:
            endpoint = self._token_endpoint()
            authorization = basic_authorization(credentials.client_id, credentials.secret())
            self.requests += 1
            status, answer = self.post(endpoint, form, {"Authorization": authorization}, self.timeout)
        except ClientConfigError as error:
            raise CallFailed(audience, error.message, hint=error.hint) from error
        except Unreachable as error:
            raise CallFailed(audience, f"no token from the issuer ({error})") from error
        return grant_from(audience, status, answer)

    def _token_endpoint(self) -> ServiceURL:
        if self._endpoint is None:
            from ._auth_jwks import JwksUnavailable, fetch_json

            try:
                found = discover_token_endpoint(self.issuer, self.fetch or fetch_json, self.timeout)
            except (JwksUnavailable, ValueError) as error:
                raise Unreachable(f"{self.issuer}: {shown(error)}") from error
            self._endpoint = parse_base_url(found, "the issuer's token_endpoint")
        return self._endpoint
