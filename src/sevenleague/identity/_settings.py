"""What the identity service reads from its environment, and where its state lives.

Everything has a default that is right for the demo eco-system; the environment
overrides it so `league up` (from the catalog) and the tests (short lifetimes, fast
lockouts) can run the same code. A value that cannot be right stops the service at
startup with a message naming the variable, instead of surfacing as an odd token later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LeagueError

HOME_ENV = "LEAGUE_HOME"
ISSUER_ENV = "LEAGUE_OIDC_ISSUER"
TOKEN_LIFETIME_ENV = "LEAGUE_IDENTITY_TOKEN_LIFETIME"  # noqa: S105 - a variable name
KEY_GRACE_ENV = "LEAGUE_IDENTITY_KEY_GRACE"
LOCKOUT_FAILURES_ENV = "LEAGUE_IDENTITY_LOCKOUT_FAILURES"
LOCKOUT_SECONDS_ENV = "LEAGUE_IDENTITY_LOCKOUT_SECONDS"
LOGIN_RATE_ENV = "LEAGUE_IDENTITY_LOGIN_RATE"
DEVICE_INTERVAL_ENV = "LEAGUE_IDENTITY_DEVICE_INTERVAL"
DEVICE_LIFETIME_ENV = "LEAGUE_IDENTITY_DEVICE_LIFETIME"
REFRESH_LIFETIME_ENV = "LEAGUE_IDENTITY_REFRESH_LIFETIME"
CLIENTS_ENV = "LEAGUE_IDENTITY_CLIENTS"

SERVICE_NAME = "identity"
ADMIN_SCOPE = "identity.admin"
# The public client `league login` uses: it has no secret, a terminal cannot keep one.
CLI_CLIENT_ID = "league"


class IdentityError(LeagueError):
    """The identity service cannot do what was asked; the message says what to change."""


@dataclass(frozen=True)
class IdentityPaths:
    root: Path

    @classmethod
    def under(cls, home: Path) -> IdentityPaths:
        return cls(home / "identity")

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def database(self) -> Path:
        return self.root / "identity.sqlite3"

    @property
    def admin_password(self) -> Path:
        return self.root / "admin-password"

    @property
    def client_secrets(self) -> Path:
        """Where the secrets of the service accounts the eco-system wants are handed over."""
        return self.root / "clients"

    def client_secret(self, name: str) -> Path:
        return self.client_secrets / f"{name}.secret"


@dataclass(frozen=True)
class IdentitySettings:
    """How long things live and how hard the login form pushes back."""

    issuer: str
    token_lifetime: float = 600.0
    key_grace: float = 900.0
    lockout_failures: int = 5
    lockout_seconds: float = 900.0
    login_attempts: int = 10
    login_window: float = 60.0
    device_interval: int = 5
    device_lifetime: float = 600.0
    # How long a `league login` lasts: refreshing rotates the token but never extends this.
    refresh_lifetime: float = 43200.0
    # The service accounts the eco-system wants (LEAGUE_IDENTITY_CLIENTS), made at startup.
    clients_file: Path | None = None

    @property
    def secure_cookies(self) -> bool:
        """Cookies get `Secure` when users reach us over https, which the issuer says."""
        return self.issuer.startswith("https://")

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> IdentitySettings:
        env = os.environ if environ is None else environ
        issuer = env.get(ISSUER_ENV, "").strip()
        if not issuer.startswith(("http://", "https://")) or issuer.endswith("/"):
            raise IdentityError(f"{ISSUER_ENV}={issuer!r} is not the service's external base URL",
                                hint="e.g. http://127.0.0.1:9400 (no trailing slash)")
        attempts, window = _rate(env.get(LOGIN_RATE_ENV, "10/60"))
        clients_file = env.get(CLIENTS_ENV, "").strip()
        return cls(
            issuer=issuer,
            token_lifetime=_number(env, TOKEN_LIFETIME_ENV, 600.0, low=10.0, high=86400.0),
            key_grace=_number(env, KEY_GRACE_ENV, 900.0, low=0.0, high=7 * 86400.0),
            lockout_failures=int(_number(env, LOCKOUT_FAILURES_ENV, 5, low=1, high=100)),
            lockout_seconds=_number(env, LOCKOUT_SECONDS_ENV, 900.0, low=1.0, high=86400.0),
            login_attempts=attempts,
            login_window=window,
            device_interval=int(_number(env, DEVICE_INTERVAL_ENV, 5, low=1, high=60)),
            device_lifetime=_number(env, DEVICE_LIFETIME_ENV, 600.0, low=10.0, high=3600.0),
            refresh_lifetime=_number(env, REFRESH_LIFETIME_ENV, 43200.0, low=60.0, high=30 * 86400.0),
            clients_file=Path(clients_file).absolute() if clients_file else None,
        )


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise IdentityError(f"{name}={raw!r} must be a number from {low:g} to {high:g}")
    return value


def _rate(raw: str) -> tuple[int, float]:
    """'10/60' -> at most 10 attempts per 60 seconds."""
    count, _, seconds = raw.strip().partition("/")
    if not count.isdigit() or not seconds.replace(".", "", 1).isdigit() or int(count) < 1 \
            or float(seconds) <= 0:
        raise IdentityError(f"{LOGIN_RATE_ENV}={raw!r} must be ATTEMPTS/SECONDS", hint="e.g. 10/60")
    return int(count), float(seconds)
