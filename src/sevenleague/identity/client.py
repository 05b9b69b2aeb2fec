"""The identity service's HTTP API from Python: for `league login`, `league user`, `league token`.

Written against the protocol (OAuth 2, RFC 8628, the admin API's OpenAPI), never against
the server's code. The address and the CA to trust come from the snapshot `league up`
wrote (`endpoints.identity`, `ca_file`), so the CLI finds the identity service of the
eco-system in its state directory and verifies it is talking to it, not to whatever
answers on that port.

Requests carry passwords and tokens, so the transport is deliberately narrow: no proxy
from the environment (a token must not detour through `HTTPS_PROXY`), no redirects (a
bearer token must not follow one to another host), and https verified against the
eco-system's CA. Errors carry the server's own description, which never quotes a secret,
and nothing this module raises contains a token or a password.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import LeagueError
from ..kit._tls import client_context
from ._settings import CLI_CLIENT_ID

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_TOKEN_GRANT = "refresh_token"  # noqa: S105 - a grant type's name
SNAPSHOT = "ecosystem.json"
DEVICE_ANSWER = frozenset({"device_code", "user_code", "verification_uri", "expires_in"})
NO_ECOSYSTEM_HINT = "start it with `league up`"


class IdentityUnavailable(LeagueError):
    """There is no identity service to talk to: no eco-system here, or it does not answer."""

    exit_code = 3


class IdentityRefused(LeagueError):
    """The identity service answered with an error; `error` is the OAuth code when there is one."""

    def __init__(self, message: str, *, error: str = "", status: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.error = error
        self.status = status


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx answer surfaces as an HTTPError


def _refusal(status: int, body: bytes) -> IdentityRefused:
    """An error answer as an exception: OAuth's `error_description`, or the admin API's `error`."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return IdentityRefused(f"the identity service answered HTTP {status}", status=status)
    error, description, hint = (str(data.get(key) or "") for key in ("error", "error_description", "hint"))
    if description:  # OAuth (RFC 6749 5.2): a code and a description
        return IdentityRefused(f"the identity service refused: {description}", error=error, status=status)
    if status == 403:
        hint = hint or "sign in as a user allowed to do this: `league login`"
    return IdentityRefused(f"the identity service refused: {error or f'HTTP {status}'}", status=status,
                           hint=hint or None)


class IdentityClient:
    """One issuer's token endpoint, device flow and admin API.

    `bearer` gives the access token for the admin API (addressed to `identity`, with
    scope `identity.admin`); it is called once per admin request, so a CLI session can
    hand out a fresh one each time.
    """

    def __init__(self, issuer_url: str, ca_file: str | Path | None = None, *,
                 bearer: Callable[[], str] | None = None, timeout: float = 10.0,
                 home: Path | None = None) -> None:
        if not issuer_url.startswith(("http://", "https://")):
            raise LeagueError(f"the identity service address {issuer_url!r} is not an http(s) URL")
        self.issuer_url = issuer_url.rstrip("/")
        self.ca_file = ca_file
        self.bearer = bearer
        self.timeout = timeout
        self.home = home
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}), _NoRedirects()]
        if self.issuer_url.startswith("https://"):
            handlers.append(urllib.request.HTTPSHandler(context=client_context(ca_file) or
                                                        ssl.create_default_context()))
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def from_home(cls, home: Path, *, bearer: Callable[[], str] | None = None) -> IdentityClient:
        """The identity service of the eco-system whose state is in `home` (its `ecosystem.json`)."""
        try:
            snapshot = json.loads((home / SNAPSHOT).read_text())
            issuer = snapshot["endpoints"]["identity"]
            ca_file = snapshot.get("ca_file")
            if not isinstance(issuer, str) or not (ca_file is None or isinstance(ca_file, str)):
                raise TypeError("malformed snapshot")
        except (OSError, ValueError, KeyError, TypeError):
            raise IdentityUnavailable(f"no eco-system runs from {home}", hint=NO_ECOSYSTEM_HINT) from None
        return cls(issuer, ca_file or None, bearer=bearer, home=home)

    # --- transport -----------------------------------------------------------------------------------

    def _unreachable(self, reason: object) -> IdentityUnavailable:
        if isinstance(reason, ssl.SSLCertVerificationError):
            return IdentityUnavailable(
                f"the identity service at {self.issuer_url} is not the one the eco-system's CA vouches for "
                f"({reason.verify_message})", hint=f"check ca_file in {SNAPSHOT} ({self.ca_file})")
        where = f"no eco-system runs from {self.home}: " if self.home else ""
        return IdentityUnavailable(f"{where}the identity service at {self.issuer_url} does not answer "
                                   f"({reason})", hint=NO_ECOSYSTEM_HINT)

    def _call(self, method: str, path: str, *, form: dict[str, str] | None = None,
              body: dict[str, Any] | None = None, bearer: bool = False,
              headers: dict[str, str] | None = None, expect_json: bool = True) -> Any:
        headers = {"Accept": "application/json", **(headers or {})}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if bearer:
            if self.bearer is None:
                raise LeagueError("this needs an admin's sign-in", hint="run `league login`")
            headers["Authorization"] = f"Bearer {self.bearer()}"
        request = urllib.request.Request(self.issuer_url + path, data=data, method=method,  # noqa: S310
                                         headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise _refusal(error.code, error.read()) from None
        except urllib.error.URLError as error:
            raise self._unreachable(error.reason) from None
        except (OSError, ssl.SSLError) as error:
            raise self._unreachable(error) from None
        if not expect_json:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise LeagueError(f"the identity service at {self.issuer_url} answered something that is "
                              "not JSON") from None

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        answer = self._call("POST", "/token", form={"client_id": CLI_CLIENT_ID, **form})
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise LeagueError("the identity service's token answer has no access_token")
        return answer

    # --- signing in -----------------------------------------------------------------------------------

    def start_device(self, scope: str | None = None, audience: str | None = None) -> dict[str, Any]:
        """A new device authorization (RFC 8628 3.2): device_code, user_code, where to approve, interval."""
        form = {"client_id": CLI_CLIENT_ID}
        if scope:
            form["scope"] = scope
        if audience:
            form["audience"] = audience
        answer = self._call("POST", "/device_authorization", form=form)
        if not isinstance(answer, dict) or not set(answer) >= DEVICE_ANSWER:
            raise LeagueError("the identity service's device authorization answer is incomplete")
        return answer

    def poll_device(self, device_code: str) -> dict[str, Any]:
        """The tokens once the user approved; IdentityRefused with `error` authorization_pending,
        slow_down, expired_token or access_denied until then (RFC 8628 3.5)."""
        return self._token({"grant_type": DEVICE_CODE_GRANT, "device_code": device_code})

    def refresh(self, refresh_token: str, audience: str | None = None,
                scope: str | None = None) -> dict[str, Any]:
        """An access token for `audience` and the next refresh token; the one given is spent."""
        form = {"grant_type": REFRESH_TOKEN_GRANT, "refresh_token": refresh_token}
        if audience:
            form["audience"] = audience
        if scope:
            form["scope"] = scope
        answer = self._token(form)
        if not isinstance(answer.get("refresh_token"), str):
            raise LeagueError("the identity service's refresh answer has no refresh_token")
        return answer

    def revoke(self, refresh_token: str) -> None:
        """End the sign-in this refresh token belongs to (RFC 7009); the server does not say if it knew it."""
        self._call("POST", "/revoke", form={"client_id": CLI_CLIENT_ID, "token": refresh_token,
                                            "token_type_hint": "refresh_token"}, expect_json=False)

    def client_credentials(self, client_id: str, secret: str, audience: str,
                           scope: str | None = None) -> dict[str, Any]:
        """A service account's own token for `audience` (RFC 6749 4.4), its secret sent as HTTP Basic."""
        form = {"grant_type": "client_credentials", "audience": audience}
        if scope:
            form["scope"] = scope
        pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
        answer = self._call("POST", "/token", form=form,
                            headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()})
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise LeagueError("the identity service's token answer has no access_token")
        return answer

    # --- the admin API ----------------------------------------------------------------------------------

    def list_users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = self._call("GET", "/api/users", bearer=True)["users"]
        return users

    def add_user(self, username: str, roles: Iterable[str], name: str | None = None) -> dict[str, Any]:
        """The new user and, once, the password the service made for them: `{user, password}`."""
        body: dict[str, Any] = {"username": username, "roles": list(roles)}
        if name is not None:
            body["name"] = name
        answer: dict[str, Any] = self._call("POST", "/api/users", body=body, bearer=True)
        return answer

    def disable_user(self, username: str) -> dict[str, Any]:
        """Disable a user: their sign-ins are revoked, their access tokens expire within minutes."""
        return self._user_action(username, "disable")

    def enable_user(self, username: str) -> dict[str, Any]:
        return self._user_action(username, "enable")

    def _user_action(self, username: str, action: str) -> dict[str, Any]:
        path = f"/api/users/{urllib.parse.quote(username, safe='')}/{action}"
        user: dict[str, Any] = self._call("POST", path, bearer=True)
        return user
