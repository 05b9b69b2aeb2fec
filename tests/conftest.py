"""Shared fixtures: the repository root and a minimal valid catalog text.

Every session also checks that no log it wrote holds a secret its tests used
(sevenleague.testing.pytest_secrets).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["sevenleague.testing.pytest_secrets"]

ROOT = Path(__file__).resolve().parent.parent

MINIMAL_CATALOG = """\
[ecosystem]
name = "test"

[hosts.local]
address = "127.0.0.1"

[environments.dev]
hosts = ["local"]

[edge]
port = 8080
stats_port = 8404

[prometheus]
port = 9090

[alertmanager]
port = 9093

[services.hello]
app = "hello.app:app"
instances = 2
port = 8001
hosts = ["local"]
"""


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def write_catalog(tmp_path: Path):
    """Write catalog text to ecosystem.toml in a temporary directory; returns its path."""

    def write(text: str, name: str = "ecosystem.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
