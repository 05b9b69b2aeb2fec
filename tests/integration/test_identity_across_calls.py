"""A user's identity carried from one service to the next: hello calls echo on the user's behalf.

Three real processes over https, each with its own certificate from a test CA: the
identity service, echo (tests/integration/apps/echo.py) and hello. The user signs in
with the device flow for hello; hello's `/whoami/{service}` asks echo's `/whoami`
through the kit's service client, which exchanges the user's token for one addressed to
echo. Every secret the test handles is collected, and the last test reads the three
services' logs and finds none.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from sevenleague.pki import ensure_ca, issue_leaf
from sevenleague.testing import Response, ServedApp, free_port, http_request, serve_app
from sevenleague.testing.secrets import keep_secret

pytestmark = pytest.mark.integration

APPS = Path(__file__).parent / "apps"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_SCOPE = "hello.read echo.read"


@dataclass
class Eco:
    """The three services, the CA they trust, and every secret the test saw."""

    ca_file: Path
    identity: ServedApp
    issuer: str
    echo: ServedApp | None = None
    hello: ServedApp | None = None
    secrets: list[str] = field(default_factory=list)
    admin_token: str = ""

    def keep(self, *values: str) -> None:
        self.secrets.extend(value for value in values if value)
        keep_secret(*values)  # and the session scans every log for them

    def request(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Response:
        return http_request(url, method=method, headers=headers, body=body, ca_file=self.ca_file, timeout=15)

    def post_form(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        return self.request(self.issuer + path, method="POST", headers={**FORM, **(headers or {})},
                            body=urlencode(data).encode())

    def admin_post(self, path: str, data: dict[str, Any]) -> Response:
        return self.request(self.issuer + path, method="POST", body=json.dumps(data).encode(),
                            headers={"Content-Type": "application/json",
                                     "Authorization": f"Bearer {self.admin_token}"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, read without checking (the services under test do the checking)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- the device flow, as `league login` and a browser do it (see test_identity_service.py) ------


def login(eco: Eco, username: str, password: str, **params: str) -> str:
    """An access token for `username`, by the device flow and the login form."""
    started = eco.post_form("/device_authorization", {"client_id": "league", **params})
    assert started.status == 200, started.body
    grant = started.json()
    eco.keep(grant["device_code"], grant["user_code"])
    page = eco.request(eco.issuer + "/device?" + urlencode({"user_code": grant["user_code"]}))
    assert page.status == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.body.decode())
    assert csrf is not None
    eco.keep(csrf.group(1))
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    approved = eco.post_form("/device", {"csrf_token": csrf.group(1), "user_code": grant["user_code"],
                                         "username": username, "password": password},
                             headers={"Cookie": cookie})
    assert approved.status == 200, approved.body
    answer = eco.post_form("/token", {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"],
                                      "client_id": "league"})
    assert answer.status == 200, answer.body
    tokens = answer.json()
    eco.keep(tokens["access_token"], tokens.get("refresh_token", ""), tokens.get("id_token", ""))
    return str(tokens["access_token"])


def add_user(eco: Eco, username: str, roles: list[str]) -> tuple[str, str]:
    """(user id, password) of a new user."""
    response = eco.admin_post("/api/users", {"username": username, "roles": roles})
    assert response.status == 201, response.body
    answer = response.json()
    eco.keep(answer["password"])
    return answer["user"]["id"], answer["password"]


def add_account(eco: Eco, name: str, scopes: list[str], audiences: list[str]) -> str:
    response = eco.admin_post("/api/service-accounts",
                              {"name": name, "scopes": scopes, "audiences": audiences})
    assert response.status == 201, response.body
    secret = response.json()["client_secret"]
    eco.keep(secret)
    return str(secret)


# --- the eco-system -------------------------------------------------------------------------


def leaf_bundle(ca: Any, name: str) -> Path:
    return issue_leaf(ca, name, ["localhost"], ["127.0.0.1"]).bundle


@pytest.fixture(scope="module")
def eco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Eco]:
    root = tmp_path_factory.mktemp("across")
    ca = ensure_ca(root / "pki", "across")
    home = root / "home"
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    trust = {"LEAGUE_OIDC_ISSUER": issuer, "LEAGUE_CA_FILE": str(ca.ca_file)}
    identity_env = {"LEAGUE_HOME": str(home), **trust, "LEAGUE_IDENTITY_DEVICE_INTERVAL": "1",
                    "LEAGUE_IDENTITY_LOGIN_RATE": "200/60"}
    with serve_app("sevenleague.identity.service:app", root, port=port, env=identity_env,
                   tls_bundle=leaf_bundle(ca, "identity-1"), ca_file=ca.ca_file) as identity:
        found = Eco(ca.ca_file, identity, issuer)
        admin_password = (home / "identity" / "admin-password").read_text().strip()
        found.keep(admin_password)
        found.admin_token = login(found, "admin", admin_password)
        secret_file = root / "hello.secret"
        secret_file.write_text(add_account(found, "hello", ["echo.read"], ["echo"]) + "\n")
        secret_file.chmod(0o600)
        with serve_app("echo:app", root, env=trust, pythonpath=[APPS], tls_bundle=leaf_bundle(ca, "echo-1"),
                       ca_file=ca.ca_file) as echo:
            hello_env = {**trust, "LEAGUE_SERVICE_URLS": json.dumps({"echo": echo.url}),
                         "LEAGUE_CLIENT_SECRET_FILE": str(secret_file)}
            with serve_app("hello.app:app", root, env=hello_env, tls_bundle=leaf_bundle(ca, "hello-1"),
                           ca_file=ca.ca_file) as hello:
                found.echo, found.hello = echo, hello
                yield found


@pytest.fixture(scope="module")
def user(eco: Eco) -> dict[str, str]:
    user_id, password = add_user(eco, "uma", ["developer"])
    return {"id": user_id, "password": password,
            "token": login(eco, "uma", password, audience="hello", scope=USER_SCOPE)}


def served(app: ServedApp | None) -> ServedApp:
    assert app is not None
    return app


def request_lines(app: ServedApp | None, path: str) -> list[dict[str, Any]]:
    """The request log lines for `path`, waiting out the kit's 0.2 s flush."""
    time.sleep(0.5)
    return [r for r in served(app).log_records() if r.get("msg") == "request" and r.get("path") == path]


# --- tests -------------------------------------------------------------------------------------


def test_the_callee_sees_the_user_as_subject_and_hello_as_actor(eco, user):
    response = eco.request(served(eco.hello).url + "/whoami/echo", headers=bearer(user["token"]))
    assert response.status == 200, response.body
    assert response.json() == {"service": "echo", "subject": user["id"], "client": "hello",
                               "actor": "service:hello", "scopes": ["echo.read"]}
    assert claims_of(user["token"])["aud"] == "hello"


def test_both_log_lines_name_the_user_and_share_the_request_id(eco, user):
    response = eco.request(served(eco.hello).url + "/whoami/echo", headers=bearer(user["token"]))
    assert response.status == 200, response.body
    request_id = response.headers["x-request-id"]
    hello_line = next(r for r in request_lines(eco.hello, "/whoami/echo") if r["request_id"] == request_id)
    echo_line = next(r for r in request_lines(eco.echo, "/whoami") if r["request_id"] == request_id)
    assert (hello_line["user"], hello_line["client"], hello_line.get("actor")) == (user["id"], "league", None)
    assert (echo_line["user"], echo_line["client"], echo_line["actor"]) == (
        user["id"], "hello", "service:hello")
    assert hello_line["status"] == echo_line["status"] == 200


def test_a_sent_request_id_follows_the_call(eco, user):
    headers = {**bearer(user["token"]), "X-Request-ID": "across-calls-1"}
    assert eco.request(served(eco.hello).url + "/whoami/echo", headers=headers).status == 200
    lines = request_lines(eco.echo, "/whoami")
    assert [r["status"] for r in lines if r["request_id"] == "across-calls-1"] == [200]


def test_concurrent_calls_for_one_caller_share_one_exchange_and_later_ones_reuse_it(eco):
    _, password = add_user(eco, "wes", ["viewer"])
    token = login(eco, "wes", password, audience="hello", scope=USER_SCOPE)
    before = len(request_lines(eco.identity, "/token"))
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: eco.request(served(eco.hello).url + "/whoami/echo",
                                                      headers=bearer(token)), range(6)))
    assert [a.status for a in answers] == [200] * 6
    assert eco.request(served(eco.hello).url + "/whoami/echo", headers=bearer(token)).status == 200
    exchanges = request_lines(eco.identity, "/token")[before:]
    assert [(r["method"], r["status"]) for r in exchanges] == [("POST", 200)]


def test_the_users_own_token_is_refused_by_the_callee(eco, user):
    direct = eco.request(served(eco.echo).url + "/whoami", headers=bearer(user["token"]))
    assert direct.status == 401
    assert direct.json() == {"error": "invalid_token", "error_description": "token is for another audience"}


def test_a_user_token_without_the_callees_scope_is_refused_at_the_issuer(eco):
    _, password = add_user(eco, "vic", ["developer"])
    token = login(eco, "vic", password, audience="hello", scope="hello.read")
    assert eco.request(served(eco.hello).url + "/whoami", headers=bearer(token)).status == 200
    refused = eco.request(served(eco.hello).url + "/whoami/echo", headers=bearer(token))
    assert refused.status == 403, refused.body
    answer = refused.json()
    assert answer["error"] == "call_refused"
    assert "invalid_scope" in answer["error_description"] and "echo.read" in answer["error_description"]
    assert token not in refused.body.decode()


def test_without_a_token_hello_refuses_before_calling(eco):
    before = len(request_lines(eco.echo, "/whoami"))
    response = eco.request(served(eco.hello).url + "/whoami/echo")
    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="hello"'
    assert len(request_lines(eco.echo, "/whoami")) == before


def test_an_unknown_callee_is_404_and_names_no_address(eco, user):
    response = eco.request(served(eco.hello).url + "/whoami/ledger", headers=bearer(user["token"]))
    assert response.status == 404
    assert response.json() == {"error": "unknown_service",
                               "error_description": "hello does not call a service named 'ledger'"}


def test_no_secret_or_token_reaches_any_log(eco, user):
    eco.keep(user["token"])
    time.sleep(0.5)  # the kit flushes its log at least every 0.2 s
    logs = {name: served(app).log_path.read_text()
            for name, app in (("identity", eco.identity), ("echo", eco.echo), ("hello", eco.hello))}
    assert all("request" in text for text in logs.values()) and len(eco.secrets) >= 8
    leaked = [(name, secret[:8] + "...") for name, text in logs.items() for secret in eco.secrets
              if secret in text]
    assert leaked == []
    for text in logs.values():
        assert '"status":500' not in text and "Traceback" not in text
