"""One SQLite database owned by one service: WAL, one connection, one lock, short transactions.

Each platform service keeps its own data in its own file and is the only process that
opens it, so one connection shared by the service's threads behind a lock is enough.
WAL lets the readers of a request never wait for a writer's fsync, and `BEGIN
IMMEDIATE` takes the write lock up front, so a transaction never fails half-way on a
lock it could not upgrade.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Database:
    def __init__(self, path: Path, schema: str, *, file_mode: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if file_mode is not None and not path.exists():
            path.touch(mode=file_mode)  # before SQLite creates it with the umask's mode
        self.path = path
        self.lock = threading.Lock()
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executescript(schema)

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self.connection.execute(sql, tuple(params)).fetchone()
            return row

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.connection.execute(sql, tuple(params)).fetchall()
