"""kit.serve's options: where each one's default comes from when the flag is not given."""

from __future__ import annotations

import pytest

from sevenleague.kit.serve import TLS_BUNDLE_ENV, parse_args

BASE = ["hello.app:app", "--port", "8001"]


def test_the_tls_bundle_comes_from_the_environment_when_the_flag_is_absent(monkeypatch):
    monkeypatch.setenv(TLS_BUNDLE_ENV, "/etc/sevenleague/tls/hello-1.pem")
    assert parse_args(BASE).tls_bundle == "/etc/sevenleague/tls/hello-1.pem"


def test_the_tls_bundle_flag_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(TLS_BUNDLE_ENV, "/etc/sevenleague/tls/hello-1.pem")
    assert parse_args([*BASE, "--tls-bundle", "/tmp/other.pem"]).tls_bundle == "/tmp/other.pem"


@pytest.mark.parametrize("value", [None, ""])
def test_without_a_bundle_in_the_environment_the_instance_serves_plain_http(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(TLS_BUNDLE_ENV, raising=False)
    else:
        monkeypatch.setenv(TLS_BUNDLE_ENV, value)
    assert parse_args(BASE).tls_bundle is None


def test_an_empty_flag_turns_a_bundle_from_the_environment_off(monkeypatch):
    monkeypatch.setenv(TLS_BUNDLE_ENV, "/etc/sevenleague/tls/hello-1.pem")
    assert not parse_args([*BASE, "--tls-bundle", ""]).tls_bundle
