"""The identity database: lockout, device codes, the append-only record, nothing usable in clear."""

from __future__ import annotations

import sqlite3
import stat

import pytest
from argon2 import PasswordHasher

from sevenleague.identity import IdentityError, IdentityStore, ensure_first_admin
from sevenleague.identity._passwords import Verifier

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def store(tmp_path):
    opened = IdentityStore(tmp_path / "identity" / "identity.sqlite3", passwords=Verifier(CHEAP),
                           secrets_verifier=Verifier(CHEAP))
    yield opened
    opened.close()


def login(store, username, password, now):
    return store.check_login(username, password, max_failures=5, lockout_seconds=900, now=now)


def test_five_wrong_passwords_in_a_row_lock_the_account_for_the_lockout(store):
    store.add_user("ada", "correct horse battery", roles=["developer"])
    for _ in range(4):
        assert login(store, "ada", "wrong password!", 100.0) is None
    assert login(store, "ada", "correct horse battery", 100.0) is not None  # the run is broken: reset
    for _ in range(5):
        assert login(store, "ada", "wrong password!", 200.0) is None
    locked = store.user_by_name("ada")
    assert locked is not None and locked.locked_until == 1100.0
    assert login(store, "ada", "correct horse battery", 1099.0) is None
    user = login(store, "ada", "correct horse battery", 1101.0)
    assert user is not None and user.failed_logins == 0 and user.locked_until is None


def test_unknown_and_disabled_users_cannot_log_in(store):
    store.add_user("bob", "correct horse battery")
    store.set_disabled("bob", True)
    assert login(store, "bob", "correct horse battery", 1.0) is None
    assert login(store, "nobody", "correct horse battery", 1.0) is None
    assert login(store, "NOT A NAME", "x", 1.0) is None


def test_usernames_passwords_and_roles_are_checked(store):
    with pytest.raises(IdentityError, match="not a username"):
        store.add_user("Ada Lovelace", "correct horse battery")
    with pytest.raises(IdentityError, match="12 to"):
        store.add_user("ada", "short")
    with pytest.raises(IdentityError, match="unknown roles root"):
        store.add_user("ada", "correct horse battery", roles=["root"])
    store.add_user("ada", "correct horse battery")
    with pytest.raises(IdentityError, match="exists already"):
        store.add_user("ada", "correct horse battery")


def test_service_accounts_keep_only_a_hash_of_their_secret(store, tmp_path):
    account, secret = store.add_service_account("hello", scopes=["ledger.read"], audiences=["ledger"])
    assert account.subject == "service:hello" and account.scopes == ("ledger.read",)
    assert store.authenticate_client("hello", secret) == account
    assert store.authenticate_client("hello", secret + "x") is None
    assert store.authenticate_client("nobody", secret) is None
    database = (tmp_path / "identity" / "identity.sqlite3").read_bytes()
    wal = tmp_path / "identity" / "identity.sqlite3-wal"
    assert secret.encode() not in database + (wal.read_bytes() if wal.exists() else b"")
    with pytest.raises(IdentityError, match="not a service name"):
        store.add_service_account("Hello", scopes=[], audiences=[])
    with pytest.raises(IdentityError, match="not a scope"):
        store.add_service_account("ledger", scopes=["no'pe"], audiences=[])


def test_a_device_code_is_pending_then_slowed_then_approved_once(store):
    user = store.add_user("ada", "correct horse battery")
    device_code, user_code = store.start_device_grant(client_id="league", scope=["hello.read"],
                                                      audience="hello", interval=5, lifetime=600)
    assert store.poll_device_grant(device_code, "league", now=_at(store, 1)).outcome == "pending"
    slowed = store.poll_device_grant(device_code, "league", now=_at(store, 2))
    assert slowed.outcome == "slow_down" and slowed.interval == 10
    assert store.poll_device_grant(device_code, "other", now=_at(store, 20)).outcome == "unknown"
    assert store.pending_device_grant(user_code.lower().replace("-", " ")) is not None
    assert store.decide_device_grant(user_code, user.id, approve=True)
    assert not store.decide_device_grant(user_code, user.id, approve=False)
    approved = store.poll_device_grant(device_code, "league", now=_at(store, 40))
    assert approved.outcome == "approved" and approved.user_id == user.id
    assert approved.scope == ("hello.read",)
    assert store.poll_device_grant(device_code, "league", now=_at(store, 60)).outcome == "unknown"


def test_a_device_code_expires_and_can_be_denied(store):
    user = store.add_user("ada", "correct horse battery")
    expiring, _ = store.start_device_grant(client_id="league", scope=[], audience="identity", interval=5,
                                           lifetime=600)
    assert store.poll_device_grant(expiring, "league", now=_at(store, 601)).outcome == "expired"
    denied, code = store.start_device_grant(client_id="league", scope=[], audience="identity", interval=5,
                                            lifetime=600)
    assert store.decide_device_grant(code, user.id, approve=False)
    assert store.poll_device_grant(denied, "league").outcome == "denied"


def _at(store, seconds):
    with store._lock:
        created = store._db.execute("SELECT MAX(created_at) FROM device_codes").fetchone()[0]
    return created + seconds


def test_the_record_of_issued_tokens_is_append_only(store):
    claims = {"jti": "j1", "sub": "service:hello", "aud": "ledger", "client_id": "hello", "scope": "",
              "iat": 1, "exp": 601}
    store.record_token(claims, "client_credentials")
    assert [t.jti for t in store.issued_tokens("service:hello")] == ["j1"]
    for statement in ("UPDATE issued_tokens SET exp = 0", "DELETE FROM issued_tokens"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), store._transaction() as db:
            db.execute(statement)


def test_the_first_admin_is_made_once_with_a_private_password_file(store, tmp_path):
    made = ensure_first_admin(store)
    assert made is not None
    username, path = made
    assert username == "admin" and stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 20
    user = login(store, "admin", password, 1.0)
    assert user is not None and user.roles == ("admin",)
    assert ensure_first_admin(store) is None
    assert path.read_text().strip() == password
    assert stat.S_IMODE((tmp_path / "identity" / "identity.sqlite3").stat().st_mode) == 0o600


def test_a_disabled_first_admin_is_not_replaced_behind_the_operators_back(store):
    made = ensure_first_admin(store)
    assert made is not None
    store.set_disabled("admin", True)
    assert not store.has_admin()
    assert ensure_first_admin(store) is None
    assert [u.username for u in store.users()] == ["admin"]
