"""Checking a bearer token: is it ours, is it for us, is it still good, and who does it speak for.

The header is read and judged before any key is looked up, so a token with a forbidden
algorithm, no kid or the wrong type costs neither a signature check nor a JWKS fetch.
Symmetric algorithms are never allowed, whatever the configuration says: a verifier
that accepts HS256 can be fooled into using the issuer's *public* key as an HMAC
secret, and then anyone can mint tokens. `alg: none` is refused the same way.

Then joserfc checks the signature with the issuer's key set and only the allowed
algorithms, and its claims registry checks `iss`, `aud`, `exp`, `nbf` and `iat` with a
small leeway for clock skew. Every claim RFC 9068 requires of an access token must be
present. The reasons given in `InvalidToken` are short and safe to send back: they say
what was wrong, never the token or its claims.

A caller sends the same token with every request until it expires, and checking an
ES256 signature costs about ten times what the rest of the kit spends on a request. So
a token that verified is remembered (a bounded table, by the token itself) until its
`exp`, until the key set changes, or until the keys are due for a refresh, whichever
comes first.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Collection
from typing import Any

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError

from ._auth import Identity, InvalidToken
from ._auth_jwks import JwksCache

ASYMMETRIC_ALGORITHMS = frozenset({
    "ES256", "ES384", "ES512", "ES256K", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "EdDSA", "Ed25519",
})
# RFC 9068 2.2: the claims every JWT access token carries.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
MAX_TOKEN_BYTES = 8 * 1024
MAX_KID_LENGTH = 128
REMEMBERED_TOKENS = 4096

_CLAIM_REASONS = {
    "iss": "token is from another issuer",
    "aud": "token is for another audience",
    "nbf": "token is not valid yet",
    "iat": "token was issued in the future",
}


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, parsed but not yet trusted."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token is too long")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise InvalidToken("token is not a signed JWT")
    try:
        header = _b64url_json(parts[0])
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise InvalidToken("token header is not readable") from error
    if not isinstance(header, dict):
        raise InvalidToken("token header is not readable")
    return header


def _same_type(typ: object, expected: str) -> bool:
    """Media types compare case-insensitively, with or without the `application/` prefix (RFC 7515 4.1.9)."""
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ.removeprefix("application/") == expected.lower().removeprefix("application/")


class TokenVerifier:
    """Verifies access tokens from one issuer, meant for one audience."""

    def __init__(self, issuer: str, audience: str, jwks: JwksCache, *,
                 algorithms: Collection[str] = ("ES256",), leeway: int = 30, typ: str | None = "at+jwt",
                 clock: Callable[[], float] = time.time, remember: int = REMEMBERED_TOKENS) -> None:
        refused = [alg for alg in algorithms if alg not in ASYMMETRIC_ALGORITHMS]
        if refused or not algorithms:
            raise ValueError(f"algorithms {refused or '(none)'} refused: only asymmetric signatures "
                             f"verify tokens ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})")
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.typ = typ
        self.clock = clock
        self.remember = remember
        # token -> (identity, accepted until, key set generation)
        self._verified: dict[str, tuple[Identity, float, int]] = {}
        essential = {"essential": True}
        self._claims = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock()), leeway=leeway,
            **{name: dict(essential) for name in REQUIRED_CLAIMS},  # type: ignore[arg-type]
        )
        self._claims.options["iss"] = {"essential": True, "value": issuer}
        self._claims.options["aud"] = {"essential": True, "value": audience}

    def check_header(self, header: dict[str, Any]) -> str:
        """The kid to look up, once the header is acceptable."""
        if header.get("alg") not in self.algorithms:
            raise InvalidToken("token algorithm is not allowed")
        if self.typ is not None and not _same_type(header.get("typ"), self.typ):
            raise InvalidToken(f"token type is not {self.typ}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise InvalidToken("token names no signing key")
        return kid

    def check_claims(self, claims: dict[str, Any]) -> None:
        try:
            self._claims.validate(claims)
        except ExpiredTokenError as error:
            raise InvalidToken("token has expired") from error
        except MissingClaimError as error:
            raise InvalidToken(f"token lacks claims {error.claim}") from error
        except InvalidClaimError as error:
            claim = error.claim
            raise InvalidToken(_CLAIM_REASONS.get(claim, f"token claim {claim} is malformed")) from error

    async def verify(self, token: str) -> Identity:
        """The caller the token speaks for; `InvalidToken` says why when it cannot be trusted.

        Asynchronous because a token signed by a key not seen yet makes the key cache
        fetch the issuer's keys (in a thread, at most once per refresh interval).
        """
        known = self._verified.get(token)
        if known is not None:
            identity, until, generation = known
            jwks = self.jwks
            if self.clock() < until and generation == jwks.generation and not jwks.stale:
                return identity
            del self._verified[token]
        kid = self.check_header(unverified_header(token))
        key_set = await self.jwks.key_set_for(kid)
        if key_set is None:
            raise InvalidToken("token is signed by an unknown key")
        try:
            decoded = jwt.decode(token, key_set, algorithms=self.algorithms)
        except JoseError as error:
            raise InvalidToken("token signature does not verify") from error
        except ValueError as error:
            raise InvalidToken("token is not a signed JWT") from error
        self.check_claims(decoded.claims)
        identity = Identity.from_claims(decoded.claims)
        self._remember(token, identity, decoded.claims["exp"])
        return identity

    def _remember(self, token: str, identity: Identity, exp: float) -> None:
        verified = self._verified
        if self.remember <= 0:
            return
        if len(verified) >= self.remember:
            del verified[next(iter(verified))]  # the oldest entry
        verified[token] = (identity, exp + self.leeway, self.jwks.generation)
