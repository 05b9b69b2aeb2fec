"""The signing key ring: announce, sign, retire, forget; files private and checked."""

from __future__ import annotations

import json
import stat

import pytest
from joserfc import jwt

from sevenleague.identity import IdentityError, KeyRing, TokenMint
from sevenleague.kit import InvalidToken


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ring(tmp_path, clock, lifetime=600.0, grace=900.0):
    return KeyRing(tmp_path / "keys", token_lifetime=lifetime, grace=grace, clock=clock)


def test_the_first_key_signs_at_once_and_is_stored_privately(tmp_path):
    keys = ring(tmp_path, Clock())
    [only] = keys.status()
    assert only.state == "signing" and keys.signing_key().kid == only.kid
    directory = tmp_path / "keys"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [path] = directory.glob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.name == f"{only.kid}.json"
    assert "d" not in keys.jwks()["keys"][0]


def test_a_new_key_is_published_first_signs_after_the_grace_and_the_old_one_stays_for_its_tokens(tmp_path):
    clock = Clock()
    keys = ring(tmp_path, clock)
    old = keys.signing_key().kid
    new = keys.rotate().kid
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old, new}
    assert keys.signing_key().kid == old
    assert {s.kid: s.state for s in keys.status()} == {old: "signing", new: "announced"}

    clock.now += 900
    assert keys.signing_key().kid == new
    assert {s.kid: s.state for s in keys.status()} == {old: "retired", new: "signing"}
    clock.now += 600 + 59
    assert keys.prune() == [] and len(keys.jwks()["keys"]) == 2
    clock.now += 2
    assert {k["kid"] for k in keys.jwks()["keys"]} == {new}
    assert keys.prune() == [old]
    assert not (tmp_path / "keys" / f"{old}.json").exists()


def test_keys_survive_a_restart(tmp_path):
    clock = Clock()
    first = ring(tmp_path, clock)
    first.rotate(grace=0)
    again = ring(tmp_path, clock)
    assert [s.kid for s in again.status()] == [s.kid for s in first.status()]
    assert again.signing_key().kid == first.signing_key().kid


def test_a_key_file_that_does_not_match_its_kid_stops_the_start(tmp_path):
    keys = ring(tmp_path, Clock())
    [path] = (tmp_path / "keys").glob("*.json")
    data = json.loads(path.read_text())
    data["kid"] = "someone-else"
    path.write_text(json.dumps(data))
    with pytest.raises(IdentityError, match="does not match its kid"):
        ring(tmp_path, Clock())
    path.write_text("not json")
    with pytest.raises(IdentityError, match="not a signing key"):
        ring(tmp_path, Clock())
    assert keys  # the first ring was fine


def test_minted_tokens_verify_and_bad_ones_are_refused(tmp_path):
    clock = Clock()
    keys = ring(tmp_path, clock)
    mint = TokenMint(keys, "https://id.example", 600, clock=clock)
    token, claims = mint.access_token(sub="u-1", aud="hello", client_id="league", scope=("hello.read",),
                                      roles=("viewer",), username="ada")
    header = jwt.decode(token, keys.key_set()).header
    assert header == {"typ": "at+jwt", "alg": "ES256", "kid": keys.signing_key().kid}
    assert mint.verify(token, audience="hello")["sub"] == "u-1"
    assert claims["exp"] - claims["iat"] == 600
    with pytest.raises(InvalidToken, match="another audience"):
        mint.verify(token, audience="ledger")
    unsigned = token.rsplit(".", 1)[0] + "."
    with pytest.raises(InvalidToken):
        mint.verify(unsigned)
    id_token = mint.id_token(sub="u-1", client_id="league", username="ada", name="Ada", auth_time=1)
    with pytest.raises(InvalidToken, match="type"):
        mint.verify(id_token)
    clock.now += 631
    with pytest.raises(InvalidToken, match="expired"):
        mint.verify(token)


def test_an_exchanged_token_never_outlives_its_source(tmp_path):
    clock = Clock()
    mint = TokenMint(ring(tmp_path, clock), "https://id.example", 600, clock=clock)
    _, claims = mint.access_token(sub="u-1", aud="ledger", client_id="hello", scope=(),
                                  not_after=int(clock.now) + 60)
    assert claims["exp"] == int(clock.now) + 60
