"""The build service's own database: the queue, each build's steps and its record.

SQLite in WAL mode, one file under the state directory. The build service is the only
process that opens it; everything else asks the service over HTTP. A build's state only
moves forward (queued -> running -> passed/failed/cancelled), and a build found
`running` when the service starts again was interrupted: `recover` marks it failed so
nothing is ever left looking busy.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._sqlite import Database

QUEUED, RUNNING, PASSED, FAILED, CANCELLED = "queued", "running", "passed", "failed", "cancelled"
STATES = (QUEUED, RUNNING, PASSED, FAILED, CANCELLED)
FINISHED = (PASSED, FAILED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    repo TEXT NOT NULL,
    ref TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    requested_by TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    record TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS builds_by_service ON builds (service, id);
CREATE INDEX IF NOT EXISTS builds_by_state ON builds (state, id);
CREATE TABLE IF NOT EXISTS steps (
    build_id INTEGER NOT NULL REFERENCES builds (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    summary TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (build_id, position)
);
"""


@dataclass(frozen=True)
class Step:
    name: str
    state: str
    started_at: float
    finished_at: float | None
    summary: str

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else round(self.finished_at - self.started_at, 3)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "started_at": self.started_at,
                "finished_at": self.finished_at, "seconds": self.seconds, "summary": self.summary}


@dataclass(frozen=True)
class Build:
    id: int
    service: str
    repo: str
    ref: str
    commit: str
    requested_by: str
    state: str
    reason: str
    queued_at: float
    started_at: float | None
    finished_at: float | None
    record: dict[str, Any]
    steps: tuple[Step, ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "service": self.service, "repo": self.repo, "ref": self.ref,
            "commit": self.commit, "requested_by": self.requested_by, "state": self.state,
            "reason": self.reason, "queued_at": self.queued_at, "started_at": self.started_at,
            "finished_at": self.finished_at, "steps": [s.to_json() for s in self.steps],
            **self.record,
        }


class BuildStore:
    """Every read and write of the builds database, behind one lock."""

    def __init__(self, path: Path) -> None:
        self._database = Database(path, _SCHEMA)
        self._lock = self._database.lock
        self._db = self._database.connection
        self._transaction = self._database.transaction

    def close(self) -> None:
        self._database.close()

    # --- the queue ------------------------------------------------------------------------

    def enqueue(self, *, service: str, repo: str, ref: str, commit: str, requested_by: str = "") -> Build:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO builds (service, repo, ref, commit_sha, requested_by, state, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (service, repo, ref, commit, requested_by, QUEUED, time.time()),
            )
            build_id = int(cursor.lastrowid or 0)
        return self.get(build_id)

    def claim_next(self) -> Build | None:
        """The oldest queued build, now marked running; None when the queue is empty."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM builds WHERE state = ? ORDER BY id LIMIT 1",
                             (QUEUED,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE builds SET state = ?, started_at = ? WHERE id = ?",
                       (RUNNING, time.time(), row["id"]))
        return self.get(int(row["id"]))

    def finish(self, build_id: int, state: str, reason: str = "") -> Build:
        """Move a build to a final state, once: a finished build keeps its first outcome."""
        if state not in FINISHED:
            raise ValueError(f"{state!r} is not a final state")
        with self._transaction() as db:
            db.execute(
                "UPDATE builds SET state = ?, reason = ?, finished_at = ? WHERE id = ? AND state IN (?, ?)",
                (state, reason, time.time(), build_id, QUEUED, RUNNING),
            )
            db.execute(
                "UPDATE steps SET state = ?, finished_at = ? WHERE build_id = ? AND state = ?",
                (CANCELLED if state == CANCELLED else FAILED, time.time(), build_id, RUNNING),
            )
        return self.get(build_id)

    def recover(self, reason: str) -> list[int]:
        """Fail every build left running by a service that died; returns their ids."""
        with self._transaction() as db:
            ids = [int(r["id"]) for r in db.execute("SELECT id FROM builds WHERE state = ?", (RUNNING,))]
            now = time.time()
            for build_id in ids:
                step = db.execute(
                    "SELECT name FROM steps WHERE build_id = ? AND state = ? ORDER BY position DESC LIMIT 1",
                    (build_id, RUNNING),
                ).fetchone()
                where = f" during step {step['name']}" if step else ""
                db.execute("UPDATE builds SET state = ?, reason = ?, finished_at = ? WHERE id = ?",
                           (FAILED, reason + where, now, build_id))
                db.execute("UPDATE steps SET state = ?, finished_at = ? WHERE build_id = ? AND state = ?",
                           (FAILED, now, build_id, RUNNING))
        return ids

    # --- steps and the record ---------------------------------------------------------------

    def start_step(self, build_id: int, name: str) -> int:
        with self._transaction() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 AS next FROM steps WHERE build_id = ?", (build_id,)
            ).fetchone()
            position = int(row["next"])
            db.execute(
                "INSERT INTO steps (build_id, position, name, state, started_at) VALUES (?, ?, ?, ?, ?)",
                (build_id, position, name, RUNNING, time.time()),
            )
        return position

    def finish_step(self, build_id: int, position: int, state: str, summary: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE steps SET state = ?, summary = ?, finished_at = ?"
                " WHERE build_id = ? AND position = ?",
                (state, summary, time.time(), build_id, position),
            )

    def update_record(self, build_id: int, **fields: Any) -> None:
        """Merge `fields` into the build's record (commit author, counts, figures, artifacts...)."""
        with self._transaction() as db:
            row = db.execute("SELECT record FROM builds WHERE id = ?", (build_id,)).fetchone()
            record = json.loads(row["record"]) if row else {}
            record.update(fields)
            db.execute("UPDATE builds SET record = ? WHERE id = ?", (json.dumps(record), build_id))

    # --- reads ------------------------------------------------------------------------------

    def get(self, build_id: int) -> Build:
        with self._lock:
            row = self._db.execute("SELECT * FROM builds WHERE id = ?", (build_id,)).fetchone()
            if row is None:
                raise KeyError(build_id)
            steps = self._db.execute("SELECT * FROM steps WHERE build_id = ? ORDER BY position",
                                     (build_id,)).fetchall()
        return _build(row, steps)

    def find(self, build_id: int) -> Build | None:
        try:
            return self.get(build_id)
        except KeyError:
            return None

    def list(self, service: str | None = None, limit: int = 50) -> list[Build]:
        with self._lock:
            if service:
                rows = self._db.execute("SELECT * FROM builds WHERE service = ? ORDER BY id DESC LIMIT ?",
                                        (service, limit)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM builds ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            steps = {
                r["id"]: self._db.execute("SELECT * FROM steps WHERE build_id = ? ORDER BY position",
                                          (r["id"],)).fetchall()
                for r in rows
            }
        return [_build(r, steps[r["id"]]) for r in rows]

    def last_passed(self, service: str, before: int) -> Build | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM builds WHERE service = ? AND state = ? AND id < ? ORDER BY id DESC LIMIT 1",
                (service, PASSED, before),
            ).fetchone()
        return None if row is None else self.get(int(row["id"]))


def _build(row: sqlite3.Row, steps: list[sqlite3.Row]) -> Build:
    return Build(
        id=int(row["id"]), service=row["service"], repo=row["repo"], ref=row["ref"],
        commit=row["commit_sha"], requested_by=row["requested_by"], state=row["state"],
        reason=row["reason"], queued_at=row["queued_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], record=json.loads(row["record"]),
        steps=tuple(Step(s["name"], s["state"], s["started_at"], s["finished_at"], s["summary"])
                    for s in steps),
    )
