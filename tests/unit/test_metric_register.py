"""The register of metric names and its check: what kit processes serve passes, bad names are named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sevenleague import kit
from sevenleague.telemetry.metric_check import (
    Problem,
    check_exposition,
    check_metrics,
    naming_problems,
    promtool_problems,
    register_problems,
)
from sevenleague.telemetry.metric_register import (
    KIT,
    REGISTER,
    REGISTER_PATH,
    MetricSpec,
    render_metrics_page,
    spec,
)

from ..conftest import ROOT
from .asgi import PipeLog, get

BAD = Path(__file__).parent / "fixtures" / "metrics" / "badly_named.prom"
PLATFORM_APPS = [app for app in ("sevenleague.build.service:app", "sevenleague.deploy.service:app",
                                 "sevenleague.identity.service:app", "sevenleague.logs.service:app",
                                 "sevenleague.agent.service:app")
                 if find_spec(app.partition(":")[0].rpartition(".")[0]) is not None
                 and find_spec(app.partition(":")[0]) is not None]


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi\n")


def kit_process_exposition() -> str:
    """/metrics of an instrumented app whose registry holds what a kit process' default one does."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app = kit.instrument(Starlette(routes=[Route("/", hello)]), service="demo", version="1.2.3",
                         instance="demo-1", registry=registry, log=PipeLog().writer,
                         lifecycle=kit.Lifecycle())
    for path in ("/", "/", "/nowhere"):
        get(app, path)
    answer = get(app, "/metrics")
    assert answer.status == 200
    return answer.body.decode()


def lines_of(problems: tuple[Problem, ...] | list[Problem]) -> list[str]:
    return [problem.line() for problem in problems]


# --- the register -----------------------------------------------------------------------------------


def test_the_register_follows_its_own_naming_rules():
    assert register_problems(REGISTER) == []
    assert len({entry.name for entry in REGISTER}) == len(REGISTER)


def test_every_metric_of_the_contract_is_registered_with_its_type_and_labels():
    assert spec("http_requests_total").labels == ("route", "method", "status_class")
    assert spec("sevenleague_logs_ingest_batches_total").labels == ("outcome",)
    assert spec("sevenleague_process_up").labels == ("host", "program")
    assert spec("sevenleague_process_start_time_seconds").type == "gauge"
    assert spec("sevenleague_logs_store_bytes").unit == "bytes"
    assert spec("process_cpu_seconds_total").type == "counter"
    assert {e.exported_by for e in REGISTER} == {KIT, "logs service", "host agent"}


def test_an_unknown_name_is_a_key_error_saying_where_to_add_it():
    with pytest.raises(KeyError) as raised:
        spec("http_requests")  # a counter is registered with its _total
    assert str(raised.value) == ("metric http_requests is not in the register (hint: add a MetricSpec for it "
                                 f"to REGISTER in {REGISTER_PATH})")


def test_the_kit_serves_the_register_help_texts():
    text = kit_process_exposition()
    for name in ("http_requests_total", "http_request_duration_seconds", "http_requests_in_flight",
                 "service_build_info"):
        assert f"# HELP {name} {spec(name).help}\n" in text


def test_docs_metrics_page_is_generated_from_the_register():
    assert (ROOT / "docs" / "metrics.md").read_text() == render_metrics_page(), (
        "docs/metrics.md is stale: python -m sevenleague.telemetry.metric_register > docs/metrics.md")


def test_the_metrics_page_has_a_table_row_per_metric():
    page = render_metrics_page()
    for entry in REGISTER:
        assert f"| `{entry.name}` | {entry.type} |" in page


# --- what kit processes serve ----------------------------------------------------------------------


def test_a_kit_process_exposition_passes_the_check_including_promtool():
    report = check_metrics(kit_process_exposition())
    assert lines_of(report.problems) == []
    assert set(report.families) == {entry.name for entry in REGISTER if entry.exported_by == KIT}


@pytest.mark.parametrize("app", PLATFORM_APPS)
def test_every_platform_kit_process_serves_only_registered_well_named_metrics(app, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LEAGUE_OIDC_ISSUER"}
    env["LEAGUE_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "sevenleague.telemetry.metric_check", "--app", app,
                           "--report", str(tmp_path / "report.json")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["problems"] == []
    kit_families = {"http_requests_total", "service_build_info", "process_cpu_seconds_total"}
    assert kit_families <= set(report["families"])


# --- the bad fixture, and each rule failing ----------------------------------------------------------


def test_the_badly_named_fixture_fails_naming_each_problem():
    problems = lines_of(check_metrics(BAD.read_text()).problems)
    expected = [
        "hello_request_latency_ms: uses the unit 'ms': use the base unit _seconds",
        "hello_request_latency_ms: is a histogram of time: its name must end in _seconds",
        "hello_request_latency_ms: is not in the register: add a MetricSpec for it to REGISTER in "
        f"{REGISTER_PATH}",
        "hello_greetings: is a counter: its name must end in _total (hello_greetings_total)",
        "hello_queue_depth: is not in the register",
        "http_requests_total: has labels {method, route, status} but is registered with "
        "{method, route, status_class}",
        "http_requests_in_flight: is served as a counter but registered as a gauge",
        'hello_greetings: promtool: counter metrics should have "_total" suffix',
        "hello_request_latency_ms: promtool: metric names should not contain abbreviated units",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in problems), (start, problems)


@pytest.mark.parametrize(("name", "metric_type", "says"), [
    ("Hello_requests_total", "counter", "is not snake_case"),
    ("hello-requests_total", "counter", "is not snake_case"),
    ("hello:requests_total", "counter", "contains ':', which is kept for recording rules"),
    ("hello_greetings", "counter", "is a counter: its name must end in _total"),
    ("hello_queue_depth_total", "gauge", "is a gauge: only counters end in _total"),
    ("hello_wait_total", "histogram", "is a histogram: only counters end in _total"),
    ("hello_latency_milliseconds", "gauge", "uses the unit 'milliseconds': use the base unit _seconds"),
    ("hello_request_latency_ms", "gauge", "uses the unit 'ms': use the base unit _seconds"),
    ("hello_cache_kilobytes", "gauge", "uses the unit 'kilobytes': use the base unit _bytes"),
    ("hello_cache_mb", "gauge", "uses the unit 'mb': use the base unit _bytes"),
    ("hello_cpu_percent", "gauge", "uses the unit 'percent': use the base unit _ratio"),
    ("hello_uptime_minutes", "gauge", "uses the unit 'minutes': use the base unit _seconds"),
    ("hello_backlog_age_hours", "gauge", "uses the unit 'hours': use the base unit _seconds"),
    ("hello_request_duration", "histogram", "is a histogram of time: its name must end in _seconds"),
    ("hello_answer_latency", "summary", "is a summary of time: its name must end in _seconds"),
])
def test_each_naming_rule_rejects_its_case(name, metric_type, says):
    assert any(problem.message.startswith(says) for problem in naming_problems(name, metric_type)), (
        naming_problems(name, metric_type))


@pytest.mark.parametrize(("name", "metric_type"), [
    ("hello_request_duration_seconds", "histogram"),
    ("hello_greetings_total", "counter"),
    ("hello_cache_bytes", "gauge"),
    ("hello_payload_size_bytes", "histogram"),
    ("hello_build_info", "gauge"),
])
def test_well_named_metrics_pass_the_naming_rules(name, metric_type):
    assert naming_problems(name, metric_type) == []


def test_register_entries_must_carry_their_unit_and_an_info_suffix():
    bad = (MetricSpec("hello_wait", "gauge", "seconds", (), "How long.", "hello"),
           MetricSpec("hello_build", "info", "", ("version",), "Which build.", "hello"),
           MetricSpec("hello_size_bytes", "histogram", "bytes", ("le",), "", "hello"))
    assert lines_of(register_problems(bad)) == [
        "hello_wait: is in seconds: its name must end in _seconds",
        "hello_build: is an info metric: its name must end in _info",
        "hello_size_bytes: needs a help text of one sentence, ending in '.'",
        "hello_size_bytes: labels repeat, or name le/quantile (the type adds those)",
    ]


def test_a_family_without_a_type_line_is_a_problem():
    text = "# HELP hello_things Things.\nhello_things 3\n"
    assert "hello_things: has no # TYPE line: declare its type" in lines_of(check_exposition(text).problems)


def test_text_that_is_no_exposition_is_one_problem():
    assert lines_of(check_exposition("<html>oops</html>\n").problems) == [
        "not a Prometheus text exposition: invalid metric name:<html>oops</html>"]
    assert lines_of(check_exposition("").problems) == [
        "no metric families: is this a Prometheus text exposition?"]


# --- an app's own register ----------------------------------------------------------------------------


APP_METRICS = (MetricSpec("hello_greetings_total", "counter", "", ("language",), "Greetings said.", "hello"),)


def app_exposition_with_a_counter() -> str:
    registry = CollectorRegistry()
    Counter("hello_greetings_total", "Greetings said.", ["language"], registry=registry).labels("en").inc()
    return generate_latest(registry).decode()


def test_an_app_register_admits_the_apps_own_metrics_and_their_created_gauges():
    text = app_exposition_with_a_counter()
    assert "hello_greetings_created" in text  # prometheus_client's companion, no entry needed
    assert check_metrics(text, APP_METRICS).problems == ()
    assert [p.metric for p in check_exposition(text).problems] == ["hello_greetings_total"]


def test_an_info_metric_is_served_as_a_gauge_in_the_text_format():
    text = ('# HELP python_info Python.\n# TYPE python_info gauge\npython_info{implementation="CPython",'
            'major="3",minor="11",patchlevel="7",version="3.11.7"} 1.0\n')
    assert check_exposition(text).problems == ()


def test_promtool_findings_become_problems_naming_the_metric():
    text = "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight 0\n"
    assert promtool_problems(text) == [Problem("http_requests_in_flight", "promtool: no help text")]


def test_the_build_entry_point_checks_an_app_with_its_own_register(tmp_path):
    package = tmp_path / "greeter"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from sevenleague.telemetry import MetricSpec\n"
        "METRICS = (MetricSpec('greeter_greetings_total', 'counter', '', (), 'Greetings said.',"
        " 'greeter'),)\n")
    (package / "app.py").write_text(
        "from prometheus_client import Counter\n"
        "from starlette.applications import Starlette\n"
        "GREETINGS = Counter('greeter_greetings_total', 'Greetings said.')\n"
        "LATENCY = Counter('greeter_latency_ms', 'Not registered, badly named.')\n"
        "app = Starlette()\n")  # not instrumented: the check wraps it with the kit
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LEAGUE_HOME": str(tmp_path)}
    env.pop("LEAGUE_OIDC_ISSUER", None)
    done = subprocess.run([sys.executable, "-m", "sevenleague.telemetry.metric_check",
                           "--app", "greeter.app:app", "--report", str(tmp_path / "report.json")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert "greeter_greetings_total" in report["families"] and "http_requests_total" in report["families"]
    # promtool also names the counter's _created companion: it reads every family as served
    assert {p["metric"] for p in report["problems"]} == {"greeter_latency_ms_total",
                                                         "greeter_latency_ms_created"}
    assert ("greeter_latency_ms_total: is not in the register: add a MetricSpec for it to METRICS in the "
            "package greeter") in done.stdout


# --- the CLI -------------------------------------------------------------------------------------------


def league(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sevenleague.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_one_line_per_problem_and_exits_1_for_the_bad_fixture():
    done = league("metrics", "check", str(BAD))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    expected = check_metrics(BAD.read_text()).problems
    assert lines == [f"{BAD}: {problem.line()}" for problem in expected]
    assert f"{BAD}: hello_greetings: is a counter: its name must end in _total (hello_greetings_total)" \
        in lines
    assert f"{len(expected)} problems in 5 metric families" in done.stderr


def test_cli_exits_0_for_a_kit_process_exposition_from_a_file_and_stdin(tmp_path):
    good = tmp_path / "kit.prom"
    good.write_text(kit_process_exposition())
    families = sum(1 for entry in REGISTER if entry.exported_by == KIT)
    done = league("metrics", "check", str(good))
    assert (done.returncode, done.stdout) == (0, f"{families} metric families checked, all registered and "
                                                 "well named\n"), done.stderr
    piped = league("metrics", "check", "-", stdin=good.read_text())
    assert piped.returncode == 0 and piped.stdout == done.stdout


@pytest.fixture
def metrics_server() -> Iterator[str]:
    """/metrics over loopback HTTP, answering only the bearer token "s3cret"."""
    body = kit_process_exposition().encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            allowed = self.headers.get("Authorization") == "Bearer s3cret"
            self.send_response(200 if allowed else 401)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body if allowed else b"no\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_checks_a_url_with_a_token_file_and_says_when_one_is_needed(metrics_server, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    done = league("metrics", "check", "--token-file", str(token), metrics_server)
    assert done.returncode == 0, done.stdout + done.stderr
    refused = league("metrics", "check", metrics_server)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"league: {metrics_server} refused the scrape (401)")
    assert "--token-file" in refused.stderr
