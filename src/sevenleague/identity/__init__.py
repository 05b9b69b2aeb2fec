"""Identity: who may call what in the eco-system, as an OAuth 2 / OpenID Connect provider.

The identity service signs short-lived RFC 9068 access tokens (ES256) for service
accounts (client credentials), for users (`league login`, the device flow) and for
services acting on a user's behalf (token exchange); every service's kit checks them
against the JWKS it publishes. Users, service accounts and the record of issued token
ids live in the service's own SQLite database; secrets and passwords only as argon2id
hashes.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "ADMIN_SCOPE": "._settings",
    "CLI_CLIENT_ID": "._settings",
    "IdentityError": "._settings",
    "IdentityPaths": "._settings",
    "IdentitySettings": "._settings",
    "IdentityStore": "._store",
    "KeyRing": "._keys",
    "ROLES": "._scopes",
    "ServiceAccount": "._store",
    "TokenMint": "._tokens",
    "User": "._store",
    "ensure_first_admin": "._store",
}
__all__ = [
    "ADMIN_SCOPE",
    "CLI_CLIENT_ID",
    "ROLES",
    "IdentityError",
    "IdentityPaths",
    "IdentitySettings",
    "IdentityStore",
    "KeyRing",
    "ServiceAccount",
    "TokenMint",
    "User",
    "ensure_first_admin",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._keys import KeyRing
    from ._scopes import ROLES
    from ._settings import ADMIN_SCOPE, CLI_CLIENT_ID, IdentityError, IdentityPaths, IdentitySettings
    from ._store import IdentityStore, ServiceAccount, User, ensure_first_admin
    from ._tokens import TokenMint
