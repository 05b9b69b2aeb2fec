"""The kit's service client, its parts alone: the URL map, the token cache, the issuer's answers, secrets.

The calls themselves go to a real server on loopback (uvicorn in a thread) that writes
down what it received; the whole path with the identity service is in
tests/integration/test_identity_across_calls.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sevenleague import kit
from sevenleague.identity._oauth import client_credentials
from sevenleague.kit._caller_token import CALLER_TOKEN, CallerToken, caller_token
from sevenleague.kit._service_urls import ServiceURL, parse_service_urls, url_of
from sevenleague.kit._token_exchange import (
    ClientCredentials,
    Grant,
    TokenCache,
    basic_authorization,
    caller_key,
    grant_from,
    scopes_asked,
    usable_seconds,
)
from sevenleague.testing import free_port

from .asgi import PipeLog, call

# --- the URL map --------------------------------------------------------------------------


def test_the_url_map_takes_https_urls_with_a_path_prefix_and_loopback_http():
    urls = parse_service_urls(json.dumps({
        "echo": "https://10.0.0.5:8443/echo/", "ledger": "http://127.0.0.1:9000", "audit": "https://[::1]/",
        "local": "http://localhost:8001/api"}))
    assert urls["echo"] == ServiceURL("https", "10.0.0.5", 8443, "/echo")
    assert urls["echo"].target("/whoami?x=1") == "/echo/whoami?x=1"
    assert urls["ledger"] == ServiceURL("http", "127.0.0.1", 9000, "")
    assert urls["audit"] == ServiceURL("https", "::1", 443, "")
    assert urls["audit"].origin == "https://[::1]:443"
    assert str(urls["local"]) == "http://localhost:8001/api"


@pytest.mark.parametrize("text", [None, "", "  "])
def test_an_unset_url_map_is_empty(text):
    assert parse_service_urls(text) == {}


@pytest.mark.parametrize(("text", "says"), [
    ("{echo: 1}", "is not JSON"),
    ('["https://a"]', "must be a JSON object"),
    ('{"Echo": "https://a"}', "'Echo' is not a service name"),
    ('{"echo": 8443}', "expected a URL string, got int"),
    ('{"echo": "ftp://a/b"}', "is not an http(s) URL with a host"),
    ('{"echo": "https:///path"}', "is not an http(s) URL with a host"),
    ('{"echo": "https://a:99999"}', "is not a URL"),
    ('{"echo": "http://10.0.0.5:8001"}', "plain http to 10.0.0.5 would send tokens in clear"),
    ('{"echo": "https://a/b?c=d"}', "no credentials, query or fragment"),
    ('{"echo": "https://user:pw@a/"}', "no credentials, query or fragment"),
])
def test_a_malformed_url_map_says_what_is_wrong_and_where(text, says):
    with pytest.raises(kit.ClientConfigError, match="LEAGUE_SERVICE_URLS") as caught:
        parse_service_urls(text)
    assert says in str(caught.value)


@pytest.mark.parametrize("path", ["whoami", "//evil.example/x", "/who ami", "/a\r\nX-Evil: 1", ""])
def test_a_call_path_cannot_leave_the_callee_or_split_the_request(path):
    with pytest.raises(ValueError, match="is not a path"):
        ServiceURL("https", "a", 443, "/echo").target(path)


def test_an_unknown_service_names_itself_and_the_known_ones():
    with pytest.raises(kit.UnknownService) as caught:
        url_of(parse_service_urls('{"echo": "https://a", "audit": "https://b"}'), "ledger")
    assert caught.value.service == "ledger"
    assert str(caught.value) == ("call to ledger failed: no URL is known for it "
                                 "(hint: known: audit, echo; LEAGUE_SERVICE_URLS lists them)")
    assert isinstance(caught.value, kit.CallFailed)


# --- the token cache ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(n: int = 0, audience: str = "echo") -> tuple[bytes, str, tuple[str, ...]]:
    return (bytes([n]) * 32, audience, ("echo.read",))


@pytest.mark.parametrize(("expires_in", "usable"), [
    (600, 570), (60, 30), (40, 20), (2, 1), (0, 0), (-5, 0), (None, 0)])
def test_a_token_is_reused_until_a_margin_before_it_expires_at_most_half_its_life(expires_in, usable):
    assert usable_seconds(expires_in) == usable


def test_a_cached_token_is_served_until_shortly_before_expiry_then_dropped():
    clock = Clock()
    cache = TokenCache(clock=clock)
    cache.put(key(), Grant("tok-1", 300))
    assert cache.get(key()) == "tok-1"
    assert cache.get(key(audience="audit")) is None
    clock.now += 269
    assert cache.get(key()) == "tok-1"
    clock.now += 1
    assert cache.get(key()) is None
    assert len(cache) == 0


def test_a_token_without_a_lifetime_is_not_kept():
    cache = TokenCache(clock=Clock())
    cache.put(key(), Grant("tok", None))
    assert cache.get(key()) is None and len(cache) == 0


def test_the_cache_is_bounded_and_lets_the_oldest_go_first():
    cache = TokenCache(capacity=3, clock=Clock())
    for n in range(3):
        cache.put(key(n), Grant(f"tok-{n}", 300))
    cache.put(key(0), Grant("tok-0b", 300))  # renewed: now the youngest
    cache.put(key(3), Grant("tok-3", 300))
    assert len(cache) == 3
    assert [cache.get(key(n)) for n in range(4)] == ["tok-0b", None, "tok-2", "tok-3"]


def test_the_cache_key_holds_a_hash_of_the_callers_token_not_the_token():
    token = CallerToken("eyJ.a-token.sig")
    assert caller_key(token) != caller_key(CallerToken("eyJ.another.sig"))
    assert len(caller_key(token)) == 32 and b"a-token" not in caller_key(token)
    assert caller_key(None) == b""


def test_scopes_are_asked_for_sorted_and_once():
    assert scopes_asked(["echo.write", "echo.read", "echo.read"]) == ("echo.read", "echo.write")
    assert scopes_asked("echo.read  echo.write") == ("echo.read", "echo.write")
    assert scopes_asked(()) == ()
    with pytest.raises(ValueError, match="is not a scope"):
        scopes_asked(['echo"read'])


# --- what the issuer answers --------------------------------------------------------------------


def test_a_good_answer_is_a_grant_that_does_not_show_its_token():
    grant = grant_from("echo", 200, {"access_token": "secret-token", "token_type": "Bearer",
                                     "expires_in": 600})
    assert grant == Grant("secret-token", 600.0)
    assert "secret-token" not in repr(grant)
    assert grant_from("echo", 200, {"access_token": "t", "token_type": "bearer"}).expires_in is None


@pytest.mark.parametrize("answer", [{}, {"access_token": "t"}, {"access_token": "", "token_type": "Bearer"},
                                    {"access_token": "t", "token_type": "mac"}])
def test_an_answer_without_a_bearer_token_is_a_failed_call(answer):
    with pytest.raises(kit.CallFailed, match="holds no bearer access token"):
        grant_from("echo", 200, answer)


def test_a_refusal_is_call_refused_with_the_issuers_words():
    with pytest.raises(kit.CallRefused) as caught:
        grant_from("echo", 400, {"error": "invalid_scope", "error_description":
                                 "the subject token and hello do not both allow echo.read"})
    refused = caught.value
    assert (refused.service, refused.error) == ("echo", "invalid_scope")
    assert str(refused) == ("call to echo failed: the issuer refused a token for echo (invalid_scope: "
                            "the subject token and hello do not both allow echo.read)")


def test_rejected_credentials_are_a_failed_call_with_a_hint_not_a_refusal():
    with pytest.raises(kit.CallFailed) as caught:
        grant_from("echo", 401, {"error": "invalid_client",
                                 "error_description": "client authentication failed"})
    assert not isinstance(caught.value, kit.CallRefused)
    assert str(caught.value) == ("call to echo failed: the issuer did not accept this service's client "
                                 "credentials (hint: check LEAGUE_CLIENT_ID and the secret in "
                                 "LEAGUE_CLIENT_SECRET_FILE)")


def test_a_broken_issuer_is_a_failed_call_naming_the_status():
    with pytest.raises(kit.CallFailed, match=r"^call to echo failed: the issuer answered 503$"):
        grant_from("echo", 503, {})
    with pytest.raises(kit.CallFailed, match=r"the issuer answered 400 \(unsupported_grant_type\)"):
        grant_from("echo", 400, {"error": "unsupported_grant_type"})


def test_the_issuers_words_cannot_forge_a_log_line_or_run_on():
    with pytest.raises(kit.CallRefused) as caught:
        grant_from("echo", 400, {"error": "invalid_grant",
                                 "error_description": "x\r\n{\"level\":" + "y" * 500})
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    assert len(caught.value.description) == 200 and caught.value.description.endswith("...")
    with pytest.raises(kit.CallFailed, match=r"answered 400 \(odd\?\)$"):
        grant_from("echo", 400, {"error": "odd\n"})


def test_basic_credentials_are_what_the_identity_service_reads_back():
    secret = "s3cr:et+with%odd chars"
    parsed = client_credentials(basic_authorization("hello", secret), {})
    assert parsed is not None and (parsed.client_id, parsed.secret) == ("hello", secret)


# --- the client's secret -------------------------------------------------------------------------


def test_the_secret_is_read_from_a_private_file(tmp_path):
    path = tmp_path / "hello.secret"
    path.write_text("the-secret\n")
    path.chmod(0o600)
    assert ClientCredentials("hello", path).secret() == "the-secret"
    path.chmod(0o640)
    with pytest.raises(kit.ClientConfigError, match=r"open to other users \(mode 640\)") as caught:
        ClientCredentials("hello", path).secret()
    assert "the-secret" not in str(caught.value) and f"chmod 600 {path}" in str(caught.value)


def test_a_missing_or_empty_secret_file_names_the_file(tmp_path):
    with pytest.raises(kit.ClientConfigError, match=r"cannot be read \(No such file or directory\)"):
        ClientCredentials("hello", tmp_path / "nope").secret()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(kit.ClientConfigError, match="is empty"):
        ClientCredentials("hello", empty).secret()


def test_the_client_id_defaults_to_the_service_and_can_be_set(tmp_path):
    assert ClientCredentials.from_environment("hello", {}) is None
    found = ClientCredentials.from_environment("hello", {kit.CLIENT_SECRET_FILE_ENV: str(tmp_path / "s")})
    assert found == ClientCredentials("hello", tmp_path / "s")
    named = ClientCredentials.from_environment("hello", {kit.CLIENT_SECRET_FILE_ENV: "/s",
                                                         kit.CLIENT_ID_ENV: "hello-prod"})
    assert named is not None and named.client_id == "hello-prod"


def test_settings_that_cannot_work_stop_the_service_at_startup(tmp_path):
    issuer = {"LEAGUE_OIDC_ISSUER": "https://identity.test"}
    with pytest.raises(kit.ClientConfigError, match="LEAGUE_SERVICE_URLS"):
        kit.ServiceClient.from_environment("hello", {kit.SERVICE_URLS_ENV: "not json"})
    # a secret the identity service has not written yet is no reason to stop: it comes a moment later
    later = kit.ServiceClient.from_environment("hello", {**issuer,
                                                         kit.CLIENT_SECRET_FILE_ENV: str(tmp_path / "x")})
    assert later.tokens is not None
    unreadable = tmp_path / "open"
    unreadable.write_text("x")
    unreadable.chmod(0o644)
    with pytest.raises(kit.ClientConfigError, match="open to other users"):
        kit.ServiceClient.from_environment("hello", {**issuer, kit.CLIENT_SECRET_FILE_ENV: str(unreadable)})
    secret = tmp_path / "s"
    secret.write_text("x")
    secret.chmod(0o600)
    with pytest.raises(kit.ClientConfigError, match=r"LEAGUE_OIDC_ISSUER: plain http to 10\.1\.1\.1"):
        kit.ServiceClient.from_environment("hello", {"LEAGUE_OIDC_ISSUER": "http://10.1.1.1:9400",
                                                     kit.CLIENT_SECRET_FILE_ENV: str(secret)})
    client = kit.ServiceClient.from_environment("hello", {**issuer, kit.CLIENT_SECRET_FILE_ENV: str(secret)})
    assert client.tokens is not None and client.tokens.credentials == ClientCredentials("hello", secret)


# --- the caller's token on the request's state ---------------------------------------------------

ISSUER = "https://identity.league.test"
KEY = ECKey.generate_key("P-256", {"kid": "k-1", "use": "sig", "alg": "ES256"}, private=True)


def token_for(audience: str = "hello", scope: str = "hello.read") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "user-7", "aud": audience, "exp": now + 300, "iat": now, "jti": str(now),
              "client_id": "league", "scope": scope}
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}, claims, KEY)


def test_a_caller_token_never_shows_itself():
    token = CallerToken("eyJ.secret.sig")
    assert token.reveal() == "eyJ.secret.sig"
    assert "secret" not in repr(token) and "secret" not in str(token) and "secret" not in f"{token}"
    assert "secret" not in repr({"state": token})
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(token)


def test_only_a_verified_token_is_kept_on_the_request_and_it_stays_out_of_the_log():
    seen: dict[str, Any] = {}

    async def look(request: Request) -> JSONResponse:
        seen["token"] = caller_token(request.scope["state"])
        seen["state"] = repr(request.scope["state"])
        return JSONResponse({})

    log = PipeLog()
    app = kit.instrument(Starlette(routes=[Route("/look", look)]), service="hello",
                         access={"/look": kit.PUBLIC}, registry=CollectorRegistry(), log=log.writer,
                         lifecycle=kit.Lifecycle(), auth=kit.AuthSettings(
                             issuer=ISSUER, jwks_uri=ISSUER + "/jwks",
                             jwks={"keys": [KEY.as_dict(private=False)]}))
    good = token_for()
    asyncio.run(call(app, "/look", headers=[(b"authorization", f"Bearer {good}".encode())]))
    assert isinstance(seen["token"], CallerToken) and seen["token"].reveal() == good
    assert good not in seen["state"] and "CallerToken(<hidden>)" in seen["state"]
    for refused in (token_for(audience="ledger"), "not-a-jwt"):
        asyncio.run(call(app, "/look", headers=[(b"authorization", f"Bearer {refused}".encode())]))
        assert seen["token"] is None
    asyncio.run(call(app, "/look"))
    assert seen["token"] is None
    app.settle()
    lines = b"".join(log.lines()).decode()
    assert '"user":"user-7"' in lines and good not in lines and good.split(".")[2] not in lines


# --- calls to a real server ------------------------------------------------------------------------


class Recorder:
    """A callee that answers `/whoami` with the headers it got, and `/text` with text."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append({**headers, ":path": scope["path"], ":method": scope["method"]})
        body, kind = (json.dumps({"got": scope["path"]}).encode(), b"application/json")
        if scope["path"].endswith("/text"):
            body, kind = b"plain words", b"text/plain"
        await send({"type": "http.response.start", "status": 201 if scope["method"] == "POST" else 200,
                    "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def callee() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    with serving(recorder) as port:
        yield recorder, port


def state(request_id: str | None = None, token: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"identity": None}
    if request_id is not None:
        found["request_id"] = request_id
    if token is not None:
        found[CALLER_TOKEN] = CallerToken(token)
    return {"type": "http", "state": found}


def test_an_anonymous_callers_call_carries_no_token_and_the_request_id(callee):
    recorder, port = callee
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}/echo"})
    answer = asyncio.run(client.on_behalf_of(state("req-42")).get("echo", "/whoami"))
    assert (answer.status, answer.ok, answer.json()) == (200, True, {"got": "/echo/whoami"})
    got = recorder.received[-1]
    assert got["x-request-id"] == "req-42" and "authorization" not in got
    assert got["accept"] == "application/json" and got[":method"] == "GET"


def test_json_is_posted_and_any_status_is_an_answer(callee):
    recorder, port = callee
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    answer = asyncio.run(client.as_service().post("echo", "/items", json={"a": 1}, headers={"X-Extra": "1"}))
    assert answer.status == 201 and answer.ok
    got = recorder.received[-1]
    assert got["content-type"] == "application/json" and got["x-extra"] == "1"
    assert "x-request-id" not in got and "authorization" not in got  # no request, no credentials


def test_an_answer_that_is_not_json_says_so(callee):
    _, port = callee
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    answer = asyncio.run(client.as_service().get("echo", "/text"))
    assert answer.text == "plain words"
    with pytest.raises(kit.CallFailed, match=r"call to echo failed: the answer \(200\) is not JSON"):
        answer.json()


def test_a_callee_nobody_answers_for_is_a_failed_call_naming_it():
    port = free_port()
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    with pytest.raises(kit.CallFailed) as caught:
        asyncio.run(client.as_service().get("echo", "/whoami"))
    assert str(caught.value).startswith(f"call to echo failed: no answer from http://127.0.0.1:{port}: "
                                        "ConnectionRefusedError")


def test_a_callers_token_without_an_issuer_to_exchange_it_at_is_not_forwarded(callee):
    recorder, port = callee
    before = len(recorder.received)
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    with pytest.raises(kit.CallFailed, match=r"no issuer is configured .* LEAGUE_OIDC_ISSUER"):
        asyncio.run(client.on_behalf_of(state(token="eyJ.user.sig")).get("echo", "/whoami"))
    assert len(recorder.received) == before


def test_a_callers_token_without_credentials_to_exchange_it_with_is_not_forwarded(callee):
    recorder, port = callee
    before = len(recorder.received)
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"}, issuer=ISSUER)
    with pytest.raises(kit.CallFailed, match=r"no client credentials .*LEAGUE_CLIENT_SECRET_FILE"):
        asyncio.run(client.on_behalf_of(state(token="eyJ.user.sig")).get("echo", "/whoami"))
    assert len(recorder.received) == before


@pytest.mark.parametrize("header", ["Authorization", "x-request-id", "Host"])
def test_headers_the_client_sets_cannot_be_overridden(callee, header):
    _, port = callee
    client = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    with pytest.raises(ValueError, match="set by the service client"):
        asyncio.run(client.as_service().get("echo", "/whoami", headers={header: "x"}))
