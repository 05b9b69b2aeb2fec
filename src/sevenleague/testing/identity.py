"""Signing in to an eco-system's identity service from a test or a benchmark, as a person would.

The device flow (RFC 8628) end to end over HTTP: ask for a code as `league login` does,
open the sign-in page as a browser does (its CSRF cookie and token), submit the user's
name and password with the code, then collect the token. Nothing is minted behind the
service's back, so what a test holds is exactly what a user would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import Response, http_request

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLI_CLIENT = "league"


class SignInFailed(AssertionError):
    """The identity service refused a step of the sign-in; the message has its answer, no secret."""


def post_form(url: str, fields: dict[str, str], *, headers: dict[str, str] | None = None,
              ca_file: str | Path | None = None) -> Response:
    return http_request(url, method="POST", body=urlencode(fields).encode(),
                        headers={**FORM, **(headers or {})}, ca_file=ca_file)


def _expect(response: Response, status: int, step: str) -> Response:
    if response.status != status:
        raise SignInFailed(f"{step}: HTTP {response.status} {response.body[:300]!r}")
    return response


def sign_in(issuer: str, username: str, password: str, *, audience: str, scope: str = "",
            ca_file: str | Path | None = None) -> dict[str, Any]:
    """The token answer (access token, and a refresh token when the service issues one)."""
    fields = {"client_id": CLI_CLIENT, "audience": audience} | ({"scope": scope} if scope else {})
    grant = _expect(post_form(issuer + "/device_authorization", fields, ca_file=ca_file), 200,
                    "device authorization").json()
    approve(issuer, grant["user_code"], username, password, ca_file=ca_file)
    answer = _expect(post_form(issuer + "/token", {"grant_type": DEVICE_GRANT, "client_id": CLI_CLIENT,
                                                   "device_code": grant["device_code"]}, ca_file=ca_file),
                     200, "token")
    tokens: dict[str, Any] = answer.json()
    return tokens


def refresh(issuer: str, refresh_token: str, *, audience: str, scope: str = "",
            ca_file: str | Path | None = None) -> dict[str, Any]:
    """An access token for another audience from a sign-in's refresh token (which it spends)."""
    fields = {"grant_type": "refresh_token", "client_id": CLI_CLIENT, "refresh_token": refresh_token,
              "audience": audience} | ({"scope": scope} if scope else {})
    answer: dict[str, Any] = _expect(post_form(issuer + "/token", fields, ca_file=ca_file), 200,
                                     "refresh").json()
    return answer


def approve(issuer: str, user_code: str, username: str, password: str, *,
            ca_file: str | Path | None = None) -> None:
    """What the person does in the browser: open the sign-in page for the code, sign in, approve."""
    page = _expect(http_request(f"{issuer}/device?user_code={user_code}", ca_file=ca_file), 200,
                   "sign-in page")
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.body.decode())
    if csrf is None:
        raise SignInFailed("sign-in page: no CSRF token in the form")
    _expect(post_form(issuer + "/device", {"csrf_token": csrf.group(1), "user_code": user_code,
                                           "username": username, "password": password},
                      headers={"Cookie": cookie}, ca_file=ca_file), 200, "sign-in")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
