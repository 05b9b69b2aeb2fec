"""The verified bearer token of the request being handled, kept for calls made on the caller's behalf.

A service calling another for its caller must show the issuer the caller's token to
exchange it (RFC 8693), so the token has to outlive the check at the door. It is kept
on the ASGI scope's state next to the identity, and only once it verified: a token that
failed the check is never exchanged. It is wrapped so that printing the state, a
debugger's view or a careless log line shows `CallerToken(<hidden>)`, never the token;
`Identity` holds no token at all, so its repr and log fields cannot leak one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# The key in scope["state"] (so `request.state.caller_token` in Starlette).
CALLER_TOKEN: Final = "caller_token"  # noqa: S105 - a key, not a token


class CallerToken:
    """A bearer token that does not show itself: `reveal()` is the one way to read it."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def reveal(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "CallerToken(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # no pickling into a cache or a queue by accident
        raise TypeError("a caller's token is not pickled")


def caller_token(state: Mapping[str, Any] | None) -> CallerToken | None:
    """The verified token in a request's state, or None when the caller showed none (or an invalid one)."""
    if not state:
        return None
    found = state.get(CALLER_TOKEN)
    return found if isinstance(found, CallerToken) else None
