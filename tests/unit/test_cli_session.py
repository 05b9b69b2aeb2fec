"""The CLI's session file: what it holds, how it is written, when a cached token is used.

Refreshing against a real identity service is tested in tests/integration/test_cli_login.py;
here the snapshot points at a port nobody listens on, which proves the cached path makes
no call and that an unreachable service keeps the session.
"""

from __future__ import annotations

import base64
import json
import stat
import time
from dataclasses import replace

import pytest

from sevenleague.cli._session import (
    CachedToken,
    NotLoggedIn,
    Session,
    access_token,
    cache_key,
    current_user,
    delete_session,
    load_session,
    new_session,
    save_session,
    session_path,
    unverified_claims,
)
from sevenleague.identity.client import IdentityUnavailable
from sevenleague.testing import free_port

ISSUER = "https://127.0.0.1:9400"


def jwt_like(**claims: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln"


def answer(username: str = "ada", roles: tuple[str, ...] = ("developer",),
           **extra: object) -> dict[str, object]:
    return {"access_token": jwt_like(preferred_username=username, roles=list(roles)), "expires_in": 600,
            "refresh_token": "refresh-1", "refresh_token_expires_in": 43200, **extra}


@pytest.fixture
def home(tmp_path):
    """A state directory whose snapshot names an identity service that does not answer."""
    found = tmp_path / "home"
    found.mkdir()
    (found / "ecosystem.json").write_text(json.dumps(
        {"endpoints": {"identity": f"http://127.0.0.1:{free_port()}"}, "ca_file": None}))
    return found


def issuer_of(home) -> str:
    return str(json.loads((home / "ecosystem.json").read_text())["endpoints"]["identity"])


# --- pure parts ---------------------------------------------------------------------------------------


def test_a_cache_key_is_the_audience_and_the_set_of_scopes():
    assert cache_key("builds", None) == cache_key("builds", "") == "builds "
    assert cache_key("builds", "b.write  b.read") == cache_key("builds", "b.read b.write")
    assert cache_key("builds", "b.read") != cache_key("hello", "b.read")


def test_claims_are_read_without_a_signature_check_and_garbage_gives_none():
    assert unverified_claims(jwt_like(preferred_username="ada"))["preferred_username"] == "ada"
    for garbage in ("", "abc", "a.%%%.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c"):
        assert unverified_claims(garbage) == {}


def test_a_login_answer_starts_a_session_with_who_signed_in_and_the_token_cached():
    started = new_session(ISSUER, answer(), "identity", None, now=1000.0)
    assert (started.username, started.roles, started.refresh_token) == ("ada", ("developer",), "refresh-1")
    assert started.refresh_expires_at == 1000.0 + 43200
    assert started.tokens[cache_key("identity", None)].expires_at == 1600.0
    with pytest.raises(Exception, match="no refresh token"):
        new_session(ISSUER, answer(refresh_token=""), "identity", None)


def test_a_refresh_answer_rotates_the_refresh_token_and_drops_expired_tokens():
    started = new_session(ISSUER, answer(), "identity", None, now=1000.0)
    rotated = answer(roles=("viewer",), refresh_token="refresh-2", refresh_token_expires_in=100)
    later = started.with_answer(rotated, "builds", "builds.read", now=2000.0)
    assert later.refresh_token == "refresh-2" and later.roles == ("viewer",)
    assert later.refresh_expires_at == 2100.0
    assert set(later.tokens) == {cache_key("builds", "builds.read")}  # the identity token had expired


def test_a_session_survives_its_file_and_a_damaged_file_is_no_session():
    started = new_session(ISSUER, answer(), "identity", None)
    assert Session.from_json(json.loads(json.dumps(started.to_json()))) == started
    for damaged in ({}, {"version": 99}, {**started.to_json(), "refresh_token": ""},
                    {**started.to_json(), "access_tokens": []}):
        with pytest.raises(ValueError):
            Session.from_json(damaged)


# --- the file -------------------------------------------------------------------------------------------


def test_the_session_file_is_private_and_replaced_whole(home):
    save_session(home, new_session(ISSUER, answer(), "identity", None))
    path = session_path(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir() if p.name != ".session.lock") == ["session.json"]
    loaded = load_session(home)
    assert loaded is not None and loaded.username == "ada" and current_user(home) == "ada"
    path.write_text("{half a file")
    assert load_session(home) is None and current_user(home) is None
    assert delete_session(home) and not delete_session(home)


def test_without_a_session_there_is_no_token_and_nothing_is_created(home):
    with pytest.raises(NotLoggedIn) as caught:
        access_token(home, "builds")
    assert caught.value.exit_code == 4
    assert str(caught.value) == f"not logged in to the eco-system at {home} (hint: run `league login`)"
    assert not (home / "cli").exists() and current_user(home) is None


def test_a_cached_token_with_time_left_is_used_without_calling_anyone(home):
    started = new_session(issuer_of(home), answer(), "identity", None)
    cached = CachedToken(jwt_like(aud="builds"), time.time() + 120)
    save_session(home, replace(started, tokens={cache_key("builds", None): cached}))
    assert access_token(home, "builds") == cached.token


def test_a_token_about_to_expire_is_refreshed_and_an_unreachable_service_keeps_the_session(home):
    started = new_session(issuer_of(home), answer(), "identity", None)
    nearly = CachedToken(jwt_like(aud="builds"), time.time() + 20)  # under the 30 s margin
    save_session(home, replace(started, tokens={cache_key("builds", None): nearly}))
    with pytest.raises(IdentityUnavailable) as caught:
        access_token(home, "builds")
    assert caught.value.exit_code == 3 and "does not answer" in str(caught.value)
    assert "refresh-1" not in str(caught.value)
    assert load_session(home) is not None


def test_tokens_from_another_issuer_are_not_used(home):
    started = new_session("https://elsewhere:9400", answer(), "identity", None)
    assert started.tokens[cache_key("identity", None)].usable(time.time())
    save_session(home, started)
    with pytest.raises(IdentityUnavailable):
        access_token(home, "identity")  # the cached token names another issuer: a refresh is needed


def test_an_expired_sign_in_is_deleted_and_reported_as_not_logged_in(home):
    started = new_session(issuer_of(home), answer(refresh_token_expires_in=0), "identity", None)
    save_session(home, started)
    assert current_user(home) is None
    with pytest.raises(NotLoggedIn):
        access_token(home, "builds")
    assert not session_path(home).exists()
