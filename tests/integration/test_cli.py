"""The league command as a user runs it: exit codes, one-line errors, nothing half-done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..conftest import MINIMAL_CATALOG


def league(*args: str, home: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sevenleague.cli", *args], cwd=cwd,
                          env={**os.environ, "LEAGUE_HOME": str(home), **env},
                          capture_output=True, text=True, timeout=240, check=False)


def test_up_with_a_bad_catalog_exits_2_and_starts_nothing(tmp_path):
    (tmp_path / "ecosystem.toml").write_text(MINIMAL_CATALOG.replace("instances = 2", "instances = 0"))
    home = tmp_path / "state"
    done = league("up", home=home, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "league: ecosystem.toml:22: services.hello.instances: expected a number >= 1, got 0 "
        "(hint: every service runs at least one instance)"]
    assert "Traceback" not in done.stdout + done.stderr
    assert not home.exists()


def test_a_port_offset_that_is_not_a_number_is_named(tmp_path):
    (tmp_path / "ecosystem.toml").write_text(MINIMAL_CATALOG)
    done = league("up", home=tmp_path / "state", cwd=tmp_path, LEAGUE_PORT_OFFSET="ten")
    assert done.returncode == 2
    assert done.stderr == ("league: LEAGUE_PORT_OFFSET='ten' is not a whole number "
                           "(hint: e.g. LEAGUE_PORT_OFFSET=1000 moves every port up by 1000)\n")


def test_status_with_nothing_started_exits_3(tmp_path):
    done = league("status", home=tmp_path / "state", cwd=tmp_path)
    assert done.returncode == 3
    assert "no eco-system has been started" in done.stderr
    as_json = league("status", "--json", home=tmp_path / "state", cwd=tmp_path)
    assert as_json.returncode == 3
    assert '"running": false' in as_json.stdout


def test_down_with_nothing_running_is_a_no_op(tmp_path):
    done = league("down", home=tmp_path / "state", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("nothing is running in")


def test_unknown_command_is_a_usage_error(tmp_path):
    done = league("launch", home=tmp_path / "state", cwd=tmp_path)
    assert done.returncode == 2
    assert "No such command" in done.stderr
    assert "Traceback" not in done.stderr


def test_up_refuses_ports_taken_by_another_program_and_starts_nothing(tmp_path):
    import socket

    from sevenleague.testing import free_port_offset
    from sevenleague.testing.ecosystem import catalog_ports

    (tmp_path / "ecosystem.toml").write_text(MINIMAL_CATALOG)
    offset = free_port_offset(catalog_ports(tmp_path / "ecosystem.toml"))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 8080 + offset))
        squatter.listen()
        done = league("up", home=tmp_path / "state", cwd=tmp_path, LEAGUE_PORT_OFFSET=str(offset))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"league: port {8080 + offset} on 127.0.0.1 (edge.port) is already in use by another program "
        "(hint: stop that program, change the port in the catalog, or set LEAGUE_PORT_OFFSET to move "
        "every port)"]
    assert not (tmp_path / "state" / "supervisord.pid").exists()


def test_up_names_an_app_that_cannot_start_and_down_cleans_up(tmp_path):
    from sevenleague.testing import free_port_offset
    from sevenleague.testing.ecosystem import catalog_ports

    (tmp_path / "ecosystem.toml").write_text(
        MINIMAL_CATALOG.replace('app = "hello.app:app"', 'app = "no_such_module:app"'))
    offset = str(free_port_offset(catalog_ports(tmp_path / "ecosystem.toml")))
    home = tmp_path / "state"
    try:
        # supervisord gives up on an app after its retries; on a loaded machine that can take
        # over a minute, and the test is about what `up` says then, not how soon.
        done = league("up", "--timeout", "180", home=home, cwd=tmp_path, LEAGUE_PORT_OFFSET=offset)
        assert done.returncode == 1
        lines = done.stderr.splitlines()
        # Both instances when both gave up in time; on a loaded machine one may still be
        # starting when `up` reports the other (it waits a few seconds for the rest).
        named = [line.split(" cannot start: ")[0] for line in lines]
        assert named and set(named) <= {"league: hello-1", "league: hello-2"}, lines
        assert all('Could not import module "no_such_module"' in line for line in lines), lines
        assert "Traceback" not in done.stderr
    finally:
        assert league("down", home=home, cwd=tmp_path).returncode == 0
