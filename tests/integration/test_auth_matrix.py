"""Who may call what, in a running eco-system: every protected operation against every kind of token.

The operations come from the services themselves: the build and identity services'
OpenAPI documents (each operation says the scopes it needs, or `security: []` when it is
public) and hello's route table. For each protected operation:

- no token, an expired one, one for another audience, from another issuer, `alg: none`,
  HS256 signed with the issuer's public key, a real token with its payload changed, and
  one signed by a key the issuer never published: 401;
- a real token from the identity service without the operation's scope: 403;
- a real token with it: 2xx.

The forged tokens that need a trusted signature (expired, other audience, other issuer)
are signed with the identity service's own key, read from its state directory: they
test the claim checks, not the signature check. Every token, real or forged, is kept as a
secret for the suite's log scan.

The same eco-system also runs `echo` and lets hello call it (`calls = ["echo"]`), so a
user's identity is followed through the edge, hello, a token exchange and echo.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from sevenleague.testing import Response
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem
from sevenleague.testing.identity import bearer
from sevenleague.testing.secrets import keep_secret

from .conftest import fast_scrape_catalog

APPS = Path(__file__).parent / "apps"
ECHO = """
[services.echo]
description = "Says who called it: a callee for hello."
app = "echo:app"
instances = 1
port = 8101
hosts = ["local"]
route = "/echo"
"""
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def eco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEcosystem]:
    catalog = fast_scrape_catalog(tmp_path_factory.mktemp("matrix"))
    text = catalog.read_text().replace('route = "/"\n', 'route = "/"\ncalls = ["echo"]\n', 1) + ECHO
    catalog.write_text(text)
    running = start_ecosystem(catalog, extra_env={"PYTHONPATH": str(APPS)})
    yield running
    left = running.stop()
    shutil.rmtree(running.home, ignore_errors=True)
    assert left == [], f"processes left running after league down: {left}"


# --- forging tokens ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key(home: Path) -> tuple[str, ECKey]:
    """The identity service's key that signs now: the newest one whose grace has passed."""
    now = time.time()
    keys = [json.loads(path.read_text()) for path in (home / "identity" / "keys").glob("*.json")]
    current = max((k for k in keys if k["signs_from"] <= now), key=lambda k: (k["signs_from"], k["serial"]))
    return current["kid"], ECKey.import_key(current["jwk"])


def claims_for(eco: RunningEcosystem, audience: str, scope: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": eco.endpoints["identity"], "aud": audience, "sub": "matrix-user", "client_id": "league",
            "scope": scope, "iat": now, "nbf": now, "exp": now + 300, "jti": uuid.uuid4().hex} | changes


def signed(kid: str, key: ECKey, claims: dict[str, Any]) -> str:
    token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, key)
    keep_secret(token)
    return token


def forged_tokens(eco: RunningEcosystem, audience: str, scope: str) -> dict[str, str]:
    """Tokens a careful service must refuse with 401, by the name of the mistake in each."""
    kid, key = signing_key(eco.home)
    now = int(time.time())
    real = eco.token(audience, scope)
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = _b64(json.dumps(claims | {"sub": "someone-else"}).encode())
    public_pem = key.as_pem(private=False)
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    hs_payload = _b64(json.dumps(claims_for(eco, audience, scope)).encode())
    hs_signature = _b64(hmac.new(public_pem, f"{hs_header}.{hs_payload}".encode(), hashlib.sha256).digest())
    none_header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    stranger = ECKey.generate_key("P-256")
    tokens = {
        "expired": signed(kid, key, claims_for(eco, audience, scope, iat=now - 900, nbf=now - 900,
                                               exp=now - 120)),
        "wrong aud": signed(kid, key, claims_for(eco, audience, scope, aud="someone-else")),
        "wrong iss": signed(kid, key, claims_for(eco, audience, scope, iss="https://issuer.invalid")),
        "alg none": f"{none_header}.{hs_payload}.",
        "HS256 with the public key": f"{hs_header}.{hs_payload}.{hs_signature}",
        "tampered payload": f"{header}.{tampered}.{signature}",
        "unknown kid": jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "never-published"},
                                  claims_for(eco, audience, scope), stranger),
    }
    keep_secret(*tokens.values())
    return tokens


# --- the operations ---------------------------------------------------------------------------------


def openapi_operations(eco: RunningEcosystem, service: str) -> list[tuple[str, str, frozenset[str]]]:
    """(METHOD, path, scopes) of every operation the service's OpenAPI says needs a token."""
    document = eco.get(eco.endpoints[service] + "/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            security = operation.get("security", document.get("security"))
            assert security is not None, f"{service} {method.upper()} {path} does not say who may call it"
            if security == [] or {} in security:
                continue  # public, and declared so (`{}`: callers may come without credentials)
            [scopes] = [requirement["bearer"] for requirement in security if "bearer" in requirement]
            found.append((method.upper(), path, frozenset(scopes)))
    return sorted(found)


def hello_operations() -> list[tuple[str, str, frozenset[str]]]:
    """hello has no OpenAPI document: its route table and access declarations say the same."""
    from hello import app as hello_app
    from sevenleague.kit._auth import PUBLIC, AccessPolicy

    policy = AccessPolicy(hello_app.access)
    found = []
    for route in hello_app.routes:
        for method in sorted(route.methods - {"HEAD"}):
            need = policy.needs(route.path, method)
            if need is not PUBLIC:
                found.append((method, route.path, frozenset(need)))
    return found


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no sample value for a parameter of {path}"
    return path


def call(eco: RunningEcosystem, base: str, method: str, path: str, token: str | None,
         body: Any = None) -> Response:
    headers = bearer(token) if token is not None else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return eco.get(base + path, method=method, headers=headers, body=data)


def check_operation(eco: RunningEcosystem, service: str, base: str, method: str, path: str,
                    scopes: frozenset[str], body: Any = None) -> Response:
    """Every refusal for one operation; returns the answer to the right token."""
    check_refusals(eco, service, base, method, path, scopes, body)
    right = call(eco, base, method, path, eco.token(service, " ".join(sorted(scopes))), body)
    assert 200 <= right.status < 300, (service, method, path, right.status, right.body)
    return right


def check_refusals(eco: RunningEcosystem, service: str, base: str, method: str, path: str,
                   scopes: frozenset[str], body: Any = None) -> None:
    scope = " ".join(sorted(scopes))
    missing = call(eco, base, method, path, None, body)
    assert missing.status == 401, (service, method, path, missing.status, missing.body)
    assert missing.headers["www-authenticate"].startswith(f'Bearer realm="{service}"')
    for mistake, token in forged_tokens(eco, service, scope).items():
        refused = call(eco, base, method, path, token, body)
        assert refused.status == 401, (service, method, path, mistake, refused.status, refused.body)
        assert 'error="invalid_token"' in refused.headers["www-authenticate"], (mistake, refused.headers)
    if scopes:
        weak = call(eco, base, method, path, eco.token(service, "openid"), body)
        assert weak.status == 403, (service, method, path, weak.status, weak.body)
        assert 'error="insufficient_scope"' in weak.headers["www-authenticate"]


def push_a_commit(eco: RunningEcosystem, tmp_path: Path, repo: str) -> None:
    import subprocess

    eco.league("repo", "create", repo)
    work = tmp_path / repo
    work.mkdir()
    clone = eco.home / "repos" / f"{repo}.git"
    env = {"GIT_AUTHOR_NAME": "m", "GIT_AUTHOR_EMAIL": "m@example.org", "GIT_COMMITTER_NAME": "m",
           "GIT_COMMITTER_EMAIL": "m@example.org", "PATH": "/usr/bin:/bin"}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "one"],
                 ["git", "push", "-q", str(clone), "main"]):
        subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True)


def test_every_protected_build_service_operation_refuses_every_bad_token(eco, tmp_path):
    operations = {(m, p): scopes for m, p, scopes in openapi_operations(eco, "builds")}
    assert set(operations) == {
        ("GET", "/api/builds"), ("POST", "/api/builds"), ("GET", "/api/builds/{build_id}"),
        ("GET", "/api/builds/{build_id}/log"), ("POST", "/api/builds/{build_id}/cancel")}
    push_a_commit(eco, tmp_path, "matrix")
    base = eco.endpoints["builds"]
    build = {"service": "matrix", "ref": "main"}
    queued = check_operation(eco, "builds", base, "POST", "/api/builds", operations["POST", "/api/builds"],
                             build).json()
    for path in ("/api/builds", "/api/builds/{build_id}", "/api/builds/{build_id}/log"):
        check_operation(eco, "builds", base, "GET", fill(path, {"build_id": str(queued["id"])}),
                        operations["GET", path])
    # cancel: the refusals first, then the right token on a build queued a moment before,
    # so that it has not finished yet
    cancel = "/api/builds/{build_id}/cancel"
    needs = operations["POST", cancel]
    check_refusals(eco, "builds", base, "POST", fill(cancel, {"build_id": str(queued["id"])}), needs)
    operate = eco.token("builds", " ".join(sorted(needs)))
    write = eco.token("builds", "builds.write")
    # one worker takes them in turn: the last of ten is still queued when it is cancelled
    fresh = [call(eco, base, "POST", "/api/builds", write, build).json() for _ in range(10)][-1]
    cancelled = call(eco, base, "POST", fill(cancel, {"build_id": str(fresh["id"])}), operate)
    assert cancelled.status == 200 and cancelled.json()["state"] == "cancelled", cancelled.body
    # what is public is public on purpose: the API's description and the signed apt repository
    assert call(eco, base, "GET", "/openapi.json", None).status == 200
    assert call(eco, base, "GET", "/apt/", None).status != 401
    assert call(eco, base, "GET", "/artifacts/", None).status == 401


IDENTITY_SAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/api/users"): {"username": "matrix-one", "roles": ["viewer"]},
    ("POST", "/api/service-accounts"): {"name": "matrix-account", "scopes": ["hello.read"],
                                        "audiences": ["hello"]},
}


def test_every_protected_identity_operation_refuses_every_bad_token(eco):
    operations = openapi_operations(eco, "identity")
    assert {p for _, p, _ in operations} >= {"/api/users", "/api/service-accounts", "/api/keys",
                                             "/api/tokens"}
    assert all(scopes == {"identity.admin"} for _, _, scopes in operations)
    base = eco.endpoints["identity"]
    # users are made before they are disabled, enabled and unlocked
    for method, path, scopes in sorted(operations, key=lambda op: "{" in op[1]):
        answer = check_operation(eco, "identity", base, method, fill(path, {"username": "matrix-one"}),
                                 scopes, IDENTITY_SAMPLES.get((method, path)))
        if (method, path) == ("POST", "/api/users"):
            keep_secret(answer.json()["password"])
        if (method, path) == ("POST", "/api/service-accounts"):
            keep_secret(answer.json()["client_secret"])


def test_every_protected_hello_route_refuses_every_bad_token(eco):
    operations = hello_operations()
    assert {(m, p) for m, p, _ in operations} == {("GET", "/whoami"), ("GET", "/whoami/{service}")}
    edge = eco.endpoints["edge"].rstrip("/")
    for method, path, scopes in operations:
        # asking echo on the caller's behalf needs the caller's consent to echo.read as well
        needed = scopes | {"echo.read"} if "{service}" in path else scopes
        check_operation(eco, "hello", edge, method, fill(path, {"service": "echo"}), needed)


def test_a_users_identity_goes_through_hello_to_echo_with_hello_as_the_actor(eco):
    edge = eco.endpoints["edge"].rstrip("/")
    token = eco.token("hello", "hello.read echo.read")
    request_id = f"matrix-{uuid.uuid4().hex}"
    answer = eco.get(edge + "/whoami/echo", headers={**bearer(token), "X-Request-ID": request_id})
    assert answer.status == 200, answer.body
    seen = answer.json()
    me = eco.get(edge + "/whoami", headers=bearer(token)).json()
    assert (seen["service"], seen["subject"], seen["actor"], seen["client"]) == (
        "echo", me["subject"], "service:hello", "hello")
    assert seen["scopes"] == ["echo.read"]

    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not lines:
        lines = [json.loads(line) for line in eco.log_path("echo-1").read_text().splitlines()
                 if request_id in line]
        time.sleep(0.1)
    [line] = lines
    assert (line["user"], line["actor"], line["client"], line["status"]) == (
        me["subject"], "service:hello", "hello", 200)
    # the user's own token is for hello: echo, reached directly through the edge, refuses it
    direct = eco.get(edge + "/echo/whoami", headers=bearer(token))
    assert direct.status == 401 and "audience" in direct.json()["error_description"]


def test_metrics_answer_only_prometheus_own_credential(eco):
    from sevenleague.identity.client import IdentityClient

    secret = (eco.home / "identity" / "clients" / "prometheus.secret").read_text().strip()
    keep_secret(secret)
    identity = IdentityClient.from_home(eco.home)
    hello_1 = next(i["port"] for i in eco.status()["instances"] if i["name"] == "hello-1")
    for service, base in (("builds", eco.endpoints["builds"]), ("identity", eco.endpoints["identity"]),
                          ("hello", f"https://127.0.0.1:{hello_1}")):
        scrape = identity.client_credentials("prometheus", secret, service, scope=f"{service}.metrics")
        keep_secret(scrape["access_token"])
        check_refusals(eco, service, base, "GET", "/metrics", frozenset({f"{service}.metrics"}))
        answer = call(eco, base, "GET", "/metrics", scrape["access_token"])
        assert answer.status == 200 and b"http_requests_total" in answer.body, (service, answer.status)
        # the scraper's token opens nothing else
        elsewhere = {"builds": "/api/builds", "identity": "/api/users", "hello": "/whoami"}[service]
        assert call(eco, base, "GET", elsewhere, scrape["access_token"]).status == 403
