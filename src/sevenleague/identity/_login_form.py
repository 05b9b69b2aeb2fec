"""`/device`: where a person signs in to approve a `league login` (RFC 8628 3.3).

A password form is the part of an identity service people attack most, so this one:

- **CSRF**: each form carries a token that is an HMAC of a random value held in a
  cookie (`HttpOnly`, `SameSite=Strict`, `Secure` over https). A POST without the
  cookie, or with a token not made from it, is refused before any password is checked.
  Another site can neither read the cookie nor make the browser send it.
- **Rate limit per client address**: at most N attempts per window (10 a minute by
  default), answered 429 with `Retry-After`, checked first, so a flood costs no argon2.
- **Lockout**: 5 wrong passwords in a row lock the account for 15 minutes (both
  configurable); while locked even the right password is refused.
- **The same answer for every failure**: unknown user, wrong password, locked or
  disabled account all get one message and one status, after one argon2 check.
- **No caching, no framing, no referrer**: the page is `no-store`, may not be framed
  (clickjacking), and sends no Referer (its URL may carry the user code).

The CSRF key lives in memory: a restart invalidates forms that are open, which costs a
reload, and there is no secret on disk to protect.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import html
import math
import secrets
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse

from ._forms import FormError, read_form
from ._settings import IdentitySettings
from ._store import IdentityStore, normalize_user_code

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
FORM_LIFETIME = 1800
LOGIN_FAILED = ("The username or password is not right, or the account is locked for a while "
                "after too many failed attempts.")
MAX_TRACKED_ADDRESSES = 10_000


class CsrfTokens:
    """Form tokens bound to a cookie: valid only together with the cookie they were made for."""

    def __init__(self, secure: bool, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)
        self.secure = secure
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only, Path=/.
        self.cookie_name = "__Host-league_csrf" if secure else "league_csrf"

    def _mac(self, cookie: str) -> str:
        digest = hmac.new(self.key, b"device-form\x00" + cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self) -> tuple[str, str]:
        """(cookie value, form token)."""
        cookie = secrets.token_urlsafe(32)
        return cookie, self._mac(cookie)

    def check(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token or len(cookie) > 100 or len(token) > 100:
            return False
        return hmac.compare_digest(self._mac(cookie), token)

    def cookie_header(self, value: str) -> str:
        flags = f"{self.cookie_name}={value}; Path=/; Max-Age={FORM_LIFETIME}; HttpOnly; SameSite=Strict"
        return flags + ("; Secure" if self.secure else "")


class RateLimit:
    """At most `attempts` per `window` seconds per key (a sliding window of timestamps)."""

    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._seen: dict[str, collections.deque[float]] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        """(allowed, seconds to wait before the next attempt may be allowed)."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= MAX_TRACKED_ADDRESSES:
                self._forget_idle(now)
            seen = self._seen[key] = collections.deque()
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.attempts:
            return False, max(1, math.ceil(seen[0] + self.window - now))
        seen.append(now)
        return True, 0

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, seen in self._seen.items() if not seen or seen[-1] <= now - self.window]:
            del self._seen[key]
        if len(self._seen) >= MAX_TRACKED_ADDRESSES:  # under a spread-out flood, forget the oldest
            for key in list(self._seen)[: MAX_TRACKED_ADDRESSES // 2]:
                del self._seen[key]


def render_page(*, csrf_token: str, user_code: str = "", message: str = "", done: bool = False) -> str:
    esc = html.escape
    note = f'<p class="note" role="alert">{esc(message)}</p>' if message else ""
    if done:
        body = note
    else:
        body = f"""{note}
<form method="post" action="/device" autocomplete="off">
  <input type="hidden" name="csrf_token" value="{esc(csrf_token)}">
  <label>Code shown by your terminal <input name="user_code" value="{esc(user_code)}" required
    maxlength="16" autocapitalize="characters"></label>
  <label>Username <input name="username" required maxlength="32" autocomplete="username"></label>
  <label>Password <input name="password" type="password" required maxlength="1024"
    autocomplete="current-password"></label>
  <button name="action" value="approve">Sign in and allow</button>
  <button name="action" value="deny">Deny</button>
</form>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to the league</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:26em;margin:3em auto}}label{{display:block;margin:.8em 0}}
input{{display:block;width:100%}}.note{{padding:.6em;background:#fef3c7}}</style></head>
<body><h1>Sign in to the league</h1>
{body}
</body></html>
"""


class LoginForm:
    """The `/device` page and its POST, with the protections the module docstring lists."""

    def __init__(self, store: IdentityStore, settings: IdentitySettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.settings = settings
        self.csrf = CsrfTokens(settings.secure_cookies)
        self.limit = RateLimit(settings.login_attempts, settings.login_window, clock)

    def _page(self, status: int, *, user_code: str = "", message: str = "", done: bool = False,
              headers: dict[str, str] | None = None) -> HTMLResponse:
        cookie, token = self.csrf.issue()
        page = render_page(csrf_token=token, user_code=user_code, message=message, done=done)
        response = HTMLResponse(page, status_code=status, headers=PAGE_HEADERS | (headers or {}))
        if not done:
            response.headers.append("Set-Cookie", self.csrf.cookie_header(cookie))
        return response

    async def page(self, request: Request) -> HTMLResponse:
        """
        summary: The sign-in form that approves a device (league login).
        parameters:
          - {name: user_code, in: query, required: false, schema: {type: string},
             description: "filled in for the user when league login opened the page"}
        responses:
          200: {$ref: "#/components/responses/Page"}
        """
        code = normalize_user_code(request.query_params.get("user_code", ""))[:8]
        shown = f"{code[:4]}-{code[4:]}" if len(code) == 8 else code
        return self._page(200, user_code=shown)

    async def submit(self, request: Request) -> HTMLResponse:
        """
        summary: Sign in and approve (or deny) the device that shows the user code.
        requestBody:
          required: true
          content:
            application/x-www-form-urlencoded:
              schema:
                type: object
                required: [csrf_token, user_code, username, password]
                properties:
                  csrf_token: {type: string, description: "from the form; valid only with its cookie"}
                  user_code: {type: string, maxLength: 16}
                  username: {type: string, maxLength: 64}
                  password: {type: string, maxLength: 1024}
                  action: {type: string, enum: [approve, deny], default: approve}
        responses:
          200: {$ref: "#/components/responses/Page"}
          400: {$ref: "#/components/responses/Page"}
          403: {$ref: "#/components/responses/Page"}
          429:
            description: "too many attempts from this address: the page says when to try again"
            headers:
              Retry-After: {required: true, schema: {type: integer, minimum: 1}}
            content:
              text/html:
                schema: {$ref: "#/components/schemas/Page"}
        """
        address = request.client.host if request.client else "unknown"
        allowed, wait = self.limit.allow(address)
        if not allowed:
            return self._page(429, message=f"Too many attempts. Try again in {wait} seconds.",
                              headers={"Retry-After": str(wait)})
        try:
            form = await read_form(request)
        except FormError:
            return self._page(400, message="The form could not be read. Please try again.")
        if not self.csrf.check(request.cookies.get(self.csrf.cookie_name), form.get("csrf_token")):
            return self._page(403, message="This form has expired. Please try again.")
        user_code = form.get("user_code", "")[:16]
        username, password = form.get("username", "")[:64], form.get("password", "")
        action = form.get("action", "approve")
        if action not in ("approve", "deny") or not username or not password or not user_code:
            return self._page(400, user_code=user_code,
                              message="Please fill in the code, username and password.")
        user = await asyncio.to_thread(
            self.store.check_login, username, password,
            max_failures=self.settings.lockout_failures, lockout_seconds=self.settings.lockout_seconds)
        if user is None:
            return self._page(403, user_code=user_code, message=LOGIN_FAILED)
        grant = await asyncio.to_thread(self.store.pending_device_grant, user_code)
        decided = grant is not None and await asyncio.to_thread(
            self.store.decide_device_grant, user_code, user.id, approve=action == "approve")
        if grant is None or not decided:
            return self._page(400, message="That code is unknown or has expired. Start again on your device.")
        if action == "deny":
            return self._page(200, done=True, message="Denied: the device gets no access.")
        scope = " ".join(grant.scope) or f"what your roles allow on {grant.audience}"
        return self._page(200, done=True,
                          message=f"Signed in as {user.username}. The device ({grant.client_id}) may now act "
                                  f"for you on {grant.audience}: {scope}. You can close this page.")
