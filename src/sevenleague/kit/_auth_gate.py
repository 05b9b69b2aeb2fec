"""The check before the app sees a request: a valid bearer token, with the scopes its route needs.

Answers follow RFC 6750: 401 when the token is missing or cannot be trusted, 403 when
it is trusted but lacks a scope the route needs. A request for a path no route matches
gets the same 401 as a protected route when it carries no valid token, so a caller
without a token cannot map which routes exist; with a valid token it gets the app's 404.

On a `PUBLIC` route a token is optional: a valid one names the caller (in the log line
and `request.state.identity`), an invalid one is ignored, as if it had not been sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from ._asgi import Scope, Send, respond
from ._auth import (
    AccessPolicy,
    AuthSettings,
    Identity,
    InvalidToken,
    Public,
    resolve_route,
)
from ._auth_jwks import JwksCache, fetch_json
from ._auth_tokens import TokenVerifier
from ._caller_token import CALLER_TOKEN, CallerToken
from ._observer import UNMATCHED

# The action in the scope Prometheus scrapes a service with: `hello.metrics`.
METRICS_ACTION = "metrics"
# RFC 6750 2.1: b64token
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_JSON = b"application/json"
_NO_STORE = (b"cache-control", b"no-store")
WEBSOCKET_POLICY_VIOLATION = 1008

# status, WWW-Authenticate value, body
Rejection = tuple[int, bytes, bytes]


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """(token, None); (None, None) without bearer credentials; (None, why) when they are malformed.

    Credentials of another scheme (Basic...) count as none: RFC 6750 answers those with
    a plain challenge, not an error.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return None, "more than one Authorization header"
            found = value
    if found is None:
        return None, None
    scheme, _, credentials = found.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None, None
    credentials = credentials.strip()
    if not _B64TOKEN.fullmatch(credentials):
        return None, "malformed bearer token"
    return credentials.decode("ascii"), None


def _body(error: str, description: str) -> bytes:
    return orjson.dumps({"error": error, "error_description": description})


class Gate:
    """Decides, per request, whether the app may answer it, and who is asking."""

    def __init__(self, verifier: TokenVerifier, policy: AccessPolicy, *, realm: str,
                 routes: list[Any] | None) -> None:
        self.verifier = verifier
        self.policy = policy
        self.routes = routes
        self._realm = f'Bearer realm="{realm}"'.encode()
        # Prometheus scrapes with its own service account's token, scoped to reading metrics only
        self.metrics_scope = frozenset({f"{realm}.{METRICS_ACTION}"})

    @classmethod
    def from_settings(cls, settings: AuthSettings, *, service: str, policy: AccessPolicy,
                      routes: list[Any] | None) -> Gate:
        jwks = JwksCache(settings.jwks_uri, issuer=settings.issuer, keys=settings.jwks,
                         fetch=settings.fetch or fetch_json, min_refresh_seconds=settings.min_refresh_seconds)
        verifier = TokenVerifier(settings.issuer, settings.audience or service, jwks,
                                 algorithms=settings.algorithms, leeway=settings.leeway, typ=settings.typ)
        return cls(verifier, policy, realm=service, routes=routes)

    def needs(self, scope: Scope) -> Public | frozenset[str]:
        """What the request's route needs; records the template so a refused request counts under it."""
        if self.routes is None:
            return self.policy.needs(scope["path"], scope.get("method"))
        try:
            template = resolve_route(self.routes, scope)
        except Exception:  # a route that cannot match this request must not open it
            template = None
        scope["route_template"] = UNMATCHED if template is None else template
        return self.policy.needs(template, scope.get("method"))

    async def caller(self, scope: Scope) -> tuple[str | None, Identity | None, str | None]:
        """The bearer token, who it names if it can be trusted, and why not (safe to show) if not."""
        token, reason = bearer_token(scope["headers"])
        identity: Identity | None = None
        if token is not None:
            try:
                identity = await self.verifier.verify(token)
            except InvalidToken as error:
                reason = error.reason
        return token, identity, reason

    async def judge(self, scope: Scope) -> tuple[Identity | None, Rejection | None]:
        """The caller (None when anonymous), and the answer to send instead of the app's, if any."""
        need = self.needs(scope)
        token, identity, reason = await self.caller(scope)
        state = scope.setdefault("state", {})
        state["identity"] = identity
        if identity is not None and token is not None:  # kept, hidden, for calls on the caller's behalf
            state[CALLER_TOKEN] = CallerToken(token)
        if isinstance(need, Public):
            return identity, None
        if identity is None:
            return None, self.unauthorized(reason)
        if not identity.scopes.issuperset(need):
            return identity, self.forbidden(need)
        return identity, None

    def unauthorized(self, reason: str | None) -> Rejection:
        if reason is None:
            return 401, self._realm, _body("missing_token", "this route needs a bearer token")
        challenge = self._realm + f', error="invalid_token", error_description="{reason}"'.encode()
        return 401, challenge, _body("invalid_token", reason)

    def forbidden(self, need: frozenset[str]) -> Rejection:
        scopes = " ".join(sorted(need))
        challenge = self._realm + f', error="insufficient_scope", scope="{scopes}"'.encode()
        return 403, challenge, _body("insufficient_scope", f"this route needs scope {scopes}")

    async def admit(self, scope: Scope, send: Send) -> tuple[bool, Identity | None]:
        """Whether the app may answer this HTTP request (if not, the refusal is sent), and the caller."""
        identity, rejection = await self.judge(scope)
        if rejection is None:
            return True, identity
        await self.refuse(send, rejection)
        return False, identity

    async def admit_scrape(self, scope: Scope, send: Send) -> bool:
        """`/metrics` while checks are on: a valid token for this service with `SERVICE.metrics`.

        The numbers say how much traffic each route gets and from whom it fails: worth a
        credential, and a narrow one, so the scraper's token opens nothing else.
        """
        _, identity, reason = await self.caller(scope)
        if identity is None:
            rejection = self.unauthorized(reason)
        elif not identity.scopes.issuperset(self.metrics_scope):
            rejection = self.forbidden(self.metrics_scope)
        else:
            return True
        await self.refuse(send, rejection)
        return False

    @staticmethod
    async def refuse(send: Send, rejection: Rejection) -> None:
        status, challenge, body = rejection
        await respond(send, status, body, _JSON, [(b"www-authenticate", challenge), _NO_STORE])

    async def admit_websocket(self, scope: Scope, send: Send) -> bool:
        """The same check for a WebSocket handshake; a refusal closes it (the server answers 403)."""
        _, rejection = await self.judge(scope)
        if rejection is None:
            return True
        await send({"type": "websocket.close", "code": WEBSOCKET_POLICY_VIOLATION})
        return False

