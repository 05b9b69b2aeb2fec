"""The identity service's own database: users, service accounts, device codes, issued token ids.

SQLite in WAL mode, one file under `$LEAGUE_HOME/identity/`, opened by the identity
service only. Nothing in it can be used as a credential if the file leaks: passwords
and client secrets are argon2id hashes, device and user codes and refresh tokens are
SHA-256 hashes (they are random, 256 bits for the long-lived ones, so a fast hash is
enough), and access tokens are never stored, only their ids, subjects, audiences and
expiry, so an operator can tell who was given access to what. That record is
append-only: triggers refuse to change or delete a row.

Refresh tokens come in families, one per `league login`: each use hands out the next
one and marks the old one used, and the whole family ends at the login's expiry.
Showing a used token again means two parties hold the family (a copy was stolen), so
the whole family is revoked and both must sign in again (OAuth 2.0 Security BCP 4.14).

Checking a password runs argon2 outside the database lock, so one slow login does not
hold up token requests; the failure counter is bumped in SQL, so concurrent guesses
cannot race past the lockout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._sqlite import Database
from ..catalog._model import NAME_PATTERN
from ._passwords import Verifier, new_secret, password_hasher, secret_hasher
from ._scopes import ScopeError, check_roles, parse_scope
from ._settings import IdentityError

USERNAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{0,31}")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# RFC 8628 6.1: a user code from 20 consonants, no vowels (no words), no look-alikes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_SECONDS = 5

PENDING, APPROVED, DENIED, USED = "pending", "approved", "denied", "used"
# How long a used or revoked refresh token is kept after its family ended: long enough to
# recognise a replay as one, short enough that the table does not grow without end.
REFRESH_RECORD_SECONDS = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    created_at REAL NOT NULL,
    last_login_at REAL
);
CREATE TABLE IF NOT EXISTS service_accounts (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    audiences TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    audience TEXT NOT NULL,
    state TEXT NOT NULL,
    user_id TEXT,
    interval_seconds INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_poll_at REAL
);
CREATE TABLE IF NOT EXISTS issued_tokens (
    jti TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    aud TEXT NOT NULL,
    client_id TEXT NOT NULL,
    grant_type TEXT NOT NULL,
    actor TEXT,
    scope TEXT NOT NULL DEFAULT '',
    iat INTEGER NOT NULL,
    exp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS issued_tokens_by_sub ON issued_tokens (sub, iat);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_user ON refresh_tokens (user_id);
CREATE TRIGGER IF NOT EXISTS issued_tokens_no_update BEFORE UPDATE ON issued_tokens
BEGIN SELECT RAISE(ABORT, 'issued_tokens is append-only'); END;
CREATE TRIGGER IF NOT EXISTS issued_tokens_no_delete BEFORE DELETE ON issued_tokens
BEGIN SELECT RAISE(ABORT, 'issued_tokens is append-only'); END;
"""


def _words(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_user_code(raw: str) -> str:
    """What the user typed, as stored: case and dashes or spaces do not matter."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def new_user_code() -> str:
    code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


@dataclass(frozen=True)
class User:
    id: str
    username: str
    name: str
    roles: tuple[str, ...]
    disabled: bool
    failed_logins: int
    locked_until: float | None
    created_at: float
    last_login_at: float | None

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "name": self.name, "roles": list(self.roles),
                "disabled": self.disabled, "failed_logins": self.failed_logins,
                "locked_until": self.locked_until, "created_at": self.created_at,
                "last_login_at": self.last_login_at}


@dataclass(frozen=True)
class ServiceAccount:
    client_id: str
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    description: str
    disabled: bool
    created_at: float

    @property
    def subject(self) -> str:
        return f"service:{self.client_id}"

    def to_json(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "subject": self.subject, "scopes": list(self.scopes),
                "audiences": list(self.audiences), "description": self.description,
                "disabled": self.disabled, "created_at": self.created_at}


@dataclass(frozen=True)
class DeviceGrant:
    """A device code as the token endpoint sees it when a client polls."""

    outcome: str  # pending | slow_down | expired | denied | approved | unknown
    client_id: str = ""
    scope: tuple[str, ...] = ()
    audience: str = ""
    user_id: str | None = None
    interval: int = 0


@dataclass(frozen=True)
class RefreshGrant:
    """What presenting a refresh token gave: the next token of its family, or why not."""

    outcome: str  # rotated | unknown | expired | revoked | reused | disabled
    user_id: str | None = None
    token: str = ""
    expires_at: float = 0.0


@dataclass(frozen=True)
class IssuedToken:
    jti: str
    sub: str
    aud: str
    client_id: str
    grant_type: str
    actor: str | None
    scope: str
    iat: int
    exp: int

    def to_json(self) -> dict[str, Any]:
        return {"jti": self.jti, "sub": self.sub, "aud": self.aud, "client_id": self.client_id,
                "grant_type": self.grant_type, "actor": self.actor, "scope": self.scope,
                "iat": self.iat, "exp": self.exp}


def _user(row: sqlite3.Row) -> User:
    return User(id=row["id"], username=row["username"], name=row["name"], roles=_words(row["roles"]),
                disabled=bool(row["disabled"]), failed_logins=int(row["failed_logins"]),
                locked_until=row["locked_until"], created_at=row["created_at"],
                last_login_at=row["last_login_at"])


def _account(row: sqlite3.Row) -> ServiceAccount:
    return ServiceAccount(client_id=row["client_id"], scopes=_words(row["scopes"]),
                          audiences=_words(row["audiences"]), description=row["description"],
                          disabled=bool(row["disabled"]), created_at=row["created_at"])


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_PATTERN.fullmatch(username):
        raise IdentityError(f"{str(username)[:40]!r} is not a username",
                            hint="at most 32 lowercase letters, digits, '.', '_' and '-', first a letter")
    return username


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise IdentityError(f"a password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return password


def check_service_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):  # match() lets "x\n" in
        raise IdentityError(f"{str(name)[:40]!r} is not a service name",
                            hint="lowercase letters, digits and '-', as in the catalog")
    return name


def _grants(scopes: Iterable[str], audiences: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A service account's scopes and audiences, checked, in order, each once."""
    try:
        scope_list = parse_scope(" ".join(scopes))
    except ScopeError as error:
        raise IdentityError(str(error)) from error
    return scope_list, tuple(dict.fromkeys(check_service_name(a) for a in audiences))


class IdentityStore:
    """Every read and write of the identity database, behind one lock."""

    def __init__(self, path: Path, *, passwords: Verifier | None = None,
                 secrets_verifier: Verifier | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        self.path = path
        self.passwords = passwords or Verifier(password_hasher())
        self.secrets = secrets_verifier or Verifier(secret_hasher())
        self._database = Database(path, _SCHEMA, file_mode=0o600)
        self._lock = self._database.lock
        self._db = self._database.connection
        self._transaction = self._database.transaction
        self._one = self._database.one

    def close(self) -> None:
        self._database.close()

    # --- users ---------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, roles: Iterable[str] = ("viewer",),
                 name: str = "") -> User:
        check_username(username)
        check_password(password)
        try:
            found_roles = check_roles(roles)
        except ScopeError as error:
            raise IdentityError(str(error)) from error
        password_hash = self.passwords.hash(password)
        user_id = "u-" + uuid.uuid4().hex
        try:
            with self._transaction() as db:
                db.execute("INSERT INTO users (id, username, name, password_hash, roles, created_at)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           (user_id, username, str(name)[:200], password_hash, " ".join(found_roles),
                            time.time()))
        except sqlite3.IntegrityError as error:
            raise IdentityError(f"user {username!r} exists already", hint="league user list") from error
        return self.user_by_id(user_id)

    def user_by_id(self, user_id: str) -> User:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise KeyError(user_id)
        return _user(row)

    def user_by_name(self, username: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE username = ?", (username,))
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM users ORDER BY username").fetchall()
        return [_user(row) for row in rows]

    def has_admin(self) -> bool:
        return any("admin" in user.roles and not user.disabled for user in self.users())

    def set_disabled(self, username: str, disabled: bool) -> User:
        """Enable or disable a user; disabling also ends every `league login` session they hold."""
        with self._transaction() as db:
            done = db.execute("UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username))
            if disabled:
                db.execute("UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND user_id ="
                           " (SELECT id FROM users WHERE username = ?)", (time.time(), username))
        if done.rowcount == 0:
            raise IdentityError(f"no user {username!r}", hint="league user list")
        user = self.user_by_name(username)
        assert user is not None
        return user

    def unlock(self, username: str) -> User:
        with self._transaction() as db:
            done = db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?",
                              (username,))
        if done.rowcount == 0:
            raise IdentityError(f"no user {username!r}", hint="league user list")
        user = self.user_by_name(username)
        assert user is not None
        return user

    def check_login(self, username: str, password: str, *, max_failures: int, lockout_seconds: float,
                    now: float | None = None) -> User | None:
        """The user when the password is right and the account usable; None otherwise, for any reason.

        Every path runs one argon2 verification, so an unknown name, a locked or disabled
        account and a wrong password take about the same time. `max_failures` wrong
        passwords in a row lock the account for `lockout_seconds`; while it is locked, even
        the right password is refused and nothing is counted.
        """
        now = time.time() if now is None else now
        row = self._one("SELECT * FROM users WHERE username = ?", (username,)) \
            if USERNAME_PATTERN.fullmatch(username) else None
        stored = None if row is None else str(row["password_hash"])
        matches = self.passwords.verify(stored, password[:MAX_PASSWORD_LENGTH])
        if row is None:
            return None
        user = _user(row)
        if user.disabled or user.locked(now):
            return None
        if not matches:
            with self._transaction() as db:
                db.execute("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?", (user.id,))
                db.execute("UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ? AND"
                           " failed_logins >= ?", (now + lockout_seconds, user.id, max_failures))
            return None
        new_hash = self.passwords.hash(password) if stored and self.passwords.needs_rehash(stored) else stored
        with self._transaction() as db:
            db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ?,"
                       " password_hash = ? WHERE id = ?", (now, new_hash, user.id))
        return self.user_by_id(user.id)

    # --- service accounts ------------------------------------------------------------------------

    def add_service_account(self, name: str, *, scopes: Iterable[str], audiences: Iterable[str],
                            description: str = "") -> tuple[ServiceAccount, str]:
        """The new account and its client secret: shown this once, only its hash is kept."""
        check_service_name(name)
        scope_list, audience_list = _grants(scopes, audiences)
        secret = new_secret()
        try:
            with self._transaction() as db:
                db.execute("INSERT INTO service_accounts (client_id, secret_hash, scopes, audiences,"
                           " description, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (name, self.secrets.hash(secret), " ".join(scope_list), " ".join(audience_list),
                            str(description)[:200], time.time()))
        except sqlite3.IntegrityError as error:
            raise IdentityError(f"service account {name!r} exists already",
                                hint="league service-account list") from error
        account = self.service_account(name)
        assert account is not None
        return account, secret

    def service_account(self, client_id: str) -> ServiceAccount | None:
        row = self._one("SELECT * FROM service_accounts WHERE client_id = ?", (client_id,))
        return None if row is None else _account(row)

    def service_accounts(self) -> list[ServiceAccount]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM service_accounts ORDER BY client_id").fetchall()
        return [_account(row) for row in rows]

    def update_service_account(self, name: str, *, scopes: Iterable[str],
                               audiences: Iterable[str]) -> ServiceAccount:
        """Set what an account may reach and do; its secret stays what it was."""
        scope_list, audience_list = _grants(scopes, audiences)
        with self._transaction() as db:
            done = db.execute("UPDATE service_accounts SET scopes = ?, audiences = ? WHERE client_id = ?",
                              (" ".join(scope_list), " ".join(audience_list), name))
        if done.rowcount == 0:
            raise IdentityError(f"no service account {name!r}", hint="league service-account list")
        account = self.service_account(name)
        assert account is not None
        return account

    def reset_client_secret(self, name: str) -> str:
        """A new secret for an account, shown this once; the old one stops working at once."""
        secret = new_secret()
        with self._transaction() as db:
            done = db.execute("UPDATE service_accounts SET secret_hash = ? WHERE client_id = ?",
                              (self.secrets.hash(secret), name))
        if done.rowcount == 0:
            raise IdentityError(f"no service account {name!r}", hint="league service-account list")
        return secret

    def authenticate_client(self, client_id: str, secret: str) -> ServiceAccount | None:
        """The account when the secret is its own and it is enabled; one argon2 check either way."""
        row = self._one("SELECT * FROM service_accounts WHERE client_id = ?", (client_id,))
        matches = self.secrets.verify(None if row is None else str(row["secret_hash"]), secret[:256])
        if row is None or not matches:
            return None
        account = _account(row)
        return None if account.disabled else account

    # --- device codes (RFC 8628) ----------------------------------------------------------------

    def start_device_grant(self, *, client_id: str, scope: Iterable[str], audience: str, interval: int,
                           lifetime: float) -> tuple[str, str]:
        """(device_code, user_code) for a new device authorization; only their hashes are kept."""
        now = time.time()
        for _ in range(5):
            device_code = secrets.token_urlsafe(32)
            user_code = new_user_code()
            try:
                with self._transaction() as db:
                    db.execute("DELETE FROM device_codes WHERE expires_at < ?", (now - 3600,))
                    db.execute(
                        "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope,"
                        " audience, state, interval_seconds, created_at, expires_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (_sha256(device_code), _sha256(normalize_user_code(user_code)), client_id,
                         " ".join(scope), audience, PENDING, interval, now, now + lifetime))
                return device_code, user_code
            except sqlite3.IntegrityError:
                continue  # a user code drawn twice while both live: draw again
        raise IdentityError("could not draw a unique user code")

    def pending_device_grant(self, user_code: str, now: float | None = None) -> DeviceGrant | None:
        """The grant a user code names, while it waits for the user; None otherwise."""
        now = time.time() if now is None else now
        row = self._one("SELECT * FROM device_codes WHERE user_code_hash = ? AND state = ?"
                        " AND expires_at > ?", (_sha256(normalize_user_code(user_code)), PENDING, now))
        if row is None:
            return None
        return DeviceGrant("pending", row["client_id"], _words(row["scope"]), row["audience"])

    def decide_device_grant(self, user_code: str, user_id: str, *, approve: bool,
                            now: float | None = None) -> bool:
        """Approve or deny a waiting grant for this user; False when the code is unknown or expired."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            done = db.execute(
                "UPDATE device_codes SET state = ?, user_id = ? WHERE user_code_hash = ? AND state = ?"
                " AND expires_at > ?",
                (APPROVED if approve else DENIED, user_id, _sha256(normalize_user_code(user_code)),
                 PENDING, now))
        return done.rowcount == 1

    def poll_device_grant(self, device_code: str, client_id: str, now: float | None = None) -> DeviceGrant:
        """What a client polling with `device_code` is told (RFC 8628 3.5); an approval is given once."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            row = db.execute("SELECT * FROM device_codes WHERE device_code_hash = ?",
                             (_sha256(device_code),)).fetchone()
            if row is None or row["client_id"] != client_id:
                return DeviceGrant("unknown")
            interval = int(row["interval_seconds"])
            last = row["last_poll_at"]
            db.execute("UPDATE device_codes SET last_poll_at = ? WHERE device_code_hash = ?",
                       (now, row["device_code_hash"]))
            if row["state"] == USED:
                return DeviceGrant("unknown")
            if row["expires_at"] <= now:
                return DeviceGrant("expired")
            if row["state"] == DENIED:
                return DeviceGrant("denied")
            if row["state"] == APPROVED:
                db.execute("UPDATE device_codes SET state = ? WHERE device_code_hash = ?",
                           (USED, row["device_code_hash"]))
                return DeviceGrant("approved", row["client_id"], _words(row["scope"]), row["audience"],
                                   row["user_id"], interval)
            if last is not None and now - last < interval:
                interval += SLOW_DOWN_SECONDS
                db.execute("UPDATE device_codes SET interval_seconds = ? WHERE device_code_hash = ?",
                           (interval, row["device_code_hash"]))
                return DeviceGrant("slow_down", interval=interval)
            return DeviceGrant("pending", interval=interval)

    # --- refresh tokens (RFC 6749 6) ------------------------------------------------------------

    def issue_refresh_token(self, user_id: str, client_id: str, *, lifetime: float,
                            now: float | None = None) -> tuple[str, float]:
        """The first refresh token of a new family (a new login) and when the family ends."""
        now = time.time() if now is None else now
        token, expires_at = secrets.token_urlsafe(32), now + lifetime
        with self._transaction() as db:
            db.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (now - REFRESH_RECORD_SECONDS,))
            db.execute("INSERT INTO refresh_tokens (token_hash, family, user_id, client_id, created_at,"
                       " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (_sha256(token), uuid.uuid4().hex, user_id, client_id, now, expires_at))
        return token, expires_at

    def rotate_refresh_token(self, token: str, client_id: str, now: float | None = None) -> RefreshGrant:
        """Trade a refresh token for the next of its family, once; a second use revokes the family.

        One transaction reads, checks and rotates, so two requests racing with the same
        token cannot both win: the second sees it used and revokes the family.
        """
        now = time.time() if now is None else now
        with self._transaction() as db:
            row = db.execute("SELECT r.*, u.disabled AS user_disabled FROM refresh_tokens r"
                             " LEFT JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?",
                             (_sha256(token[:256]),)).fetchone()
            if row is None or row["client_id"] != client_id:
                return RefreshGrant("unknown")
            user_id = row["user_id"]
            if row["revoked_at"] is not None:
                return RefreshGrant("revoked", user_id)
            if row["used_at"] is not None or row["user_disabled"] is None or row["user_disabled"]:
                db.execute("UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                           (now, row["family"]))
                return RefreshGrant("reused" if row["used_at"] is not None else "disabled", user_id)
            if row["expires_at"] <= now:
                return RefreshGrant("expired", user_id)
            successor = secrets.token_urlsafe(32)
            db.execute("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?", (now, row["token_hash"]))
            db.execute("INSERT INTO refresh_tokens (token_hash, family, user_id, client_id, created_at,"
                       " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (_sha256(successor), row["family"], user_id, client_id, now, row["expires_at"]))
        return RefreshGrant("rotated", user_id, successor, float(row["expires_at"]))

    def revoke_refresh_token(self, token: str, client_id: str, now: float | None = None) -> bool:
        """End the sign-in a refresh token belongs to (its whole family); False if it is not one of ours."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            row = db.execute("SELECT family, client_id FROM refresh_tokens WHERE token_hash = ?",
                             (_sha256(token[:256]),)).fetchone()
            if row is None or row["client_id"] != client_id:
                return False
            db.execute("UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                       (now, row["family"]))
        return True

    # --- the record of issued tokens -------------------------------------------------------------

    def record_token(self, claims: dict[str, Any], grant_type: str) -> None:
        actor = claims.get("act")
        with self._transaction() as db:
            db.execute("INSERT INTO issued_tokens (jti, sub, aud, client_id, grant_type, actor, scope,"
                       " iat, exp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (claims["jti"], claims["sub"], claims["aud"], claims["client_id"], grant_type,
                        json.dumps(actor) if actor else None, claims.get("scope", ""), claims["iat"],
                        claims["exp"]))

    def issued_tokens(self, sub: str | None = None, limit: int = 100) -> list[IssuedToken]:
        with self._lock:
            if sub:
                rows = self._db.execute("SELECT * FROM issued_tokens WHERE sub = ? ORDER BY iat DESC LIMIT ?",
                                        (sub, limit)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM issued_tokens ORDER BY iat DESC LIMIT ?",
                                        (limit,)).fetchall()
        return [IssuedToken(r["jti"], r["sub"], r["aud"], r["client_id"], r["grant_type"], r["actor"],
                            r["scope"], r["iat"], r["exp"]) for r in rows]


def ensure_first_admin(store: IdentityStore, password_file: Path | None = None) -> tuple[str, Path] | None:
    """Create user `admin` with a random password in a 0600 file, unless an admin exists.

    Returns the username and the file's path (never the password) when it made one, None
    when there was an admin already, or a user `admin` that someone disabled or demoted.
    The password is in a file rather than on a screen so it does not end up in a
    terminal's scrollback or a CI log.
    """
    if store.has_admin():
        return None
    target = password_file or store.path.parent / "admin-password"
    password = secrets.token_urlsafe(18)
    if store.user_by_name("admin") is not None:
        return None  # disabled on purpose, perhaps: never replaced behind the operator's back
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    store.add_user("admin", password, roles=("admin",), name="First administrator")
    temporary.replace(target)
    return "admin", target
