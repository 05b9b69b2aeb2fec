"""Two eco-systems beside each other (two LEAGUE_HOMEs, two port offsets), then none."""

from __future__ import annotations

import shutil

from sevenleague.hosts import pid_alive
from sevenleague.testing.ecosystem import start_ecosystem

from .conftest import fast_scrape_catalog


def test_a_second_ecosystem_runs_beside_the_first_and_down_stops_only_its_own(tmp_path):
    catalog = fast_scrape_catalog(tmp_path)
    first = start_ecosystem(catalog)
    try:
        second = start_ecosystem(catalog)
        try:
            assert first.offset != second.offset
            for running in (first, second):
                status = running.status()
                assert status["healthy"]
                served = {running.get(status["endpoints"]["edge"]).headers["x-served-by"]
                          for _ in range(6)}
                assert served == {"hello/hello-1", "hello/hello-2"}
            first_pids = sorted(first.seen_pids)
            assert first.stop() == []
            assert not any(pid_alive(pid) for pid in first_pids)
            assert second.status()["healthy"]  # untouched by the first one's down
        finally:
            assert second.stop() == []
    finally:
        first.stop()
        shutil.rmtree(first.home, ignore_errors=True)
