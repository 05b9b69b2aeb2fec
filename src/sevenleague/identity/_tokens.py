"""Minting access tokens (RFC 9068) and checking the ones this service minted.

An access token is a JWT signed ES256 with the current signing key: header `typ:
at+jwt` (so it cannot pass for an ID token, nor an ID token for it) and the key's `kid`;
claims `iss`, `sub`, `aud`, `exp`, `iat`, `jti`, `client_id`, `scope`, and for people
`roles` and `preferred_username`. Tokens are short-lived (10 minutes by default), which
is what stands in for revocation: nothing to look up on every request.

Checking our own tokens (the subject token of an exchange, an admin's bearer token)
uses only the published keys and refuses what a service's verifier would refuse: another
algorithm or type, another issuer, an expired token. The reasons are short and never
contain the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError

from ..kit import InvalidToken
from ._keys import ALGORITHM, KeyRing

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type
MAX_TOKEN_BYTES = 8 * 1024
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token is too long")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidToken("token is not a signed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise InvalidToken("token header is not readable") from error
    if not isinstance(header, dict):
        raise InvalidToken("token header is not readable")
    return header


class TokenMint:
    """Signs tokens for one issuer with the key ring's current key, and checks them back."""

    def __init__(self, keys: KeyRing, issuer: str, lifetime: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.issuer = issuer
        self.lifetime = lifetime
        self.clock = clock

    def access_token(self, *, sub: str, aud: str, client_id: str, scope: Sequence[str],
                     roles: Sequence[str] = (), username: str | None = None,
                     act: Mapping[str, Any] | None = None,
                     not_after: int | None = None) -> tuple[str, dict[str, Any]]:
        """The token and its claims; `not_after` caps `exp`, so an exchanged token dies with its source."""
        now = int(self.clock())
        exp = now + int(self.lifetime)
        if not_after is not None:
            exp = min(exp, not_after)
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": sub, "aud": aud, "exp": exp, "iat": now, "nbf": now,
            "jti": uuid.uuid4().hex, "client_id": client_id, "scope": " ".join(scope),
            "roles": list(roles),
        }
        if username is not None:
            claims["preferred_username"] = username
        if act is not None:
            claims["act"] = dict(act)
        key = self.keys.signing_key()
        header = {"typ": ACCESS_TOKEN_TYPE, "alg": ALGORITHM, "kid": key.kid}
        return jwt.encode(header, claims, key.private, algorithms=[ALGORITHM]), claims

    def id_token(self, *, sub: str, client_id: str, username: str, name: str, auth_time: int) -> str:
        """An OpenID Connect ID token for the client that logged the user in (typ JWT, aud = client)."""
        now = int(self.clock())
        claims = {"iss": self.issuer, "sub": sub, "aud": client_id, "exp": now + int(self.lifetime),
                  "iat": now, "auth_time": auth_time, "preferred_username": username, "name": name}
        key = self.keys.signing_key()
        return jwt.encode({"typ": "JWT", "alg": ALGORITHM, "kid": key.kid}, claims, key.private,
                          algorithms=[ALGORITHM])

    def verify(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """The claims of an access token this service issued, still valid, for `audience` if given."""
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("token algorithm is not allowed")
        if str(header.get("typ", "")).lower().removeprefix("application/") != ACCESS_TOKEN_TYPE:
            raise InvalidToken(f"token type is not {ACCESS_TOKEN_TYPE}")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in {key.kid for key in self.keys.published()}:
            raise InvalidToken("token is signed by an unknown key")
        try:
            decoded = jwt.decode(token, self.keys.key_set(), algorithms=[ALGORITHM])
        except JoseError as error:
            raise InvalidToken("token signature does not verify") from error
        except ValueError as error:
            raise InvalidToken("token is not a signed JWT") from error
        options: dict[str, Any] = {name: {"essential": True} for name in REQUIRED_CLAIMS}
        options["iss"] = {"essential": True, "value": self.issuer}
        if audience is not None:
            options["aud"] = {"essential": True, "value": audience}
        registry = jwt.JWTClaimsRegistry(now=lambda: int(self.clock()), leeway=LEEWAY_SECONDS, **options)
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError as error:
            raise InvalidToken("token has expired") from error
        except MissingClaimError as error:
            raise InvalidToken(f"token lacks claims {error.claim}") from error
        except InvalidClaimError as error:
            reason = f"token claim {error.claim} is wrong"
            if error.claim == "aud":
                reason = "token is for another audience"
            raise InvalidToken(reason) from error
        claims = dict(decoded.claims)
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope", ""), str):
            raise InvalidToken("token claims are malformed")
        return claims
