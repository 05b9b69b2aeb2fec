"""hello as a real server process, the way supervisord runs it."""

from __future__ import annotations

from sevenleague.testing import http_request, serve_app


def test_a_running_hello_answers_and_counts_its_requests(tmp_path):
    with serve_app("hello.app:app", tmp_path) as hello:
        answers = [http_request(hello.url + "/") for _ in range(5)]
        metrics = http_request(hello.url + "/metrics").body.decode()
    assert [a.body for a in answers] == [b"Hello, world!\n"] * 5
    assert 'http_requests_total{method="GET",route="/",status_class="2xx"} 5.0' in metrics


def test_hello_logs_one_json_line_per_request(tmp_path):
    with serve_app("hello.app:app", tmp_path) as hello:
        ids = [http_request(hello.url + "/", headers={"X-Request-ID": f"hello-{i}"}).headers[
            "x-request-id"] for i in range(3)]
        hello.stop()
        requests = [r for r in hello.log_records() if r.get("msg") == "request"]
    assert [r["request_id"] for r in requests] == ids == ["hello-0", "hello-1", "hello-2"]
    assert {r["service"] for r in requests} == {"hello"}
