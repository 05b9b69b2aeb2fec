"""The deploy service's own database: deployments and their steps, what runs where, locks, audit.

SQLite in WAL mode, one file under the state directory, opened by the deploy service
alone. Three rules keep it trustworthy:
- `instances` says which version each instance runs, written the moment a switch is
  done, so a rollback knows what to undo even after the service itself restarted;
- a lock row per (service, environment) is taken inside one transaction, so two
  deploys can never both believe they hold it;
- `audit` is append-only: triggers refuse UPDATE and DELETE, so the record of who did
  what cannot be edited through this database's own connection.
A deployment found `running` when the service starts again was interrupted: `recover`
marks it failed and frees its lock, so nothing is left looking busy.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._sqlite import Database

RUNNING, SUCCEEDED, ROLLED_BACK, FAILED = "running", "succeeded", "rolled_back", "failed"
FINISHED = (SUCCEEDED, ROLLED_BACK, FAILED)
KINDS = ("deploy", "rollback", "promote")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    from_version TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS deployments_by_service ON deployments (service, environment, id);
CREATE TABLE IF NOT EXISTS steps (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    position INTEGER NOT NULL,
    instance TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (deployment_id, position)
);
CREATE TABLE IF NOT EXISTS instances (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    instance TEXT NOT NULL,
    version TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (service, instance)
);
CREATE TABLE IF NOT EXISTS locks (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    holder TEXT NOT NULL,
    deployment_id INTEGER,
    since REAL NOT NULL,
    PRIMARY KEY (service, environment)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    from_version TEXT NOT NULL DEFAULT '',
    to_version TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


@dataclass(frozen=True)
class Lock:
    service: str
    environment: str
    holder: str
    deployment_id: int | None
    since: float

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "environment": self.environment, "holder": self.holder,
                "deployment": self.deployment_id, "since": self.since}


class LockHeld(Exception):
    """Someone else deploys this service to this environment right now."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        super().__init__(f"{lock.service} in {lock.environment} is locked by {lock.holder}")


def _row_json(row: sqlite3.Row) -> dict[str, Any]:
    return dict(zip(row.keys(), tuple(row), strict=True))


class DeployStore:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, _SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- audit -----------------------------------------------------------------------

    @staticmethod
    def _audit(conn: sqlite3.Connection, actor: str, action: str, service: str, environment: str,
               outcome: str, *, from_version: str = "", to_version: str = "", detail: str = "") -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, action, service, environment, from_version, to_version, outcome,"
            " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), actor, action, service, environment, from_version, to_version, outcome, detail))

    def audit(self, actor: str, action: str, service: str, environment: str, outcome: str,
              **fields: str) -> None:
        with self.db.transaction() as conn:
            self._audit(conn, actor, action, service, environment, outcome, **fields)

    def audit_log(self, *, service: str | None = None, environment: str | None = None,
                  after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        clauses: list[str] = ["seq > ?"]
        params: list[object] = [after]
        if service:
            clauses.append("service = ?")
            params.append(service)
        if environment:
            clauses.append("environment = ?")
            params.append(environment)
        where = " AND ".join(clauses)  # fixed clauses; the values are parameters
        rows = self.db.all(f"SELECT * FROM audit WHERE {where} ORDER BY seq LIMIT ?",  # noqa: S608
                           [*params, limit])
        return [_row_json(row) for row in rows]

    # --- locks -------------------------------------------------------------------------

    def lock(self, service: str, environment: str) -> Lock | None:
        row = self.db.one("SELECT * FROM locks WHERE service = ? AND environment = ?", (service, environment))
        return None if row is None else Lock(row["service"], row["environment"], row["holder"],
                                             row["deployment_id"], row["since"])

    def locks(self) -> list[Lock]:
        return [Lock(r["service"], r["environment"], r["holder"], r["deployment_id"], r["since"])
                for r in self.db.all("SELECT * FROM locks ORDER BY service, environment")]

    def start(self, kind: str, service: str, environment: str, version: str, from_version: str,
              actor: str) -> int:
        """Take the lock and open a deployment in one transaction; `LockHeld` names who has it.

        A refusal is audited too, so its record must outlive the transaction: it commits,
        then raises.
        """
        held: Lock | None = None
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM locks WHERE service = ? AND environment = ?",
                               (service, environment)).fetchone()
            if row is not None:
                held = Lock(row["service"], row["environment"], row["holder"], row["deployment_id"],
                            row["since"])
                self._audit(conn, actor, f"{kind}-refused", service, environment, "refused",
                            to_version=version, detail=f"locked by {held.holder} since {held.since:.0f}")
            else:
                now = time.time()
                cursor = conn.execute(
                    "INSERT INTO deployments (kind, service, environment, version, from_version, actor,"
                    " state, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (kind, service, environment, version, from_version, actor, RUNNING, now))
                deployment = int(cursor.lastrowid or 0)
                conn.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?)",
                             (service, environment, actor, deployment, now))
                self._audit(conn, actor, "lock", service, environment, "acquired",
                            detail=f"deployment {deployment}")
                self._audit(conn, actor, kind, service, environment, "started", from_version=from_version,
                            to_version=version, detail=f"deployment {deployment}")
        if held is not None:
            raise LockHeld(held)
        return deployment

    def finish(self, deployment: int, state: str, reason: str = "") -> None:
        """Close a deployment, record its outcome, free its lock: all or nothing."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM deployments WHERE id = ?", (deployment,)).fetchone()
            if row is None or row["state"] != RUNNING:
                return
            conn.execute("UPDATE deployments SET state = ?, reason = ?, finished_at = ? WHERE id = ?",
                         (state, reason, time.time(), deployment))
            self._audit(conn, row["actor"], row["kind"], row["service"], row["environment"], state,
                        from_version=row["from_version"], to_version=row["version"],
                        detail=(f"deployment {deployment}" + (f": {reason}" if reason else "")))
            conn.execute("DELETE FROM locks WHERE deployment_id = ?", (deployment,))
            self._audit(conn, row["actor"], "lock", row["service"], row["environment"], "released",
                        detail=f"deployment {deployment}")

    def recover(self) -> list[int]:
        """Deployments a previous run of the service left running: failed now, their locks freed."""
        rows = self.db.all("SELECT id FROM deployments WHERE state = ?", (RUNNING,))
        interrupted = [row["id"] for row in rows]
        for deployment in interrupted:
            self.finish(deployment, FAILED, "interrupted: the deploy service stopped while it ran")
        return interrupted

    # --- steps and instances -----------------------------------------------------------

    def step(self, deployment: int, instance: str, action: str, state: str, detail: str = "") -> None:
        with self.db.transaction() as conn:
            position = conn.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM steps WHERE deployment_id = ?",
                (deployment,)).fetchone()[0]
            conn.execute("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (deployment, position, instance, action, state, detail, time.time()))

    def steps(self, deployment: int, after: int = 0) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT * FROM steps WHERE deployment_id = ? AND position > ? ORDER BY position",
                           (deployment, after))
        return [_row_json(row) for row in rows]

    def set_version(self, service: str, environment: str, instance: str, version: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO instances VALUES (?, ?, ?, ?, ?) ON CONFLICT (service, instance) DO UPDATE"
                " SET environment = excluded.environment, version = excluded.version, since = excluded.since"
                " WHERE version != excluded.version",
                (service, environment, instance, version, time.time()))

    def versions(self, service: str, environment: str | None = None) -> dict[str, dict[str, Any]]:
        """What each instance of `service` runs, and since when, by instance name."""
        if environment is None:
            rows = self.db.all("SELECT * FROM instances WHERE service = ?", (service,))
        else:
            rows = self.db.all("SELECT * FROM instances WHERE service = ? AND environment = ?",
                               (service, environment))
        return {row["instance"]: _row_json(row) for row in rows}

    def all_versions(self) -> list[dict[str, Any]]:
        return [_row_json(row) for row in self.db.all("SELECT * FROM instances ORDER BY service, instance")]

    # --- deployments ---------------------------------------------------------------------

    def get(self, deployment: int) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM deployments WHERE id = ?", (deployment,))
        return None if row is None else _row_json(row)

    def history(self, service: str, environment: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if environment is None:
            rows = self.db.all("SELECT * FROM deployments WHERE service = ? ORDER BY id DESC LIMIT ?",
                               (service, limit))
        else:
            rows = self.db.all("SELECT * FROM deployments WHERE service = ? AND environment = ?"
                               " ORDER BY id DESC LIMIT ?", (service, environment, limit))
        return [_row_json(row) for row in rows]
