"""Prometheus' scrape tokens: fetched per audience, written 0600, renewed at half their life."""

from __future__ import annotations

from pathlib import Path

from sevenleague.errors import LeagueError
from sevenleague.telemetry.scrape_tokens import ScrapeTokens, ensure_placeholders, token_file


def tokens_with(tmp_path: Path, answers: dict[str, object]) -> tuple[ScrapeTokens, list[tuple[str, ...]]]:
    asked: list[tuple[str, ...]] = []
    secret = tmp_path / "prometheus.secret"
    secret.write_text("s3cret\n")

    def fetch(client: str, secret_value: str, audience: str, scope: str) -> dict[str, object]:
        asked.append((client, secret_value, audience, scope))
        answer = answers[audience]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    return ScrapeTokens("prometheus", tmp_path / "tokens", ("hello", "builds"), secret, fetch), asked


def test_each_audience_gets_its_own_token_with_only_its_metrics_scope(tmp_path):
    tokens, asked = tokens_with(tmp_path, {"hello": {"access_token": "t-hello", "expires_in": 600},
                                           "builds": {"access_token": "t-builds", "expires_in": 100}})
    pause = tokens.refresh(now=1000.0)
    assert asked == [("prometheus", "s3cret", "hello", "hello.metrics"),
                     ("prometheus", "s3cret", "builds", "builds.metrics")]
    hello = token_file(tmp_path / "tokens", "hello")
    assert hello.read_text() == "t-hello" and hello.stat().st_mode & 0o777 == 0o600
    assert pause == 50.0  # the shorter-lived token is due at half its life
    assert tokens.refresh(now=1010.0) == 40.0 and len(asked) == 2  # nothing due: nothing fetched
    tokens.refresh(now=1050.0)
    assert [a[2] for a in asked[2:]] == ["builds"]


def test_a_refused_fetch_keeps_the_old_token_and_is_tried_again_soon(tmp_path):
    tokens, asked = tokens_with(tmp_path, {"hello": LeagueError("identity does not answer"),
                                           "builds": {"access_token": "t-builds", "expires_in": 600}})
    ensure_placeholders(tmp_path / "tokens", ["hello"])
    assert tokens.refresh(now=0.0) == 5.0
    assert token_file(tmp_path / "tokens", "hello").read_text() == ""  # the placeholder, untouched
    assert token_file(tmp_path / "tokens", "builds").read_text() == "t-builds"
    tokens.refresh(now=5.0)
    assert [a[2] for a in asked] == ["hello", "builds", "hello"]  # only the failed one, again


def test_placeholders_never_overwrite_a_token(tmp_path):
    directory = tmp_path / "tokens"
    made = ensure_placeholders(directory, ["hello"])
    assert made == [token_file(directory, "hello")] and directory.stat().st_mode & 0o777 == 0o700
    token_file(directory, "hello").write_text("real")
    assert ensure_placeholders(directory, ["hello", "builds"]) == [token_file(directory, "builds")]
    assert token_file(directory, "hello").read_text() == "real"
