"""Logs and metrics of a whole eco-system: one request found everywhere it went, nothing lost or doubled.

One eco-system for the module: the demo catalog plus `echo` (tests/integration/apps/echo.py),
which hello calls on its callers' behalf. The host agent follows every program's log
under supervisord and ships it to the logs service; Prometheus scrapes every host,
HAProxy, platform service and instance. The tests then stop the logs service, kill the
agent with SIGKILL, and count every request's log lines by id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sevenleague.ecosystem import StateLayout
from sevenleague.hosts import LocalHost
from sevenleague.logs.client import LogsClient
from sevenleague.proxy._runtime import runtime_command
from sevenleague.telemetry.metric_check import check_metrics
from sevenleague.testing import http_request
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem

from ..conftest import ROOT

pytestmark = pytest.mark.integration

APPS = Path(__file__).parent / "apps"
ECHO = """
[services.echo]
description = "Answers who called it; hello calls it on its callers' behalf."
app = "echo:app"
instances = 1
port = 8101
hosts = ["local"]
route = "/echo"
"""
FOUND_WITHIN = 5.0  # seconds from the answer to every line of the request being searchable


@pytest.fixture(scope="module")
def eco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEcosystem]:
    directory = tmp_path_factory.mktemp("observed")
    text = (ROOT / "ecosystem.toml").read_text().replace('scrape_interval = "5s"', 'scrape_interval = "1s"')
    text = text.replace('route = "/"\n', 'route = "/"\ncalls = ["echo"]\n', 1) + ECHO
    catalog = directory / "ecosystem.toml"
    catalog.write_text(text)
    running = start_ecosystem(catalog, extra_env={"PYTHONPATH": str(APPS)})
    running.login()
    yield running
    left = running.stop()
    shutil.rmtree(running.home, ignore_errors=True)
    assert left == [], f"processes left running after league down: {left}"


def logs_client(eco: RunningEcosystem) -> LogsClient:
    return LogsClient.from_home(eco.home, token=lambda: eco.token("logs", "logs.read"))


def all_records(client: LogsClient, **params: str) -> list[dict[str, Any]]:
    """Every matching record, newest first, through every page."""
    found: list[dict[str, Any]] = []
    query = {**params, "limit": "1000"}
    while True:
        page = client.search(query)
        found += page["records"]
        if page["next"] is None:
            return found
        query["before"] = str(page["next"])


class NumberedLoad:
    """Clients calling hello through the edge, each request with its own X-Request-ID; keeps the answered."""

    def __init__(self, eco: RunningEcosystem, prefix: str, clients: int = 2, pause: float = 0.01) -> None:
        self.url = eco.endpoints["edge"]
        self.ca_file = eco.ca_file
        self.prefix = prefix
        self.pause = pause
        self.answered: list[str] = []
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                         for n in range(clients)]

    def __enter__(self) -> NumberedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(20)

    def _client(self, number: int) -> None:
        count = 0
        while not self._stop.is_set():
            count += 1
            ident = f"{self.prefix}-{number}-{count:06d}"
            try:
                answer = http_request(self.url, headers={"X-Request-ID": ident}, ca_file=self.ca_file,
                                      timeout=10)
                ok = answer.status == 200
            except OSError:
                ok = False
            with self._lock:
                if ok:
                    self.answered.append(ident)
                else:
                    self.failed += 1
            time.sleep(self.pause)


def request_lines(client: LogsClient, service: str, prefix: str, since: str) -> Counter[str]:
    """How many times each request id with `prefix` appears among `service`'s request lines
    (the edge's access log, or the kit's "request" line)."""
    lines = all_records(client, service=service, since=since)
    return Counter(r["request_id"] for r in lines if r.get("request_id", "").startswith(prefix)
                   and (service == "edge" or r["msg"] == "request"))


def arrived_lines(client: LogsClient, service: str, prefix: str, since: str, answered: set[str],
                  within: float) -> Counter[str]:
    """`request_lines` once every answered request has one (or `within` seconds have passed)."""
    deadline = time.monotonic() + within
    while True:
        lines = request_lines(client, service, prefix, since)
        if set(lines) >= answered or time.monotonic() > deadline:
            return lines
        time.sleep(1)


def written_request_ids(log_dir: Path, program: str, prefix: str) -> set[str]:
    """The request ids with `prefix` in what supervisord captured of `program` (rotated files too)."""
    found = set()
    for path in log_dir.glob(f"{program}.log*"):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            ident = record.get("request_id") if isinstance(record, dict) else None
            if isinstance(ident, str) and ident.startswith(prefix):
                found.add(ident)
    return found


def utc(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def test_one_request_is_found_in_every_process_it_touched_within_seconds(eco: RunningEcosystem) -> None:
    token = eco.token("hello", "hello.read echo.read")
    answer = eco.get(eco.endpoints["edge"] + "whoami/echo", headers={"Authorization": f"Bearer {token}"})
    served = time.monotonic()
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["service"] == "echo"
    request_id = answer.headers["x-request-id"]
    client = logs_client(eco)
    wanted = {("edge", "hello"), ("edge", "echo"), ("hello", "request"), ("echo", "request")}
    records: list[dict[str, Any]] = []
    while time.monotonic() - served < FOUND_WITHIN:
        records = client.search({"request_id": request_id})["records"]
        seen = {(r["service"], r.get("backend", "").removeprefix("svc_") if r["service"] == "edge"
                 else r["msg"]) for r in records}
        if wanted <= seen:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"after {FOUND_WITHIN}s the request's lines are {records}")
    assert {r["host"] for r in records} == {"local"}
    by_service = {r["service"]: r for r in records if r["service"] != "edge"}
    assert by_service["hello"]["route"] == "/whoami/{service}"
    assert by_service["echo"]["path"] == "/echo/whoami"
    assert by_service["echo"]["trace_id"] == by_service["hello"]["trace_id"]  # one trace, two services
    assert by_service["hello"]["instance"].startswith("hello-")
    # the CLI finds the same lines, and by the trace id too
    shown = eco.league("logs", "--request", request_id, "--json").stdout.splitlines()
    assert {json.loads(line)["id"] for line in shown} == {r["id"] for r in records}
    traced = eco.league("logs", "--trace", by_service["hello"]["trace_id"], "--json").stdout.splitlines()
    assert {json.loads(line)["service"] for line in traced} >= {"hello", "echo"}


def test_lines_written_while_the_logs_service_is_down_arrive_exactly_once(eco: RunningEcosystem) -> None:
    supervisor = LocalHost("test", eco.home)
    since = utc(time.time() - 2)
    with NumberedLoad(eco, "down") as load:
        time.sleep(2)
        supervisor.stop("logs")
        stopped = time.monotonic()
        time.sleep(30)
        supervisor.start("logs")
        assert time.monotonic() - stopped >= 30
        time.sleep(2)
    answered = set(load.answered)
    assert load.failed == 0 and len(answered) > 1000
    client = logs_client(eco)
    hello = arrived_lines(client, "hello", "down", since, answered, within=60)
    edge = request_lines(client, "edge", "down", since)
    assert set(hello) == answered, f"{len(answered - set(hello))} requests have no hello line"
    assert max(hello.values()) == 1, [ident for ident, n in hello.items() if n > 1][:5]
    # HAProxy never blocks on its log: a line it could not write at once is dropped and
    # counted (DroppedLogs). What it did write must arrive, once.
    written = written_request_ids(eco.home / "logs", "haproxy", "down")
    info = runtime_command(StateLayout(eco.home).haproxy.admin_socket, "show info").splitlines()
    assert set(edge) == written, (len(written - set(edge)), [line for line in info if "Dropped" in line])
    assert max(edge.values()) == 1 and len(written) >= 0.9 * len(answered)


def test_killing_the_agent_loses_and_doubles_nothing(eco: RunningEcosystem) -> None:
    supervisor = LocalHost("test", eco.home)
    since = utc(time.time() - 2)
    with NumberedLoad(eco, "kill") as load:
        time.sleep(3)
        pid = supervisor.statuses()["agent"].pid
        assert pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while supervisor.statuses()["agent"].pid in (0, pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert supervisor.statuses()["agent"].pid not in (0, pid), "supervisord did not start the agent again"
        time.sleep(5)
    answered = set(load.answered)
    assert load.failed == 0 and len(answered) > 300
    hello = arrived_lines(logs_client(eco), "hello", "kill", since, answered, within=30)
    assert set(hello) == answered
    assert max(hello.values()) == 1, [ident for ident, n in hello.items() if n > 1][:5]


def prometheus_query(eco: RunningEcosystem, promql: str) -> list[dict[str, Any]]:
    done = eco.league("metrics", "query", promql, "--json")
    data = json.loads(done.stdout)
    return data["result"] if isinstance(data, dict) and "result" in data else data


def test_prometheus_sees_every_host_edge_platform_service_and_instance_up(eco: RunningEcosystem) -> None:
    wanted = {"node", "haproxy", "prometheus", "alertmanager", "builds", "identity", "deploy", "logs",
              "agent", "hello", "echo"}
    deadline = time.monotonic() + 60
    while True:
        series = prometheus_query(eco, "up")
        up = {(s["metric"]["job"], s["metric"].get("instance")): s["value"][1] for s in series}
        jobs_up = {job for (job, _), value in up.items() if value == "1"}
        if wanted <= jobs_up and all(value == "1" for value in up.values()):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"targets not up after 60s: { {k: v for k, v in up.items() if v != '1'} }, "
                        f"jobs up: {sorted(jobs_up)}")
        time.sleep(1)
    assert len([key for key in up if key[0] == "hello"]) == 2
    # the process state the agent reads from supervisord
    processes = prometheus_query(eco, "sevenleague_process_up")
    programs = {s["metric"]["program"]: s["value"][1] for s in processes}
    assert programs["hello-1"] == "1" and programs["logs"] == "1" and programs["haproxy"] == "1"


def test_every_metric_the_eco_system_exports_is_registered_and_well_named(eco: RunningEcosystem) -> None:
    snapshot = json.loads((eco.home / "ecosystem.json").read_text())
    credentials = Path(snapshot["scrape_tokens"]["directory"])
    targets = json.loads((eco.home / "prometheus" / "targets" / "hello.json").read_text())
    urls = {"hello": f"https://{targets[0]['targets'][0]}/metrics"}
    for name in ("builds", "identity", "deploy", "logs", "agent"):
        urls[name] = snapshot["endpoints"][name].rstrip("/") + "/metrics"
    for audience, url in urls.items():
        token = (credentials / f"{audience}.token").read_text().strip()
        answer = http_request(url, headers={"Authorization": f"Bearer {token}"}, ca_file=eco.ca_file)
        assert answer.status == 200, (audience, answer.status)
        report = check_metrics(answer.body.decode())
        assert not report.problems, (audience, [p.line() for p in report.problems])
        assert len(report.families) > 5


def test_bad_log_queries_are_refused_with_the_reason(eco: RunningEcosystem) -> None:
    for args, reason in ((["--since", "last tuesday"], "since 'last tuesday' is neither a time"),
                         (["--grep", '"unclosed'], "unbalanced quote"),
                         (["--level", "loud"], "level 'loud' is not a level")):
        done = eco.league("logs", *args, check=False)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert reason in done.stderr and "Traceback" not in done.stderr
    token = eco.token("logs", "logs.read")
    answer = eco.get(eco.endpoints["logs"].rstrip("/") + "/api/records?colour=red",
                     headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 400 and "unknown field 'colour'" in json.loads(answer.body)["error"]
