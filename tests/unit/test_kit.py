"""The kit around a real Starlette app: probes, request ids, RED metrics, one JSON line per request."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sevenleague import kit

from .asgi import PipeLog, get


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi\n")


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "rid": request.state.request_id})


async def broken(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


@pytest.fixture
def parts():
    registry = CollectorRegistry()
    log = PipeLog()
    lifecycle = kit.Lifecycle()
    app = kit.instrument(
        Starlette(routes=[Route("/", hello), Route("/users/{id}", user), Route("/broken", broken)]),
        service="demo", version="1.2.3", instance="demo-7", registry=registry, log=log.writer,
        lifecycle=lifecycle,
    )
    return app, registry, log, lifecycle


def samples(registry: CollectorRegistry, name: str) -> dict[tuple, float]:
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_probes_answer_before_the_app(parts):
    app, _, log, _ = parts
    assert get(app, "/healthz").status == 200
    assert get(app, "/readyz").body == b"ready\n"
    assert log.lines() == []  # probes are not request-logged


def test_readiness_fails_while_draining_but_liveness_holds(parts):
    app, _, _, lifecycle = parts
    lifecycle.begin_drain()
    answer = get(app, "/readyz")
    assert (answer.status, answer.body) == (503, b"draining\n")
    assert get(app, "/healthz").status == 200
    assert get(app, "/").status == 200  # draining still serves what arrives


def test_readiness_fails_while_the_app_starts_up(parts):
    _, _, _, lifecycle = parts
    lifecycle.startup_began()
    assert not lifecycle.ready
    lifecycle.startup_finished()
    assert lifecycle.ready


def test_response_names_who_served_it_and_carries_a_new_request_id(parts):
    app, _, _, _ = parts
    answer = get(app, "/")
    assert answer.headers["x-served-by"] == "demo/demo-7"
    assert len(answer.headers["x-request-id"]) == 16
    assert get(app, "/").headers["x-request-id"] != answer.headers["x-request-id"]


def test_a_sane_caller_request_id_is_kept_and_reaches_the_app(parts):
    app, _, _, _ = parts
    answer = get(app, "/users/42", headers=[(b"x-request-id", b"edge-abc-123")])
    assert answer.headers["x-request-id"] == "edge-abc-123"
    assert json.loads(answer.body) == {"id": "42", "rid": "edge-abc-123"}


@pytest.mark.parametrize("bad", [b"", b"x" * 129, b'with"quote', b"new\nline", b"sp ace"])
def test_a_malformed_request_id_is_replaced(parts, bad):
    app, _, _, _ = parts
    answer = get(app, "/", headers=[(b"x-request-id", bad)])
    assert answer.headers["x-request-id"] != bad.decode(errors="replace")
    assert len(answer.headers["x-request-id"]) == 16


def test_one_json_line_per_request_with_what_an_operator_needs(parts):
    app, _, log, _ = parts
    get(app, "/users/7", headers=[(b"x-request-id", b"r-1")])
    app.settle()
    [line] = log.lines()
    record = json.loads(line)
    assert record["ts"].endswith("Z") and "T" in record["ts"]
    assert {k: record[k] for k in ("level", "service", "instance", "method", "route", "path",
                                   "status", "request_id")} == {
        "level": "info", "service": "demo", "instance": "demo-7", "method": "GET",
        "route": "/users/{id}", "path": "/users/7", "status": 200, "request_id": "r-1"}
    assert record["duration_ms"] >= 0


def test_metrics_count_by_route_template_method_and_status_class(parts):
    app, registry, _, _ = parts
    for i in range(3):
        get(app, f"/users/{i}")
    get(app, "/nowhere")
    app.settle()
    counts = samples(registry, "http_requests_total")
    assert counts[(("method", "GET"), ("route", "/users/{id}"), ("status_class", "2xx"))] == 3
    assert counts[(("method", "GET"), ("route", "<unmatched>"), ("status_class", "4xx"))] == 1
    durations = samples(registry, "http_request_duration_seconds_count")
    assert durations[(("method", "GET"), ("route", "/users/{id}"))] == 3


def test_unknown_methods_share_one_label_value(parts):
    app, registry, _, _ = parts
    get(app, "/", method="BREW")
    get(app, "/", method="PROPFIND")
    app.settle()
    counts = samples(registry, "http_requests_total")
    assert counts[(("method", "OTHER"), ("route", "/"), ("status_class", "4xx"))] == 2


def test_an_exception_is_counted_and_logged_as_a_server_error(parts):
    app, registry, log, _ = parts
    with pytest.raises(RuntimeError):
        get(app, "/broken")
    app.settle()
    counts = samples(registry, "http_requests_total")
    assert counts[(("method", "GET"), ("route", "/broken"), ("status_class", "5xx"))] == 1
    record = json.loads(log.lines()[-1])
    assert (record["status"], record["level"]) == (500, "error")


def test_a_scrape_counts_every_request_answered_before_it(parts):
    app, _, _, _ = parts
    for _ in range(3):
        get(app, "/")
    body = get(app, "/metrics").body.decode()
    assert 'http_requests_total{method="GET",route="/",status_class="2xx"} 3.0' in body


def test_inside_an_event_loop_the_ledger_settles_on_a_timer():
    import asyncio

    from .asgi import call

    registry = CollectorRegistry()
    log = PipeLog()
    app = kit.instrument(Starlette(routes=[Route("/", hello)]), service="t", registry=registry,
                         log=log.writer)
    app.ledger.flush_interval = 0.01

    async def scenario() -> tuple[list, list]:
        await call(app, "/")
        before = log.lines()
        await asyncio.sleep(0.05)
        return before, log.lines()

    before, after = asyncio.run(scenario())
    assert before == []
    assert [json.loads(line)["route"] for line in after] == ["/"]


def test_a_full_ledger_settles_at_once(parts):
    app, registry, log, _ = parts
    app.ledger.max_pending = 5
    for _ in range(5):
        get(app, "/")
    assert len(log.lines()) == 5
    assert samples(registry, "http_requests_total")[
        (("method", "GET"), ("route", "/"), ("status_class", "2xx"))] == 5


def test_metrics_endpoint_serves_red_metrics_and_build_info(parts):
    app, _, _, _ = parts
    get(app, "/")
    answer = get(app, "/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(answer.body.decode())}
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["http_requests_in_flight"].type == "gauge"
    [info] = families["service_build_info"].samples
    assert info.labels["service"] == "demo" and info.labels["version"] == "1.2.3"
    assert info.value == 1


def test_metrics_endpoint_speaks_openmetrics_when_asked(parts):
    app, _, _, _ = parts
    answer = get(app, "/metrics", headers=[(b"accept", b"application/openmetrics-text; version=1.0.0")])
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.body.endswith(b"# EOF\n")


def test_in_flight_gauge_counts_requests_being_answered():
    registry = CollectorRegistry()
    seen = {}

    async def slow(scope, receive, send):
        seen["during"] = samples(registry, "http_requests_in_flight")[()]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = kit.instrument(slow, service="bare", registry=registry, log=PipeLog().writer)
    get(app, "/anything")
    assert seen["during"] == 1
    assert samples(registry, "http_requests_in_flight")[()] == 0


def test_a_bare_asgi_app_gets_the_other_route_label():
    registry = CollectorRegistry()

    async def bare(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = kit.instrument(bare, service="bare", registry=registry, log=PipeLog().writer)
    get(app, "/a/b/c")
    app.settle()
    counts = samples(registry, "http_requests_total")
    assert counts[(("method", "GET"), ("route", "<other>"), ("status_class", "2xx"))] == 1


def test_two_apps_on_one_registry_share_the_metric_names():
    registry = CollectorRegistry()
    first = kit.instrument(Starlette(routes=[Route("/", hello)]), service="a", registry=registry,
                           log=PipeLog().writer)
    second = kit.instrument(Starlette(routes=[Route("/", hello)]), service="b", registry=registry,
                            log=PipeLog().writer)
    get(first, "/")
    get(second, "/")
    first.settle()
    second.settle()
    counts = samples(registry, "http_requests_total")
    assert counts[(("method", "GET"), ("route", "/"), ("status_class", "2xx"))] == 2
