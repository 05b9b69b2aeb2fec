"""The host agent's parts: records and ids, following real files, the checkpoint, shipping, the journal.

Files are real files in tmp_path, renamed and truncated the way supervisord and people do;
what the agent ships is checked with the logs service's own batch parser, so a record the
agent makes and the logs service would refuse fails here first.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sevenleague.agent._checkpoint import CheckpointFile, CheckpointUnreadable
from sevenleague.agent._follow import MAX_LINE, FileFollower, FilePosition, followers
from sevenleague.agent._journal import JournalPosition, JournalSource, journal_record, journalctl_argv
from sevenleague.agent._metrics import AgentCollector, AgentReading
from sevenleague.agent._pipeline import Answer, Limits, Pipeline, backoff_delay
from sevenleague.agent._processes import ProgramState, program_states
from sevenleague.agent._records import Origin, file_record_id, journal_record_id, line_record
from sevenleague.agent._settings import AgentError, AgentSettings, ProgramLabels
from sevenleague.agent._sources import Entry, FileSource, Reading
from sevenleague.logs import BadBatch, parse_batch

from .asgi import get

FIXTURES = Path(__file__).parent / "fixtures" / "journal"
ORIGIN = Origin("h1", "hello-1", "hello", "hello-1")
READ_TS = "2026-11-29T02:15:23.000Z"


def record(line: bytes, offset: int = 0, file_key: str = "7.1") -> dict:
    made = line_record(line, origin=ORIGIN, file_key=file_key, offset=offset, read_ts=READ_TS)
    assert made is not None
    parse_batch(orjson.dumps(made))  # the logs service takes it
    return made


def texts(lines) -> list[bytes]:
    return [line.data for line in lines]


# --- records and ids --------------------------------------------------------------------------


def test_a_json_line_keeps_its_fields_and_gets_an_id_naming_its_place():
    line = b'{"ts": "2026-11-29T02:15:23.123Z", "level": "warning", "msg": "slow", "route": "/", "ms": 812}'
    assert record(line, offset=4096) == {
        "id": "h1/hello-1/7.1/4096", "ts": "2026-11-29T02:15:23.123Z", "host": "h1", "program": "hello-1",
        "service": "hello", "instance": "hello-1", "level": "warning", "msg": "slow", "route": "/", "ms": 812}


def test_a_plain_line_becomes_its_message_at_info_with_the_time_it_was_read():
    made = record(b"Traceback (most recent call last):\r", offset=12)
    assert made["msg"] == "Traceback (most recent call last):"
    assert (made["level"], made["ts"], made["id"]) == ("info", READ_TS, "h1/hello-1/7.1/12")


def test_a_line_that_is_json_but_not_an_object_is_a_plain_line():
    assert record(b'["a", 1]')["msg"] == '["a", 1]'
    assert record(b"42")["msg"] == "42"


def test_invalid_utf8_is_kept_as_replacement_characters():
    assert record(b"caf\xe9")["msg"] == "caf\ufffd"


def test_blank_lines_make_no_record():
    assert line_record(b"  \r", origin=ORIGIN, file_key="7.1", offset=0, read_ts=READ_TS) is None


def test_the_line_own_service_and_instance_win_but_id_host_and_program_are_the_agents():
    made = record(b'{"service": "orders", "instance": "orders-2", "host": "laptop", "id": 5, "program": "x"}')
    assert (made["service"], made["instance"]) == ("orders", "orders-2")
    assert (made["id"], made["host"], made["program"]) == ("h1/hello-1/7.1/0", "h1", "hello-1")
    assert (made["host_given"], made["id_given"], made["program_given"]) == ("laptop", 5, "x")


def test_values_the_logs_service_would_refuse_are_set_aside_not_lost():
    made = record(b'{"ts": 1764382523, "user": 42, "request_id": "' + b"r" * 300 + b'", "msg": "hi"}')
    assert made["ts"] == READ_TS and made["ts_given"] == 1764382523
    assert made["user_given"] == 42 and "user" not in made
    assert made["request_id_given"] == "r" * 300 and "request_id" not in made
    assert record(b'{"ts": "2026-11-29 02:15:23"}')["ts_given"] == "2026-11-29 02:15:23"  # no zone
    assert "ts_given" not in record(b'{"ts": "2026-11-29T02:15:23+01:00"}')


def test_ids_follow_the_contract():
    assert file_record_id("h1", "hello-1", "1234.1764382523000", 0) == "h1/hello-1/1234.1764382523000/0"
    ident = journal_record_id("h1", "s=abc;i=1")
    assert ident.startswith("h1/journal/") and len(ident.rsplit("/", 1)[1]) == 24
    assert ident == journal_record_id("h1", "s=abc;i=1") != journal_record_id("h1", "s=abc;i=2")


# --- following files ---------------------------------------------------------------------------


def numbered(start: int = 1000):
    return lambda: start


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def rotate(path: Path, backups: int = 3) -> None:
    """What supervisord does at 10 MB: shift the backups, P.log -> P.log.1, then a new empty P.log."""
    for n in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))
    path.write_bytes(b"")


def drain(follower: FileFollower, limit: int = 1000, rounds: int = 10) -> list:
    lines = []
    for _ in range(rounds):
        lines += follower.poll(limit).lines
    return lines


def test_only_whole_lines_are_read_and_a_partial_line_waits_for_its_end(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"one\ntwo\nthr")
    follower = FileFollower(log, None, first_number=numbered())
    chunk = follower.poll(100)
    assert [(line.offset, line.data) for line in chunk.lines] == [(0, b"one"), (4, b"two")]
    assert chunk.position.offset == 8
    assert follower.poll(100).lines == []
    append(log, b"ee\nfour\n")
    assert [(line.offset, line.data) for line in follower.poll(100).lines] == [(8, b"three"), (14, b"four")]
    follower.close()


def test_a_limit_leaves_the_rest_for_the_next_read(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"".join(b"line %d\n" % n for n in range(10)))
    follower = FileFollower(log, None, first_number=numbered())
    assert texts(follower.poll(3).lines) == [b"line 0", b"line 1", b"line 2"]
    assert texts(follower.poll(100).lines) == [b"line %d" % n for n in range(3, 10)]


def test_a_file_that_does_not_exist_yet_is_read_from_its_start_once_it_appears(tmp_path):
    log = tmp_path / "hello-1.log"
    follower = FileFollower(log, None, first_number=numbered(5))
    assert follower.poll(10).lines == [] and follower.position is None
    log.write_bytes(b"first\n")
    chunk = follower.poll(10)
    assert texts(chunk.lines) == [b"first"] and chunk.position.number == 5


def test_rotated_history_from_before_the_first_start_is_not_shipped(tmp_path):
    log = tmp_path / "hello-1.log"
    log.with_name("hello-1.log.1").write_bytes(b"old\n")
    log.write_bytes(b"new\n")
    follower = FileFollower(log, None, first_number=numbered())
    assert texts(drain(follower)) == [b"new"]


def test_rotation_mid_read_finishes_the_old_file_then_reads_the_new_one(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"a1\na2\na3\n")
    follower = FileFollower(log, None, first_number=numbered(1000))
    first = follower.poll(2)
    assert texts(first.lines) == [b"a1", b"a2"]
    append(log, b"a4\nunfinished")  # written before the rotation; supervisord closes the file, then renames
    rotate(log)
    append(log, b"b1\nb2\n")
    lines = drain(follower)
    assert texts(lines) == [b"a3", b"a4", b"unfinished", b"b1", b"b2"]
    assert follower.position.number == 1001 and follower.position.inode == log.stat().st_ino
    assert follower.position.offset == 6


def test_a_follower_that_fell_several_rotations_behind_reads_every_file_in_order(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"a1\n")
    follower = FileFollower(log, None, first_number=numbered(1000))
    assert texts(follower.poll(10).lines) == [b"a1"]
    append(log, b"a2\n")
    for name in (b"b", b"c"):
        rotate(log)
        append(log, name + b"1\n")
    assert texts(drain(follower)) == [b"a2", b"b1", b"c1"]
    assert follower.position.number == 1002


def test_truncation_reads_the_file_again_under_a_new_number_so_ids_do_not_collide(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"before one\nbefore two\n")
    follower = FileFollower(log, None, first_number=numbered(1000))
    before = follower.poll(10)
    log.write_bytes(b"after\n")  # truncated and written again, same inode
    after = follower.poll(10)
    assert texts(after.lines) == [b"after"] and after.lines[0].offset == 0
    assert before.position.inode == after.position.inode
    assert before.position.file_key != after.position.file_key


def test_a_restart_from_the_checkpoint_finds_the_rotated_file_and_names_every_file_as_before(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"a1\na2\na3\n")
    first = FileFollower(log, None, first_number=numbered(1000))
    checkpoint = first.poll(1).position  # acknowledged: a1 only
    first_keys = [first.poll(100).position.file_key]
    first.close()  # the agent stops (or is killed); supervisord rotates twice meanwhile
    rotate(log)
    append(log, b"b1\n")
    rotate(log)
    append(log, b"c1\n")
    restarted = FileFollower(log, FilePosition.from_json(json.loads(json.dumps(checkpoint.to_json()))),
                             first_number=numbered(9999))
    seen = []
    for _ in range(10):
        chunk = restarted.poll(100)
        seen += [(chunk.position.file_key, line.offset, line.data) for line in chunk.lines]
    assert [data for _, _, data in seen] == [b"a2", b"a3", b"b1", b"c1"]
    assert seen[0][0] == first_keys[0]  # the same file key as before the restart: same ids
    assert [key.split(".")[1] for key, _, _ in seen] == ["1000", "1000", "1001", "1002"]


def test_a_new_file_on_a_reused_inode_is_not_taken_for_the_checkpointed_one(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"old first line\nold second line\n")
    first = FileFollower(log, None, first_number=numbered(1000))
    done = drain(first)
    position = first.position
    first.close()
    # The file is gone and a new one has the same inode: what ext4 does when supervisord drops
    # P.log.3 and creates P.log. Written as a checkpoint naming the current file's inode.
    log.unlink()
    log.write_bytes(b"new first line\n")
    stale = FilePosition(log.stat().st_ino, position.number, position.fingerprint, position.offset)
    restarted = FileFollower(log, stale, first_number=numbered(9999))
    chunk = restarted.poll(100)
    assert texts(done) == [b"old first line", b"old second line"]
    assert texts(chunk.lines) == [b"new first line"] and chunk.lines[0].offset == 0
    assert chunk.position.number == 1001


def test_a_file_truncated_while_the_agent_was_stopped_is_read_from_its_start(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b"x" * 50 + b"\n")
    first = FileFollower(log, None, first_number=numbered(1000))
    drain(first)
    position = first.position
    first.close()
    with log.open("r+b") as file:
        file.truncate(0)
    append(log, b"x" * 50)  # the same first line starts again: the file is now shorter than the offset
    restarted = FileFollower(log, position, first_number=numbered(9999))
    assert restarted.poll(100).lines == []  # the line is not whole yet
    append(log, b"\n")
    chunk = restarted.poll(100)
    assert texts(chunk.lines) == [b"x" * 50]
    assert chunk.position.number == 1001 and chunk.lines[0].offset == 0


def test_long_lines_come_in_pieces_cut_at_the_same_places_every_time(tmp_path):
    log = tmp_path / "hello-1.log"
    long = b"z" * (2 * MAX_LINE + 10)
    log.write_bytes(long[:MAX_LINE + 5])  # the writer is mid-line
    follower = FileFollower(log, None, first_number=numbered())
    early = follower.poll(10).lines
    append(log, long[MAX_LINE + 5:] + b"\nshort\n")
    later = drain(follower)
    pieces = [(line.offset, len(line.data), line.cut) for line in early + later]
    assert pieces == [(0, MAX_LINE, True), (MAX_LINE, MAX_LINE, True), (2 * MAX_LINE, 10, False),
                      (2 * MAX_LINE + 11, 5, False)]
    again = drain(FileFollower(log, None, first_number=numbered()))
    assert [(line.offset, len(line.data), line.cut) for line in again] == pieces


def test_followers_start_each_program_where_the_checkpoint_says(tmp_path):
    (tmp_path / "a.log").write_bytes(b"1\n2\n")
    (tmp_path / "b.log").write_bytes(b"1\n2\n")
    position = FilePosition((tmp_path / "a.log").stat().st_ino, 3, "", 2).to_json()
    made = followers(tmp_path, ["a", "b"], {"a": position, "b": {"broken": True}})
    assert texts(made["a"].poll(10).lines) == [b"2"]
    assert texts(made["b"].poll(10).lines) == [b"1", b"2"]


# --- the checkpoint ----------------------------------------------------------------------------


def test_the_checkpoint_round_trips_and_is_replaced_whole(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "agent" / "checkpoint.json")
    assert checkpoint.load() == {}
    checkpoint.save({"hello-1": {"inode": 1, "offset": 2}})
    inode = checkpoint.path.stat().st_ino
    checkpoint.save({"hello-1": {"inode": 1, "offset": 3}})
    assert checkpoint.load() == {"hello-1": {"inode": 1, "offset": 3}}
    assert checkpoint.path.stat().st_ino != inode  # renamed over, never written in place
    assert [p.name for p in checkpoint.path.parent.iterdir()] == ["checkpoint.json"]
    assert checkpoint.path.stat().st_mode & 0o777 == 0o600


def test_a_checkpoint_writer_killed_at_any_moment_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.json"
    CheckpointFile(path).save({"n": 0, "pad": "x" * 100_000})
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from sevenleague.agent._checkpoint import CheckpointFile
        checkpoint = CheckpointFile(Path({str(path)!r}))
        n = 0
        while True:
            n += 1
            checkpoint.save({{"n": n, "pad": "x" * 100_000}})
        """)])
    try:
        deadline = time.monotonic() + 10
        while CheckpointFile(path).load()["n"] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    loaded = CheckpointFile(path).load()
    assert loaded["n"] >= 5 and loaded["pad"] == "x" * 100_000


def test_an_unreadable_checkpoint_says_so_and_can_be_set_aside(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "checkpoint.json")
    checkpoint.path.write_text('{"version": 1, "sources": {"a"')
    with pytest.raises(CheckpointUnreadable, match="is not JSON"):
        checkpoint.load()
    aside = checkpoint.set_aside()
    assert aside.name == "checkpoint.json.unreadable" and checkpoint.load() == {}


# --- shipping -----------------------------------------------------------------------------------


class Jitter(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_starts_at_0_2_seconds_doubles_to_5_and_jitters_down_by_up_to_half():
    longest = [backoff_delay(attempt, Jitter(0.999999)) for attempt in range(8)]
    shortest = [backoff_delay(attempt, Jitter(0.0)) for attempt in range(8)]
    assert [round(d, 2) for d in longest] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert [round(d, 2) for d in shortest] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.5, 2.5, 2.5]
    assert backoff_delay(10_000, random.Random(1)) <= 5.0


@dataclass(frozen=True)
class Offset:
    offset: int

    def to_json(self) -> dict:
        return {"offset": self.offset}


class ListSource:
    """A source over records given up front: a whole source, only without files."""

    def __init__(self, key: str, datas: list[bytes]) -> None:
        self.key = key
        self.datas = datas
        self.next = 0
        self.closed = False

    def read(self, limit: int) -> Reading:
        taken = self.datas[self.next:self.next + limit]
        entries = [Entry(self.key, data, Offset(self.next + n + 1)) for n, data in enumerate(taken)]
        start = Offset(self.next)
        self.next += len(taken)
        return Reading(entries, Offset(self.next), start)

    def close(self) -> None:
        self.closed = True


class LogsService:
    """The logs service's ingest as the agent sees it: its real batch parser, a store keyed by id."""

    def __init__(self, failures: list[object] | None = None, checkpoint: CheckpointFile | None = None):
        self.failures = list(failures or [])
        self.stored: dict[str, dict] = {}
        self.posts = 0
        self.gate: asyncio.Event | None = None
        self.checkpoint = checkpoint
        self.checkpoint_at_first_post: dict | None = None

    async def __call__(self, body: bytes) -> Answer:
        self.posts += 1
        if self.checkpoint is not None and self.checkpoint_at_first_post is None:
            self.checkpoint_at_first_post = self.checkpoint.load()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return Answer(int(failure), b'{"error": "busy"}')
        data = gzip.decompress(body)
        try:
            parse_batch(data)
        except BadBatch as error:
            return Answer(400, orjson.dumps({"error": str(error)}))
        duplicates = 0
        for line in data.splitlines():
            item = orjson.loads(line)
            duplicates += item["id"] in self.stored
            self.stored.setdefault(item["id"], item)
        accepted = len(data.splitlines()) - duplicates
        return Answer(200, orjson.dumps({"accepted": accepted, "duplicates": duplicates}))


def good(n: int) -> bytes:
    return orjson.dumps({"id": f"h1/p/1.1/{n}", "ts": READ_TS, "msg": f"line {n}"}) + b"\n"


FAST = Limits(max_buffered=1000, batch_records=100, flush_seconds=0.05, poll_seconds=0.02,
              checkpoint_seconds=0.02)


async def run_until(pipeline: Pipeline, done, timeout: float = 10.0) -> None:
    pipeline.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await pipeline.stop(grace=1.0)


def test_a_refused_batch_is_split_until_the_bad_record_is_alone_and_only_it_is_skipped(tmp_path, caplog):
    datas = [good(n) for n in range(16)]
    datas[11] = orjson.dumps({"id": "h1/p/1.1/11", "ts": "yesterday", "msg": "bad"}) + b"\n"
    service = LogsService()
    source = ListSource("p", datas)
    pipeline = Pipeline([source], service, CheckpointFile(tmp_path / "checkpoint.json"), limits=FAST)
    asyncio.run(run_until(pipeline, lambda: pipeline.counters.records_skipped == 1 and not pipeline.buffer))
    assert sorted(service.stored) == sorted(f"h1/p/1.1/{n}" for n in range(16) if n != 11)
    assert pipeline.counters.records_skipped == 1 and pipeline.counters.records_shipped == 15
    assert service.posts <= 1 + 2 * 4  # halving 16 records: at most two requests per level
    assert CheckpointFile(tmp_path / "checkpoint.json").load() == {"p": {"offset": 16}}
    assert "refused record h1/p/1.1/11" in caplog.text and "line 1: ts" in caplog.text
    assert source.closed


def test_no_answer_and_5xx_send_the_same_batch_again_and_nothing_is_dropped(tmp_path):
    service = LogsService(failures=[ConnectionResetError("reset by peer"), 503, 401])
    pipeline = Pipeline([ListSource("p", [good(n) for n in range(5)])], service,
                        CheckpointFile(tmp_path / "checkpoint.json"), limits=FAST)
    asyncio.run(run_until(pipeline, lambda: len(service.stored) == 5))
    assert len(service.stored) == 5 and pipeline.counters.ship_failures == 3
    assert service.posts == 4
    assert pipeline.status()["last_error"]["message"] == "the logs service answered 401: busy"


def test_the_checkpoint_moves_only_past_acknowledged_records(tmp_path):
    service = LogsService()
    service.gate = asyncio.Event()
    checkpoint = CheckpointFile(tmp_path / "checkpoint.json")
    pipeline = Pipeline([ListSource("p", [good(n) for n in range(5)])], service, checkpoint,
                        acknowledged={"p": {"offset": 0}, "gone": {"offset": 9}}, limits=FAST)

    async def scenario() -> tuple[dict, dict]:
        pipeline.start()
        await asyncio.sleep(0.3)  # read and sent, not answered
        before = checkpoint.load() if checkpoint.path.exists() else {}
        service.gate.set()
        await asyncio.sleep(0.3)
        await pipeline.stop()
        return before, checkpoint.load()

    before, after = asyncio.run(scenario())
    assert before.get("p", {"offset": 0}) == {"offset": 0}
    assert after == {"p": {"offset": 5}, "gone": {"offset": 9}}


def test_a_source_seen_first_is_checkpointed_where_it_starts_before_any_of_it_is_sent(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "checkpoint.json")
    service = LogsService(checkpoint=checkpoint)
    source = ListSource("new", [good(n) for n in range(5)])
    source.next = 2  # it starts somewhere: the checkpoint must say where, before the first batch goes
    source.datas = [b""] * 2 + source.datas
    pipeline = Pipeline([source], service, checkpoint, acknowledged={"old": {"offset": 1}}, limits=FAST)
    asyncio.run(run_until(pipeline, lambda: len(service.stored) == 5))
    assert service.checkpoint_at_first_post == {"new": {"offset": 2}, "old": {"offset": 1}}
    assert checkpoint.load() == {"new": {"offset": 7}, "old": {"offset": 1}}


def test_a_full_buffer_stops_reading_until_records_are_acknowledged(tmp_path):
    service = LogsService()
    service.gate = asyncio.Event()
    source = ListSource("p", [good(n) for n in range(100)])
    limits = Limits(max_buffered=10, batch_records=4, flush_seconds=0.01, poll_seconds=0.01,
                    checkpoint_seconds=0.01)
    pipeline = Pipeline([source], service, CheckpointFile(tmp_path / "checkpoint.json"), limits=limits)

    async def scenario() -> tuple[int, int]:
        pipeline.start()
        await asyncio.sleep(0.3)
        held = (len(pipeline.buffer), source.next)
        service.gate.set()
        while len(service.stored) < 100:
            await asyncio.sleep(0.01)
        await pipeline.stop()
        return held

    assert asyncio.run(scenario()) == (10, 10)
    assert len(service.stored) == 100 and pipeline.counters.records_read == 100


def test_a_file_source_ships_records_the_logs_service_takes(tmp_path):
    log = tmp_path / "hello-1.log"
    log.write_bytes(b'plain\n{"msg": "json", "level": "error"}\n\n')
    follower = FileFollower(log, None, first_number=numbered(1000))
    reading = FileSource(ORIGIN, follower, clock=lambda: 1764382523.5).read(10)
    inode = log.stat().st_ino
    stored = parse_batch(b"".join(entry.data for entry in reading.entries))
    assert [(r.id, r.msg, r.level) for r in stored] == [(f"h1/hello-1/{inode}.1000/0", "plain", 20),
                                                          (f"h1/hello-1/{inode}.1000/6", "json", 40)]
    assert [entry.position.offset for entry in reading.entries] == [6, 40]
    assert reading.position.offset == 41  # the blank line is read, and makes no record


# --- the journal --------------------------------------------------------------------------------


def fixture_entries() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "entries.jsonl").read_text().splitlines()]


PROGRAMS = {"hello@8001": ProgramLabels("hello", "hello-1")}


def journal_records() -> list[dict | None]:
    return [journal_record(entry, host="h1", programs=PROGRAMS, read_ts=READ_TS)
            for entry in fixture_entries()]


def test_journal_entries_become_records_the_logs_service_takes():
    records = [r for r in journal_records() if r is not None]
    stored = parse_batch(b"".join(orjson.dumps(r) + b"\n" for r in records))
    assert len(stored) == 6
    started, running, request, latin, sshd, kernel = records
    assert started["ts"] == "2025-11-29T02:15:23.123Z" and started["program"] == "init.scope"
    assert started["msg"] == "Started hello@8001.service - hello on port 8001." and started["level"] == "info"
    assert (running["program"], running["msg"], running["ts"]) == (
        "hello@8001", "Uvicorn running on https://0.0.0.0:8001 (Press CTRL+C to quit)",
        "2025-11-29T02:15:23.125Z")
    assert (running["service"], running["instance"]) == ("hello", "hello-8001")  # the line's own win
    assert (request["level"], request["user"], request["status"]) == ("warning", "ada", 404)
    assert (latin["msg"], latin["level"], latin["service"], latin["instance"]) == (
        "caf\ufffd latte served", "error", "hello", "hello@8002")
    assert (sshd["program"], sshd["level"], sshd["pid"]) == ("ssh", "error", 812)
    assert (kernel["program"], kernel["level"], kernel["service"]) == ("kernel", "warning", "kernel")


def test_a_journal_record_id_is_a_digest_of_its_cursor_and_an_empty_message_makes_none():
    entries = fixture_entries()
    records = journal_records()
    assert records[0]["id"] == journal_record_id("h1", entries[0]["__CURSOR"])
    assert len({r["id"] for r in records if r}) == 6
    assert records[-1] is None  # MESSAGE null: too large without --all, or none at all


def test_journalctl_starts_after_the_checkpoint_cursor_or_at_this_boot():
    assert journalctl_argv(None)[-1] == "--boot"
    argv = journalctl_argv("s=1;i=2")
    assert argv[:2] == ["journalctl", "--output=json"] and "--follow" in argv and "--all" in argv
    assert argv[-1] == "--after-cursor=s=1;i=2"


def test_the_journal_source_reads_entries_and_runs_journalctl_again_after_the_last_one(tmp_path):
    runs: list[list[str]] = []

    def replay(argv):
        runs.append(list(argv))
        return subprocess.Popen(["cat", str(FIXTURES / "entries.jsonl")], stdout=subprocess.PIPE)

    source = JournalSource("h1", PROGRAMS, JournalPosition("s=start"), run=replay, restart_seconds=0.05)
    source.start()
    try:
        deadline = time.monotonic() + 10
        entries = []
        while len(runs) < 2 and time.monotonic() < deadline:
            reading = source.read(100)
            entries += reading.entries
            time.sleep(0.02)
    finally:
        source.close()
    cursors = [entry["__CURSOR"] for entry in fixture_entries()]
    assert runs[0][-1] == "--after-cursor=s=start"
    assert runs[1][-1] == f"--after-cursor={cursors[-1]}"
    assert [orjson.loads(e.data)["id"] for e in entries[:6]] == [
        journal_record_id("h1", cursor) for cursor in cursors[:6]]
    assert source.error == "journalctl exited with status 0"


# --- process state and metrics ------------------------------------------------------------------


def test_supervisord_infos_become_program_states():
    infos = [{"name": "hello-1", "statename": "RUNNING", "start": 1764382523, "now": 1764382600},
             {"name": "edge", "statename": "BACKOFF", "start": 1764382500},
             {"name": "never", "statename": "STOPPED", "start": 0}]
    assert program_states(infos) == [ProgramState("edge", False, 1764382500.0),
                                     ProgramState("hello-1", True, 1764382523.0),
                                     ProgramState("never", False, 0.0)]


def test_the_collector_exports_the_register_names_with_host_and_program():
    registry = CollectorRegistry()
    reading = AgentReading("h1", records_read=12, records_shipped=10, records_buffered=2, ship_failures=1,
                           last_shipped=1764382523.5,
                           processes=[ProgramState("hello-1", True, 1764382523.0),
                                      ProgramState("never", False, 0)])
    registry.register(AgentCollector(lambda: reading))
    text = generate_latest(registry).decode()
    assert "sevenleague_agent_records_read_total 12.0" in text
    assert "# TYPE sevenleague_agent_records_shipped_total counter" in text
    assert "sevenleague_agent_records_buffered 2.0" in text
    assert "sevenleague_agent_last_shipped_timestamp_seconds 1.7643825235e+09" in text
    assert 'sevenleague_process_up{host="h1",program="hello-1"} 1.0' in text
    assert 'sevenleague_process_up{host="h1",program="never"} 0.0' in text
    assert 'sevenleague_process_start_time_seconds{host="h1",program="hello-1"} 1.764382523e+09' in text
    assert 'program="never"} 0' not in text.split("sevenleague_process_start_time_seconds")[-1]
    assert "# HELP sevenleague_process_up 1 when supervisord says the program is RUNNING, else 0." in text


def test_the_collector_has_no_samples_before_the_agent_started():
    registry = CollectorRegistry()
    registry.register(AgentCollector(lambda: None))
    text = generate_latest(registry).decode()
    assert [line for line in text.splitlines() if not line.startswith("#")] == []


# --- the service --------------------------------------------------------------------------------


def test_the_agent_api_is_described_and_its_status_needs_agent_read():
    from sevenleague.agent import service

    document = json.loads(get(service.app, "/openapi.json").body)
    assert document["paths"]["/api/status"]["get"]["security"] == [{"bearer": ["agent.read"]}]
    answer = get(service.app, "/api/status")  # no lifespan ran: nothing to report yet
    assert answer.status == 503 and b"not running" in answer.body


# --- settings -----------------------------------------------------------------------------------


def environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {"LEAGUE_AGENT_HOST": "h1", "LEAGUE_AGENT_LOG_DIR": str(tmp_path),
           "LEAGUE_AGENT_PROGRAMS": '{"hello-1": {"service": "hello", "instance": "hello-1"}}',
           "LEAGUE_AGENT_STATE_DIR": str(tmp_path / "agent"),
           "LEAGUE_AGENT_SUPERVISOR_SOCKET": str(tmp_path / "supervisor.sock")}
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "-"}


def test_settings_from_the_environment(tmp_path):
    settings = AgentSettings.from_environment(environment(tmp_path))
    assert settings.programs == {"hello-1": ProgramLabels("hello", "hello-1")}
    assert settings.checkpoint == tmp_path / "agent" / "checkpoint.json"
    journal = AgentSettings.from_environment(environment(tmp_path, LEAGUE_AGENT_SOURCE="journal",
                                                         LEAGUE_AGENT_LOG_DIR="-", LEAGUE_AGENT_PROGRAMS="-",
                                                         LEAGUE_AGENT_SUPERVISOR_SOCKET="-"))
    assert (journal.source, journal.programs, journal.log_dir) == ("journal", {}, None)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"LEAGUE_AGENT_HOST": "-"}, "LEAGUE_AGENT_HOST is not set"),
    ({"LEAGUE_AGENT_HOST": "a/b"}, "is not a host name"),
    ({"LEAGUE_AGENT_SOURCE": "files"}, "LEAGUE_AGENT_SOURCE='files' is not a log source"),
    ({"LEAGUE_AGENT_LOG_DIR": "/nonexistent/logs"}, "is not a directory"),
    ({"LEAGUE_AGENT_LOG_DIR": "logs"}, "is not an absolute path"),
    ({"LEAGUE_AGENT_STATE_DIR": "-"}, "LEAGUE_AGENT_STATE_DIR is not set"),
    ({"LEAGUE_AGENT_SUPERVISOR_SOCKET": "-"}, "LEAGUE_AGENT_SUPERVISOR_SOCKET is not set"),
    ({"LEAGUE_AGENT_PROGRAMS": "-"}, "LEAGUE_AGENT_PROGRAMS is not set"),
    ({"LEAGUE_AGENT_PROGRAMS": "{"}, "LEAGUE_AGENT_PROGRAMS is not JSON"),
    ({"LEAGUE_AGENT_PROGRAMS": "[]"}, "must be a JSON object"),
    ({"LEAGUE_AGENT_PROGRAMS": '{"../x": {"service": "a", "instance": "b"}}'}, "is not a program name"),
    ({"LEAGUE_AGENT_PROGRAMS": '{"x": {"service": "a"}}'}, r"\['x'\].instance must be a non-empty string"),
])
def test_a_missing_or_malformed_setting_stops_the_agent_naming_it(tmp_path, overrides, message):
    with pytest.raises(AgentError, match=message):
        AgentSettings.from_environment(environment(tmp_path, **overrides))


def test_saving_often_leaves_no_temporary_file_behind(tmp_path):
    checkpoint = CheckpointFile(tmp_path / "checkpoint.json")
    for n in range(20):
        checkpoint.save({"n": n})
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint.json"]


# --- the journal of another host, over ssh --------------------------------------------------------


def test_behind_ssh_every_journalctl_argument_reaches_the_remote_shell_quoted():
    cursor = "s=0b8f;i=1a2b;b=5f0e;m=2d4f5a3;t=644b25189e700;x=35ae4915f21cf987"
    units = ["hello@8001.service", "it's $(odd).service"]
    local = journalctl_argv(cursor, units)
    assert local[0] == "journalctl" and local[-3:] == [
        "--unit=hello@8001.service", "--unit=it's $(odd).service", f"--after-cursor={cursor}"]
    prefix = ["/usr/bin/ssh", "-p", "2222", "root@h1", "journalctl"]
    remote = journalctl_argv(cursor, units, prefix)
    assert remote[:5] == prefix
    # ssh joins what follows the destination into one line for the remote user's shell
    assert shlex.split(" ".join(remote[4:])) == local
    assert journalctl_argv(None, (), ["sudo", "journalctl"]) == [
        "sudo", "journalctl", "--output=json", "--all", "--follow", "--no-tail", "--no-pager", "--boot"]


def test_systemds_own_lines_about_a_unit_get_that_units_service_and_instance():
    started = journal_records()[0]  # PID 1: "Started hello@8001.service", UNIT=hello@8001.service
    assert (started["program"], started["service"], started["instance"]) == ("init.scope", "hello", "hello-1")
    assert journal_record(fixture_entries()[0], host="h1", programs={}, read_ts=READ_TS)["service"] == (
        "init.scope")


def test_the_journal_command_setting_is_a_json_argv(tmp_path):
    base = environment(tmp_path, LEAGUE_AGENT_SOURCE="journal", LEAGUE_AGENT_LOG_DIR="-",
                       LEAGUE_AGENT_SUPERVISOR_SOCKET="-")
    assert AgentSettings.from_environment(base).journal_command == ("journalctl",)
    command = ["ssh", "-p", "22", "root@h1", "journalctl"]
    settings = AgentSettings.from_environment({**base, "LEAGUE_AGENT_JOURNAL_COMMAND": json.dumps(command)})
    assert settings.journal_command == tuple(command)
    for wrong, message in [("ssh h1", "is not JSON"), ("[]", "must be a JSON array of non-empty strings"),
                           ('["ssh", 22]', "must be a JSON array"), ('{"argv": []}', "must be a JSON array")]:
        with pytest.raises(AgentError, match=f"LEAGUE_AGENT_JOURNAL_COMMAND {message}"):
            AgentSettings.from_environment({**base, "LEAGUE_AGENT_JOURNAL_COMMAND": wrong})


def test_a_journal_command_that_exits_is_started_again_after_a_growing_wait_from_the_last_cursor(tmp_path):
    """A stand-in ssh that does what ssh does with a command (joins it for `sh -c`), and a stand-in
    journalctl that notes its arguments one per line, prints the entries once, and then fails
    at once every time, like a connection that dropped to a host that is now down."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    arguments = tmp_path / "arguments"
    (bin_dir / "ssh").write_text(textwrap.dedent("""\
        #!/bin/sh
        while [ $# -gt 0 ]; do case "$1" in -p|-o) shift 2;; *) shift; break;; esac; done
        exec sh -c "$*"
        """))
    (bin_dir / "journalctl").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        printf '%s\\n' "$@" --- >> {arguments}
        if [ ! -e {tmp_path}/printed ]; then touch {tmp_path}/printed; cat {FIXTURES / "entries.jsonl"}; fi
        exit 255
        """))
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    command = [str(bin_dir / "ssh"), "-p", "22", "root@h1", f"PATH={bin_dir}:/usr/bin:/bin", "journalctl"]
    source = JournalSource("h1", PROGRAMS, None, command=command, restart_seconds=0.05, restart_cap=0.2)
    assert [source.restart_delay(n) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.2, 0.2]
    started = time.monotonic()
    source.start()
    entries = []
    try:
        while source.runs < 5 and time.monotonic() < started + 10:
            entries += source.read(100).entries
            time.sleep(0.02)
        entries += source.read(100).entries
    finally:
        source.close()
    seconds = time.monotonic() - started
    runs = [run.splitlines() for run in arguments.read_text().split("---\n") if run]
    cursors = [entry["__CURSOR"] for entry in fixture_entries()]
    assert runs[0][-2:] == ["--unit=hello@8001.service", "--boot"]
    assert all(run[-1] == f"--after-cursor={cursors[-1]}" for run in runs[1:])  # one argument, `;` and all
    assert [orjson.loads(e.data)["id"] for e in entries] == [
        journal_record_id("h1", cursor) for cursor in cursors[:6]]
    assert source.error == "ssh exited with status 255"
    assert seconds >= 0.05 + 0.1 + 0.2 + 0.2  # the waits after runs 1 to 4
