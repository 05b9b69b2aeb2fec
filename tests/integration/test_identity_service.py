"""The identity service, started for real and spoken to over HTTP only.

Every token it issues is checked independently with joserfc against the JWKS it
publishes. Every secret the tests handle (passwords, client secrets, tokens, device
codes) is collected, and the last test reads the service's whole log and finds none.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from sevenleague.testing import Response, ServedApp, free_port, http_request, serve_app
from sevenleague.testing.secrets import keep_secret

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
KEY_GRACE = 1.5


@dataclass
class Identity:
    served: ServedApp
    home: Path
    issuer: str
    secrets: list[str] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # client_id -> secret
    admin_token: str = ""

    @property
    def url(self) -> str:
        return self.served.url

    def keep(self, *values: str) -> None:
        self.secrets.extend(v for v in values if v)
        keep_secret(*values)  # and the session scans every log for them


def post_form(url: str, data: dict[str, str] | str | bytes,
              headers: dict[str, str] | None = None) -> Response:
    body = data if isinstance(data, bytes) else (data if isinstance(data, str) else urlencode(data)).encode()
    return http_request(url, method="POST", headers={**FORM, **(headers or {})}, body=body)


def post_json(url: str, data: Any, token: str) -> Response:
    return http_request(url, method="POST", body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


def get_json(url: str, token: str) -> Response:
    return http_request(url, headers={"Authorization": f"Bearer {token}"})


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def jwks_of(identity: Identity) -> KeySet:
    response = http_request(identity.url + "/jwks.json")
    assert response.status == 200
    return KeySet.import_key_set(response.json())


def verify(identity: Identity, token: str, audience: str) -> jwt.Token:
    """An independent check of an access token: joserfc, the published keys, RFC 9068's rules."""
    decoded = jwt.decode(token, jwks_of(identity), algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["typ"] == "at+jwt"
    published = http_request(identity.url + "/jwks.json").json()["keys"]
    assert decoded.header["kid"] in {key["kid"] for key in published}
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": identity.issuer}, aud={"essential": True, "value": audience},
        sub={"essential": True}, exp={"essential": True}, iat={"essential": True}, jti={"essential": True},
        client_id={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims["exp"] - decoded.claims["iat"] <= 600
    return decoded


# --- the device flow, as `league login` and a browser would do it ------------------------------


@dataclass
class LoginForm:
    cookie: str
    csrf_token: str


def open_form(identity: Identity, user_code: str = "") -> LoginForm:
    response = http_request(identity.url + "/device" + (f"?user_code={user_code}" if user_code else ""))
    assert response.status == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.body.decode())
    assert token is not None
    return LoginForm(cookie.split(";", 1)[0], token.group(1))


def submit_form(identity: Identity, form: LoginForm, **fields: str) -> Response:
    return post_form(identity.url + "/device", {"csrf_token": form.csrf_token, **fields},
                     headers={"Cookie": form.cookie})


def start_device(identity: Identity, **params: str) -> dict[str, Any]:
    response = post_form(identity.url + "/device_authorization", {"client_id": "league", **params})
    assert response.status == 200, response.body
    grant = response.json()
    identity.keep(grant["device_code"], grant["user_code"])
    return grant


def poll(identity: Identity, device_code: str) -> Response:
    return post_form(identity.url + "/token",
                     {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "league"})


def login(identity: Identity, username: str, password: str, **params: str) -> dict[str, Any]:
    grant = start_device(identity, **params)
    form = open_form(identity, grant["user_code"])
    approved = submit_form(identity, form, user_code=grant["user_code"], username=username, password=password)
    assert approved.status == 200, approved.body
    answer = poll(identity, grant["device_code"])
    assert answer.status == 200, answer.body
    tokens = answer.json()
    identity.keep(tokens["access_token"], tokens.get("id_token", ""), tokens["refresh_token"])
    return tokens


def client_token(identity: Identity, client_id: str, **params: str) -> Response:
    response = post_form(identity.url + "/token", {"grant_type": "client_credentials", **params},
                         headers=basic(client_id, identity.accounts[client_id]))
    if response.status == 200:
        identity.keep(response.json()["access_token"])
    return response


def add_user(identity: Identity, username: str, roles: list[str]) -> str:
    response = post_json(identity.url + "/api/users", {"username": username, "roles": roles},
                         identity.admin_token)
    assert response.status == 201, response.body
    password = response.json()["password"]
    identity.keep(password)
    return str(password)


def add_account(identity: Identity, name: str, scopes: list[str], audiences: list[str]) -> None:
    response = post_json(identity.url + "/api/service-accounts",
                         {"name": name, "scopes": scopes, "audiences": audiences}, identity.admin_token)
    assert response.status == 201, response.body
    identity.accounts[name] = response.json()["client_secret"]
    identity.keep(identity.accounts[name])


def start(tmp_path: Path, **env: str) -> Iterator[tuple[ServedApp, Path, str]]:
    home = tmp_path / "home"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    environment = {"LEAGUE_HOME": str(home), "LEAGUE_OIDC_ISSUER": issuer,
                   "LEAGUE_IDENTITY_KEY_GRACE": str(KEY_GRACE), "LEAGUE_IDENTITY_DEVICE_INTERVAL": "1",
                   "LEAGUE_IDENTITY_LOGIN_RATE": "200/60", **env}
    with serve_app("sevenleague.identity.service:app", tmp_path, port=port, env=environment) as served:
        yield served, home, issuer


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Identity]:
    for served, home, issuer in start(tmp_path_factory.mktemp("identity")):
        found = Identity(served, home, issuer)
        password = (home / "identity" / "admin-password").read_text().strip()
        found.keep(password)
        found.admin_token = login(found, "admin", password)["access_token"]
        add_account(found, "hello", ["ledger.read", "ledger.write"], ["hello", "ledger"])
        add_account(found, "ledger", ["audit.write"], ["audit"])
        yield found


# --- discovery and keys ---------------------------------------------------------------------------


def test_discovery_names_the_issuer_its_endpoints_and_es256(identity):
    document = http_request(identity.url + "/.well-known/openid-configuration").json()
    assert document["issuer"] == identity.issuer
    assert document["jwks_uri"] == identity.issuer + "/jwks.json"
    assert document["token_endpoint"] == identity.issuer + "/token"
    assert document["device_authorization_endpoint"] == identity.issuer + "/device_authorization"
    assert set(document["grant_types_supported"]) == {"client_credentials", EXCHANGE_GRANT, DEVICE_GRANT,
                                                      "refresh_token"}
    methods = set(document["token_endpoint_auth_methods_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= methods
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "identity.admin" in document["scopes_supported"]


def test_jwks_holds_public_p256_keys_only(identity):
    keys = http_request(identity.url + "/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
        assert not {"d", "p", "q", "k"} & set(key)


def test_keys_database_and_first_admin_password_are_private(identity):
    root = identity.home / "identity"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "keys").stat().st_mode) == 0o700
    key_files = list((root / "keys").glob("*.json"))
    assert key_files and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in key_files)
    assert stat.S_IMODE((root / "admin-password").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "identity.sqlite3").stat().st_mode) == 0o600


# --- client credentials ------------------------------------------------------------------------------


def test_client_credentials_with_basic_auth_issue_an_rfc9068_token(identity):
    response = client_token(identity, "hello", audience="ledger", scope="ledger.read")
    assert response.status == 200, response.body
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["token_type"] == "Bearer" and answer["scope"] == "ledger.read"
    assert 0 < answer["expires_in"] <= 600
    claims = verify(identity, answer["access_token"], "ledger").claims
    assert claims["sub"] == "service:hello" and claims["client_id"] == "hello"
    assert claims["scope"] == "ledger.read" and claims["roles"] == []
    assert claims["preferred_username"] == "hello"


def test_client_credentials_with_the_secret_in_the_body(identity):
    response = post_form(identity.url + "/token", {
        "grant_type": "client_credentials", "client_id": "hello", "client_secret": identity.accounts["hello"],
        "resource": "ledger"})
    assert response.status == 200, response.body
    identity.keep(response.json()["access_token"])
    claims = verify(identity, response.json()["access_token"], "ledger").claims
    assert set(claims["scope"].split()) == {"ledger.read", "ledger.write"}


def test_client_authentication_failures_are_401_with_a_challenge_and_no_secret(identity):
    wrong = post_form(identity.url + "/token", {"grant_type": "client_credentials", "audience": "ledger"},
                      headers=basic("hello", "not-the-secret"))
    unknown = post_form(identity.url + "/token", {"grant_type": "client_credentials", "audience": "ledger"},
                        headers=basic("nobody", "not-the-secret"))
    missing = post_form(identity.url + "/token", {"grant_type": "client_credentials", "audience": "ledger"})
    for response in (wrong, unknown, missing):
        assert response.status == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")
        assert b"not-the-secret" not in response.body
    assert wrong.body == unknown.body


def test_a_client_gets_only_audiences_and_scopes_it_was_given(identity):
    other_audience = client_token(identity, "hello", audience="audit")
    assert other_audience.status == 400 and other_audience.json()["error"] == "invalid_target"
    other_scope = client_token(identity, "hello", audience="ledger", scope="ledger.admin")
    assert other_scope.status == 400 and other_scope.json()["error"] == "invalid_scope"
    no_audience = client_token(identity, "hello")
    assert no_audience.status == 400 and no_audience.json()["error"] == "invalid_request"


def test_unknown_and_missing_grant_types_are_rfc6749_errors(identity):
    unknown = post_form(identity.url + "/token", {"grant_type": "password", "username": "a", "password": "b"})
    assert unknown.status == 400 and unknown.json()["error"] == "unsupported_grant_type"
    missing = post_form(identity.url + "/token", {"audience": "ledger"})
    assert missing.status == 400 and missing.json()["error"] == "invalid_request"


# --- the device flow and the login form -----------------------------------------------------------


def test_device_flow_pending_slow_down_approve_then_used(identity):
    password = add_user(identity, "ada", ["developer"])
    grant = start_device(identity, scope="openid hello.read hello.write hello.admin", audience="hello")
    assert grant["verification_uri"] == identity.issuer + "/device"
    assert grant["interval"] == 1 and grant["expires_in"] > 0
    assert re.fullmatch(r"[B-Z]{4}-[B-Z]{4}", grant["user_code"])
    first = poll(identity, grant["device_code"])
    assert first.status == 400 and first.json()["error"] == "authorization_pending"
    too_soon = poll(identity, grant["device_code"])
    assert too_soon.status == 400 and too_soon.json()["error"] == "slow_down"

    form = open_form(identity, grant["user_code"])
    page = submit_form(identity, form, user_code=grant["user_code"].lower().replace("-", ""),
                       username="ada", password=password)
    assert page.status == 200 and b"Signed in as ada" in page.body
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    time.sleep(1.1)
    answer = poll(identity, grant["device_code"])
    assert answer.status == 200, answer.body
    tokens = answer.json()
    identity.keep(tokens["access_token"], tokens["id_token"])
    claims = verify(identity, tokens["access_token"], "hello").claims
    assert claims["sub"].startswith("u-") and claims["preferred_username"] == "ada"
    assert claims["roles"] == ["developer"] and claims["client_id"] == "league"
    assert claims["scope"] == "openid hello.read hello.write"  # a developer is no admin
    id_token = jwt.decode(tokens["id_token"], jwks_of(identity), algorithms=["ES256"])
    assert id_token.header["typ"] == "JWT" and id_token.claims["aud"] == "league"

    again = poll(identity, grant["device_code"])
    assert again.status == 400 and again.json()["error"] == "invalid_grant"


def test_a_denied_device_gets_access_denied(identity):
    password = add_user(identity, "bob", ["viewer"])
    grant = start_device(identity)
    page = submit_form(identity, open_form(identity), user_code=grant["user_code"], username="bob",
                       password=password, action="deny")
    assert page.status == 200 and b"Denied" in page.body
    answer = poll(identity, grant["device_code"])
    assert answer.status == 400 and answer.json()["error"] == "access_denied"


def test_the_device_endpoint_is_only_for_the_league_client(identity):
    response = post_form(identity.url + "/device_authorization", {"client_id": "hello"})
    assert response.status == 401 and response.json()["error"] == "invalid_client"
    bad_scope = post_form(identity.url + "/device_authorization", {"client_id": "league", "scope": "no'pe"})
    assert bad_scope.status == 400 and bad_scope.json()["error"] == "invalid_scope"


def test_the_login_form_refuses_a_post_without_its_csrf_cookie_or_token(identity):
    form = open_form(identity)
    grant = start_device(identity)
    fields = {"user_code": grant["user_code"], "username": "admin", "password": "whatever-it-is"}
    no_cookie = post_form(identity.url + "/device", {"csrf_token": form.csrf_token, **fields})
    wrong_token = post_form(identity.url + "/device", {"csrf_token": "x" * 43, **fields},
                            headers={"Cookie": form.cookie})
    other_cookie = post_form(identity.url + "/device", {"csrf_token": form.csrf_token, **fields},
                             headers={"Cookie": open_form(identity).cookie})
    for response in (no_cookie, wrong_token, other_cookie):
        assert response.status == 403 and b"expired" in response.body
    assert poll(identity, grant["device_code"]).json()["error"] == "authorization_pending"


def test_failed_logins_look_the_same_whether_or_not_the_user_exists(identity):
    add_user(identity, "carol", ["viewer"])
    grant = start_device(identity)
    answers = [submit_form(identity, open_form(identity), user_code=grant["user_code"], username=name,
                           password="wrong-password-123") for name in ("carol", "nobody-here")]
    assert [a.status for a in answers] == [403, 403]
    bodies = [re.sub(rb'value="[^"]*"', b"", a.body) for a in answers]
    assert bodies[0] == bodies[1]


def test_five_failures_in_a_row_lock_the_account_even_against_the_right_password(identity):
    password = add_user(identity, "dave", ["developer"])
    grant = start_device(identity)
    for _ in range(5):
        failed = submit_form(identity, open_form(identity), user_code=grant["user_code"], username="dave",
                             password="not-daves-password")
        assert failed.status == 403
    right = submit_form(identity, open_form(identity), user_code=grant["user_code"], username="dave",
                        password=password)
    assert right.status == 403
    listed = get_json(identity.url + "/api/users", identity.admin_token).json()["users"]
    users = {u["username"]: u for u in listed}
    assert users["dave"]["locked_until"] > time.time() + 800
    unlocked = http_request(identity.url + "/api/users/dave/unlock", method="POST",
                            headers={"Authorization": f"Bearer {identity.admin_token}"})
    assert unlocked.status == 200 and unlocked.json()["locked_until"] is None
    assert submit_form(identity, open_form(identity), user_code=grant["user_code"], username="dave",
                       password=password).status == 200


def test_the_login_form_is_rate_limited_per_address(tmp_path):
    for served, _home, issuer in start(tmp_path, LEAGUE_IDENTITY_LOGIN_RATE="3/60"):
        found = Identity(served, tmp_path, issuer)
        statuses = []
        for _ in range(4):
            form = open_form(found)
            statuses.append(submit_form(found, form, user_code="BCDF-GHJK", username="x",
                                        password="wrong-password-123").status)
        assert statuses == [403, 403, 403, 429]
        form = open_form(found)
        limited = submit_form(found, form, user_code="BCDF-GHJK", username="x", password="y")
        assert limited.status == 429 and 1 <= int(limited.headers["retry-after"]) <= 60


# --- token exchange ----------------------------------------------------------------------------------


def test_token_exchange_keeps_the_user_and_names_the_service_as_actor(identity):
    password = add_user(identity, "erin", ["developer"])
    user_token = login(identity, "erin", password, audience="hello",
                       scope="hello.read ledger.read ledger.write")["access_token"]
    response = post_form(identity.url + "/token", {
        "grant_type": EXCHANGE_GRANT, "subject_token": user_token, "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "ledger", "scope": "ledger.read"}, headers=basic("hello", identity.accounts["hello"]))
    assert response.status == 200, response.body
    answer = response.json()
    identity.keep(answer["access_token"])
    assert answer["issued_token_type"] == ACCESS_TOKEN_TYPE
    user_claims = verify(identity, user_token, "hello").claims
    claims = verify(identity, answer["access_token"], "ledger").claims
    assert claims["sub"] == user_claims["sub"] and claims["preferred_username"] == "erin"
    assert claims["act"] == {"sub": "service:hello"} and claims["client_id"] == "hello"
    assert claims["scope"] == "ledger.read" and claims["roles"] == ["developer"]
    assert claims["exp"] <= user_claims["exp"]
    with pytest.raises(Exception, match="aud"):
        verify(identity, answer["access_token"], "hello")  # a token for ledger is not one for hello

    everything = post_form(identity.url + "/token", {
        "grant_type": EXCHANGE_GRANT, "subject_token": user_token, "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "ledger"}, headers=basic("hello", identity.accounts["hello"]))
    identity.keep(everything.json()["access_token"])
    assert set(everything.json()["scope"].split()) == {"ledger.read", "ledger.write"}


def test_token_exchange_refuses_what_the_caller_may_not_do(identity):
    password = add_user(identity, "frank", ["viewer"])
    user_token = login(identity, "frank", password, audience="hello", scope="hello.read")["access_token"]
    hello = basic("hello", identity.accounts["hello"])
    exchange = {"grant_type": EXCHANGE_GRANT, "subject_token": user_token,
                "subject_token_type": ACCESS_TOKEN_TYPE}
    not_addressed_to_caller = post_form(identity.url + "/token", {**exchange, "audience": "audit"},
                                        headers=basic("ledger", identity.accounts["ledger"]))
    assert not_addressed_to_caller.status == 400
    assert not_addressed_to_caller.json()["error"] == "invalid_grant"
    unreachable = post_form(identity.url + "/token", {**exchange, "audience": "audit"}, headers=hello)
    assert unreachable.status == 400 and unreachable.json()["error"] == "invalid_target"
    more_scope = post_form(identity.url + "/token",
                           {**exchange, "audience": "ledger", "scope": "ledger.write"},
                           headers=hello)
    assert more_scope.status == 400 and more_scope.json()["error"] == "invalid_scope"
    garbage = post_form(identity.url + "/token", {**exchange, "subject_token": "a.b.c", "audience": "ledger"},
                        headers=hello)
    assert garbage.status == 400 and garbage.json()["error"] == "invalid_grant"
    wrong_type = post_form(identity.url + "/token",
                           {**exchange, "subject_token_type": "jwt", "audience": "ledger"},
                           headers=hello)
    assert wrong_type.status == 400 and wrong_type.json()["error"] == "invalid_request"

    disabled = http_request(identity.url + "/api/users/frank/disable", method="POST",
                            headers={"Authorization": f"Bearer {identity.admin_token}"})
    assert disabled.status == 200 and disabled.json()["disabled"] is True
    after = post_form(identity.url + "/token", {**exchange, "audience": "ledger"}, headers=hello)
    assert after.status == 400 and after.json()["error"] == "invalid_grant"


# --- the admin API ------------------------------------------------------------------------------------


def test_the_admin_api_needs_an_identity_admin_token(identity):
    assert http_request(identity.url + "/api/users").status == 401
    assert get_json(identity.url + "/api/users", "not.a.token").status == 401
    password = add_user(identity, "grace", ["operator"])
    operator = login(identity, "grace", password)["access_token"]
    assert "identity.admin" not in verify(identity, operator, "identity").claims["scope"]
    assert get_json(identity.url + "/api/users", operator).status == 403
    add_account(identity, "robot", ["identity.read"], ["identity"])
    robot = client_token(identity, "robot").json()["access_token"]
    assert get_json(identity.url + "/api/users", robot).status == 403
    for_hello = client_token(identity, "hello", audience="ledger").json()["access_token"]
    assert get_json(identity.url + "/api/users", for_hello).status == 401

    listed = get_json(identity.url + "/api/users", identity.admin_token).json()["users"]
    assert {"admin", "grace"} <= {u["username"] for u in listed}
    assert all("password" not in json.dumps(u) for u in listed)
    answer = get_json(identity.url + "/api/service-accounts", identity.admin_token)
    accounts = answer.json()["service_accounts"]
    assert {a["client_id"] for a in accounts} >= {"hello", "ledger", "robot"}
    assert all("secret" not in json.dumps(a) for a in accounts)
    record = get_json(identity.url + "/api/tokens?sub=service:hello", identity.admin_token).json()["tokens"]
    assert record and all(set(t) >= {"jti", "sub", "aud", "exp"} and "token" not in t for t in record)


def test_admin_api_input_errors_are_400_or_409(identity):
    url = identity.url + "/api/users"
    assert post_json(url, {"username": "Not Valid"}, identity.admin_token).status == 400
    assert post_json(url, {"username": "zed", "roles": ["root"]}, identity.admin_token).status == 400
    assert post_json(url, {"username": "zed", "password": "short"}, identity.admin_token).status == 400
    assert post_json(url, ["a", "list"], identity.admin_token).status == 400
    assert post_json(url, {"username": "admin", "password": "x" * 20}, identity.admin_token).status == 409
    garbage = http_request(url, method="POST", body=b"\xff{", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {identity.admin_token}"})
    assert garbage.status == 400
    assert http_request(identity.url + "/api/users/nobody/disable", method="POST",
                        headers={"Authorization": f"Bearer {identity.admin_token}"}).status == 400


# --- rotation ------------------------------------------------------------------------------------------


def test_rotation_publishes_the_new_key_first_and_keeps_the_old_one_for_its_tokens(identity):
    before = client_token(identity, "hello", audience="ledger").json()["access_token"]
    old_kid = jwt.decode(before, jwks_of(identity)).header["kid"]
    rotated = http_request(identity.url + "/api/keys/rotate", method="POST",
                           headers={"Authorization": f"Bearer {identity.admin_token}"})
    assert rotated.status == 201, rotated.body
    new_kid = rotated.json()["kid"]
    published = {key["kid"] for key in http_request(identity.url + "/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= published
    during_grace = client_token(identity, "hello", audience="ledger").json()["access_token"]
    assert jwt.decode(during_grace, jwks_of(identity)).header["kid"] == old_kid

    time.sleep(KEY_GRACE + 0.2)
    after = client_token(identity, "hello", audience="ledger").json()["access_token"]
    assert verify(identity, after, "ledger").header["kid"] == new_kid
    assert verify(identity, before, "ledger").header["kid"] == old_kid  # still published
    states = {k["kid"]: k for k in get_json(identity.url + "/api/keys", identity.admin_token).json()["keys"]}
    assert states[new_kid]["state"] == "signing" and states[old_kid]["state"] == "retired"
    assert states[old_kid]["published_until"] >= states[old_kid]["retired_at"] + 600


# --- malformed input and the log -----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers", "body"), [
    ("/token", {"Content-Type": "application/json"}, b'{"grant_type": "client_credentials"}'),
    ("/token", {}, b"grant_type=client_credentials"),
    ("/token", FORM, b"\xff\xfe\x00garbage"),
    ("/token", FORM, b"grant_type=client_credentials&grant_type=client_credentials"),
    ("/token", FORM, b"grant_type=%ZZ%"),
    ("/token", FORM, b"grant_type=" + b"a" * 20000),
    ("/token", FORM, b"&".join(b"p%d=1" % i for i in range(100))),
    ("/token", {**FORM, "Authorization": "Basic !!!notbase64"}, b"grant_type=client_credentials"),
    ("/token", {**FORM, "Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
     b"grant_type=client_credentials"),
    ("/token", {**FORM, "Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
     b"grant_type=client_credentials"),
    ("/token", FORM, b"grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=league"),
    ("/token", FORM, b"grant_type=" + DEVICE_GRANT.encode() + b"&client_id=league&device_code=x"),
    ("/token", FORM, b"grant_type=urn:ietf:params:oauth:grant-type:token-exchange"),
    ("/token", FORM, b"client_id=league&scope=%00"),
    ("/device_authorization", FORM, b"client_id=league&audience=../../etc"),
    ("/device_authorization", FORM, b"client_id=league&scope=" + b"+".join(b"s%d.r" % i for i in range(50))),
    ("/device_authorization", {"Content-Type": "text/plain"}, b"client_id=league"),
    ("/device", FORM, b"\xff\xfe"),
    ("/device", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
    ("/device", FORM, b"csrf_token=&user_code=&username=&password="),
])
def test_malformed_requests_are_refused_without_a_server_error(identity, path, headers, body):
    response = http_request(identity.url + path, method="POST", headers=headers, body=body)
    assert 400 <= response.status < 500, response.body
    if path != "/device":
        assert "error" in response.json()


def test_unknown_paths_and_methods_are_not_server_errors(identity):
    assert http_request(identity.url + "/token").status == 405
    assert http_request(identity.url + "/device?user_code=%ff%fe").status == 200
    assert http_request(identity.url + "/nowhere").status in (401, 404)
    assert http_request(identity.url + "/api/keys/rotate", method="POST",
                        headers={"Authorization": f"Bearer {identity.admin_token}",
                                 "Content-Type": "application/json"},
                        body=b'{"grace_seconds": "soon"}').status == 400


def test_the_openapi_description_is_json(identity):
    document = http_request(identity.url + "/openapi.json").json()
    paths = set(document["paths"])
    assert {"/token", "/device_authorization", "/device", "/api/users", "/jwks.json"} <= paths


def test_no_password_secret_or_token_reaches_the_log(identity):
    time.sleep(0.3)  # the kit flushes its log at least every 0.2 s
    log = identity.served.log_path.read_text()
    assert "request" in log and identity.secrets
    leaked = [secret[:8] + "..." for secret in identity.secrets if secret in log]
    assert leaked == []
    assert '"status":500' not in log and "Traceback" not in log
