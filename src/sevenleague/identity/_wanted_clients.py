"""The service accounts the eco-system wants, made and kept in line at the service's start.

`league up` knows from the catalog which service calls which; it writes that down as
`LEAGUE_IDENTITY_CLIENTS`, a JSON file:

    {"clients": [{"name": "hello", "audiences": ["ledger"], "scopes": ["ledger.read"]}]}

At startup the identity service reads it and makes the store agree (state is read, not
assumed): a missing account is made, an existing one gets the file's audiences and
scopes and keeps its secret. A new secret is handed over in
`$LEAGUE_HOME/identity/clients/NAME.secret` (0600 in a 0700 directory, written whole or
not at all), where the process that runs as NAME reads it; a file, not the log or an
environment variable, because a log is read by many and an environment is inherited by
every child. An account whose secret file is gone gets a new secret, so deleting the
file is how an operator rotates it. Accounts the file does not name are left alone:
an admin may have made them through the API.

A file that cannot be right stops the start with a message naming the file and the
entry, rather than leaving a service without the account it needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog._model import NAME_PATTERN
from ..hosts import write_bytes
from ._scopes import ScopeError, parse_scope
from ._settings import CLI_CLIENT_ID, IdentityError, IdentityPaths
from ._store import IdentityStore

FIELDS = frozenset({"name", "audiences", "scopes"})
# The catalog's service name, whole: `$` alone would let a trailing newline through.
_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))
SECRET_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600


@dataclass(frozen=True)
class WantedClient:
    name: str
    audiences: tuple[str, ...]
    scopes: tuple[str, ...]


@dataclass
class ClientChanges:
    """What the start did to the accounts, by name only: it is logged."""

    made: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    new_secret: list[str] = field(default_factory=list)

    def summary(self) -> str:
        done = (("made", self.made), ("updated", self.updated), ("new secret for", self.new_secret))
        parts = [f"{what} {', '.join(names)}" for what, names in done if names]
        return "; ".join(parts) or "nothing to change"


# --- reading the file (pure) -------------------------------------------------------------------------


def _names(entry: dict[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: {key} must be a list of strings")
    return value


def _client(entry: Any, where: str) -> WantedClient:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object with name, audiences and scopes")
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)} (allowed: name, audiences, scopes)")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be a service name (lowercase letters, digits and '-')")
    if name == CLI_CLIENT_ID:
        raise ValueError(f"{where}: {CLI_CLIENT_ID!r} is the CLI's public client, not a service account")
    audiences = _names(entry, "audiences", where)
    bad = [audience for audience in audiences if not _NAME.fullmatch(audience)]
    if bad:
        raise ValueError(f"{where}: {bad[0][:40]!r} in audiences is not a service name")
    scopes = _names(entry, "scopes", where)
    spaced = [scope for scope in scopes if len(scope.split()) != 1]
    if spaced:
        raise ValueError(f"{where}: {spaced[0][:40]!r} is not a scope (one SERVICE.ACTION per item)")
    try:
        parsed = parse_scope(" ".join(scopes))
    except ScopeError as error:
        raise ValueError(f"{where}: {error}") from error
    return WantedClient(name, tuple(dict.fromkeys(audiences)), parsed)


def parse_wanted_clients(text: str, source: Path | str) -> tuple[WantedClient, ...]:
    """The accounts a `LEAGUE_IDENTITY_CLIENTS` file asks for; an IdentityError naming `source` if wrong."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
            raise ValueError('the file must be a JSON object {"clients": [...]}')
        found = [_client(entry, f"clients[{index}]") for index, entry in enumerate(data["clients"])]
        seen: set[str] = set()
        for client in found:
            if client.name in seen:
                raise ValueError(f"{client.name!r} is named twice")
            seen.add(client.name)
    except json.JSONDecodeError as error:
        raise IdentityError(f"{source}: not JSON (line {error.lineno}, column {error.colno})",
                            hint="LEAGUE_IDENTITY_CLIENTS names the service accounts file") from error
    except ValueError as error:
        raise IdentityError(f"{source}: {error}",
                            hint='e.g. {"clients": [{"name": "hello", "audiences": ["ledger"], '
                                 '"scopes": ["ledger.read"]}]}') from error
    return tuple(found)


# --- making the store agree --------------------------------------------------------------------------


def load_wanted_clients(path: Path) -> tuple[WantedClient, ...]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise IdentityError(f"{path}: cannot read the service accounts file ({reason})",
                            hint="LEAGUE_IDENTITY_CLIENTS names it; `league up` writes it") from error
    return parse_wanted_clients(text, path)


def write_client_secret(path: Path, secret: str) -> None:
    """The secret, whole or not at all, readable by this user only."""
    path.parent.mkdir(mode=SECRET_DIR_MODE, parents=True, exist_ok=True)
    path.parent.chmod(SECRET_DIR_MODE)
    write_bytes(path, (secret + "\n").encode(), SECRET_FILE_MODE)


def apply_wanted_clients(store: IdentityStore, wanted: Iterable[WantedClient],
                         paths: IdentityPaths) -> ClientChanges:
    """Make every wanted account exist with the file's audiences and scopes, and its secret on disk."""
    changes = ClientChanges()
    for client in wanted:
        secret_file = paths.client_secret(client.name)
        account = store.service_account(client.name)
        if account is None:
            _, secret = store.add_service_account(client.name, scopes=client.scopes,
                                                  audiences=client.audiences,
                                                  description="wanted by the eco-system")
            write_client_secret(secret_file, secret)
            changes.made.append(client.name)
            continue
        if (account.audiences, account.scopes) != (client.audiences, client.scopes):
            store.update_service_account(client.name, scopes=client.scopes, audiences=client.audiences)
            changes.updated.append(client.name)
        if not secret_file.exists():
            write_client_secret(secret_file, store.reset_client_secret(client.name))
            changes.new_secret.append(client.name)
    return changes
