"""An eco-system from the demo catalog (with a 1 s scrape interval) for the tests of a module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem

from ..conftest import ROOT


def fast_scrape_catalog(directory: Path) -> Path:
    """The demo catalog, scraped every second so tests need not wait for Prometheus."""
    text = (ROOT / "ecosystem.toml").read_text().replace('scrape_interval = "5s"', 'scrape_interval = "1s"')
    path = directory / "ecosystem.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def ecosystem(tmp_path_factory) -> RunningEcosystem:
    directory = tmp_path_factory.mktemp("eco")
    running = start_ecosystem(fast_scrape_catalog(directory))
    yield running
    left = running.stop()
    shutil.rmtree(running.home, ignore_errors=True)
    assert left == [], f"processes left running after league down: {left}"
