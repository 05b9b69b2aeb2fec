"""The shapes the identity service's API answers with, for its OpenAPI description.

Each handler's docstring describes its route and `$ref`s these; the kit adds the
shared error body and answers. They are written as strictly as the code behaves:
objects that must never carry more (a user without its password hash, a public key
without its private part, an error without the secret that was sent) say
`additionalProperties: false`, so the API fuzzer's schema check fails the day one does.
Answers whose RFC allows extensions (token answers, server metadata) stay open.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..catalog._model import NAME_PATTERN
from ._keys import ALGORITHM
from ._oauth import GRANT_TYPES
from ._scopes import MAX_SCOPES, SCOPE_PATTERN
from ._store import USERNAME_PATTERN

# A `scope` parameter: space-separated scope names (repeats count once, so this bounds them loosely).
SCOPES_PATTERN = f"^({SCOPE_PATTERN.pattern}( {SCOPE_PATTERN.pattern}){{0,{MAX_SCOPES - 1}}})?$"

_COMPONENTS_YAML = """
schemas:
  OAuthError:
    description: "an RFC 6749 5.2 error; the description never quotes a secret back"
    type: object
    required: [error, error_description]
    properties:
      error:
        type: string
        enum: [invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type,
               invalid_scope, invalid_target, authorization_pending, slow_down, expired_token, access_denied,
               unsupported_token_type]
      error_description: {type: string}
    additionalProperties: false
  TokenAnswer:
    description: an RFC 6749 5.1 answer (extension parameters allowed)
    type: object
    required: [access_token, token_type, expires_in, scope]
    properties:
      access_token: {type: string, minLength: 1}
      token_type: {type: string, enum: [Bearer]}
      expires_in: {type: integer, minimum: 1}
      scope: {type: string}
      issued_token_type: {type: string, description: token exchange only (RFC 8693)}
      id_token: {type: string, description: "device code grant with scope openid"}
      refresh_token: {type: string, description: the public client league only; spent when used}
      refresh_token_expires_in: {type: integer, minimum: 1}
  DeviceAuthorization:
    description: RFC 8628 3.2
    type: object
    required: [device_code, user_code, verification_uri, verification_uri_complete, expires_in, interval]
    properties:
      device_code: {type: string, minLength: 1}
      user_code: {type: string, pattern: "^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$"}
      verification_uri: {type: string}
      verification_uri_complete: {type: string}
      expires_in: {type: integer, minimum: 1}
      interval: {type: integer, minimum: 1}
    additionalProperties: false
  ServerMetadata:
    description: OpenID Connect Discovery 1.0 / RFC 8414 (clients ignore what they do not know)
    type: object
    required: [issuer, jwks_uri, token_endpoint, device_authorization_endpoint, grant_types_supported,
               token_endpoint_auth_methods_supported, scopes_supported, response_types_supported,
               subject_types_supported, id_token_signing_alg_values_supported]
    properties:
      issuer: {type: string}
      jwks_uri: {type: string}
      token_endpoint: {type: string}
      device_authorization_endpoint: {type: string}
      grant_types_supported: {type: array, items: {type: string}}
      token_endpoint_auth_methods_supported: {type: array, items: {type: string}}
      scopes_supported: {type: array, items: {type: string}}
      response_types_supported: {type: array, items: {type: string}}
      subject_types_supported: {type: array, items: {type: string}}
      id_token_signing_alg_values_supported: {type: array, items: {type: string}}
      claims_supported: {type: array, items: {type: string}}
      service_documentation: {type: string}
  JsonWebKeySet:
    description: RFC 7517; public keys only
    type: object
    required: [keys]
    properties:
      keys:
        type: array
        minItems: 1
        items:
          type: object
          required: [kty, crv, x, y, kid, use, alg]
          properties:
            kty: {type: string, enum: [EC]}
            crv: {type: string, enum: [P-256]}
            x: {type: string}
            y: {type: string}
            kid: {type: string}
            use: {type: string, enum: [sig]}
            alg: {type: string, enum: [ALGORITHM]}
          additionalProperties: false
    additionalProperties: false
  User:
    description: a person who signs in; never a password or its hash
    type: object
    required: [id, username, name, roles, disabled, failed_logins, locked_until, created_at, last_login_at]
    properties:
      id: {type: string}
      username: {type: string}
      name: {type: string}
      roles: {type: array, items: {$ref: "#/components/schemas/Role"}}
      disabled: {type: boolean}
      failed_logins: {type: integer, minimum: 0}
      locked_until: {type: number, nullable: true, description: "Unix time; null when not locked"}
      created_at: {type: number}
      last_login_at: {type: number, nullable: true}
    additionalProperties: false
  Role: {type: string, enum: [viewer, developer, operator, admin]}
  ServiceAccount:
    description: a service's client; never its secret or its hash
    type: object
    required: [client_id, subject, scopes, audiences, description, disabled, created_at]
    properties:
      client_id: {type: string}
      subject: {type: string, description: "service:CLIENT_ID, the sub of its tokens"}
      scopes: {type: array, items: {type: string}}
      audiences: {type: array, items: {type: string}}
      description: {type: string}
      disabled: {type: boolean}
      created_at: {type: number}
    additionalProperties: false
  SigningKey:
    description: one signing key's state and dates (Unix time); never the key itself
    type: object
    required: [kid, state, created_at, signs_from, retired_at, published_until]
    properties:
      kid: {type: string}
      state: {type: string, enum: [announced, signing, retired]}
      created_at: {type: number}
      signs_from: {type: number}
      retired_at: {type: number, nullable: true}
      published_until: {type: number, nullable: true}
    additionalProperties: false
  IssuedToken:
    description: the record of one issued token; never the token
    type: object
    required: [jti, sub, aud, client_id, grant_type, actor, scope, iat, exp]
    properties:
      jti: {type: string}
      sub: {type: string}
      aud: {type: string}
      client_id: {type: string}
      grant_type: {type: string}
      actor: {type: string, nullable: true}
      scope: {type: string}
      iat: {type: integer}
      exp: {type: integer}
    additionalProperties: false
  Page: {type: string, description: an HTML page}
responses:
  OAuthBadRequest:
    description: an RFC 6749 5.2 error
    headers:
      Cache-Control: {$ref: "#/components/headers/NoStore"}
    content:
      application/json:
        schema: {$ref: "#/components/schemas/OAuthError"}
  OAuthUnauthorized:
    description: invalid_client, with a Basic challenge
    headers:
      Cache-Control: {$ref: "#/components/headers/NoStore"}
      WWW-Authenticate: {required: true, schema: {type: string, pattern: "^Basic "}}
    content:
      application/json:
        schema: {$ref: "#/components/schemas/OAuthError"}
  Page:
    description: the sign-in page, with what happened
    headers:
      Cache-Control: {$ref: "#/components/headers/NoStore"}
      X-Frame-Options: {required: true, schema: {type: string, enum: [DENY]}}
    content:
      text/html:
        schema: {$ref: "#/components/schemas/Page"}
securitySchemes:
  clientBasic:
    type: http
    scheme: basic
    description: "a service account's client_id and secret (client_secret_basic, RFC 6749 2.3.1)"
headers:
  NoStore:
    description: answers with a token, a secret or a form token are never cached
    required: true
    schema: {type: string, enum: [no-store]}
"""


def _components() -> dict[str, Any]:
    text = _COMPONENTS_YAML.replace("[ALGORITHM]", f"[{ALGORITHM}]")
    components: dict[str, Any] = yaml.safe_load(text)
    return components


# Placeholders a docstring's YAML may use, and the rule of the code each one stands for.
CODE_RULES = {
    "enum: GRANT_TYPES": f"enum: {json.dumps(list(GRANT_TYPES))}",
    "pattern: SERVICE_NAME": f"pattern: {json.dumps(NAME_PATTERN)}",
    "pattern: USERNAME": f"pattern: {json.dumps(f'^{USERNAME_PATTERN.pattern}$')}",
    "pattern: SCOPES": f"pattern: {json.dumps(SCOPES_PATTERN)}",
    "pattern: A_SCOPE": f"pattern: {json.dumps(f'^{SCOPE_PATTERN.pattern}$')}",
}


def with_code_rules(text: str) -> str:
    """A docstring's YAML with the rules the code checks filled in, so the two cannot drift apart."""
    for placeholder, rule in CODE_RULES.items():
        text = text.replace(placeholder, rule)
    return text


COMPONENTS = _components()
