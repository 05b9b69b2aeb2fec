"""The kit's small parts, each alone: request ids, status classes, the clock, JSON lines."""

from __future__ import annotations

import asyncio
import json
import os
import re

from sevenleague.kit import JsonLines, new_request_id, request_id_from
from sevenleague.kit._log import UtcClock
from sevenleague.kit._metrics import status_class

from .asgi import PipeLog


def test_new_request_ids_are_16_hex_digits_and_distinct():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(rb"[0-9a-f]{16}", i) for i in ids)


def test_a_forked_process_makes_up_other_request_ids():
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write_fd, new_request_id())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_fd, 64)
    mine = new_request_id()
    assert child[:8] != mine[:8]


def test_request_id_is_taken_only_from_its_own_header():
    assert request_id_from([(b"x-other", b"nope"), (b"x-request-id", b"abc")]) == b"abc"
    assert request_id_from([(b"x-other", b"nope")]) != b"nope"


def test_status_classes():
    assert [status_class(s) for s in (101, 200, 204, 301, 404, 500, 599)] == [
        "1xx", "2xx", "2xx", "3xx", "4xx", "5xx", "5xx"]


def test_clock_formats_utc_with_milliseconds():
    clock = UtcClock()
    assert clock.timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert clock.timestamp(1795918523.9999) == "2026-11-29T02:15:23.999Z"
    assert clock.timestamp(1795918524.25) == "2026-11-29T02:15:24.250Z"


def test_lines_are_buffered_until_flushed_then_written_whole():
    log = PipeLog()
    log.writer.write({"a": 1})
    log.writer.write({"b": "two\nlines"})
    assert [json.loads(line) for line in log.lines()] == [{"a": 1}, {"b": "two\nlines"}]


def test_a_full_buffer_is_written_at_once():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    writer = JsonLines(write_fd, max_buffer=100)
    writer.write({"x": "y" * 120})
    assert json.loads(os.read(read_fd, 4096)) == {"x": "y" * 120}


def test_inside_an_event_loop_lines_are_flushed_by_a_timer():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    writer = JsonLines(write_fd, flush_interval=0.01)

    async def scenario() -> bytes:
        writer.write({"n": 1})
        try:
            os.read(read_fd, 4096)
            raise AssertionError("written before the flush interval")
        except BlockingIOError:
            pass
        await asyncio.sleep(0.05)
        return os.read(read_fd, 4096)

    assert json.loads(asyncio.run(scenario())) == {"n": 1}


def test_values_json_cannot_encode_are_written_as_text():
    log = PipeLog()
    log.writer.write({"obj": object.__new__(type("Thing", (), {"__str__": lambda self: "thing"}))})
    assert json.loads(log.lines()[0]) == {"obj": "thing"}
