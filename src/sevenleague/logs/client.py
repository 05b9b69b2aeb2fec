"""The logs service's HTTP API from Python: searches and live tails, for the CLI and tests.

The address comes from the snapshot `league up` wrote. A tail is the service's
server-sent event stream read line by line; when the connection drops, `follow`
reconnects with the last cursor it saw (`Last-Event-ID`), so no record is missed or
shown twice.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._json_api import JsonApi, TokenSource
from ..errors import LeagueError

RECONNECT_SECONDS = 1.0


class LogsServiceUnavailable(LeagueError):
    exit_code = 3


class LogsClient(JsonApi):
    what = "the logs service"
    unavailable = LogsServiceUnavailable
    refused_hint = "`league login` as a user whose role allows reading (viewer or above)"

    @classmethod
    def from_home(cls, home: Path, token: TokenSource | None = None) -> LogsClient:
        url, ca_file = cls.snapshot_endpoint(home, "logs")
        return cls(url, timeout=30.0, ca_file=ca_file, token=token)

    def search(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One page: {"records": [...newest first], "next": cursor or None}."""
        result: dict[str, Any] = self._json("GET", "/api/records?" + urllib.parse.urlencode(params))
        return result

    def follow(self, params: Mapping[str, str], after: int | None = None) -> Iterator[dict[str, Any]]:
        """Every new record that matches, as it arrives, until the caller stops iterating."""
        last = after
        while True:
            query = dict(params)
            if last is not None:
                query["after"] = str(last)
            try:
                for record in self._events("/api/tail?" + urllib.parse.urlencode(query)):
                    last = int(record["cursor"])
                    yield record
            except LogsServiceUnavailable:
                if last is None:
                    raise
            time.sleep(RECONNECT_SECONDS)

    def _events(self, path: str) -> Iterator[dict[str, Any]]:
        response = self._open("GET", path, headers={"Accept": "text/event-stream"}, timeout=60)
        data: list[bytes] = []
        try:
            with response:
                for line in response:
                    line = line.rstrip(b"\r\n")
                    if line.startswith(b"data:"):
                        data.append(line[5:].lstrip())
                    elif not line and data:
                        yield json.loads(b"\n".join(data))
                        data = []
        except (OSError, ValueError) as error:
            raise self.unavailable(f"the tail from {self.what} broke off ({error})") from None
