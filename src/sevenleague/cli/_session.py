"""The CLI's sign-in: one refresh token, and access tokens cached per service.

`league login` leaves a session in `$LEAGUE_HOME/cli/session.json` (0600 in a 0700
directory, replaced whole, never edited in place): the issuer, who signed in, the
refresh token, and the access tokens already obtained, each for one audience and scope
with its expiry. A command that calls a service asks `access_token(home, "builds")`:
a cached token with more than 30 seconds left is reused, otherwise the refresh token is
traded for one addressed to that service alone (RFC 8707), so a token the builds
service saw is worth nothing to any other. Every trade rotates the refresh token and the
new one is saved before the token is handed out.

Two `league` commands refreshing at once would present the same refresh token, and the
identity service treats the second as a stolen copy and ends the sign-in; so the read,
the refresh and the write happen under an exclusive lock on a file next to the session.

When the identity service refuses the refresh token (expired, revoked, the user
disabled), the stale session is deleted and the caller is told to sign in again. When it
merely does not answer, the session is kept: nothing is known to be wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import LeagueError
from ..hosts import write_bytes
from ..identity.client import IdentityClient, IdentityRefused

SESSION_DIR = "cli"
SESSION_FILE = "session.json"
LOCK_FILE = ".session.lock"
DIR_MODE = 0o700
FILE_MODE = 0o600
MIN_REMAINING_SECONDS = 30.0
VERSION = 1


class NotLoggedIn(LeagueError):
    """No usable sign-in for this eco-system: the fix is always `league login`."""

    exit_code = 4

    def __init__(self, home: Path) -> None:
        super().__init__(f"not logged in to the eco-system at {home}", hint="run `league login`")


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: float

    def usable(self, now: float) -> bool:
        return self.expires_at - now > MIN_REMAINING_SECONDS


@dataclass(frozen=True)
class Session:
    """What the session file holds; `tokens` maps `cache_key(audience, scope)` to a token."""

    issuer: str
    username: str
    roles: tuple[str, ...]
    refresh_token: str
    refresh_expires_at: float | None  # None: the identity service did not say; it decides
    tokens: Mapping[str, CachedToken] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "issuer": self.issuer, "username": self.username,
                "roles": list(self.roles), "refresh_token": self.refresh_token,
                "refresh_expires_at": self.refresh_expires_at,
                "access_tokens": {key: {"token": cached.token, "expires_at": cached.expires_at}
                                  for key, cached in self.tokens.items()}}

    @classmethod
    def from_json(cls, data: Any) -> Session:
        """The session in `data`; ValueError when it is not one (an older or damaged file)."""
        try:
            if data["version"] != VERSION:
                raise ValueError("another version of the session file")
            tokens = {str(key): CachedToken(str(value["token"]), float(value["expires_at"]))
                      for key, value in data["access_tokens"].items()}
            expires = data["refresh_expires_at"]
            session = cls(str(data["issuer"]), str(data["username"]), tuple(str(r) for r in data["roles"]),
                          str(data["refresh_token"]), None if expires is None else float(expires), tokens)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError("not a session file") from error
        if not session.refresh_token:
            raise ValueError("the session has no refresh token")
        return session

    def with_answer(self, answer: Mapping[str, Any], audience: str, scope: str | None, now: float) -> Session:
        """The session after a token answer: the new refresh token, the token cached, expired ones gone."""
        claims = unverified_claims(str(answer["access_token"]))
        tokens = {key: cached for key, cached in self.tokens.items() if cached.expires_at > now}
        tokens[cache_key(audience, scope)] = CachedToken(str(answer["access_token"]),
                                                         now + float(answer.get("expires_in", 0)))
        refresh_expires_at = self.refresh_expires_at
        if isinstance(answer.get("refresh_token_expires_in"), int | float):
            refresh_expires_at = now + float(answer["refresh_token_expires_in"])
        return replace(self, tokens=tokens, refresh_expires_at=refresh_expires_at,
                       username=str(claims.get("preferred_username") or self.username),
                       roles=tuple(str(role) for role in claims.get("roles", self.roles)),
                       refresh_token=str(answer.get("refresh_token") or self.refresh_token))

    def expired(self, now: float) -> bool:
        return self.refresh_expires_at is not None and self.refresh_expires_at <= now


# --- pure helpers --------------------------------------------------------------------------------------


def cache_key(audience: str, scope: str | None) -> str:
    """One cache entry per audience and exact set of scopes asked for (order does not matter)."""
    return audience + " " + " ".join(sorted(set((scope or "").split())))


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, read without checking the signature: only to show who signed in.

    The services check every token themselves; the CLI only needs the name and roles the
    identity service put in the token it just handed over on a verified connection.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def new_session(issuer: str, answer: Mapping[str, Any], audience: str, scope: str | None,
                now: float | None = None) -> Session:
    """The session a successful `league login` starts, from the device grant's token answer."""
    now = time.time() if now is None else now
    if not answer.get("refresh_token"):
        raise LeagueError("the identity service gave no refresh token, so the sign-in cannot be kept",
                          hint="is the identity service older than this league? upgrade it")
    empty = Session(issuer, "", (), str(answer["refresh_token"]), None)
    return empty.with_answer(answer, audience, scope, now)


# --- the file ---------------------------------------------------------------------------------------


def session_path(home: Path) -> Path:
    return home / SESSION_DIR / SESSION_FILE


def _private_dir(home: Path) -> Path:
    directory = home / SESSION_DIR
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)
    return directory


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One `league` process at a time reads, refreshes and writes the session."""
    fd = os.open(_private_dir(home) / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def load_session(home: Path) -> Session | None:
    """The saved session, or None when there is none or it cannot be read (then it is no use)."""
    try:
        return Session.from_json(json.loads(session_path(home).read_text()))
    except (OSError, ValueError):
        return None


def save_session(home: Path, session: Session) -> None:
    _private_dir(home)
    write_bytes(session_path(home), json.dumps(session.to_json(), indent=1).encode(), FILE_MODE)


def delete_session(home: Path) -> bool:
    """Forget the sign-in; True when there was one."""
    path = session_path(home)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


# --- what other commands call --------------------------------------------------------------------------


def start_session(home: Path, issuer: str, answer: Mapping[str, Any], audience: str,
                  scope: str | None = None) -> Session:
    """Save the session `league login` just obtained, replacing any earlier one."""
    session = new_session(issuer, answer, audience, scope)
    with _locked(home):
        save_session(home, session)
    return session


def access_token(home: Path, audience: str, scope: str | None = None) -> str:
    """An access token for `audience` (and `scope`), from the cache or by refreshing the sign-in.

    Raises NotLoggedIn (exit 4) when there is no sign-in or the identity service refuses
    it, and IdentityUnavailable (exit 3) when the identity service does not answer.
    """
    if not session_path(home).exists():
        raise NotLoggedIn(home)  # before the lock: asking must not make $LEAGUE_HOME/cli
    with _locked(home):
        session = load_session(home)
        if session is None:
            raise NotLoggedIn(home)
        now = time.time()
        client = IdentityClient.from_home(home)
        if client.issuer_url != session.issuer:
            # The eco-system moved (another port offset): tokens from the old address say
            # another issuer, so none of them is any use; the refresh token still is.
            session = replace(session, issuer=client.issuer_url, tokens={})
        cached = session.tokens.get(cache_key(audience, scope))
        if cached is not None and cached.usable(now):
            return cached.token
        if session.expired(now):
            delete_session(home)
            raise NotLoggedIn(home)
        try:
            answer = client.refresh(session.refresh_token, audience, scope)
        except IdentityRefused as error:
            if error.error in ("invalid_grant", "invalid_client"):
                delete_session(home)
                raise NotLoggedIn(home) from None
            raise
        session = session.with_answer(answer, audience, scope, now)
        save_session(home, session)
        return session.tokens[cache_key(audience, scope)].token


def current_user(home: Path) -> str | None:
    """Who is signed in to the eco-system at `home`, as far as the session file knows; no network."""
    session = load_session(home)
    if session is None or session.expired(time.time()):
        return None
    return session.username or None
