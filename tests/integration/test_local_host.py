"""The local driver against a real supervisord: add, change, remove, shut down."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from sevenleague.hosts import HostError, LocalHost, Program, pid_alive, wait_until
from sevenleague.testing import free_port, wait_for_http


def web_server(name: str, port: int) -> Program:
    return Program(name, (sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
                   stop_timeout=5)


@pytest.fixture
def host():
    home = Path(tempfile.mkdtemp(prefix="lh-"))
    host = LocalHost("driver-test", home)
    yield host
    host.shutdown(timeout=20)


def test_apply_starts_supervisord_and_its_programs(host):
    port = free_port()
    changes = host.apply([web_server("web", port)])
    assert changes.started_supervisord and changes.added == ["web"]
    wait_for_http(f"http://127.0.0.1:{port}/")
    assert wait_until(lambda: host.statuses()["web"].running, timeout=10)


def test_applying_the_same_programs_again_changes_nothing(host):
    programs = [web_server("web", free_port())]
    host.apply(programs)
    assert wait_until(lambda: host.statuses()["web"].running, timeout=10)
    pid = host.statuses()["web"].pid
    changes = host.apply(programs)
    assert not changes.any
    assert host.statuses()["web"].pid == pid


def test_a_changed_program_is_restarted_and_a_dropped_one_removed(host):
    first, second = free_port(), free_port()
    host.apply([web_server("web", first), web_server("extra", free_port())])
    assert wait_until(lambda: all(s.running for s in host.statuses().values()), timeout=10)
    changes = host.apply([web_server("web", second)])
    assert changes.changed == ["web"] and changes.removed == ["extra"]
    wait_for_http(f"http://127.0.0.1:{second}/")
    assert set(host.statuses()) == {"web"}


def test_shutdown_leaves_no_process(host):
    host.apply([web_server("a", free_port()), web_server("b", free_port())])
    assert wait_until(lambda: all(s.running for s in host.statuses().values()), timeout=10)
    pids = [s.pid for s in host.statuses().values()] + [host.supervisord_pid()]
    assert host.shutdown() == []
    assert not any(pid_alive(pid) for pid in pids)
    assert not host.is_running()


def test_a_state_directory_too_long_for_a_socket_is_refused():
    with pytest.raises(HostError, match="too long for a unix socket path"):
        LocalHost("x", Path("/tmp/" + "d" * 120))
