"""The identity service: an OAuth 2 / OpenID Connect provider for the eco-system.

A platform service like any other: built with `kit`, run by `python -m
sevenleague.kit.serve sevenleague.identity.service:app`, its state under
`$LEAGUE_HOME/identity/` (signing keys, its SQLite database, the first admin's
password file, the secrets of the service accounts the eco-system wants). Its issuer
is its external base URL, `LEAGUE_OIDC_ISSUER`, which is also what every service's kit
reads to find the JWKS; so the kit's own token check runs here too, on the admin API,
fed with this service's keys in-process rather than over HTTP to itself.

Routes: discovery and JWKS (public, cacheable), `/token` and `/device_authorization`
(RFC 6749 with refresh tokens, 8693, 8628), the `/device` sign-in form, and the admin
API under `/api/`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__, kit
from ..kit.api import API_EXCEPTION_HANDLERS, api_schemas, openapi_route
from ._admin import AdminApi
from ._keys import ALGORITHM, KeyRing
from ._login_form import LoginForm
from ._oauth import AUTH_METHODS, GRANT_TYPES, OAuthEndpoints
from ._openapi import COMPONENTS, with_code_rules
from ._scopes import IDENTITY_SCOPES
from ._settings import (
    ADMIN_SCOPE,
    HOME_ENV,
    ISSUER_ENV,
    SERVICE_NAME,
    IdentityError,
    IdentityPaths,
    IdentitySettings,
)
from ._store import IdentityStore, ensure_first_admin
from ._tokens import TokenMint
from ._wanted_clients import apply_wanted_clients, load_wanted_clients

JWKS_CACHE_SECONDS = 300  # the default key grace period (900 s) is three of these
Handler = Callable[[Request], Awaitable[Response]]

log = logging.getLogger("sevenleague.identity")

schemas = api_schemas("sevenleague identity", __version__, COMPONENTS)


class _State:
    settings: IdentitySettings
    keys: KeyRing
    store: IdentityStore
    handlers: dict[str, Handler]


state = _State()


def discovery_document(settings: IdentitySettings) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 / RFC 8414 metadata: what a client needs to talk to us."""
    return {
        "issuer": settings.issuer,
        "jwks_uri": settings.url("/jwks.json"),
        "token_endpoint": settings.url("/token"),
        "device_authorization_endpoint": settings.url("/device_authorization"),
        "revocation_endpoint": settings.url("/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": sorted({*IDENTITY_SCOPES, ADMIN_SCOPE}),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "roles",
                             "preferred_username", "name", "act"],
        "service_documentation": settings.url("/openapi.json"),
    }


async def openid_configuration(request: Request) -> Response:
    """
    summary: OpenID Connect discovery document (also served as OAuth 2 server metadata).
    responses:
      200:
        description: "the issuer, its endpoints, supported grants and algorithms"
        content:
          application/json:
            schema: {$ref: "#/components/schemas/ServerMetadata"}
    """
    return JSONResponse(discovery_document(state.settings),
                        headers={"Cache-Control": f"public, max-age={JWKS_CACHE_SECONDS}"})


async def jwks(request: Request) -> Response:
    """
    summary: The public keys tokens are signed with, including the next and the previous key.
    responses:
      200:
        description: "a JWK Set (RFC 7517)"
        content:
          application/jwk-set+json:
            schema: {$ref: "#/components/schemas/JsonWebKeySet"}
    """
    state.keys.prune()
    return JSONResponse(state.keys.jwks(), headers={"Cache-Control": f"public, max-age={JWKS_CACHE_SECONDS}"},
                        media_type="application/jwk-set+json")


def _late(name: str, doc_from: Callable[..., Any]) -> Handler:
    """A route endpoint for a handler that only exists once the lifespan has read $LEAGUE_HOME."""

    async def endpoint(request: Request) -> Response:
        return await state.handlers[name](request)

    endpoint.__doc__ = with_code_rules(doc_from.__doc__ or "")
    endpoint.__name__ = name
    return endpoint


GRANTS_DOC = """
summary: "The token endpoint (RFC 6749): client credentials, token exchange (RFC 8693), device code,
  refresh token (public client league, rotated on each use)."
security: [{}, {clientBasic: []}]
requestBody:
  required: true
  content:
    application/x-www-form-urlencoded:
      schema:
        type: object
        required: [grant_type]
        properties:
          grant_type: {type: string, enum: GRANT_TYPES}
          audience: {type: string, pattern: SERVICE_NAME, description: the service the token is for}
          resource: {type: string, pattern: SERVICE_NAME, description: the same as audience (RFC 8707)}
          scope: {type: string, pattern: SCOPES, description: "space-separated, e.g. hello.read hello.write"}
          client_id: {type: string, pattern: "^[A-Za-z0-9._:-]{1,64}$"}
          client_secret: {type: string, description: or HTTP Basic (client_secret_basic)}
          subject_token: {type: string, description: "token exchange: the access token to exchange"}
          subject_token_type: {type: string, enum: ["urn:ietf:params:oauth:token-type:access_token"]}
          requested_token_type: {type: string, enum: ["urn:ietf:params:oauth:token-type:access_token"]}
          device_code: {type: string}
          refresh_token: {type: string}
responses:
  200:
    description: "{access_token, token_type: Bearer, expires_in, scope}; the device code and
      refresh token grants add {refresh_token, refresh_token_expires_in}: use the new refresh
      token next time, the one sent is spent"
    headers:
      Cache-Control: {$ref: "#/components/headers/NoStore"}
    content:
      application/json:
        schema: {$ref: "#/components/schemas/TokenAnswer"}
  400: {$ref: "#/components/responses/OAuthBadRequest"}
  401: {$ref: "#/components/responses/OAuthUnauthorized"}
"""

REVOKE_DOC = """
summary: Revoke a refresh token (RFC 7009), ending the sign-in it belongs to; for the public client `league`.
requestBody:
  required: true
  content:
    application/x-www-form-urlencoded:
      schema:
        type: object
        required: [client_id, token]
        properties:
          client_id: {type: string, enum: [league]}
          token: {type: string}
          token_type_hint: {type: string, enum: [refresh_token, access_token]}
responses:
  200:
    description: revoked, or not a token of this issuer (the answer does not say which)
    headers:
      Cache-Control: {$ref: "#/components/headers/NoStore"}
    content:
      application/json:
        schema: {type: object, maxProperties: 0}
  400: {$ref: "#/components/responses/OAuthBadRequest"}
  401: {$ref: "#/components/responses/OAuthUnauthorized"}
"""

DEVICE_AUTHORIZATION_DOC = """
summary: Start a device authorization (RFC 8628) for the public client `league`.
requestBody:
  required: true
  content:
    application/x-www-form-urlencoded:
      schema:
        type: object
        required: [client_id]
        properties:
          client_id: {type: string, enum: [league]}
          scope: {type: string, pattern: SCOPES}
          audience: {type: string, pattern: SERVICE_NAME, description: "default identity"}
responses:
  200:
    description: the codes, and where the user approves
    headers:
      Cache-Control: {$ref: "#/components/headers/NoStore"}
    content:
      application/json:
        schema: {$ref: "#/components/schemas/DeviceAuthorization"}
  400: {$ref: "#/components/responses/OAuthBadRequest"}
  401: {$ref: "#/components/responses/OAuthUnauthorized"}
"""


def _doc(text: str) -> Callable[..., Any]:
    def holder() -> None: ...

    holder.__doc__ = text
    return holder


def _handlers(settings: IdentitySettings, keys: KeyRing, store: IdentityStore) -> dict[str, Handler]:
    mint = TokenMint(keys, settings.issuer, settings.token_lifetime)
    oauth = OAuthEndpoints(store, mint, settings)
    form = LoginForm(store, settings)
    admin = AdminApi(store, mint, keys)
    return {
        "token": oauth.token,
        "revoke": oauth.revoke,
        "device_authorization": oauth.device_authorization,
        "device_page": form.page,
        "device_submit": form.submit,
        **{name: admin.guarded(getattr(admin, name)) for name in ADMIN_HANDLERS},
    }


ADMIN_HANDLERS = ("list_users", "add_user", "disable_user", "enable_user", "unlock_user",
                  "list_service_accounts", "add_service_account", "list_keys", "rotate_key", "issued_tokens")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    home = os.environ.get(HOME_ENV)
    if not home:
        raise IdentityError(f"{HOME_ENV} is not set: the identity service keeps its keys and users under it")
    settings = IdentitySettings.from_environment()
    # Read before anything is opened or made: a wrong file stops the start with nothing changed.
    wanted = load_wanted_clients(settings.clients_file) if settings.clients_file is not None else ()
    paths = IdentityPaths.under(Path(home).absolute())
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    state.settings = settings
    state.keys = KeyRing(paths.keys, token_lifetime=settings.token_lifetime, grace=settings.key_grace)
    state.store = IdentityStore(paths.database)
    made = ensure_first_admin(state.store, paths.admin_password)
    if made is not None:
        log.warning("first admin %r created; the password is in %s (mode 0600)", made[0], made[1])
    elif not state.store.has_admin():
        log.warning("no enabled user has role admin: the admin API is out of reach until one does")
    if settings.clients_file is not None:
        changes = apply_wanted_clients(state.store, wanted, paths)
        log.info("service accounts from %s: %s; secrets in %s", settings.clients_file, changes.summary(),
                 paths.client_secrets)
    state.handlers = _handlers(settings, state.keys, state.store)
    log.info("identity service for issuer %s; signing key %s", settings.issuer, state.keys.signing_key().kid)
    try:
        yield
    finally:
        state.store.close()


def _own_jwks(url: str, timeout: float) -> Mapping[str, Any]:
    """The kit's key fetch, answered from the key ring: this service does not call itself over HTTP."""
    return state.keys.jwks()


def _gate_settings() -> kit.AuthSettings | None:
    issuer = os.environ.get(ISSUER_ENV, "").strip()
    if not issuer:
        return None
    return kit.AuthSettings(issuer=issuer, audience=SERVICE_NAME, jwks_uri=issuer.rstrip("/") + "/jwks.json",
                            fetch=_own_jwks, min_refresh_seconds=1.0)


routes = [
    Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", openid_configuration, methods=["GET"],
          include_in_schema=False),
    Route("/jwks.json", jwks, methods=["GET"]),
    Route("/token", _late("token", _doc(GRANTS_DOC)), methods=["POST"]),
    Route("/revoke", _late("revoke", _doc(REVOKE_DOC)), methods=["POST"]),
    Route("/device_authorization", _late("device_authorization", _doc(DEVICE_AUTHORIZATION_DOC)),
          methods=["POST"]),
    Route("/device", _late("device_page", LoginForm.page), methods=["GET"]),
    Route("/device", _late("device_submit", LoginForm.submit), methods=["POST"]),
    Route("/api/users", _late("list_users", AdminApi.list_users), methods=["GET"]),
    Route("/api/users", _late("add_user", AdminApi.add_user), methods=["POST"]),
    Route("/api/users/{username}/disable", _late("disable_user", AdminApi.disable_user), methods=["POST"]),
    Route("/api/users/{username}/enable", _late("enable_user", AdminApi.enable_user), methods=["POST"]),
    Route("/api/users/{username}/unlock", _late("unlock_user", AdminApi.unlock_user), methods=["POST"]),
    Route("/api/service-accounts", _late("list_service_accounts", AdminApi.list_service_accounts),
          methods=["GET"]),
    Route("/api/service-accounts", _late("add_service_account", AdminApi.add_service_account),
          methods=["POST"]),
    Route("/api/keys", _late("list_keys", AdminApi.list_keys), methods=["GET"]),
    Route("/api/keys/rotate", _late("rotate_key", AdminApi.rotate_key), methods=["POST"]),
    Route("/api/tokens", _late("issued_tokens", AdminApi.issued_tokens), methods=["GET"]),
    openapi_route(schemas),
]

ACCESS: dict[str, kit.Access] = {
    route.path: ADMIN_SCOPE if route.path.startswith("/api/") else kit.PUBLIC for route in routes
}

schemas.declare_access(ACCESS)
app = kit.instrument(Starlette(routes=routes, lifespan=lifespan, exception_handlers=API_EXCEPTION_HANDLERS),
                     service=SERVICE_NAME, version=__version__, access=ACCESS, auth=_gate_settings())

__all__ = ["app", "discovery_document"]
