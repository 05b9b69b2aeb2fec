"""The OAuth 2 endpoints: `/token` (four grants) and `/device_authorization`.

Grants:
- `client_credentials` (RFC 6749 4.4): a service account gets a token for one audience
  it is allowed to reach, with scopes it was given.
- token exchange (RFC 8693): a service that received a user's token trades it for one
  addressed to the next service: the user stays the subject, the service becomes the
  actor (`act`), and the scope can only shrink, to what both the user's token and the
  service's account allow. The token shown must be addressed to the service itself,
  so a service cannot launder a token it merely saw.
- device code (RFC 8628): `league login` on a terminal; the user approves on `/device`.
  The answer carries a refresh token too, for the public client `league` only.
- refresh token (RFC 6749 6): the CLI trades its refresh token for an access token
  addressed to the one service it is about to call (`audience` or `resource`, RFC
  8707), scoped by the user's roles *now*, so a demoted user gets less at the next
  refresh. Each use rotates the refresh token; a used one shown again revokes the
  whole login (reuse detection), and a disabled user gets nothing more.

Errors follow RFC 6749 5.2 (`invalid_client` is 401 with a challenge), and no answer
quotes a secret, a password or a token back. Client secrets are checked with argon2 in
a worker thread, so a slow hash does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..catalog._model import NAME_PATTERN
from ..kit import InvalidToken
from ._forms import FormError, read_form
from ._scopes import ROLE_ACTIONS, ScopeError, parse_scope, refused_for_user
from ._settings import CLI_CLIENT_ID, SERVICE_NAME, IdentitySettings
from ._store import IdentityStore, ServiceAccount, User
from ._tokens import TokenMint

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type's name
GRANT_TYPES = (CLIENT_CREDENTIALS, TOKEN_EXCHANGE, DEVICE_CODE, REFRESH_TOKEN)
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN, not a secret
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_REFRESH_REFUSED = {
    "unknown": "the refresh token is not valid: sign in again",
    "expired": "the refresh token expired: sign in again",
    "revoked": "the refresh token was revoked: sign in again",
    "reused": "the refresh token was used before, so every token of that sign-in is revoked: sign in again",
    "disabled": "the user's account is disabled",
}

log = logging.getLogger("sevenleague.identity")


class OAuthError(Exception):
    """An RFC 6749 5.2 error answer; `description` is safe to show the client."""

    def __init__(self, error: str, description: str, *, status: int = 400,
                 challenge: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.challenge = challenge

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.challenge:
            headers["WWW-Authenticate"] = self.challenge
        return JSONResponse({"error": self.error, "error_description": self.description},
                            status_code=self.status, headers=headers)


def _invalid_client(description: str = "client authentication failed") -> OAuthError:
    return OAuthError("invalid_client", description, status=401, challenge=f'Basic realm="{SERVICE_NAME}"')


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    secret: str | None
    method: str


def _public_client(creds: ClientCredentials | None, what: str) -> ClientCredentials:
    """The request's client, when it is `league`, the one public client, and sent no secret."""
    if creds is None or creds.client_id != CLI_CLIENT_ID or creds.secret is not None:
        raise _invalid_client(f"only the public client {CLI_CLIENT_ID!r} {what}")
    return creds


def client_credentials(authorization: str | None, form: Mapping[str, str]) -> ClientCredentials | None:
    """The client's credentials from HTTP Basic (RFC 6749 2.3.1, form-encoded parts) or the body."""
    basic = None
    if authorization:
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError) as error:
                raise _invalid_client("the Basic credentials are not readable") from error
            user, colon, password = decoded.partition(":")
            if not colon:
                raise _invalid_client("the Basic credentials are not readable")
            basic = ClientCredentials(unquote(user.replace("+", " ")), unquote(password.replace("+", " ")),
                                      "client_secret_basic")
    posted_secret = form.get("client_secret")
    if basic is not None:
        if posted_secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        if "client_id" in form and form["client_id"] != basic.client_id:
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
        return basic
    client_id = form.get("client_id")
    if client_id is None:
        return None
    return ClientCredentials(client_id, posted_secret,
                             "client_secret_post" if posted_secret is not None else "none")


def _audience(form: Mapping[str, str], *, required: bool, default: str | None = None) -> str:
    audience, resource = form.get("audience"), form.get("resource")
    if audience and resource and audience != resource:
        raise OAuthError("invalid_request", "audience and resource name different targets")
    target = audience or resource or default
    if not target:
        if required:
            raise OAuthError("invalid_request", "audience is required (the service the token is for)")
        return ""
    if not re.fullmatch(NAME_PATTERN, target):  # match() would let "hello\n" through
        raise OAuthError("invalid_target", "the audience must be a service name, e.g. hello")
    return target


def _scopes(form: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return parse_scope(form.get("scope"))
    except ScopeError as error:
        raise OAuthError("invalid_scope", str(error)) from error


def _refresh_fields(refresh_token: str, expires_at: float, claims: Mapping[str, Any]) -> dict[str, Any]:
    """The refresh token and, as GitHub and others do, how long its login has left."""
    return {"refresh_token": refresh_token,
            "refresh_token_expires_in": max(1, int(expires_at) - int(claims["iat"]))}


def _token_answer(token: str, claims: Mapping[str, Any],
                  extra: Mapping[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"access_token": token, "token_type": "Bearer",
                            "expires_in": int(claims["exp"]) - int(claims["iat"]), "scope": claims["scope"]}
    body.update(extra or {})
    return JSONResponse(body, headers=NO_STORE)


class OAuthEndpoints:
    """The token and device authorization endpoints of one issuer."""

    def __init__(self, store: IdentityStore, mint: TokenMint, settings: IdentitySettings) -> None:
        self.store = store
        self.mint = mint
        self.settings = settings

    # --- HTTP entry points ---------------------------------------------------------------------

    async def token(self, request: Request) -> JSONResponse:
        try:
            form = await read_form(request)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is required")
            if grant_type not in GRANT_TYPES:
                raise OAuthError("unsupported_grant_type",
                                 f"grant_type must be one of {', '.join(GRANT_TYPES)}")
            creds = client_credentials(request.headers.get("authorization"), form)
            if grant_type == DEVICE_CODE:
                return await self._device_code(form, creds)
            if grant_type == REFRESH_TOKEN:
                return await self._refresh(form, creds)
            account = await self._authenticate(creds)
            if grant_type == CLIENT_CREDENTIALS:
                return await self._client_credentials(form, account)
            return await self._exchange(form, account)
        except FormError as error:
            return OAuthError("invalid_request", str(error)).response()
        except OAuthError as error:
            return error.response()

    async def revoke(self, request: Request) -> JSONResponse:
        """RFC 7009: `league logout` ends its sign-in here, so a copied refresh token dies with it.

        The answer is 200 whether or not the token was one of ours (the RFC's rule, which
        also tells a guesser nothing). Access tokens are not revoked: they live minutes.
        """
        try:
            form = await read_form(request)
            creds = client_credentials(request.headers.get("authorization"), form)
            creds = _public_client(creds, "revokes refresh tokens")
            token = form.get("token")
            if not token:
                raise OAuthError("invalid_request", "token is required")
            if form.get("token_type_hint", "refresh_token") not in ("refresh_token", "access_token"):
                raise OAuthError("unsupported_token_type", "token_type_hint is refresh_token or access_token")
        except FormError as error:
            return OAuthError("invalid_request", str(error)).response()
        except OAuthError as error:
            return error.response()
        await asyncio.to_thread(self.store.revoke_refresh_token, token, creds.client_id)
        return JSONResponse({}, headers=NO_STORE)  # RFC 7009: the client reads only the status

    async def device_authorization(self, request: Request) -> JSONResponse:
        try:
            form = await read_form(request)
            creds = client_credentials(request.headers.get("authorization"), form)
            creds = _public_client(creds, "uses the device flow")
            scope = _scopes(form)
            audience = _audience(form, required=False, default=SERVICE_NAME)
            device_code, user_code = await asyncio.to_thread(
                self.store.start_device_grant, client_id=creds.client_id, scope=scope, audience=audience,
                interval=self.settings.device_interval, lifetime=self.settings.device_lifetime)
        except FormError as error:
            return OAuthError("invalid_request", str(error)).response()
        except OAuthError as error:
            return error.response()
        verification_uri = self.settings.url("/device")
        return JSONResponse({
            "device_code": device_code, "user_code": user_code, "verification_uri": verification_uri,
            "verification_uri_complete": verification_uri + "?" + urlencode({"user_code": user_code}),
            "expires_in": int(self.settings.device_lifetime), "interval": self.settings.device_interval,
        }, headers=NO_STORE)

    # --- the grants --------------------------------------------------------------------------------

    async def _authenticate(self, creds: ClientCredentials | None) -> ServiceAccount:
        if creds is None:
            raise _invalid_client("client authentication is required "
                                  "(client_secret_basic or client_secret_post)")
        if creds.secret is None:
            raise _invalid_client("this grant needs a confidential client: send its secret")
        if not _CLIENT_ID.fullmatch(creds.client_id) or not creds.secret:
            await asyncio.to_thread(self.store.authenticate_client, "", "x")  # the same work as a real check
            raise _invalid_client()
        account = await asyncio.to_thread(self.store.authenticate_client, creds.client_id, creds.secret)
        if account is None:
            raise _invalid_client()
        return account

    async def _client_credentials(self, form: Mapping[str, str], account: ServiceAccount) -> JSONResponse:
        default = account.audiences[0] if len(account.audiences) == 1 else None
        audience = _audience(form, required=True, default=default)
        if audience not in account.audiences:
            raise OAuthError("invalid_target", f"{account.client_id} may not get tokens for {audience}")
        requested = _scopes(form)
        refused = [scope for scope in requested if scope not in account.scopes]
        if refused:
            raise OAuthError("invalid_scope", f"{account.client_id} may not have {' '.join(refused)}")
        token, claims = self.mint.access_token(
            sub=account.subject, aud=audience, client_id=account.client_id,
            scope=requested or account.scopes, username=account.client_id)
        await asyncio.to_thread(self.store.record_token, claims, CLIENT_CREDENTIALS)
        return _token_answer(token, claims)

    async def _exchange(self, form: Mapping[str, str], account: ServiceAccount) -> JSONResponse:
        subject_token = form.get("subject_token")
        if not subject_token:
            raise OAuthError("invalid_request", "subject_token is required")
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise OAuthError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
        if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise OAuthError("invalid_request", f"only {ACCESS_TOKEN_TYPE} can be requested")
        if "actor_token" in form:
            raise OAuthError("invalid_request", "actor_token is not supported: the client is the actor")
        try:
            subject = self.mint.verify(subject_token, audience=account.client_id)
        except InvalidToken as error:
            raise OAuthError("invalid_grant", f"subject_token refused: {error.reason}") from error
        audience = _audience(form, required=True)
        if audience not in account.audiences:
            raise OAuthError("invalid_target", f"{account.client_id} may not get tokens for {audience}")
        roles, username = await asyncio.to_thread(self._current_subject, subject)
        available = [scope for scope in subject["scope"].split() if scope in account.scopes]
        requested = _scopes(form)
        refused = [scope for scope in requested if scope not in available]
        if refused:
            raise OAuthError("invalid_scope", f"the subject token and {account.client_id} do not both allow "
                             f"{' '.join(refused)}")
        act: dict[str, Any] = {"sub": account.subject}
        if isinstance(subject.get("act"), dict):
            act["act"] = subject["act"]
        token, claims = self.mint.access_token(
            sub=subject["sub"], aud=audience, client_id=account.client_id, scope=requested or available,
            roles=roles, username=username, act=act, not_after=int(subject["exp"]))
        await asyncio.to_thread(self.store.record_token, claims, TOKEN_EXCHANGE)
        return _token_answer(token, claims, {"issued_token_type": ACCESS_TOKEN_TYPE})

    def _current_subject(self, claims: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
        """The subject's roles and name now: a user disabled since the token was issued gets nothing more."""
        sub = str(claims["sub"])
        if sub.startswith("service:"):
            account = self.store.service_account(sub.removeprefix("service:"))
            if account is None or account.disabled:
                raise OAuthError("invalid_grant", "the subject's account is gone or disabled")
            return (), account.client_id
        try:
            user = self.store.user_by_id(sub)
        except KeyError as error:
            raise OAuthError("invalid_grant", "the subject's account is gone or disabled") from error
        if user.disabled:
            raise OAuthError("invalid_grant", "the subject's account is gone or disabled")
        return user.roles, user.username

    async def _device_code(self, form: Mapping[str, str], creds: ClientCredentials | None) -> JSONResponse:
        creds = _public_client(creds, "uses the device grant")
        device_code = form.get("device_code")
        if not device_code:
            raise OAuthError("invalid_request", "device_code is required")
        grant = await asyncio.to_thread(self.store.poll_device_grant, device_code, creds.client_id)
        if grant.outcome == "pending":
            raise OAuthError("authorization_pending", "the user has not approved yet")
        if grant.outcome == "slow_down":
            raise OAuthError("slow_down", f"poll at most every {grant.interval} seconds")
        if grant.outcome == "expired":
            raise OAuthError("expired_token", "the device code expired: start again")
        if grant.outcome == "denied":
            raise OAuthError("access_denied", "the user denied the request")
        if grant.outcome != "approved" or grant.user_id is None:
            raise OAuthError("invalid_grant", "the device code is unknown or was used already")
        user = await asyncio.to_thread(self.store.user_by_id, grant.user_id)
        if user.disabled:
            raise OAuthError("invalid_grant", "the user's account is disabled")
        refresh_token, refresh_expires = await asyncio.to_thread(
            self.store.issue_refresh_token, user.id, grant.client_id, lifetime=self.settings.refresh_lifetime)
        token, claims = await self._user_token(user, grant.client_id, grant.audience, grant.scope,
                                               DEVICE_CODE)
        extra: dict[str, Any] = _refresh_fields(refresh_token, refresh_expires, claims)
        if "openid" in claims["scope"].split():
            extra["id_token"] = self.mint.id_token(sub=user.id, client_id=grant.client_id,
                                                   username=user.username, name=user.name,
                                                   auth_time=int(user.last_login_at or claims["iat"]))
        return _token_answer(token, claims, extra)

    async def _refresh(self, form: Mapping[str, str], creds: ClientCredentials | None) -> JSONResponse:
        creds = _public_client(creds, "uses refresh tokens")
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required")
        # Check the rest of the request first: a malformed one must not use up the token.
        audience = _audience(form, required=False, default=SERVICE_NAME)
        requested = _scopes(form)
        grant = await asyncio.to_thread(self.store.rotate_refresh_token, presented, creds.client_id)
        if grant.outcome != "rotated" or grant.user_id is None:
            if grant.outcome == "reused":
                log.warning("a used refresh token was shown again: every token of that sign-in of user %s"
                            " is revoked", grant.user_id)
            reason = _REFRESH_REFUSED.get(grant.outcome, _REFRESH_REFUSED["unknown"])
            raise OAuthError("invalid_grant", reason)
        user = await asyncio.to_thread(self.store.user_by_id, grant.user_id)
        token, claims = await self._user_token(user, creds.client_id, audience, requested, REFRESH_TOKEN)
        return _token_answer(token, claims, _refresh_fields(grant.token, grant.expires_at, claims))

    async def _user_token(self, user: User, client_id: str, audience: str, requested: tuple[str, ...],
                          grant_type: str) -> tuple[str, dict[str, Any]]:
        """An access token for a person, with the scopes their roles allow now, and its record."""
        scope = self._user_scope(requested, audience, user.roles)
        token, claims = self.mint.access_token(sub=user.id, aud=audience, client_id=client_id, scope=scope,
                                               roles=user.roles, username=user.username)
        await asyncio.to_thread(self.store.record_token, claims, grant_type)
        return token, claims

    @staticmethod
    def _user_scope(requested: tuple[str, ...], audience: str, roles: tuple[str, ...]) -> tuple[str, ...]:
        """What a user gets: the scopes asked for that their roles allow, or every action on the audience."""
        if requested:
            refused = set(refused_for_user(requested, roles))
            return tuple(scope for scope in requested if scope not in refused)
        actions = sorted(set().union(*(ROLE_ACTIONS[role] for role in roles if role in ROLE_ACTIONS)))
        return tuple(f"{audience}.{action}" for action in actions)
