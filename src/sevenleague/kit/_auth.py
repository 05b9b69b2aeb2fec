"""Who is calling, and what each route lets them do: the parts of access control that need no crypto.

Secure by default: once token checking is on, a route the service declares nothing
about needs a valid token. A route is opened explicitly with `PUBLIC`, or narrowed to
callers holding scopes. Declarations are keyed by route template (the same `/users/{id}`
the metrics use), so one table says who may call what, and a typo in a key is an error
at startup rather than a route that silently lost its scope requirement.

Turning checks on is a deployment decision, not a code change: `AuthSettings` given to
`instrument`, or `LEAGUE_OIDC_ISSUER` in the environment. Without either, the kit behaves
exactly as it does without access control. The crypto (joserfc, cryptography) is
imported only then, so services that do not check tokens do not pay for it at startup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ..errors import LeagueError

ISSUER_ENV = "LEAGUE_OIDC_ISSUER"
JWKS_URI_ENV = "LEAGUE_OIDC_JWKS_URI"

# A scope is echoed in a WWW-Authenticate quoted-string: RFC 6749's scope-token characters.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_METHOD = re.compile(r"GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS")

# url, timeout in seconds -> the JSON object at that url
Fetch = Callable[[str, float], Mapping[str, Any]]


class Public:
    """The marker for a route anyone may call; `PUBLIC` is its one instance."""

    _instance: Public | None = None

    def __new__(cls) -> Public:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Final = Public()

# What a route declares: PUBLIC, one scope, or several scopes that are all required.
Access = Public | str | tuple[str, ...]


class AuthConfigError(LeagueError):
    """Access declarations or token settings that cannot be right; raised at startup."""


class InvalidToken(LeagueError):
    """The bearer token cannot be trusted; `reason` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """The verified caller of one request: a user, or a service account (`service:NAME`).

    `actor` is set when a service exchanged the user's token to call on their behalf
    (RFC 8693 `act`): the request is the user's, carried by that service.
    """

    subject: str
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    roles: tuple[str, ...] = ()
    name: str | None = None
    actor: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Identity:
        """The identity in verified claims; odd types are refused rather than guessed at."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("token has no subject")
        scope = claims.get("scope", "")
        roles = claims.get("roles", [])
        if not isinstance(scope, str):
            raise InvalidToken("token scope is not a string")
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("token roles are not a list of strings")
        actor = claims.get("act")
        if actor is not None and not (isinstance(actor, dict) and isinstance(actor.get("sub"), str)):
            raise InvalidToken("token actor has no subject")
        name = claims.get("name") or claims.get("preferred_username")
        client_id = claims.get("client_id")
        return cls(
            subject=subject,
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=frozenset(scope.split()),
            roles=tuple(roles),
            name=name if isinstance(name, str) else None,
            actor=actor["sub"] if actor is not None else None,
            claims=MappingProxyType(dict(claims)),
        )

    @property
    def is_service(self) -> bool:
        return self.subject.startswith("service:")

    def has_scopes(self, required: Iterable[str]) -> bool:
        return self.scopes.issuperset(required)

    def to_log(self) -> dict[str, str]:
        """The fields a log line carries about the caller: who, through which client, on whose behalf.

        Never the token: a log line is read by more people than should hold a credential.
        """
        fields = {"user": self.subject}
        if self.client_id is not None:
            fields["client"] = self.client_id
        if self.actor is not None:
            fields["actor"] = self.actor
        return fields


@dataclass(frozen=True)
class AuthSettings:
    """Where tokens come from and what makes one acceptable to this service.

    `audience` defaults to the service's name. `jwks_uri` defaults to what the issuer's
    OpenID discovery document says. `jwks` pre-loads keys (tests, or an issuer that is
    not reachable yet); `fetch` replaces the HTTP GET used for discovery and keys.
    """

    issuer: str
    audience: str | None = None
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    algorithms: tuple[str, ...] = ("ES256",)
    leeway: int = 30
    typ: str | None = "at+jwt"
    min_refresh_seconds: float = 30.0
    fetch: Fetch | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AuthSettings | None:
        """Settings from `LEAGUE_OIDC_ISSUER` (and `LEAGUE_OIDC_JWKS_URI`); None when unset."""
        env = os.environ if environ is None else environ
        issuer = env.get(ISSUER_ENV, "").strip()
        if not issuer:
            return None
        return cls(issuer=issuer, jwks_uri=env.get(JWKS_URI_ENV, "").strip() or None)


def required_scopes(route: str, access: Access) -> Public | frozenset[str]:
    """One declaration in the form the gate checks: PUBLIC, or the set of scopes needed."""
    if isinstance(access, Public):
        return PUBLIC
    scopes = (access,) if isinstance(access, str) else access
    if not isinstance(scopes, tuple) or not all(isinstance(scope, str) for scope in scopes):
        raise AuthConfigError(f"access[{route!r}]: expected kit.PUBLIC, a scope or a tuple of scopes, "
                              f"got {access!r}")
    for scope in scopes:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise AuthConfigError(f"access[{route!r}]: {scope!r} is not a scope",
                                  hint="a scope is one word of printable ASCII without quotes or backslash")
    return frozenset(scopes)


def app_routes(app: object) -> list[Any] | None:
    """The app's Starlette-style route list (Starlette, FastAPI, a Router), or None for other apps."""
    routes = getattr(app, "routes", None)
    if isinstance(routes, list) and all(callable(getattr(route, "matches", None)) for route in routes):
        return routes
    return None


def route_templates(routes: Iterable[Any], prefix: str = "") -> set[str]:
    """Every route template an app with Starlette-style `routes` can match, mounts included."""
    templates: set[str] = set()
    for route in routes:
        path = getattr(route, "path", None)
        path = prefix + path if isinstance(path, str) else prefix
        if path:
            templates.add(path)
        inner = getattr(route, "routes", None)
        if inner:
            templates |= route_templates(inner, path)
    return templates


def resolve_route(routes: Iterable[Any], scope: Mapping[str, Any], prefix: str = "") -> str | None:
    """The template of the route the app will hand this request to, found before the app runs.

    Access is decided before the handler runs, but the framework picks the route inside
    the app. So the routes are asked the same question in the same order as Starlette's
    router asks them (first full match, else first partial match, i.e. a 405), and a
    mount's routes are searched under its prefix: `/api` + `/{id}` is `/api/{id}`.
    """
    partial: tuple[Any, Mapping[str, Any]] | None = None
    for route in routes:
        match, child = route.matches(scope)
        kind = getattr(match, "name", None)
        if kind == "FULL":
            return _matched_template(route, scope, child, prefix)
        if kind == "PARTIAL" and partial is None:
            partial = (route, child)
    if partial is not None:
        return _matched_template(partial[0], scope, partial[1], prefix)
    return None


def _matched_template(route: Any, scope: Mapping[str, Any], child: Mapping[str, Any], prefix: str) -> str:
    path = getattr(route, "path", None)
    template = prefix + path if isinstance(path, str) else prefix
    inner = getattr(route, "routes", None)
    if inner:
        found = resolve_route(inner, {**scope, **child}, template)
        if found is not None:
            return found
    return template


def split_access_key(key: str) -> tuple[str | None, str]:
    """`"POST /api/items"` -> ("POST", "/api/items"); a bare template applies to every method."""
    method, space, template = key.partition(" ")
    if not space:
        return None, key
    if not _METHOD.fullmatch(method):
        raise AuthConfigError(f"access[{key!r}]: {method!r} is not an HTTP method",
                              hint='write "GET /path", "POST /path", ... or the bare template')
    return method, template.strip()


class AccessPolicy:
    """What each route needs: PUBLIC, or a (possibly empty) set of scopes on a valid token.

    A key is a route template (`/api/items/{id}`), for every method, or a method and a
    template (`POST /api/items`), which wins over the bare template for that method: one
    path often reads with one scope and writes with another.
    """

    def __init__(self, access: Mapping[str, Access] | None = None, *,
                 known_routes: set[str] | None = None) -> None:
        self.rules: dict[str, Public | frozenset[str]] = {}
        for key, declared in (access or {}).items():
            method, route = split_access_key(key)
            if known_routes is not None and route not in known_routes:
                raise AuthConfigError(
                    f"access[{key!r}]: no route has this template",
                    hint=f"declare one of {', '.join(sorted(known_routes)) or '(no routes)'}")
            self.rules[route if method is None else f"{method} {route}"] = required_scopes(key, declared)

    def needs(self, route: str | None, method: str | None = None) -> Public | frozenset[str]:
        """Undeclared and unknown routes need a valid token: the secure default."""
        if route is None:
            return frozenset()
        if method is not None:
            for candidate in (method, "GET") if method == "HEAD" else (method,):
                rule = self.rules.get(f"{candidate} {route}")
                if rule is not None:
                    return rule
        return self.rules.get(route, frozenset())
