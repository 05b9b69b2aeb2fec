"""Drive an ASGI app in-process: build the scope, collect what it sends."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from sevenleague.kit import JsonLines


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def call(app: Any, path: str = "/", method: str = "GET",
               headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers or [], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    answer = Answer()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, receive, send)
    return answer


def get(app: Any, path: str = "/", **kwargs: Any) -> Answer:
    return asyncio.run(call(app, path, **kwargs))


class PipeLog:
    """A JsonLines writer whose lines the test can read back."""

    def __init__(self) -> None:
        self.read_fd, write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.writer = JsonLines(write_fd)
        self._pending = b""

    def lines(self) -> list[bytes]:
        self.writer.flush()
        with contextlib.suppress(BlockingIOError):
            self._pending += os.read(self.read_fd, 1 << 20)
        *complete, self._pending = self._pending.split(b"\n")
        return complete
