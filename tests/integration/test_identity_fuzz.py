"""Property-based fuzzing of the identity service against its own OpenAPI description.

Schemathesis reads the running service's /openapi.json, generates requests for every
operation (valid ones, and invalid ones that break the description on purpose) and
checks each answer: no 5xx, a documented status code, a documented content type and
headers, a body that matches the declared schema. It runs twice: without a token, so
every refusal is checked too, and with an admin's token, so the admin API is exercised
past its 401 (and must refuse the same request once the token is taken away).

Every failure of every operation is collected before the test fails, so one run shows
the whole list, not only the first one hypothesis happened to find; nothing is shrunk,
to keep the run short. The run is derandomized and keeps no example database: CI sends
the same requests as a laptop, and nothing is written into the repository.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode, checks
from schemathesis.errors import FailureGroup

from sevenleague.testing import http_request

from .test_identity_service import Identity, login, start

# Bounded so the module takes seconds; LEAGUE_FUZZ_EXAMPLES=500 digs deeper on a laptop.
EXAMPLES_PER_OPERATION = int(os.environ.get("LEAGUE_FUZZ_EXAMPLES", "12"))
# Fewer login attempts than the fuzzer makes, so both the form's checks and its 429 are reached.
LOGIN_RATE = "40/60"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# With a valid token: a 2xx must turn into a 401 once the token is gone or forged.
ADMIN_CHECKS = [*CHECKS, checks.ignored_auth]
FUZZ = settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False)


@dataclass
class Fuzzed:
    identity: Identity
    schema: Any  # schemathesis' OpenApiSchema
    form_cookie: str = ""
    form_token: str = ""

    def redact(self, text: str) -> str:
        """A failure report quotes the request; the tokens and passwords stay out of the test output."""
        for secret in sorted(self.identity.secrets, key=len, reverse=True):
            text = text.replace(secret, "<secret>")
        return text


def csrf_pair(url: str) -> tuple[str, str]:
    """A login form's cookie and its token, so fuzzed sign-ins get past the CSRF check to the login."""
    page = http_request(url + "/device")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.body.decode())
    assert page.status == 200 and token is not None
    return page.headers["set-cookie"].split(";", 1)[0], token.group(1)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    # Hypothesis caches what it learns from the source (`constants`, `tmp`) under ./.hypothesis
    # even without an example database: in a temporary directory, the checkout stays clean.
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    for served, home, issuer in start(tmp_path_factory.mktemp("identity-fuzz"),
                                      LEAGUE_IDENTITY_LOGIN_RATE=LOGIN_RATE):
        identity = Identity(served, home, issuer)
        password = (home / "identity" / "admin-password").read_text().strip()
        identity.keep(password)
        identity.admin_token = login(identity, "admin", password)["access_token"]
        schema = schemathesis.openapi.from_url(identity.url + "/openapi.json")
        cookie, token = csrf_pair(identity.url)
        yield Fuzzed(identity, schema, cookie, token)


def modes_for(operation: Any) -> list[GenerationMode]:
    """Valid requests always; invalid ones when the operation takes input that can be made invalid."""
    takes_input = any(len(part) for part in (operation.path_parameters, operation.query, operation.headers,
                                             operation.cookies)) or bool(list(operation.body))
    return [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if takes_input else [])]


def fuzz_operation(fuzzed: Fuzzed, operation: Any, mode: GenerationMode, headers: dict[str, str],
                   checks_run: list[Any], report: Callable[[str], None]) -> int:
    """Up to EXAMPLES_PER_OPERATION requests to one operation; each failed check is reported, not raised."""
    seen: set[str] = set()
    sent = 0

    def once(key: str, text: str) -> None:
        if key not in seen:
            seen.add(key)
            report(f"{key}\n{text}")

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent_headers = dict(headers)
        if operation.label == "POST /device" and isinstance(case.body, dict):  # past CSRF, to the login
            case.body["csrf_token"] = fuzzed.form_token
            sent_headers["Cookie"] = fuzzed.form_cookie
        label = f"{operation.label} [{mode.value}]"
        try:
            sent += 1
            case.call_and_validate(base_url=fuzzed.identity.url, headers=sent_headers, checks=checks_run,
                                   timeout=15)
        except FailureGroup as group:
            for failure in group.exceptions:
                once(f"{label} {failure.title}",
                     f"{failure.message}\n    {case.as_curl_command(headers=sent_headers)}")
        except requests.RequestException as error:  # the service hung up or stalled: as bad as a 500
            curl = case.as_curl_command(headers=sent_headers)
            once(f"{label} {type(error).__name__}", f"{error}\n    {curl}")

    try:
        run()
    except Exception as error:  # could not generate: the description is at fault
        report(f"{operation.label} [{mode.value}] could not be fuzzed: {type(error).__name__}: {error}")
    return sent


@pytest.mark.parametrize("as_admin", [False, True], ids=["anonymous", "admin"])
def test_every_operation_answers_as_described(fuzzed, as_admin):
    headers = {"Authorization": f"Bearer {fuzzed.identity.admin_token}"} if as_admin else {}
    failures: list[str] = []
    started = time.monotonic()
    operations = [result.ok() for result in fuzzed.schema.get_all_operations()]  # raises if one is broken
    assert len(operations) >= 16, [operation.label for operation in operations]
    sent = sum(fuzz_operation(fuzzed, operation, mode, headers, ADMIN_CHECKS if as_admin else CHECKS,
                              failures.append)
               for operation in operations for mode in modes_for(operation))
    assert http_request(fuzzed.identity.url + "/healthz").status == 200
    took = time.monotonic() - started
    report = "\n\n".join(fuzzed.redact(failure) for failure in failures)
    assert not failures, f"{len(failures)} failed checks in {sent} requests ({took:.1f}s):\n\n{report}"
    assert sent >= len(operations) * 2


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
USERS, ACCOUNTS, ROTATE = "POST /api/users", "POST /api/service-accounts", "POST /api/keys/rotate"
DEEP = b"[" * 5000 + b"]" * 5000


# Inputs hypothesis seldom or never draws (it makes no lone surrogates, no 5000-deep arrays,
# no Unicode digits), each of which once got a 500 or was let in: the operation, the path
# sent when it is not the operation's own, the body's media type and bytes, the status expected.
@pytest.mark.parametrize(("operation", "path", "media_type", "body", "status"), [
    (USERS, None, JSON, b'{"username": "zed", "name": "\\ud800"}', 400),
    (USERS, None, JSON, b'{"username": "zed", "password": "\\udfffaaaaaaaaaaaaa"}', 400),
    (USERS, None, JSON, b'{"username": "zed", "roles": ' + DEEP + b"}", 400),
    (USERS, None, JSON, b'{"username": "zed", "password": ""}', 400),
    (USERS, None, JSON, b'{"username": "zed", "password": NaN}', 400),
    (USERS, None, "text/plain", b'{"username": "zed"}', 415),
    (ACCOUNTS, None, JSON, b'{"name": "abc\\n"}', 400),
    (ACCOUNTS, None, JSON, b'{"name": "sa", "audiences": ["x\\n"]}', 400),
    (ACCOUNTS, None, JSON, b'{"name": "sa", "description": "\\ud800"}', 400),
    (ROTATE, None, JSON, b'{"grace_seconds": Infinity}', 400),
    (ROTATE, None, JSON, b"x" * 20_000, 400),
    ("GET /api/tokens", "/api/tokens?limit=%C2%B2", None, None, 400),  # '²'.isdigit(), but int('²') fails
    ("GET /api/tokens", "/api/tokens?limit=%E0%A5%A7", None, None, 400),  # a Devanagari 1
    ("POST /api/users/{username}/disable", "/api/users/a%2Fb/disable", None, None, 404),
    ("POST /api/users/{username}/unlock", "/api/users/%00/unlock", None, None, 400),
    ("POST /device_authorization", None, FORM, b"client_id=league&audience=hello%0A", 400),
])
def test_hostile_input_is_refused_as_described(fuzzed, operation, path, media_type, body, status):
    method, template = operation.split(" ", 1)
    headers = {"Authorization": f"Bearer {fuzzed.identity.admin_token}"}
    if media_type:
        headers["Content-Type"] = media_type
    response = requests.request(method, fuzzed.identity.url + (path or template), data=body, headers=headers,
                                timeout=15)
    assert response.status_code == status, response.text
    case = fuzzed.schema[template][method].Case()
    case.validate_response(response, checks=CHECKS)


def test_the_service_log_has_no_server_error_after_fuzzing(fuzzed):
    time.sleep(0.3)  # the kit flushes its log at least every 0.2 s
    log = fuzzed.identity.served.log_path.read_text()
    assert '"status":500' not in log and "Traceback" not in log
