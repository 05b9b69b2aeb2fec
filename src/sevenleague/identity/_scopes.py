"""Which scopes a caller may hold: the policy in one small table.

A scope names a service and an action, `hello.read`, `ledger.write`, `identity.admin`,
so one look tells what a token lets its holder do and where. Service accounts are
given their scopes one by one when they are created. Users get theirs from their roles,
by action, for every service alike: a developer may read and write anywhere, only an
admin may administer. `openid` and `profile` are for everyone: they only ask who the
user is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ROLES = ("viewer", "developer", "operator", "admin")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "developer": frozenset({"read", "write"}),
    "operator": frozenset({"read", "write", "operate"}),
    "admin": frozenset({"read", "write", "operate", "admin"}),
}
IDENTITY_SCOPES = frozenset({"openid", "profile"})
SCOPE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,31}(\.[a-z][a-z0-9_-]{0,31})?")
MAX_SCOPES = 32


class ScopeError(ValueError):
    """A scope parameter that is not a list of scope names; the message is safe to send back."""


def parse_scope(raw: str | None) -> tuple[str, ...]:
    """The scopes of a space-separated `scope` parameter, in order, each once."""
    if raw is None or not raw.strip():
        return ()
    scopes = tuple(dict.fromkeys(raw.split()))
    if len(scopes) > MAX_SCOPES:
        raise ScopeError(f"at most {MAX_SCOPES} scopes may be asked for")
    for scope in scopes:
        if not SCOPE_PATTERN.fullmatch(scope):
            raise ScopeError(f"{scope[:40]!r} is not a scope (SERVICE.ACTION, e.g. hello.read)")
    return scopes


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(roles))
    unknown = [role for role in found if role not in ROLE_ACTIONS]
    if unknown:
        raise ScopeError(f"unknown roles {', '.join(unknown)}: a role is one of {', '.join(ROLES)}")
    return found


def user_may_have(scope: str, roles: Iterable[str]) -> bool:
    if scope in IDENTITY_SCOPES:
        return True
    _, dot, action = scope.partition(".")
    return bool(dot) and any(action in ROLE_ACTIONS.get(role, frozenset()) for role in roles)


def refused_for_user(scopes: Iterable[str], roles: Iterable[str]) -> list[str]:
    roles = tuple(roles)
    return [scope for scope in scopes if not user_may_have(scope, roles)]
