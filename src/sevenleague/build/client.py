"""The build service's HTTP API from Python: for the CLI, the git hook and tests.

The address comes from the snapshot `league up` wrote, so every caller finds the
build service of the eco-system in its state directory, whatever port offset it runs on.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from .._json_api import JsonApi, TokenSource
from ..errors import LeagueError


class BuildServiceUnavailable(LeagueError):
    exit_code = 3


class BuildClient(JsonApi):
    """Speaks to the build service over HTTPS verified against the eco-system's CA, with a token."""

    what = "the build service"
    unavailable = BuildServiceUnavailable
    refused_hint = "`league login` as a user with the developer role or more"

    @classmethod
    def from_home(cls, home: Path, token: TokenSource | None = None) -> BuildClient:
        url, ca_file = cls.snapshot_endpoint(home, "builds")
        return cls(url, ca_file=ca_file, token=token)

    def queue(self, service: str, ref: str = "HEAD", requested_by: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", "/api/builds",
                                            {"service": service, "ref": ref, "requested_by": requested_by})
        return result

    def get(self, build_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/api/builds/{build_id}")
        return result

    def list(self, service: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({k: v for k, v in {"service": service, "limit": limit}.items() if v})
        builds: list[dict[str, Any]] = self._json("GET", f"/api/builds?{query}")["builds"]
        return builds

    def log(self, build_id: int, offset: int = 0) -> tuple[str, int]:
        body, headers = self._call("GET", f"/api/builds/{build_id}/log?offset={offset}")
        lowered = {k.lower(): v for k, v in headers.items()}
        return body.decode("utf-8", "replace"), int(lowered.get("x-next-offset", offset))

    def cancel(self, build_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", f"/api/builds/{build_id}/cancel")
        return result
