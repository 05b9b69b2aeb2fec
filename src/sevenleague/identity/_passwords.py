"""Hashing what people and services prove themselves with: argon2id, never anything reversible.

Passwords are chosen by people, so they are guessable: they get argon2id's default
cost (64 MiB, 3 passes), which makes every guess against a stolen database expensive.
Client secrets are 256 random bits made by this service: no amount of guessing finds
one, so stretching them buys nothing and would only make every token request slow.
They are still hashed with argon2id (a leaked database must not hold usable secrets),
at the lowest cost argon2 allows.

A check against an unknown user or client still runs one verification against a
dummy hash of the same cost, so the time of an answer does not say whether the name
exists.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SECRET_BYTES = 32
PASSWORD_BYTES = 18  # 24 characters of base64url: 144 bits


def password_hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106's second recommended parameters


def secret_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


class Verifier:
    """Checks a value against a stored hash, in about the same time whether or not there is one."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self._dummy = hasher.hash(secrets.token_urlsafe(16))

    def hash(self, value: str) -> str:
        return self.hasher.hash(value)

    def verify(self, stored: str | None, value: str) -> bool:
        try:
            matches = self.hasher.verify(stored if stored is not None else self._dummy, value)
            return matches and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return False
