"""Bearer tokens in the kit: the auth matrix against hello's real routes, the key cache, the log line.

Keys are made here (ES256 with joserfc), so no identity service is needed: `TRUSTED` is
the issuer's signing key, `ROGUE` an unrelated key whoever forges tokens might hold.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from hello import app as hello_app
from sevenleague import kit
from sevenleague.kit._auth import PUBLIC, AccessPolicy, route_templates

from .asgi import Answer, PipeLog, call

ISSUER = "https://identity.league.test"
JWKS_URI = ISSUER + "/jwks"
TRUSTED = ECKey.generate_key("P-256", {"kid": "trusted-1", "use": "sig", "alg": "ES256"}, private=True)
ROGUE = ECKey.generate_key("P-256", {"kid": "rogue-1", "use": "sig", "alg": "ES256"}, private=True)
JWKS = {"keys": [TRUSTED.as_dict(private=False)]}


# --- making tokens --------------------------------------------------------------------------

def claims_for(scope: str = "", **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "sub": "user-42", "aud": "hello", "exp": now + 300, "iat": now,
        "jti": uuid.uuid4().hex, "client_id": "console", "scope": scope, "name": "Ada",
        "roles": ["reader"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def signed(claims: dict, key: ECKey = TRUSTED, kid: str | None = None, typ: str = "at+jwt") -> str:
    header = {"alg": "ES256", "typ": typ, "kid": kid or key.kid}
    return jwt.encode(header, claims, key)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": TRUSTED.kid}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict) -> str:
    """The classic forgery: HMAC with the issuer's public key (which anyone can fetch) as the secret."""
    header = {"alg": "HS256", "typ": "at+jwt", "kid": TRUSTED.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    secret = TRUSTED.as_pem(private=False)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def tampered(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + token.encode())]


# --- hello with token checks on -------------------------------------------------------------

class CountingIssuer:
    """The issuer's JWKS endpoint as a fetch function: counts how often it is asked."""

    def __init__(self, document: dict | None = None) -> None:
        self.document = document or JWKS
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float) -> dict:
        self.urls.append(url)
        return self.document


class Hello:
    """hello's real routes and access declarations, instrumented with token checks on."""

    def __init__(self, issuer: CountingIssuer | None = None) -> None:
        self.issuer = issuer or CountingIssuer()
        self.log = PipeLog()
        self.app = kit.instrument(
            Starlette(routes=hello_app.routes), service="hello", access=hello_app.access,
            registry=CollectorRegistry(), log=self.log.writer, lifecycle=kit.Lifecycle(),
            auth=kit.AuthSettings(issuer=ISSUER, jwks_uri=JWKS_URI, jwks=JWKS, fetch=self.issuer),
        )

    def get(self, path: str, token: str | None = None, headers: list | None = None) -> Answer:
        sent = (bearer(token) if token else []) + (headers or [])
        return asyncio.run(call(self.app, path, headers=sent))

    def records(self) -> list[dict]:
        self.app.settle()
        return [json.loads(line) for line in self.log.lines()]


@pytest.fixture
def hello():
    return Hello()


POLICY = AccessPolicy(hello_app.access)
PROTECTED = sorted(t for t in route_templates(hello_app.routes) if POLICY.needs(t) is not PUBLIC)


def scopes_needed(route: str) -> str:
    need = POLICY.needs(route)
    assert need is not PUBLIC
    return " ".join(sorted(need))


def test_hello_declares_a_protected_route_to_walk():
    assert PROTECTED == ["/whoami", "/whoami/{service}"]


def invalid_tokens(route: str) -> dict[str, str]:
    """Every way a token can fail, each otherwise carrying exactly the scopes the route needs."""
    scope = scopes_needed(route)
    good = signed(claims_for(scope))
    now = int(time.time())
    return {
        "expired beyond the leeway": signed(claims_for(scope, exp=now - 120, iat=now - 600)),
        "for another audience": signed(claims_for(scope, aud="ledger")),
        "from another issuer": signed(claims_for(scope, iss="https://evil.test")),
        "alg none": unsigned(claims_for(scope)),
        "HS256 keyed with the public key": hs256_with_public_key(claims_for(scope)),
        "tampered payload": tampered(good, sub="admin"),
        "signed by an unknown key": signed(claims_for(scope), key=ROGUE),
        "forged under the trusted kid": signed(claims_for(scope), key=ROGUE, kid=TRUSTED.kid),
        "an ID token, not an access token": signed(claims_for(scope), typ="JWT"),
        "missing a required claim": signed(claims_for(scope, jti=None)),
        "issued in the future": signed(claims_for(scope, iat=now + 600)),
        "not valid yet": signed(claims_for(scope, nbf=now + 600)),
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize("route", PROTECTED)
def test_a_protected_route_without_a_token_is_401_with_a_plain_challenge(hello, route):
    answer = hello.get(route)
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="hello"'
    assert json.loads(answer.body)["error"] == "missing_token"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-served-by"].startswith("hello/")


@pytest.mark.parametrize("route", PROTECTED)
@pytest.mark.parametrize("header", [b"Bearer", b"Bearer a b", b"Bearer ???", b"Bearer\x00x"])
def test_a_malformed_bearer_header_is_401(hello, route, header):
    answer = hello.get(route, headers=[(b"authorization", header)])
    assert answer.status == 401


@pytest.mark.parametrize("route", PROTECTED)
def test_another_authentication_scheme_counts_as_no_token(hello, route):
    answer = hello.get(route, headers=[(b"authorization", b"Basic dXNlcjpwYXNz")])
    assert (answer.status, answer.headers["www-authenticate"]) == (401, 'Bearer realm="hello"')


@pytest.mark.parametrize("route", PROTECTED)
def test_two_authorization_headers_are_401(hello, route):
    token = signed(claims_for(scopes_needed(route)))
    assert hello.get(route, token, headers=bearer(token)).status == 401


@pytest.mark.parametrize("route", PROTECTED)
@pytest.mark.parametrize("case", list(invalid_tokens("/whoami")))
def test_every_untrustworthy_token_is_401_invalid_token(hello, route, case):
    token = invalid_tokens(route)[case]
    answer = hello.get(route, token)
    assert answer.status == 401, case
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="hello", error="invalid_token", error_description="')
    body = json.loads(answer.body)
    assert body["error"] == "invalid_token"
    assert body["error_description"] in challenge
    assert token not in challenge and token not in answer.body.decode()


@pytest.mark.parametrize(("case", "reason"), [
    ("expired beyond the leeway", "token has expired"),
    ("for another audience", "token is for another audience"),
    ("from another issuer", "token is from another issuer"),
    ("alg none", "token algorithm is not allowed"),
    ("HS256 keyed with the public key", "token algorithm is not allowed"),
    ("tampered payload", "token signature does not verify"),
    ("signed by an unknown key", "token is signed by an unknown key"),
    ("forged under the trusted kid", "token signature does not verify"),
    ("an ID token, not an access token", "token type is not at+jwt"),
])
def test_the_401_says_why_in_words_safe_to_show(hello, case, reason):
    answer = hello.get("/whoami", invalid_tokens("/whoami")[case])
    assert json.loads(answer.body)["error_description"] == reason


def test_a_token_expired_within_the_leeway_is_still_accepted(hello):
    now = int(time.time())
    token = signed(claims_for("hello.read", exp=now - 10, iat=now - 310))
    assert hello.get("/whoami", token).status == 200


@pytest.mark.parametrize("route", PROTECTED)
def test_a_valid_token_lacking_the_scope_is_403(hello, route):
    answer = hello.get(route, signed(claims_for("hello.write other.read")))
    assert answer.status == 403
    need = scopes_needed(route)
    assert answer.headers["www-authenticate"] == (
        f'Bearer realm="hello", error="insufficient_scope", scope="{need}"')
    assert json.loads(answer.body) == {"error": "insufficient_scope",
                                       "error_description": f"this route needs scope {need}"}


@pytest.mark.parametrize("route", PROTECTED)
def test_the_right_token_is_answered(hello, route):
    answer = hello.get(route, signed(claims_for(scopes_needed(route))))
    assert "www-authenticate" not in answer.headers  # the app answered, not the gate
    if route == "/whoami/{service}":  # in-process, hello knows no service to call
        assert (answer.status, json.loads(answer.body)["error"]) == (404, "unknown_service")
    else:
        assert answer.status == 200


def test_whoami_shows_the_caller_and_on_whose_behalf_a_service_calls(hello):
    direct = hello.get("/whoami", signed(claims_for("hello.read openid")))
    assert json.loads(direct.body) == {"subject": "user-42", "client": "console",
                                       "scopes": ["hello.read", "openid"], "actor": None}
    exchanged = signed(claims_for("hello.read", aud=["hello", "ledger"], client_id="ledger",
                                  act={"sub": "service:ledger"}))
    assert json.loads(hello.get("/whoami", exchanged).body) == {
        "subject": "user-42", "client": "ledger", "scopes": ["hello.read"], "actor": "service:ledger"}


def test_the_public_root_needs_no_token_and_ignores_a_bad_one(hello):
    assert hello.get("/").body == b"Hello, world!\n"
    assert hello.get("/", "not-a-jwt").status == 200
    assert hello.get("/", signed(claims_for(aud="ledger"))).status == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_token(hello, path):
    assert hello.get(path).status == 200


def test_metrics_need_a_token_with_the_services_metrics_scope(hello):
    assert hello.get("/metrics").status == 401
    assert hello.get("/metrics", "not-a-jwt").status == 401
    assert hello.get("/metrics", signed(claims_for("hello.metrics", aud="ledger"))).status == 401
    refused = hello.get("/metrics", signed(claims_for("hello.read")))  # a user's read is not a scrape
    assert refused.status == 403 and 'scope="hello.metrics"' in refused.headers["www-authenticate"]
    scraped = hello.get("/metrics", signed(claims_for("hello.metrics")))
    assert scraped.status == 200 and b"http_requests_total" in scraped.body


def test_an_unknown_path_does_not_say_whether_it_exists(hello):
    assert hello.get("/admin").status == hello.get("/whoami").status == 401
    assert hello.get("/admin", signed(claims_for())).status == 404


def test_the_log_line_names_the_caller_and_never_holds_the_token(hello):
    token = signed(claims_for("hello.read", act={"sub": "service:console"}))
    hello.get("/whoami", token, headers=[(b"x-request-id", b"who-1")])
    hello.get("/", headers=[(b"x-request-id", b"anon-1")])
    hello.get("/whoami", signed(claims_for("")), headers=[(b"x-request-id", b"denied-1")])
    by_id = {r["request_id"]: r for r in hello.records()}
    who = by_id["who-1"]
    assert (who["user"], who["client"], who["actor"], who["status"]) == (
        "user-42", "console", "service:console", 200)
    assert "user" not in by_id["anon-1"]
    assert (by_id["denied-1"]["user"], by_id["denied-1"]["status"]) == ("user-42", 403)
    assert all(token not in json.dumps(r) and token.split(".")[2] not in json.dumps(r)
               for r in by_id.values())


def test_a_refused_request_counts_under_its_route_and_unknown_paths_under_one_label(hello):
    hello.get("/whoami")
    hello.get("/no/such/path")
    hello.get("/other/unknown")
    routes = [r["route"] for r in hello.records()]
    assert routes == ["/whoami", "<unmatched>", "<unmatched>"]


def test_an_unknown_kid_refreshes_the_keys_once_and_is_still_refused():
    hello = Hello()
    scope = scopes_needed("/whoami")
    assert hello.get("/whoami", signed(claims_for(scope), key=ROGUE)).status == 401
    assert hello.issuer.urls == [JWKS_URI]
    assert hello.get("/whoami", signed(claims_for(scope), key=ROGUE, kid="rogue-2")).status == 401
    assert hello.issuer.urls == [JWKS_URI]  # within the refresh interval: no second fetch
    assert hello.get("/whoami", signed(claims_for(scope))).status == 200
    assert hello.issuer.urls == [JWKS_URI]  # a known kid never fetches


def test_a_rotated_key_is_found_by_the_refresh_its_kid_triggers():
    rotated = {"keys": [TRUSTED.as_dict(private=False), ROGUE.as_dict(private=False)]}
    hello = Hello(CountingIssuer(rotated))
    assert hello.get("/whoami", signed(claims_for("hello.read"), key=ROGUE)).status == 200


def test_the_keys_are_discovered_from_the_issuer_when_no_jwks_uri_is_given():
    documents = {ISSUER + "/.well-known/openid-configuration": {"issuer": ISSUER, "jwks_uri": JWKS_URI},
                 JWKS_URI: JWKS}
    asked: list[str] = []

    def fetch(url: str, timeout: float) -> dict:
        asked.append(url)
        return documents[url]

    app = kit.instrument(Starlette(routes=hello_app.routes), service="hello", access=hello_app.access,
                         registry=CollectorRegistry(), log=PipeLog().writer, lifecycle=kit.Lifecycle(),
                         auth=kit.AuthSettings(issuer=ISSUER, fetch=fetch))
    answer = asyncio.run(call(app, "/whoami", headers=bearer(signed(claims_for("hello.read")))))
    assert answer.status == 200
    assert asked == [ISSUER + "/.well-known/openid-configuration", JWKS_URI]


# --- the key cache alone --------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_unknown_kids_fetches_at_most_once_per_refresh_interval():
    issuer = CountingIssuer()
    clock = FakeClock()
    cache = kit.JwksCache(JWKS_URI, keys=JWKS, fetch=issuer, min_refresh_seconds=30, clock=clock)
    verifier = kit.TokenVerifier(ISSUER, "hello", cache)
    forged = [signed(claims_for(), key=ROGUE, kid=f"random-{i}") for i in range(200)]

    async def flood(tokens: list[str]) -> list[BaseException | kit.Identity]:
        return await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)

    results = asyncio.run(flood(forged[:100]))
    assert all(isinstance(r, kit.InvalidToken) for r in results)
    assert len(issuer.urls) == 1
    clock.now += 29
    asyncio.run(flood(forged[100:150]))
    assert len(issuer.urls) == 1
    clock.now += 2
    asyncio.run(flood(forged[150:]))
    assert len(issuer.urls) == 2


def test_a_failed_refresh_keeps_the_known_keys():
    def unreachable(url: str, timeout: float) -> dict:
        raise kit.JwksUnavailable(f"{url}: connection refused")

    clock = FakeClock()
    cache = kit.JwksCache(JWKS_URI, keys=JWKS, fetch=unreachable, max_age_seconds=60, clock=clock)
    verifier = kit.TokenVerifier(ISSUER, "hello", cache)
    clock.now += 3600  # stale: the next lookup tries to refresh
    identity = asyncio.run(verifier.verify(signed(claims_for("hello.read"))))
    assert identity.subject == "user-42"
    assert cache.fetches == 1


def test_keys_withdrawn_by_the_issuer_stop_verifying_once_the_cache_is_stale():
    issuer = CountingIssuer({"keys": [ROGUE.as_dict(private=False)]})
    clock = FakeClock()
    cache = kit.JwksCache(JWKS_URI, keys=JWKS, fetch=issuer, max_age_seconds=60, clock=clock)
    verifier = kit.TokenVerifier(ISSUER, "hello", cache)
    token = signed(claims_for())
    assert asyncio.run(verifier.verify(token)).subject == "user-42"
    clock.now += 61
    with pytest.raises(kit.InvalidToken, match="unknown key"):
        asyncio.run(verifier.verify(token))


def test_a_remembered_token_still_expires_and_is_forgotten_when_the_keys_change():
    clock = FakeClock()
    clock.now = time.time()
    cache = kit.JwksCache(keys=JWKS)
    verifier = kit.TokenVerifier(ISSUER, "hello", cache, leeway=30, clock=clock)
    token = signed(claims_for(exp=int(clock.now) + 60))
    assert asyncio.run(verifier.verify(token)).subject == "user-42"
    clock.now += 60 + 29
    assert asyncio.run(verifier.verify(token)).subject == "user-42"
    clock.now += 2
    with pytest.raises(kit.InvalidToken, match="expired"):
        asyncio.run(verifier.verify(token))
    fresh = signed(claims_for())
    clock.now = time.time()
    asyncio.run(verifier.verify(fresh))
    cache.load({"keys": [ROGUE.as_dict(private=False)]})  # the issuer withdrew the key
    with pytest.raises(kit.InvalidToken, match="unknown key"):
        asyncio.run(verifier.verify(fresh))


def test_secret_and_symmetric_members_of_a_jwks_are_never_kept():
    leaky = {"keys": [TRUSTED.as_dict(private=True),
                      {"kty": "oct", "kid": "shared", "k": b64(b"secret" * 6)}]}
    cache = kit.JwksCache(keys=leaky)
    assert cache.kids == frozenset({TRUSTED.kid})
    assert asyncio.run(cache.key_set_for(TRUSTED.kid)).keys[0].is_private is False  # type: ignore[union-attr]


@pytest.mark.parametrize("algorithms", [("HS256",), ("ES256", "none"), ()])
def test_a_verifier_refuses_to_be_configured_with_symmetric_or_no_algorithms(algorithms):
    with pytest.raises(ValueError, match="refused"):
        kit.TokenVerifier(ISSUER, "hello", kit.JwksCache(keys=JWKS), algorithms=algorithms)


def test_identity_from_claims_and_what_it_logs():
    identity = kit.Identity.from_claims(claims_for("a b", sub="service:ledger", act={"sub": "service:x"}))
    assert identity.is_service and identity.has_scopes({"a"}) and not identity.has_scopes({"c"})
    assert identity.to_log() == {"user": "service:ledger", "client": "console", "actor": "service:x"}
    assert "claims" not in repr(identity)


# --- declaring access, turning it on --------------------------------------------------------

def test_an_access_key_no_route_has_is_an_error_at_startup():
    with pytest.raises(kit.AuthConfigError, match="whoam"):
        kit.instrument(Starlette(routes=hello_app.routes), service="hello",
                       access={"/whoam": "hello.read"}, registry=CollectorRegistry())


@pytest.mark.parametrize("declared", ["", "two words", 'quo"te', 42, ["a"]])
def test_a_malformed_scope_declaration_is_an_error_at_startup(declared):
    with pytest.raises(kit.AuthConfigError):
        AccessPolicy({"/": declared})


def test_a_method_qualified_declaration_wins_for_its_method_only():
    policy = AccessPolicy({"/items": "items.read", "POST /items": "items.write", "GET /open": PUBLIC,
                           "/open": "items.read"})
    assert policy.needs("/items", "GET") == frozenset({"items.read"})
    assert policy.needs("/items", "POST") == frozenset({"items.write"})
    assert policy.needs("/items", "DELETE") == frozenset({"items.read"})
    assert policy.needs("/open", "HEAD") is PUBLIC  # HEAD is answered like GET
    assert policy.needs("/open", "POST") == frozenset({"items.read"})
    assert policy.needs("/nothing", "POST") == frozenset()


@pytest.mark.parametrize("key", ["FETCH /items", "post /items"])
def test_a_declaration_with_an_unknown_method_is_an_error_at_startup(key):
    with pytest.raises(kit.AuthConfigError, match="HTTP method"):
        AccessPolicy({key: "items.read"})


def test_without_settings_or_environment_nothing_is_checked(monkeypatch):
    monkeypatch.delenv(kit.ISSUER_ENV, raising=False)
    app = kit.instrument(Starlette(routes=hello_app.routes), service="hello", access=hello_app.access,
                         registry=CollectorRegistry(), log=PipeLog().writer)
    assert app.guard is None
    answer = asyncio.run(call(app, "/whoami"))
    assert (answer.status, json.loads(answer.body)["subject"]) == (200, None)


def test_the_environment_turns_checks_on_with_the_service_as_audience(monkeypatch):
    monkeypatch.setenv(kit.ISSUER_ENV, ISSUER)
    monkeypatch.setenv(kit.JWKS_URI_ENV, JWKS_URI)
    app = kit.instrument(Starlette(routes=hello_app.routes), service="hello", access=hello_app.access,
                         registry=CollectorRegistry(), log=PipeLog().writer)
    assert app.guard is not None
    assert (app.guard.verifier.issuer, app.guard.verifier.audience) == (ISSUER, "hello")
    assert app.guard.verifier.jwks.jwks_uri == JWKS_URI
    assert asyncio.run(call(app, "/whoami")).status == 401
    assert asyncio.run(call(app, "/")).status == 200


async def ok(request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def test_a_route_inside_a_mount_is_declared_under_its_full_template():
    inner = Starlette(routes=[Mount("/api", routes=[Route("/", ok), Route("/{id}", ok)]), Route("/", ok)])
    app = kit.instrument(inner, service="hello", access={"/": PUBLIC, "/api/{id}": PUBLIC},
                         registry=CollectorRegistry(), log=PipeLog().writer,
                         auth=kit.AuthSettings(issuer=ISSUER, jwks=JWKS, fetch=CountingIssuer()))
    assert asyncio.run(call(app, "/")).status == 200
    assert asyncio.run(call(app, "/api/7")).status == 200
    assert asyncio.run(call(app, "/api/")).status == 401  # "/" being public does not open "/api/"


def test_a_websocket_handshake_needs_a_token_too():
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    app = kit.instrument(Starlette(routes=[WebSocketRoute("/ws", echo)]), service="hello",
                         registry=CollectorRegistry(), log=PipeLog().writer,
                         auth=kit.AuthSettings(issuer=ISSUER, jwks=JWKS, fetch=CountingIssuer()))

    async def handshake(headers: list[tuple[bytes, bytes]]) -> list[dict]:
        scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "", "headers": headers,
                 "query_string": b"", "scheme": "ws", "subprotocols": [], "asgi": {"version": "3.0"}}
        incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
        sent: list[dict] = []

        async def receive() -> dict:
            return incoming.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    refused = asyncio.run(handshake([]))
    assert refused == [{"type": "websocket.close", "code": 1008}]
    accepted = asyncio.run(handshake(bearer(signed(claims_for()))))
    assert accepted[0]["type"] == "websocket.accept"


def test_every_line_the_app_logs_while_answering_names_the_request_and_the_caller(hello):
    import logging

    from sevenleague.kit._log import JsonLogHandler

    async def noisy(request):
        logging.getLogger("hello.noisy").warning("about to answer")
        return PlainTextResponse("ok")

    lines = PipeLog()
    handler = JsonLogHandler(lines.writer, {"service": "hello"})
    logger = logging.getLogger("hello.noisy")
    logger.addHandler(handler)
    try:
        app = kit.instrument(Starlette(routes=[Route("/noisy", noisy)]), service="hello",
                             registry=CollectorRegistry(), log=PipeLog().writer,
                             auth=kit.AuthSettings(issuer=ISSUER, jwks_uri=JWKS_URI, jwks=JWKS))
        token = signed(claims_for("", act={"sub": "service:console"}))
        headers = [*bearer(token), (b"x-request-id", b"noisy-1")]
        assert asyncio.run(call(app, "/noisy", headers=headers)).status == 200
        logging.getLogger("hello.noisy").warning("outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in lines.lines())
    assert (inside["msg"], inside["request_id"], inside["user"], inside["actor"]) == (
        "about to answer", "noisy-1", "user-42", "service:console")
    assert "request_id" not in outside and "user" not in outside
    assert token not in json.dumps(inside)
