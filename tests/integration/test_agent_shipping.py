"""The host agent against the real logs service: every line stored exactly once, whatever happens.

Both run as real processes (`python -m sevenleague.kit.serve`) on loopback over plain HTTP
with token checks off. The test writes supervisord-style log files itself (appends, partial
lines, renames for rotation), kills the agent with SIGKILL mid-stream and starts it again,
stops the logs service under it, and then counts every line in the logs service by its own
sequence number. The last test runs the agent the way `league up` does, under a real
supervisord, next to a program whose output it ships and whose state it reports.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

from sevenleague.hosts import LocalHost, Program, wait_until
from sevenleague.testing import ServedApp, free_port, http_request, serve_app

pytestmark = pytest.mark.integration

HOST = "h1"
PROGRAMS = {"hello-1": {"service": "hello", "instance": "hello-1"},
            "edge": {"service": "edge", "instance": "edge"},
            "later": {"service": "later", "instance": "later"}}


@contextmanager
def logs_service(tmp_path: Path, port: int | None = None) -> Iterator[ServedApp]:
    env = {"LEAGUE_HOME": str(tmp_path / "home"), "LEAGUE_OIDC_ISSUER": "", "LEAGUE_INSTANCE": "logs-1"}
    with serve_app("sevenleague.logs.service:app", tmp_path, port=port, env=env, service="logs") as app:
        yield app


def agent_env(tmp_path: Path, logs_url: str, programs: dict = PROGRAMS) -> dict[str, str]:
    return {
        "LEAGUE_AGENT_HOST": HOST,
        "LEAGUE_AGENT_LOG_DIR": str(tmp_path / "logs"),
        "LEAGUE_AGENT_PROGRAMS": json.dumps(programs),
        "LEAGUE_AGENT_STATE_DIR": str(tmp_path / "agent"),
        "LEAGUE_AGENT_SUPERVISOR_SOCKET": str(tmp_path / "no-supervisord.sock"),
        "LEAGUE_SERVICE_URLS": json.dumps({"logs": logs_url}),
        "LEAGUE_OIDC_ISSUER": "",
        "LEAGUE_CLIENT_SECRET_FILE": "",
        "LEAGUE_INSTANCE": "agent-1",
    }


@contextmanager
def agent(tmp_path: Path, logs_url: str) -> Iterator[ServedApp]:
    with serve_app("sevenleague.agent.service:app", tmp_path, env=agent_env(tmp_path, logs_url),
                   service="agent") as app:
        yield app


def stored(logs_url: str, **filters: str) -> list[dict]:
    """Every record matching `filters`, all pages."""
    records: list[dict] = []
    before = None
    while True:
        query = {**filters, "limit": "1000", **({"before": str(before)} if before is not None else {})}
        answer = http_request(f"{logs_url}/api/records?{urlencode(query)}", timeout=10)
        assert answer.status == 200, answer.body
        page = answer.json()
        records += page["records"]
        before = page["next"]
        if before is None:
            return records


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def rotate(path: Path) -> None:
    """supervisord at 10 MB: P.log.2 -> P.log.3, P.log.1 -> P.log.2, P.log -> P.log.1, a new P.log."""
    for n in (2, 1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))
    path.write_bytes(b"")


class HelloWriter:
    """hello-1's output: kit-style JSON lines numbered by `seq`, rotated every `rotate_every` lines."""

    def __init__(self, path: Path, rotate_every: int = 700) -> None:
        self.path = path
        self.rotate_every = rotate_every
        self.next = 0

    def write(self, count: int, pause: float = 0.0) -> None:
        for _ in range(count):
            if self.next and self.next % self.rotate_every == 0:
                rotate(self.path)
            line = json.dumps({"ts": "2026-11-29T02:15:23.123Z", "level": "info", "msg": "request",
                               "seq": self.next, "pad": "x" * 100})
            head, tail = line[:40], line[40:] + "\n"  # written in two pieces: a partial line for a moment
            append(self.path, head.encode())
            append(self.path, tail.encode())
            self.next += 1
            if pause:
                time.sleep(pause)


def shipped(app: ServedApp) -> int:
    return int(http_request(app.url + "/api/status").json()["records_shipped"])


def kill(app: ServedApp) -> None:
    app.process.send_signal(signal.SIGKILL)
    app.process.wait(10)


def test_every_line_is_stored_exactly_once_across_kills_rotations_and_restarts(tmp_path):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    hello = HelloWriter(logs_dir / "hello-1.log")
    edge = logs_dir / "edge.log"
    hello.write(500)
    edge.write_bytes(b"".join(b"edge plain line %d\n" % n for n in range(50)) + b"edge partial")
    with logs_service(tmp_path) as logs:
        with agent(tmp_path, logs.url) as first:
            assert wait_until(lambda: len(stored(logs.url, host=HOST)) >= 100, timeout=20)
            writing = threading.Thread(target=hello.write, args=(600, 0.0005))
            writing.start()
            time.sleep(0.15)
            kill(first)  # mid-stream, with batches read, sent, maybe stored but not yet checkpointed
            writing.join()
        # While the agent is away: its file rotates (hello-1 is past 700 lines), edge's line is
        # finished, and a program that had written nothing yet starts writing.
        append(edge, b" finished\n")
        (logs_dir / "later.log").write_bytes(b"later line 0\nlater line 1\n")
        with agent(tmp_path, logs.url) as second:
            time.sleep(0.4)
            kill(second)
        hello.write(800)  # two more rotations while no agent runs
        with agent(tmp_path, logs.url) as third:
            expected = hello.next + 51 + 2
            assert wait_until(lambda: len(stored(logs.url, host=HOST)) >= expected, timeout=30)
            time.sleep(1.0)  # anything extra (a duplicate) would have arrived by now
            status = http_request(third.url + "/api/status").json()
            assert third.stop() == 0
        records = stored(logs.url, host=HOST)
    seqs = Counter(r["seq"] for r in records if r["program"] == "hello-1")
    assert sorted(seqs) == list(range(hello.next)) and set(seqs.values()) == {1}
    edge_lines = Counter(r["msg"] for r in records if r["program"] == "edge")
    assert edge_lines == Counter([f"edge plain line {n}" for n in range(50)] + ["edge partial finished"])
    assert Counter(r["msg"] for r in records if r["program"] == "later") == Counter(["later line 0",
                                                                                     "later line 1"])
    assert len(records) == len({r["id"] for r in records}) == expected
    assert all(re.fullmatch(rf"{HOST}/(hello-1|edge|later)/\d+\.\d+/\d+", r["id"]) for r in records)
    labels = {(r["service"], r["instance"]) for r in records if r["program"] == "hello-1"}
    assert labels == {("hello", "hello-1")}
    for program in ("hello-1", "edge", "later"):
        source = status["sources"][program]
        assert source["buffered"] == 0 and source["acknowledged"] == source["read"]
    checkpoint = json.loads((tmp_path / "agent" / "checkpoint.json").read_text())
    assert checkpoint["sources"]["hello-1"]["offset"] == (logs_dir / "hello-1.log").stat().st_size


def test_a_line_is_findable_in_the_logs_service_within_5_seconds(tmp_path):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    with logs_service(tmp_path) as logs, agent(tmp_path, logs.url) as running:
        waits = []
        for n in range(3):
            marker = f"findable-{n}-{time.time_ns()}"
            written = time.monotonic()
            append(logs_dir / "edge.log", f"GET / {marker}\n".encode())
            assert wait_until(lambda m=marker: any(m in r["msg"] for r in stored(logs.url, service="edge")),
                              timeout=5, interval=0.05)
            waits.append(time.monotonic() - written)
        metrics = http_request(running.url + "/metrics").body.decode()
    assert max(waits) < 5.0
    assert "sevenleague_agent_records_shipped_total 3.0" in metrics
    assert "sevenleague_agent_records_buffered 0.0" in metrics


def test_records_wait_while_the_logs_service_is_down_and_all_arrive_when_it_is_back(tmp_path):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    hello = HelloWriter(logs_dir / "hello-1.log")
    port = free_port()
    with agent(tmp_path, f"http://127.0.0.1:{port}") as running:
        hello.write(300)

        def failing() -> bool:
            status = http_request(running.url + "/api/status").json()
            return status["buffered"] == 300 and (status["last_error"] or {}).get("ongoing") is True

        assert wait_until(failing, timeout=15)
        assert "no answer from" in http_request(running.url + "/api/status").json()["last_error"]["message"]
        with logs_service(tmp_path, port=port) as logs:
            hello.write(300)
            assert wait_until(lambda: len(stored(logs.url, host=HOST)) >= 600, timeout=30)
            status = http_request(running.url + "/api/status").json()
            metrics = http_request(running.url + "/metrics").body.decode()
            seqs = Counter(r["seq"] for r in stored(logs.url, host=HOST))
    assert sorted(seqs) == list(range(600)) and set(seqs.values()) == {1}
    assert status["buffered"] == 0 and status["last_error"]["ongoing"] is False
    failures = re.search(r"^sevenleague_agent_ship_failures_total (\S+)$", metrics, re.MULTILINE)
    assert failures and float(failures.group(1)) >= 1


def test_in_journal_mode_the_agent_ships_what_journalctl_prints_and_resumes_after_its_cursor(tmp_path):
    """journalctl is the host's; here a stand-in on PATH prints recorded entries and notes its arguments."""
    fixture = Path(__file__).parent.parent / "unit" / "fixtures" / "journal" / "entries.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    arguments = tmp_path / "journalctl-arguments"
    fake = bin_dir / "journalctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {arguments}\ncat {fixture}\nexec sleep 600\n')
    fake.chmod(0o755)
    cursors = [json.loads(line)["__CURSOR"] for line in fixture.read_text().splitlines()]
    with logs_service(tmp_path) as logs:
        env = agent_env(tmp_path, logs.url) | {
            "LEAGUE_AGENT_SOURCE": "journal", "PATH": f"{bin_dir}:/usr/bin:/bin",
            "LEAGUE_AGENT_PROGRAMS": json.dumps({"hello@8001": {"service": "hello", "instance": "hello-1"}})}
        for _ in range(2):  # the second start replays everything: the logs service drops it by id
            with serve_app("sevenleague.agent.service:app", tmp_path, env=env, service="agent") as running:
                assert wait_until(lambda app=running: shipped(app) >= 6, timeout=20)
                status = http_request(running.url + "/api/status").json()
                assert running.stop() == 0
            checkpoint = json.loads((tmp_path / "agent" / "checkpoint.json").read_text())
            assert checkpoint["sources"]["journal"] == {"cursor": cursors[-1]}
        records = stored(logs.url, host=HOST)
    assert status["source"] == "journal" and status["sources"]["journal"]["error"] is None
    calls = arguments.read_text().splitlines()
    assert calls[0].endswith("--boot") and calls[1].endswith(f"--after-cursor={cursors[-1]}")
    assert len(records) == len({r["id"] for r in records}) == 6
    assert {r["program"] for r in records} == {"init.scope", "hello@8001", "hello@8002", "ssh", "kernel"}
    assert {(r["service"], r["instance"]) for r in records if r["program"] == "hello@8001"} == {
        ("hello", "hello-8001")}  # the kit line's own labels win over the settings'


def test_under_supervisord_the_agent_ships_a_programs_output_and_reports_it_up(tmp_path):
    home = Path(tempfile.mkdtemp(prefix="ag-"))  # short: supervisord's socket path has a length limit
    host = LocalHost("agent-test", home)
    talk = 'import time; [print("talking", n) or time.sleep(0.05) for n in range(10**6)]'  # one line
    talker = Program("talker", (sys.executable, "-u", "-c", talk), stop_timeout=5)
    try:
        with logs_service(tmp_path) as logs:
            port = free_port()
            env = agent_env(tmp_path, logs.url, {"talker": {"service": "talker", "instance": "talker"},
                                                 "agent": {"service": "agent", "instance": "agent-1"}})
            env |= {"LEAGUE_AGENT_LOG_DIR": str(host.paths.log_dir),
                    "LEAGUE_AGENT_SUPERVISOR_SOCKET": str(host.paths.socket)}
            the_agent = Program("agent", (sys.executable, "-m", "sevenleague.kit.serve",
                                          "sevenleague.agent.service:app", "--port", str(port),
                                          "--service", "agent", "--instance", "agent-1"),
                                environment=env, stop_timeout=10)
            host.apply([talker, the_agent])
            assert wait_until(lambda: len(stored(logs.url, service="talker")) >= 10, timeout=30)

            def reported() -> bool:
                try:
                    text = http_request(f"http://127.0.0.1:{port}/metrics").body.decode()
                except OSError:
                    return False
                return all(f'sevenleague_process_up{{host="{HOST}",program="{p}"}} 1.0' in text
                           for p in ("talker", "agent"))

            assert wait_until(reported, timeout=20)
            metrics = http_request(f"http://127.0.0.1:{port}/metrics").body.decode()
            # The agent follows its own log too: its start-up line arrives like any other.
            assert wait_until(lambda: any("shipping the logs of" in r["msg"]
                                          for r in stored(logs.url, service="agent")), timeout=20)
            talked = stored(logs.url, service="talker")
    finally:
        left = host.shutdown(timeout=20)
        shutil.rmtree(home, ignore_errors=True)
    assert left == [], f"processes supervisord did not stop: {left}"
    assert re.search(r'^sevenleague_process_start_time_seconds\{host="h1",program="talker"\} \S+$', metrics,
                     re.MULTILINE)
    numbers = sorted(int(r["msg"].split()[1]) for r in talked)
    assert numbers[:10] == list(range(10)) and len(numbers) == len(set(numbers))
