"""W3C Trace Context in the kit: parsing `traceparent`, new ids, the trace in log lines and in calls out."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sevenleague import kit
from sevenleague.kit._log import JsonLogHandler

from .asgi import PipeLog, call
from .test_kit_client import serving

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
GOOD = f"00-{TRACE}-{PARENT}-01"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")

# --- parsing --------------------------------------------------------------------------------------


def test_a_version_00_traceparent_gives_the_callers_trace_span_and_sampled_flag():
    assert kit.parse_traceparent(GOOD.encode()) == kit.Traceparent(TRACE, PARENT, "01")
    assert kit.parse_traceparent(GOOD) == (TRACE, PARENT, "01")
    assert kit.parse_traceparent(f"00-{TRACE}-{PARENT}-00") == (TRACE, PARENT, "00")


@pytest.mark.parametrize(("flags", "kept"), [("03", "01"), ("ff", "01"), ("02", "00"), ("fe", "00")])
def test_flags_other_than_sampled_are_zeroed(flags, kept):
    # version 00 defines one flag; the others are reserved and a vendor must send them as zero
    assert kit.parse_traceparent(f"00-{TRACE}-{PARENT}-{flags}") == (TRACE, PARENT, kept)


@pytest.mark.parametrize("value", [
    pytest.param("", id="empty"),
    pytest.param(f"00-{'0' * 32}-{PARENT}-01", id="all-zero trace id"),
    pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="all-zero parent id"),
    pytest.param(f"00-{TRACE.upper()}-{PARENT}-01", id="upper-case trace id"),
    pytest.param(f"00-{TRACE}-00F067AA0BA902B7-01", id="upper-case parent id"),
    pytest.param(f"00-{TRACE}-{PARENT}-0A", id="upper-case flags"),
    pytest.param(f"0A-{TRACE}-{PARENT}-01", id="upper-case version"),
    pytest.param(f"00-{TRACE[:-1]}-{PARENT}-01", id="short trace id"),
    pytest.param(f"00-{TRACE}0-{PARENT}-01", id="long trace id"),
    pytest.param(f"00-{TRACE}-{PARENT[:-1]}-01", id="short parent id"),
    pytest.param(f"00-{TRACE}-{PARENT}0-01", id="long parent id"),
    pytest.param(f"00-{TRACE}-{PARENT}-1", id="short flags"),
    pytest.param(f"00-{TRACE}-{PARENT}-011", id="long flags"),
    pytest.param(f"0-{TRACE}-{PARENT}-01", id="short version"),
    pytest.param(f"ff-{TRACE}-{PARENT}-01", id="version ff"),
    pytest.param(f"00-{TRACE}-{PARENT}-01-extra", id="version 00 with more fields"),
    pytest.param(f"00_{TRACE}_{PARENT}_01", id="wrong separators"),
    pytest.param(f"00-{TRACE[:-1]}g-{PARENT}-01", id="not hex"),
    pytest.param(f" 00-{TRACE}-{PARENT}-01", id="leading junk"),
])
def test_a_malformed_traceparent_is_not_used(value):
    assert kit.parse_traceparent(value) is None
    assert kit.parse_traceparent(value.encode()) is None


@pytest.mark.parametrize("value", [f"cc-{TRACE}-{PARENT}-01", f"cc-{TRACE}-{PARENT}-01-what-the-future-has"])
def test_a_later_version_is_read_as_far_as_the_four_known_fields(value):
    assert kit.parse_traceparent(value) == (TRACE, PARENT, "01")


@pytest.mark.parametrize("value", [f"cc-{TRACE}-{PARENT}-01.future", f"cc-{TRACE}-{PARENT}-0", f"cc-{TRACE}"])
def test_a_later_version_whose_known_fields_do_not_parse_is_not_used(value):
    assert kit.parse_traceparent(value) is None


# --- new ids ---------------------------------------------------------------------------------------


def test_new_ids_are_lower_case_hex_of_the_right_length_and_differ():
    traces = {kit.trace_from([]).trace_id for _ in range(200)}
    spans = {kit.trace_from([]).span_id for _ in range(200)}
    assert len(traces) == 200 and all(HEX32.fullmatch(t) for t in traces)
    assert len(spans) == 200 and all(HEX16.fullmatch(s) for s in spans)


def test_a_new_traceparent_is_version_00_sampled_and_parses_back():
    value = kit.new_traceparent()
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", value)
    assert kit.parse_traceparent(value) is not None
    assert kit.new_traceparent() != value


def test_a_forked_worker_makes_ids_of_its_own():
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running pytest's teardown
        os.write(write_fd, kit.new_traceparent().encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    child = os.read(read_fd, 100).decode()
    os.close(read_fd)
    assert kit.parse_traceparent(child) is not None
    assert child != kit.new_traceparent()


# --- the trace of an incoming request ------------------------------------------------------------------


def test_a_request_with_a_traceparent_keeps_the_trace_and_gets_its_own_span():
    trace = kit.trace_from([(b"host", b"a"), (b"traceparent", GOOD.encode()),
                            (b"tracestate", b"congo=t61rcWkgMzE")])
    assert (trace.trace_id, trace.parent_id, trace.flags, trace.tracestate) == (
        TRACE, PARENT, "01", "congo=t61rcWkgMzE")
    assert HEX16.fullmatch(trace.span_id) and trace.span_id != PARENT
    assert trace.traceparent == f"00-{TRACE}-{trace.span_id}-01"


def test_repeated_tracestate_headers_are_one_list_passed_on_in_order():
    trace = kit.trace_from([(b"tracestate", b"rojo=00f067aa0ba902b7"), (b"traceparent", GOOD.encode()),
                            (b"tracestate", b"congo=t61rcWkgMzE")])
    assert trace.tracestate == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


@pytest.mark.parametrize("headers", [
    pytest.param([], id="none"),
    pytest.param([(b"traceparent", f"00-{TRACE}-{'0' * 16}-01".encode()), (b"tracestate", b"congo=x")],
                 id="invalid, with a tracestate"),
    pytest.param([(b"traceparent", GOOD.encode()), (b"traceparent", f"00-{'1' * 32}-{PARENT}-01".encode())],
                 id="two of them"),
])
def test_a_request_without_a_usable_traceparent_starts_a_new_sampled_trace(headers):
    trace = kit.trace_from(headers)
    assert HEX32.fullmatch(trace.trace_id) and trace.trace_id not in (TRACE, "1" * 32)
    assert (trace.parent_id, trace.flags, trace.tracestate) == (None, "01", None)


# --- through the kit: log lines -------------------------------------------------------------------------


async def noisy(request: Request) -> JSONResponse:
    logging.getLogger("hello.traced").warning("answering")
    return JSONResponse({"trace_id": request.state.trace_id, "span_id": request.state.span_id})


@pytest.fixture
def traced():
    """A kit app whose request lines and stdlib log lines the test reads back."""
    requests, app_lines = PipeLog(), PipeLog()
    handler = JsonLogHandler(app_lines.writer, {"service": "hello"})
    logger = logging.getLogger("hello.traced")
    logger.addHandler(handler)
    app = kit.instrument(Starlette(routes=[Route("/noisy", noisy)]), service="hello", instance="hello-1",
                         registry=CollectorRegistry(), log=requests.writer, lifecycle=kit.Lifecycle())

    def answer(headers: list[tuple[bytes, bytes]]) -> tuple[dict, dict, dict]:
        got = asyncio.run(call(app, "/noisy", headers=headers))
        app.settle()
        [request_line] = requests.lines()
        [app_line] = app_lines.lines()
        return json.loads(got.body), json.loads(request_line), json.loads(app_line)

    try:
        yield answer
    finally:
        logger.removeHandler(handler)


def test_a_traced_request_logs_the_callers_trace_in_its_request_line_and_the_apps_lines(traced):
    seen, request, logged = traced([(b"traceparent", GOOD.encode()), (b"x-request-id", b"edge-1")])
    span = request["span_id"]
    assert (request["trace_id"], request["parent_id"], request["request_id"]) == (TRACE, PARENT, "edge-1")
    assert HEX16.fullmatch(span) and span != PARENT
    assert (logged["msg"], logged["trace_id"], logged["span_id"], logged["request_id"]) == (
        "answering", TRACE, span, "edge-1")
    assert seen == {"trace_id": TRACE, "span_id": span}


@pytest.mark.parametrize("headers", [[], [(b"traceparent", b"00-not-a-trace-01")]])
def test_an_untraced_request_starts_a_trace_that_its_lines_share(traced, headers):
    seen, request, logged = traced(headers)
    assert HEX32.fullmatch(request["trace_id"]) and "parent_id" not in request
    assert logged["trace_id"] == request["trace_id"] and logged["span_id"] == request["span_id"]
    assert seen == {"trace_id": request["trace_id"], "span_id": request["span_id"]}
    _, again, _ = traced(headers)
    assert again["trace_id"] != request["trace_id"]


def test_no_traceparent_goes_back_on_the_response():
    app = kit.instrument(Starlette(routes=[Route("/noisy", noisy)]), service="hello",
                         registry=CollectorRegistry(), log=PipeLog().writer, lifecycle=kit.Lifecycle())
    answer = asyncio.run(call(app, "/noisy", headers=[(b"traceparent", GOOD.encode())]))
    assert "traceparent" not in answer.headers and "tracestate" not in answer.headers


# --- through the kit: a call to another service ------------------------------------------------------


async def echo_headers(request: Request) -> JSONResponse:
    return JSONResponse({name: request.headers.get(name) for name in ("traceparent", "tracestate",
                                                                       "x-request-id")})


def lines_of_trace(log: PipeLog, trace_id: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The lines of a trace a server in another thread writes (its ledger settles on a timer)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not found and time.monotonic() < deadline:
        found += [line for line in map(json.loads, log.lines()) if line.get("trace_id") == trace_id]
        time.sleep(0.02)
    return found


@pytest.fixture(scope="module")
def echo():
    """A kit service on loopback that answers with the trace headers it received."""
    log = PipeLog()
    app = kit.instrument(Starlette(routes=[Route("/headers", echo_headers)]), service="echo",
                         instance="echo-1", registry=CollectorRegistry(), log=log.writer,
                         lifecycle=kit.Lifecycle())
    with serving(app) as port:
        yield port, log


def test_a_call_made_while_answering_carries_the_trace_with_the_requests_span_as_parent(echo):
    port, echo_log = echo
    services = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})

    async def hop(request: Request) -> JSONResponse:
        answer = await services.on_behalf_of(request).get("echo", "/headers")
        return JSONResponse(answer.json())

    log = PipeLog()
    hello = kit.instrument(Starlette(routes=[Route("/hop", hop)]), service="hello",
                           registry=CollectorRegistry(), log=log.writer, lifecycle=kit.Lifecycle())
    incoming = [(b"traceparent", GOOD.encode()), (b"tracestate", b"congo=t61rcWkgMzE"),
                (b"x-request-id", b"edge-7")]
    sent = json.loads(asyncio.run(call(hello, "/hop", headers=incoming)).body)
    hello.settle()
    [hello_line] = [json.loads(line) for line in log.lines()]
    [echo_line] = lines_of_trace(echo_log, TRACE)

    span = hello_line["span_id"]
    assert sent == {"traceparent": f"00-{TRACE}-{span}-01", "tracestate": "congo=t61rcWkgMzE",
                    "x-request-id": "edge-7"}
    # one query for the trace id finds both request lines, and parent_id links them
    assert (hello_line["trace_id"], hello_line["parent_id"]) == (TRACE, PARENT)
    assert (echo_line["service"], echo_line["trace_id"], echo_line["parent_id"]) == ("echo", TRACE, span)
    assert echo_line["request_id"] == "edge-7" and echo_line["span_id"] not in (span, PARENT)


def test_a_call_for_a_request_that_came_without_a_trace_carries_the_trace_the_kit_started(echo):
    port, _ = echo
    services = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    seen: dict[str, Any] = {}

    async def hop(request: Request) -> JSONResponse:
        seen.update(trace_id=request.state.trace_id, span_id=request.state.span_id)
        answer = await services.as_service(request).get("echo", "/headers")
        return JSONResponse(answer.json())

    hello = kit.instrument(Starlette(routes=[Route("/hop", hop)]), service="hello",
                           registry=CollectorRegistry(), log=PipeLog().writer, lifecycle=kit.Lifecycle())
    sent = json.loads(asyncio.run(call(hello, "/hop")).body)
    assert sent["traceparent"] == f"00-{seen['trace_id']}-{seen['span_id']}-01"
    assert sent["tracestate"] is None


def test_a_call_outside_any_request_starts_a_trace_of_its_own_each_time(echo):
    port, _ = echo
    services = kit.ServiceClient("hello", urls={"echo": f"http://127.0.0.1:{port}"})
    calls = services.as_service()
    first, second = (asyncio.run(calls.get("echo", "/headers")).json() for _ in range(2))
    parsed = [kit.parse_traceparent(sent["traceparent"]) for sent in (first, second)]
    assert all(p is not None and p.flags == "01" for p in parsed)
    assert parsed[0] is not None and parsed[1] is not None and parsed[0].trace_id != parsed[1].trace_id
    assert first["tracestate"] is None and first["x-request-id"] is None


@pytest.mark.parametrize("header", ["traceparent", "TraceState"])
def test_the_trace_headers_are_the_clients_to_set(header):
    services = kit.ServiceClient("hello", urls={"echo": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match=f"the {header} header is set by the service client"):
        asyncio.run(services.as_service().get("echo", "/headers", headers={header: GOOD}))
