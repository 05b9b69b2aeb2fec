"""`league metrics QUERY`: Prometheus' answers as rows, and its refusals as one line.

The answers below are what Prometheus 2.42 (Debian's) gave to these queries. The CLI
tests ask a stand-in that answers them over HTTP, found through a snapshot like the
one `league up` writes; the real Prometheus is asked in the integration tests.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from sevenleague.cli import main
from sevenleague.cli._metrics import Rendering, format_rendering, render_result, sample_time, series_name
from sevenleague.testing import free_port

UP = {"resultType": "vector", "result": [
    {"metric": {"__name__": "up", "job": "prometheus", "instance": "127.0.0.1:9090"},
     "value": [1795961085.096, "1"]},
    {"metric": {"__name__": "up", "job": "hello", "instance": "127.0.0.1:8001"},
     "value": [1795961085.096, "0"]}]}
RANGE = {"resultType": "matrix", "result": [
    {"metric": {"__name__": "up", "instance": "127.0.0.1:19391", "job": "prometheus"},
     "values": [[1795961082.518, "1"], [1795961083.518, "1"]]},
    {"metric": {"__name__": "up", "instance": "127.0.0.1:8001", "job": "hello"},
     "values": [[1795961083.518, "0"]]}]}
PARSE_ERROR = {"status": "error", "errorType": "bad_data",
               "error": 'invalid parameter "query": 1:4: parse error: unexpected end of input inside braces'}
ANSWERS = {
    "up": (200, {"status": "success", "data": UP}),
    "up[2s]": (200, {"status": "success", "data": RANGE}),
    "1+1": (200, {"status": "success", "data": {"resultType": "scalar", "result": [1795961080.907, "2"]}}),
    "absent_metric": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
    "up{": (400, PARSE_ERROR),
    "rate(up)": (400, {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query": '
                       '1:6: parse error: expected type range vector in call to function "rate",\n'
                       "got instant vector"}),
}


def test_a_vector_is_one_row_per_series_in_prometheus_order_labels_sorted():
    assert render_result(UP) == Rendering(("series", "value"), (
        ('up{instance="127.0.0.1:9090", job="prometheus"}', "1"),
        ('up{instance="127.0.0.1:8001", job="hello"}', "0")))


def test_a_matrix_is_one_row_per_sample_the_series_named_on_its_first():
    assert render_result(RANGE).rows == (
        ('up{instance="127.0.0.1:19391", job="prometheus"}', "2026-11-29T14:04:42.518Z", "1"),
        ("", "2026-11-29T14:04:43.518Z", "1"),
        ('up{instance="127.0.0.1:8001", job="hello"}', "2026-11-29T14:04:43.518Z", "0"))
    assert render_result(RANGE).columns == ("series", "time", "value")


@pytest.mark.parametrize(("data", "value"), [
    ({"resultType": "scalar", "result": [1795961080.907, "2"]}, "2"),
    ({"resultType": "string", "result": [1795961080.921, "x"]}, "x"),
    ({"resultType": "scalar", "result": [1795961080.907, "NaN"]}, "NaN"),
])
def test_a_scalar_or_a_string_is_its_bare_value(data, value):
    assert render_result(data) == Rendering((), (), value)


def test_rows_print_aligned_values_right_and_a_long_series_on_one_line():
    long = "x{" + ", ".join(f'l{i}="{i}"' for i in range(40)) + "}"
    lines = format_rendering(Rendering(("series", "value"), (("up", "1"), (long, "0.25"))))
    assert lines == [f"{'series':<{len(long)}}  value", f"{'up':<{len(long)}}      1", f"{long}   0.25"]
    assert format_rendering(Rendering(("series", "value"), ())) == ["no series"]
    assert format_rendering(Rendering((), (), "2")) == ["2"]


def test_series_names_are_spelled_as_prometheus_spells_them():
    assert series_name({}) == "{}"  # sum(up)
    assert series_name({"__name__": "up"}) == "up"
    assert series_name({"job": "a"}) == '{job="a"}'
    assert series_name({"__name__": "x", "path": 'say "hi"\\'}) == 'x{path="say \\"hi\\"\\\\"}'


def test_sample_times_are_utc_to_the_millisecond():
    assert sample_time(0) == "1970-01-01T00:00:00.000Z"
    assert sample_time(1795961082.518) == "2026-11-29T14:04:42.518Z"


# --- the command, against a stand-in Prometheus ---------------------------------------------


class _Prometheus(BaseHTTPRequestHandler):
    asked: ClassVar[list[dict[str, list[str]]]] = []  # the parameters of every query, in order

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parameters = urllib.parse.parse_qs(url.query)
        self.asked.append(parameters)
        status, answer = ANSWERS.get(parameters["query"][0], (200, {"status": "success", "data": UP}))
        if url.path != "/api/v1/query":
            status, answer = 404, {}
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def prometheus_home(tmp_path, monkeypatch):
    """A state directory whose snapshot names a Prometheus that answers like the real one."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    (tmp_path / "ecosystem.json").write_text(json.dumps(
        {"endpoints": {"prometheus": f"http://127.0.0.1:{server.server_port}/"}, "ca_file": None}))
    monkeypatch.setenv("LEAGUE_HOME", str(tmp_path))
    _Prometheus.asked = []
    yield tmp_path
    server.shutdown()
    server.server_close()


def league(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(["metrics", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return exited.value.code, out, err


def test_league_metrics_query_prints_one_row_per_series(prometheus_home, capsys):
    code, out, err = league(capsys, "query", "up")
    assert code == 0 and err == ""
    assert out.splitlines() == ["series                                           value",
                                'up{instance="127.0.0.1:9090", job="prometheus"}      1',
                                'up{instance="127.0.0.1:8001", job="hello"}           0']


def test_league_metrics_without_the_word_query_queries(prometheus_home, capsys):
    assert league(capsys, "up") == league(capsys, "query", "up")
    code, out, _ = league(capsys, "--time", "2026-11-29T13:58:00Z", "1+1")
    assert (code, out) == (0, "2\n")
    assert _Prometheus.asked[-1] == {"query": ["1+1"], "time": ["2026-11-29T13:58:00Z"]}


def test_league_metrics_says_when_no_series_matched(prometheus_home, capsys):
    assert league(capsys, "absent_metric") == (0, "no series\n", "")


def test_league_metrics_json_prints_the_answer_as_prometheus_gave_it(prometheus_home, capsys):
    code, out, _ = league(capsys, "up[2s]", "--json")
    assert code == 0 and json.loads(out) == RANGE


@pytest.mark.parametrize(("query", "message"), [
    ("up{", 'Prometheus refused the query: invalid parameter "query": 1:4: parse error: '
            "unexpected end of input inside braces"),
    ("rate(up)", 'Prometheus refused the query: invalid parameter "query": 1:6: parse error: '
                 'expected type range vector in call to function "rate", got instant vector'),
])
def test_a_query_prometheus_refuses_prints_its_message_on_one_line_and_exits_1(
        prometheus_home, capsys, query, message):
    assert league(capsys, query) == (1, "", f"league: {message}\n")


def test_a_prometheus_that_does_not_answer_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    port = free_port()
    (tmp_path / "ecosystem.json").write_text(json.dumps(
        {"endpoints": {"prometheus": f"https://127.0.0.1:{port}/"}, "ca_file": None}))
    monkeypatch.setenv("LEAGUE_HOME", str(tmp_path))
    code, out, err = league(capsys, "up")
    assert (code, out) == (1, "")
    assert err.startswith(f"league: Prometheus at https://127.0.0.1:{port} does not answer (")
    assert err.endswith("(hint: is the eco-system up? `league status`)\n") and err.count("\n") == 1


def test_without_an_eco_system_league_metrics_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEAGUE_HOME", str(tmp_path))
    assert league(capsys, "up") == (
        1, "", f"league: no eco-system with a Prometheus runs from {tmp_path} "
               "(hint: start it with `league up` (or set LEAGUE_HOME))\n")
