"""Each slice's public names resolve: the lazy export tables name real objects."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", [
    "sevenleague.catalog", "sevenleague.kit", "sevenleague.hosts", "sevenleague.proxy",
    "sevenleague.telemetry", "sevenleague.ecosystem", "sevenleague.build", "sevenleague.source",
    "sevenleague.scaffold", "sevenleague.pki", "sevenleague.identity", "sevenleague.deploy",
    "sevenleague.logs", "sevenleague.agent",
])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []
    assert sorted(module.__all__) == sorted(set(module.__all__))


def test_an_unknown_name_is_an_attribute_error():
    proxy = importlib.import_module("sevenleague.proxy")
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = proxy.nope
