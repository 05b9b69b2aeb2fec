"""Calling another service while handling a request: on the caller's behalf, or as this service.

    from sevenleague import kit

    services = kit.ServiceClient.from_environment("hello")

    async def orders(request):
        answer = await services.on_behalf_of(request).get("orders", "/v1/orders", scopes=["orders.read"])
        return JSONResponse(answer.json(), status_code=answer.status)

Whose authority a call carries is written at the call site, because it is the one
decision that matters for security:

- `on_behalf_of(request)`: the caller's. The verified token of the request (kept, hidden,
  by the kit's token check) is exchanged at the issuer (RFC 8693) for one addressed to
  the callee: the callee sees the user as the subject and this service as the actor, with
  no more scope than both the user's token and this service's account allow. A request
  that came without a valid token makes an anonymous call: an anonymous caller never
  borrows this service's own rights (the confused-deputy problem).
- `as_service(request=None)`: this service's own, from client credentials; without
  credentials (`LEAGUE_CLIENT_SECRET_FILE` unset) the call carries no token.

Every call carries the request's `X-Request-ID`, and its trace as a W3C `traceparent`
(the request's trace id, the request's span as the parent; and the caller's `tracestate`,
unchanged), so one request id and one trace id follow the request through every
service; a call made outside any request starts a trace of its own. It goes over https
verified against the eco-system's CA, never follows a redirect, and raises `CallFailed`
(or `UnknownService`, `CallRefused`) when it gets no answer. An answer, any status, is a
`ServiceResponse`: what to do with a 404 from the callee is the handler's decision.

Configuration is read once, by `from_environment`, so a malformed setting stops the
service at startup: `LEAGUE_SERVICE_URLS` (JSON: service name -> base URL),
`LEAGUE_OIDC_ISSUER`, `LEAGUE_CLIENT_ID` (default: the service's name),
`LEAGUE_CLIENT_SECRET_FILE`, `LEAGUE_CA_FILE`.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ._auth import ISSUER_ENV
from ._call_errors import CallFailed, CallRefused, ClientConfigError, UnknownService
from ._caller_token import CallerToken, caller_token
from ._http import Unreachable, send
from ._service_urls import SERVICE_URLS_ENV, ServiceURL, parse_service_urls, service_urls, url_of
from ._token_exchange import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_FILE_ENV,
    ClientCredentials,
    TokenSource,
    scopes_asked,
)
from ._trace import TraceContext, new_traceparent

DEFAULT_TIMEOUT = 5.0
_METHOD = re.compile(r"[A-Z]{3,7}")
# Headers the client sets itself; a caller passing them is a mistake worth an error.
_OWN_HEADERS = frozenset({"authorization", "host", "content-length", "x-request-id", "traceparent",
                          "tracestate"})


@dataclass(frozen=True)
class ServiceResponse:
    """What the callee answered: any status, the headers (lower-case names) and the body."""

    service: str
    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; `CallFailed` when it is not (the callee broke its side of the contract)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as error:
            raise CallFailed(self.service, f"the answer ({self.status}) is not JSON") from error


class ServiceClient:
    """Calls to the other services of the eco-system; one per process, made at startup.

    `service` is this service's name (the default client id). `urls` maps callee names
    to base URLs; `issuer` is where tokens come from (None: calls carry no token);
    `client_id` and `secret_file` are this service's account there.
    """

    def __init__(self, service: str, *, urls: Mapping[str, str | ServiceURL] | None = None,
                 issuer: str | None = None,
                 client_id: str | None = None, secret_file: str | Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.service = service
        self.urls: dict[str, ServiceURL] = service_urls(urls or {})
        self.timeout = timeout
        credentials = (ClientCredentials(client_id or service, Path(secret_file))
                       if secret_file is not None else None)
        self.tokens = TokenSource(issuer, credentials, timeout=timeout) if issuer else None
        if self.tokens is not None:
            self.tokens.check()

    @classmethod
    def from_environment(cls, service: str, environ: Mapping[str, str] | None = None, *,
                         timeout: float = DEFAULT_TIMEOUT) -> ServiceClient:
        """The client `league up` configures through the environment (see the module docstring)."""
        env = os.environ if environ is None else environ
        credentials = ClientCredentials.from_environment(service, env)
        return cls(service, urls=parse_service_urls(env.get(SERVICE_URLS_ENV)),
                   issuer=env.get(ISSUER_ENV, "").strip() or None,
                   client_id=credentials.client_id if credentials else None,
                   secret_file=credentials.secret_file if credentials else None, timeout=timeout)

    def on_behalf_of(self, request: Mapping[str, Any]) -> OutgoingCalls:
        """Calls carrying the caller's authority: their token exchanged, or none when they showed none.

        `request` is the Starlette request being handled, or its ASGI scope.
        """
        state = _state_of(request)
        return OutgoingCalls(self, caller_token(state), on_behalf=True, request_id=_request_id(state),
                             trace=_trace(state))

    def as_service(self, request: Mapping[str, Any] | None = None) -> OutgoingCalls:
        """Calls carrying this service's own authority; `request` (optional) lends its request id and trace.

        Without a request, each call starts a new trace.
        """
        state = _state_of(request) if request is not None else None
        return OutgoingCalls(self, None, on_behalf=False, request_id=_request_id(state), trace=_trace(state))

    def url_of(self, service: str) -> ServiceURL:
        return url_of(self.urls, service)


class OutgoingCalls:
    """Calls with one authority (see `ServiceClient.on_behalf_of` and `as_service`)."""

    def __init__(self, client: ServiceClient, caller: CallerToken | None, *, on_behalf: bool,
                 request_id: str | None, trace: TraceContext | None = None) -> None:
        self.client = client
        self.caller = caller
        self.on_behalf = on_behalf
        self.request_id = request_id
        self.trace = trace

    async def get(self, service: str, path: str, *, scopes: str | Iterable[str] = (),
                  headers: Mapping[str, str] | None = None, timeout: float | None = None) -> ServiceResponse:
        return await self.request("GET", service, path, scopes=scopes, headers=headers, timeout=timeout)

    async def post(self, service: str, path: str, *, json: Any = None, content: bytes | None = None,
                   scopes: str | Iterable[str] = (), headers: Mapping[str, str] | None = None,
                   timeout: float | None = None) -> ServiceResponse:
        return await self.request("POST", service, path, json=json, content=content, scopes=scopes,
                                  headers=headers, timeout=timeout)

    async def request(self, method: str, service: str, path: str, *, json: Any = None,
                      content: bytes | None = None, scopes: str | Iterable[str] = (),
                      headers: Mapping[str, str] | None = None,
                      timeout: float | None = None) -> ServiceResponse:
        """`method path` at `service`. `scopes` are asked for at the issuer: ask for what the call needs,
        so a caller lacking one is refused there (`CallRefused`) rather than by the callee."""
        if not _METHOD.fullmatch(method):
            raise ValueError(f"{method[:20]!r} is not an HTTP method (upper case, e.g. GET)")
        base = self.client.url_of(service)
        target = base.target(path)
        wanted = scopes_asked(scopes)
        sent = _headers(headers)
        body = content
        if json is not None:
            if content is not None:
                raise ValueError("send json or content, not both")
            body = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        token = await self._token(service, wanted)
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if self.request_id is not None:
            sent["X-Request-ID"] = self.request_id
        trace = self.trace
        if trace is None:
            sent["traceparent"] = new_traceparent()  # no request to belong to: a trace of its own
        else:
            sent["traceparent"] = trace.traceparent
            if trace.tracestate is not None:
                sent["tracestate"] = trace.tracestate
        try:
            answer = await asyncio.to_thread(send, base, method, target, headers=sent, body=body,
                                             timeout=self.client.timeout if timeout is None else timeout)
        except Unreachable as error:
            raise CallFailed(service, f"no answer from {error}") from error
        return ServiceResponse(service, answer.status, answer.headers, answer.body)

    async def _token(self, service: str, scopes: tuple[str, ...]) -> str | None:
        tokens = self.client.tokens
        if self.on_behalf:
            if self.caller is None:
                return None  # an anonymous caller calls anonymously, never with this service's rights
            if tokens is None:
                raise CallFailed(service, "no issuer is configured to exchange the caller's token at",
                                 hint=f"set {ISSUER_ENV}")
            return await tokens.for_caller(self.caller, service, scopes)
        return None if tokens is None else await tokens.for_service(service, scopes)


def _state_of(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    state = request.get("state")
    return state if isinstance(state, Mapping) else None


def _request_id(state: Mapping[str, Any] | None) -> str | None:
    found = state.get("request_id") if state else None
    return found if isinstance(found, str) else None


def _trace(state: Mapping[str, Any] | None) -> TraceContext | None:
    found = state.get("trace") if state else None
    return found if isinstance(found, TraceContext) else None


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    chosen = {"Accept": "application/json", "User-Agent": "sevenleague-kit"}
    for name, value in (headers or {}).items():
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"the {name} header is set by the service client, not by its caller")
        chosen[name] = value
    return chosen


__all__ = [
    "CLIENT_ID_ENV",
    "CLIENT_SECRET_FILE_ENV",
    "SERVICE_URLS_ENV",
    "CallFailed",
    "CallRefused",
    "ClientConfigError",
    "OutgoingCalls",
    "ServiceClient",
    "ServiceResponse",
    "UnknownService",
]
