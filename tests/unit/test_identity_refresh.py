"""Refresh tokens in the identity database, and the service accounts the eco-system wants.

Rotation, reuse detection, expiry and revocation are the store's: one transaction each,
tested here against a real SQLite file. The wanted-clients file is parsed by a pure
function and applied to a real store; secrets land in private files.
"""

from __future__ import annotations

import json
import stat

import pytest
from argon2 import PasswordHasher

from sevenleague.identity import IdentityError, IdentityPaths, IdentitySettings, IdentityStore
from sevenleague.identity._oauth import GRANT_TYPES
from sevenleague.identity._passwords import Verifier
from sevenleague.identity._wanted_clients import (
    WantedClient,
    apply_wanted_clients,
    load_wanted_clients,
    parse_wanted_clients,
)
from sevenleague.identity.service import discovery_document

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
NOW = 1_000_000.0


@pytest.fixture
def store(tmp_path):
    opened = IdentityStore(tmp_path / "identity" / "identity.sqlite3", passwords=Verifier(CHEAP),
                           secrets_verifier=Verifier(CHEAP))
    yield opened
    opened.close()


@pytest.fixture
def ada(store):
    return store.add_user("ada", "correct horse battery", roles=["developer"])


# --- refresh tokens ------------------------------------------------------------------------------------


def test_a_refresh_token_is_traded_once_for_the_next_of_its_family(store, ada):
    first, expires = store.issue_refresh_token(ada.id, "league", lifetime=3600, now=NOW)
    assert expires == NOW + 3600
    rotated = store.rotate_refresh_token(first, "league", now=NOW + 10)
    assert rotated.outcome == "rotated" and rotated.user_id == ada.id
    assert rotated.token and rotated.token != first
    assert rotated.expires_at == expires  # rotation never extends the sign-in
    assert store.rotate_refresh_token(rotated.token, "league", now=NOW + 20).outcome == "rotated"


def test_a_used_refresh_token_shown_again_revokes_the_whole_family(store, ada):
    first, _ = store.issue_refresh_token(ada.id, "league", lifetime=3600, now=NOW)
    second = store.rotate_refresh_token(first, "league", now=NOW + 1).token
    other, _ = store.issue_refresh_token(ada.id, "league", lifetime=3600, now=NOW)  # another login
    replay = store.rotate_refresh_token(first, "league", now=NOW + 2)
    assert replay.outcome == "reused" and replay.user_id == ada.id
    assert store.rotate_refresh_token(second, "league", now=NOW + 3).outcome == "revoked"
    assert store.rotate_refresh_token(other, "league", now=NOW + 3).outcome == "rotated"


def test_an_expired_unknown_or_foreign_refresh_token_is_refused(store, ada):
    token, _ = store.issue_refresh_token(ada.id, "league", lifetime=60, now=NOW)
    assert store.rotate_refresh_token(token, "league", now=NOW + 61).outcome == "expired"
    assert store.rotate_refresh_token("not-a-token", "league", now=NOW).outcome == "unknown"
    fresh, _ = store.issue_refresh_token(ada.id, "league", lifetime=60, now=NOW)
    assert store.rotate_refresh_token(fresh, "hello", now=NOW).outcome == "unknown"
    assert store.rotate_refresh_token(fresh, "league", now=NOW).outcome == "rotated"


def test_disabling_a_user_revokes_their_refresh_tokens_and_enabling_restores_none(store, ada):
    token, _ = store.issue_refresh_token(ada.id, "league", lifetime=3600)
    store.set_disabled("ada", True)
    assert store.rotate_refresh_token(token, "league").outcome == "revoked"
    store.set_disabled("ada", False)
    assert store.rotate_refresh_token(token, "league").outcome == "revoked"


def test_a_disabled_user_cannot_refresh_even_when_their_tokens_were_not_revoked(store, ada):
    token, _ = store.issue_refresh_token(ada.id, "league", lifetime=3600)
    with store._transaction() as db:  # disabled behind the store's back, e.g. by an older version
        db.execute("UPDATE users SET disabled = 1 WHERE id = ?", (ada.id,))
    assert store.rotate_refresh_token(token, "league").outcome == "disabled"


def test_only_a_hash_of_a_refresh_token_is_stored(store, ada, tmp_path):
    token, _ = store.issue_refresh_token(ada.id, "league", lifetime=3600)
    successor = store.rotate_refresh_token(token, "league").token
    files = [tmp_path / "identity" / name for name in ("identity.sqlite3", "identity.sqlite3-wal")]
    stored = b"".join(path.read_bytes() for path in files if path.exists())
    assert token.encode() not in stored and successor.encode() not in stored


def test_the_refresh_grant_is_announced_and_its_lifetime_configurable():
    assert "refresh_token" in GRANT_TYPES
    settings = IdentitySettings.from_environment({"LEAGUE_OIDC_ISSUER": "http://x",
                                                  "LEAGUE_IDENTITY_REFRESH_LIFETIME": "3600"})
    assert settings.refresh_lifetime == 3600
    assert "refresh_token" in discovery_document(settings)["grant_types_supported"]
    assert IdentitySettings.from_environment({"LEAGUE_OIDC_ISSUER": "http://x"}).refresh_lifetime == 43200
    for bad in ("0", "59", "lots", str(31 * 86400)):
        with pytest.raises(IdentityError, match="LEAGUE_IDENTITY_REFRESH_LIFETIME"):
            IdentitySettings.from_environment({"LEAGUE_OIDC_ISSUER": "http://x",
                                               "LEAGUE_IDENTITY_REFRESH_LIFETIME": bad})


# --- service accounts the eco-system wants ----------------------------------------------------------------


def test_the_wanted_clients_file_lists_accounts_with_audiences_and_scopes():
    text = json.dumps({"clients": [
        {"name": "hello", "audiences": ["ledger", "ledger"], "scopes": ["ledger.read", "ledger.write"]},
        {"name": "ledger"},
    ]})
    assert parse_wanted_clients(text, "clients.json") == (
        WantedClient("hello", ("ledger",), ("ledger.read", "ledger.write")),
        WantedClient("ledger", (), ()),
    )
    assert parse_wanted_clients('{"clients": []}', "clients.json") == ()


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not JSON (line 1, column 2)"),
    ("[]", 'must be a JSON object {"clients": [...]}'),
    ('{"clients": {}}', 'must be a JSON object {"clients": [...]}'),
    ('{"clients": ["hello"]}', "clients[0] must be an object"),
    ('{"clients": [{"name": "Hello"}]}', "clients[0]: name must be a service name"),
    ('{"clients": [{"name": "hello\\n"}]}', "clients[0]: name must be a service name"),
    ('{"clients": [{"name": "league"}]}', "the CLI's public client"),
    ('{"clients": [{"name": "hello", "audience": ["x"]}]}', "unknown keys audience"),
    ('{"clients": [{"name": "hello", "audiences": "ledger"}]}', "audiences must be a list of strings"),
    ('{"clients": [{"name": "hello", "audiences": ["../etc"]}]}', "'../etc' in audiences is not a service"),
    ('{"clients": [{"name": "hello", "scopes": ["no way"]}]}', "clients[0]: 'no way' is not a scope"),
    ('{"clients": [{"name": "hello", "scopes": ["no\'pe"]}]}', "clients[0]: \"no'pe\" is not a scope"),
    ('{"clients": [{"name": "hello"}, {"name": "hello"}]}', "'hello' is named twice"),
])
def test_a_wrong_wanted_clients_file_is_refused_naming_the_file_and_the_entry(text, message):
    with pytest.raises(IdentityError) as caught:
        parse_wanted_clients(text, "/etc/league/clients.json")
    assert str(caught.value).startswith("/etc/league/clients.json: ")
    assert message in caught.value.message


def test_an_unreadable_wanted_clients_file_is_refused_naming_it(tmp_path):
    with pytest.raises(IdentityError, match=r"missing\.json: cannot read the service accounts file"):
        load_wanted_clients(tmp_path / "missing.json")


def test_wanted_accounts_are_made_then_kept_in_line_with_their_secret(store, tmp_path):
    paths = IdentityPaths.under(tmp_path / "home")
    wanted = [WantedClient("hello", ("ledger",), ("ledger.read",))]
    made = apply_wanted_clients(store, wanted, paths)
    assert made.made == ["hello"] and made.summary() == "made hello"
    secret_file = paths.client_secret("hello")
    secret = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    assert store.authenticate_client("hello", secret) is not None

    assert apply_wanted_clients(store, wanted, paths).summary() == "nothing to change"
    changed = [WantedClient("hello", ("ledger", "audit"), ("ledger.read", "audit.write"))]
    updated = apply_wanted_clients(store, changed, paths)
    assert updated.updated == ["hello"] and updated.new_secret == []
    account = store.authenticate_client("hello", secret)  # the secret is kept
    assert account is not None and account.audiences == ("ledger", "audit")
    assert account.scopes == ("ledger.read", "audit.write")

    secret_file.unlink()
    renewed = apply_wanted_clients(store, changed, paths)
    assert renewed.new_secret == ["hello"]
    new_secret = secret_file.read_text().strip()
    assert new_secret != secret and store.authenticate_client("hello", secret) is None
    assert store.authenticate_client("hello", new_secret) is not None


def test_resetting_or_updating_a_missing_account_is_an_error(store):
    with pytest.raises(IdentityError, match="no service account 'ghost'"):
        store.reset_client_secret("ghost")
    with pytest.raises(IdentityError, match="no service account 'ghost'"):
        store.update_service_account("ghost", scopes=[], audiences=[])


def test_revoking_a_refresh_token_ends_its_whole_sign_in(tmp_path):
    from sevenleague.identity._store import IdentityStore

    store = IdentityStore(tmp_path / "identity.sqlite3")
    user = store.add_user("rita", "a-long-enough-password", ["viewer"])
    first, _ = store.issue_refresh_token(user.id, "league", lifetime=3600, now=100.0)
    second = store.rotate_refresh_token(first, "league", now=110.0).token
    assert second is not None
    assert store.revoke_refresh_token(first, "other-client", now=120.0) is False  # not its client's
    assert store.revoke_refresh_token("never-issued", "league", now=120.0) is False
    assert store.revoke_refresh_token(first, "league", now=120.0) is True  # any token of the family
    assert store.rotate_refresh_token(second, "league", now=130.0).outcome == "revoked"
