"""The admin API under `/api/`: users, service accounts, signing keys, the record of issued tokens.

Every route needs a bearer token this service issued, addressed to `identity`, with
scope `identity.admin` (which only users with role admin, or a service account given
it by name, can obtain). The token is checked here with the service's own keys even
when the kit's gate checked it already: the admin API must stay closed on the day the
gate is configured differently.

Answers carrying a new password or client secret are `no-store` and show it once; only
its argon2id hash is kept.

Input is checked before anything is done with it, and every refusal is a JSON error with
a 4xx status its OpenAPI description lists: 400 for a malformed request, 409 for a name
taken, 415 for a body that is not JSON. A 500 here is a bug, and the API fuzzer
(tests/integration/test_identity_fuzz.py) looks for them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..kit import InvalidToken
from ..kit.api import problem
from ._keys import KeyRing
from ._passwords import new_password
from ._settings import ADMIN_SCOPE, SERVICE_NAME, IdentityError
from ._store import IdentityStore
from ._tokens import TokenMint

MAX_BODY_BYTES = 16 * 1024
MAX_TOKENS_LISTED = 1000
NO_STORE = {"Cache-Control": "no-store"}
Handler = Callable[[Request], Awaitable[Response]]
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")  # str.isdigit() also takes '²', which int() refuses


class AdminRefusal(IdentityError):
    """A refusal with its own status; any other IdentityError is a 400 (409 for a name taken)."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def _challenge(error: str = "", description: str = "") -> dict[str, str]:
    value = f'Bearer realm="{SERVICE_NAME}"'
    if error:
        value += f', error="{error}", error_description="{description}"'
    return {"WWW-Authenticate": value, "Cache-Control": "no-store"}


async def _capped_body(request: Request) -> bytes:
    """The body, read no further than MAX_BODY_BYTES: an admin's typo should not fill the memory."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise IdentityError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object in the body (`{}` for no body at all when `optional`)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await _capped_body(request)
    if optional and not body:
        return {}
    if media_type != "application/json":
        raise AdminRefusal(415, "the body must be application/json")
    try:
        data = json.loads(body or b"{}", parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: [[[[...]]]]
        raise IdentityError("the body is not JSON") from error
    if not isinstance(data, dict):
        raise IdentityError("the body must be a JSON object")
    try:
        # JSON may spell a lone surrogate ("\ud800"), which is no text: SQLite and argon2 cannot encode it.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError) as error:
        raise IdentityError("the body holds a string that is not valid Unicode") from error
    return data


def _not_json(constant: str) -> Any:
    """NaN and Infinity, which Python's json module reads but RFC 8259 JSON does not have."""
    raise ValueError(f"{constant} is not JSON")


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise IdentityError(f"{key} must be a list of strings")
    return value


def _text(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise IdentityError(f"{key} must be a string")
    return value


class AdminApi:
    def __init__(self, store: IdentityStore, mint: TokenMint, keys: KeyRing) -> None:
        self.store = store
        self.mint = mint
        self.keys = keys

    def guarded(self, handler: Handler) -> Handler:
        """`handler`, answered only for an admin's token; malformed input answers 400, never 500."""

        async def endpoint(request: Request) -> Response:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
            try:
                return await handler(request)
            except AdminRefusal as error:
                return problem(error.status, error.message, error.hint or "")
            except IdentityError as error:
                return problem(409 if "exists already" in error.message else 400, error.message,
                               error.hint or "")

        endpoint.__doc__ = handler.__doc__
        endpoint.__name__ = handler.__name__
        return endpoint

    def _refusal(self, request: Request) -> Response | None:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return problem(401, "this route needs a bearer token with scope identity.admin",
                           "league login, then retry", headers=_challenge())
        try:
            claims = self.mint.verify(token.strip(), audience=SERVICE_NAME)
        except InvalidToken as error:
            return problem(401, error.reason, headers=_challenge("invalid_token", error.reason))
        if ADMIN_SCOPE not in claims["scope"].split():
            return problem(403, f"this route needs scope {ADMIN_SCOPE}",
                           headers=_challenge("insufficient_scope", f"needs {ADMIN_SCOPE}"))
        return None

    # --- users --------------------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        """
        summary: Every user (never a password hash).
        responses:
          200:
            description: the users, by username
            content:
              application/json:
                schema:
                  type: object
                  required: [users]
                  properties:
                    users: {type: array, items: {$ref: "#/components/schemas/User"}}
                  additionalProperties: false
        """
        users = await asyncio.to_thread(self.store.users)
        return JSONResponse({"users": [user.to_json() for user in users]})

    async def add_user(self, request: Request) -> Response:
        """
        summary: Add a user; without a password, one is made and shown once.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [username]
                properties:
                  username: {type: string, pattern: USERNAME}
                  name: {type: string, description: at most 200 characters are kept}
                  roles: {type: array, items: {$ref: "#/components/schemas/Role"}, default: [viewer]}
                  password: {type: string, minLength: 12, maxLength: 1024}
        responses:
          201:
            description: the new user; the password too when this service made it (shown once)
            headers:
              Cache-Control: {$ref: "#/components/headers/NoStore"}
            content:
              application/json:
                schema:
                  type: object
                  required: [user]
                  properties:
                    user: {$ref: "#/components/schemas/User"}
                    password: {type: string, minLength: 12}
                  additionalProperties: false
          400: {$ref: "#/components/responses/BadRequest"}
          409: {$ref: "#/components/responses/Conflict"}
          415: {$ref: "#/components/responses/UnsupportedMediaType"}
        """
        data = await _json_object(request)
        username = _text(data, "username")
        given = data.get("password")
        if given is not None and not isinstance(given, str):
            raise IdentityError("password must be a string")
        password = new_password() if given is None else given  # "" is a password too short, not none
        user = await asyncio.to_thread(self.store.add_user, username, password,
                                       _strings(data, "roles") or ["viewer"], _text(data, "name"))
        body: dict[str, Any] = {"user": user.to_json()}
        if given is None:
            body["password"] = password
        return JSONResponse(body, status_code=201, headers=NO_STORE)

    async def disable_user(self, request: Request) -> Response:
        """
        summary: Disable a user; tokens already issued expire within their short life.
        parameters:
          - {name: username, in: path, required: true, schema: {type: string, pattern: USERNAME}}
        responses:
          200:
            description: the user
            content:
              application/json:
                schema: {$ref: "#/components/schemas/User"}
          400: {$ref: "#/components/responses/BadRequest"}
          404: {$ref: "#/components/responses/NotFound"}
        """
        user = await asyncio.to_thread(self.store.set_disabled, request.path_params["username"], True)
        return JSONResponse(user.to_json())

    async def enable_user(self, request: Request) -> Response:
        """
        summary: Enable a disabled user.
        parameters:
          - {name: username, in: path, required: true, schema: {type: string, pattern: USERNAME}}
        responses:
          200:
            description: the user
            content:
              application/json:
                schema: {$ref: "#/components/schemas/User"}
          400: {$ref: "#/components/responses/BadRequest"}
          404: {$ref: "#/components/responses/NotFound"}
        """
        user = await asyncio.to_thread(self.store.set_disabled, request.path_params["username"], False)
        return JSONResponse(user.to_json())

    async def unlock_user(self, request: Request) -> Response:
        """
        summary: Lift a lockout after failed logins before it ends by itself.
        parameters:
          - {name: username, in: path, required: true, schema: {type: string, pattern: USERNAME}}
        responses:
          200:
            description: the user
            content:
              application/json:
                schema: {$ref: "#/components/schemas/User"}
          400: {$ref: "#/components/responses/BadRequest"}
          404: {$ref: "#/components/responses/NotFound"}
        """
        user = await asyncio.to_thread(self.store.unlock, request.path_params["username"])
        return JSONResponse(user.to_json())

    # --- service accounts -----------------------------------------------------------------------------

    async def list_service_accounts(self, request: Request) -> Response:
        """
        summary: Every service account (never a secret).
        responses:
          200:
            description: the service accounts, by client id
            content:
              application/json:
                schema:
                  type: object
                  required: [service_accounts]
                  properties:
                    service_accounts: {type: array, items: {$ref: "#/components/schemas/ServiceAccount"}}
                  additionalProperties: false
        """
        accounts = await asyncio.to_thread(self.store.service_accounts)
        return JSONResponse({"service_accounts": [account.to_json() for account in accounts]})

    async def add_service_account(self, request: Request) -> Response:
        """
        summary: Add a service account; its client secret is in this answer only.
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [name]
                properties:
                  name: {type: string, pattern: SERVICE_NAME, description: the service's name (its client_id)}
                  scopes: {type: array, maxItems: 32, items: {type: string, pattern: A_SCOPE}}
                  audiences: {type: array, items: {type: string, pattern: SERVICE_NAME}}
                  description: {type: string, description: at most 200 characters are kept}
        responses:
          201:
            description: the new account and its client secret (shown once)
            headers:
              Cache-Control: {$ref: "#/components/headers/NoStore"}
            content:
              application/json:
                schema:
                  type: object
                  required: [service_account, client_id, client_secret]
                  properties:
                    service_account: {$ref: "#/components/schemas/ServiceAccount"}
                    client_id: {type: string}
                    client_secret: {type: string, minLength: 32}
                  additionalProperties: false
          400: {$ref: "#/components/responses/BadRequest"}
          409: {$ref: "#/components/responses/Conflict"}
          415: {$ref: "#/components/responses/UnsupportedMediaType"}
        """
        data = await _json_object(request)
        account, secret = await asyncio.to_thread(
            lambda: self.store.add_service_account(
                _text(data, "name"), scopes=_strings(data, "scopes"), audiences=_strings(data, "audiences"),
                description=_text(data, "description")))
        return JSONResponse({"service_account": account.to_json(), "client_id": account.client_id,
                             "client_secret": secret}, status_code=201, headers=NO_STORE)

    # --- keys and the record ---------------------------------------------------------------------------

    async def list_keys(self, request: Request) -> Response:
        """
        summary: The signing keys with their state (announced, signing, retired) and dates.
        responses:
          200:
            description: every key still published, oldest first
            content:
              application/json:
                schema:
                  type: object
                  required: [keys]
                  properties:
                    keys: {type: array, items: {$ref: "#/components/schemas/SigningKey"}}
                  additionalProperties: false
        """
        self.keys.prune()
        return JSONResponse({"keys": [status.to_json() for status in self.keys.status()]})

    async def rotate_key(self, request: Request) -> Response:
        """
        summary: Announce a new signing key; it signs after the grace period.
        requestBody:
          required: false
          content:
            application/json:
              schema:
                type: object
                properties:
                  grace_seconds: {type: number, minimum: 0, maximum: 604800,
                                  description: "default from the service's settings"}
        responses:
          201:
            description: the new key's kid and when it starts signing (Unix time)
            content:
              application/json:
                schema:
                  type: object
                  required: [kid, signs_from]
                  properties:
                    kid: {type: string}
                    signs_from: {type: number}
                  additionalProperties: false
          400: {$ref: "#/components/responses/BadRequest"}
          415: {$ref: "#/components/responses/UnsupportedMediaType"}
        """
        data = await _json_object(request, optional=True)
        grace = data.get("grace_seconds")
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int | float)
                                  or not 0 <= grace <= 7 * 86400):
            raise IdentityError("grace_seconds must be a number of seconds from 0 to 604800")
        key = await asyncio.to_thread(self.keys.rotate, None if grace is None else float(grace))
        return JSONResponse({"kid": key.kid, "signs_from": key.signs_from}, status_code=201)

    async def issued_tokens(self, request: Request) -> Response:
        """
        summary: The record of issued tokens (ids, subjects, audiences, expiry; never a token), newest first.
        parameters:
          - {name: sub, in: query, required: false, schema: {type: string}, description: only this subject's}
          - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 1000,
             default: 100}}
        responses:
          200:
            description: the record, newest first
            content:
              application/json:
                schema:
                  type: object
                  required: [tokens]
                  properties:
                    tokens: {type: array, items: {$ref: "#/components/schemas/IssuedToken"}}
                  additionalProperties: false
          400: {$ref: "#/components/responses/BadRequest"}
        """
        raw_limit = request.query_params.get("limit", "100")
        if not _WHOLE_NUMBER.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_TOKENS_LISTED:
            raise IdentityError(f"limit must be a whole number from 1 to {MAX_TOKENS_LISTED}")
        tokens = await asyncio.to_thread(self.store.issued_tokens, request.query_params.get("sub"),
                                         int(raw_limit))
        return JSONResponse({"tokens": [token.to_json() for token in tokens]})
