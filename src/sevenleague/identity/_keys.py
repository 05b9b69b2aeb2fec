"""The keys tokens are signed with: ES256, rotated with an overlap so no valid token is orphaned.

A key has three phases. **Announced**: in the JWKS but not yet signing, for a grace
period, so every verifier that caches the JWKS has seen it before the first token it
signed arrives (the kit refetches on an unknown kid anyway; other verifiers may not).
**Signing**: the newest announced key whose grace has passed signs every new token.
**Retired**: a newer key took over; it stays in the JWKS until the last token it signed
has expired (token lifetime plus a minute of clock skew), then it is removed, file and
all, since a private key that signs nothing is only a liability.

Each key is one file `KID.json` (the private JWK and its timestamps) in a 0700
directory, written 0600 and renamed into place, so a reader never sees half a key. The
kid is the key's RFC 7638 thumbprint: it names the key itself, not a counter.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

from ._settings import IdentityError

ALGORITHM = "ES256"
CURVE = "P-256"
# Verifiers accept tokens up to 30 s past exp (the kit's leeway): keep keys a bit longer.
SKEW_SECONDS = 60.0


@dataclass(frozen=True)
class SigningKey:
    kid: str
    serial: int
    created_at: float
    signs_from: float
    private: ECKey

    def public_jwk(self) -> dict[str, Any]:
        return self.private.as_dict(private=False) | {"kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def to_file(self) -> dict[str, Any]:
        return {"kid": self.kid, "serial": self.serial, "created_at": self.created_at,
                "signs_from": self.signs_from, "jwk": self.private.as_dict(private=True)}

    @property
    def order(self) -> tuple[float, int]:
        """Keys take over in the order they start signing; of two that start together, the newer wins."""
        return self.signs_from, self.serial


@dataclass(frozen=True)
class KeyStatus:
    """One key as an operator sees it: when it signs, and until when it is published."""

    kid: str
    state: str  # announced | signing | retired
    created_at: float
    signs_from: float
    retired_at: float | None
    published_until: float | None

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid, "state": self.state, "created_at": self.created_at,
                "signs_from": self.signs_from, "retired_at": self.retired_at,
                "published_until": self.published_until}


def new_key(serial: int, now: float, signs_from: float) -> SigningKey:
    private = ECKey.generate_key(CURVE, parameters={"use": "sig", "alg": ALGORITHM}, private=True)
    return SigningKey(kid=private.thumbprint(), serial=serial, created_at=now, signs_from=signs_from,
                      private=private)


def _read_key(path: Path) -> SigningKey:
    try:
        data = json.loads(path.read_text())
        private = ECKey.import_key(data["jwk"])
        key = SigningKey(kid=str(data["kid"]), serial=int(data["serial"]),
                         created_at=float(data["created_at"]), signs_from=float(data["signs_from"]),
                         private=private)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise IdentityError(f"{path}: not a signing key ({type(error).__name__})",
                            hint="move it out of the keys directory; with none left, a new key is made"
                            ) from error
    if not private.is_private or private.thumbprint() != key.kid:
        raise IdentityError(f"{path}: the key does not match its kid",
                            hint="move it out of the keys directory")
    return key


def _write_key(directory: Path, key: SigningKey) -> None:
    target = directory / f"{key.kid}.json"
    temporary = directory / f".{key.kid}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(key.to_file(), handle)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)


class KeyRing:
    """Every key the service holds, and which one signs now; see the module docstring."""

    def __init__(self, directory: Path, *, token_lifetime: float, grace: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.token_lifetime = token_lifetime
        self.grace = grace
        self.clock = clock
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        self._keys = sorted((_read_key(path) for path in directory.glob("*.json")), key=lambda k: k.order)
        if not self._keys:
            now = clock()
            first = new_key(1, now, signs_from=now)  # nobody can have cached anything yet
            _write_key(directory, first)
            self._keys = [first]
        self.prune()

    # --- reading the ring ---------------------------------------------------------------------

    def _retirements(self, now: float) -> dict[str, float]:
        """kid -> when a newer key took over from it (only for keys that were superseded)."""
        active = [k for k in self._keys if k.signs_from <= now]
        return {older.kid: newer.signs_from for older, newer in itertools.pairwise(active)}

    def _published_until(self, retired_at: float) -> float:
        return retired_at + self.token_lifetime + SKEW_SECONDS

    def signing_key(self) -> SigningKey:
        """The key that signs a token made now: the newest one whose grace period is over."""
        now = self.clock()
        with self._lock:
            active = [k for k in self._keys if k.signs_from <= now]
            return active[-1] if active else self._keys[0]

    def published(self) -> list[SigningKey]:
        now = self.clock()
        with self._lock:
            retired = self._retirements(now)
            return [k for k in self._keys
                    if k.kid not in retired or now <= self._published_until(retired[k.kid])]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.published()]}

    def key_set(self) -> KeySet:
        """The published public keys, to check tokens this service issued."""
        return KeySet([ECKey.import_key(key.public_jwk()) for key in self.published()])

    def status(self) -> list[KeyStatus]:
        now = self.clock()
        with self._lock:
            retired = self._retirements(now)
            signing = [k for k in self._keys if k.signs_from <= now]
            current = signing[-1].kid if signing else None
            return [
                KeyStatus(
                    kid=k.kid,
                    state="retired" if k.kid in retired else "signing" if k.kid == current else "announced",
                    created_at=k.created_at, signs_from=k.signs_from,
                    retired_at=retired.get(k.kid),
                    published_until=self._published_until(retired[k.kid]) if k.kid in retired else None,
                )
                for k in self._keys
            ]

    # --- changing it ----------------------------------------------------------------------------

    def rotate(self, grace: float | None = None) -> SigningKey:
        """Announce a new key now; it signs once `grace` seconds have passed."""
        now = self.clock()
        with self._lock:
            serial = max((k.serial for k in self._keys), default=0) + 1
            key = new_key(serial, now, signs_from=now + (self.grace if grace is None else grace))
            _write_key(self.directory, key)
            self._keys = sorted([*self._keys, key], key=lambda k: k.order)
        return key

    def prune(self) -> list[str]:
        """Forget and delete the keys no unexpired token can name any more; returns their kids."""
        now = self.clock()
        with self._lock:
            retired = self._retirements(now)
            gone = [k for k in self._keys
                    if k.kid in retired and now > self._published_until(retired[k.kid])]
            for key in gone:
                (self.directory / f"{key.kid}.json").unlink(missing_ok=True)
            kids = {k.kid for k in gone}
            self._keys = [k for k in self._keys if k.kid not in kids]
        return sorted(kids)
