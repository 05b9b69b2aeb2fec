"""`python -m sevenleague.kit.serve`: SIGTERM drains, in-flight requests finish, exit 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from sevenleague.testing import http_request, serve_app

APPS = Path(__file__).parent / "apps"


def test_sigterm_turns_readiness_off_keeps_serving_and_lets_in_flight_finish(tmp_path):
    with serve_app("slowapp:app", tmp_path, pythonpath=[APPS], drain_seconds=1.0) as app:
        slow: dict = {}
        request = threading.Thread(
            target=lambda: slow.update(answer=http_request(app.url + "/slow?seconds=1.5", timeout=10)))
        request.start()
        time.sleep(0.3)
        app.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        ready = http_request(app.url + "/readyz")
        assert (ready.status, ready.body) == (503, b"draining\n")
        assert http_request(app.url + "/healthz").status == 200
        assert http_request(app.url + "/").status == 200  # still answering while draining
        request.join(10)
        assert slow["answer"].status == 200 and slow["answer"].body == b"slow done\n"
        assert app.process.wait(15) == 0
        messages = [r.get("msg", "") for r in app.log_records()]
        assert any(m.startswith("SIGTERM: draining") for m in messages)


def test_a_second_sigterm_skips_the_drain(tmp_path):
    with serve_app("slowapp:app", tmp_path, pythonpath=[APPS], drain_seconds=60) as app:
        app.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert app.process.poll() is None  # draining, not gone
        app.process.send_signal(signal.SIGTERM)
        assert app.process.wait(10) == 0


def test_every_log_line_is_json_with_service_and_instance(tmp_path):
    with serve_app("slowapp:app", tmp_path, pythonpath=[APPS]) as app:
        http_request(app.url + "/")
        app.stop()
        records = app.log_records()
        lines = app.log_path.read_text().splitlines()
    assert len(records) == len(lines) > 3
    assert all(r["service"] == "slowapp" for r in records)
    assert all(r["instance"] == f"slowapp-{app.port}" for r in records)
    assert [r["route"] for r in records if r.get("msg") == "request"] == ["/"]
