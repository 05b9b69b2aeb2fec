"""The build service's HTTP API from Python: for the CLI, the git hook and tests.

The address comes from the snapshot `league up` wrote, so every caller finds the
build service of the eco-system in its state directory, whatever port offset it runs on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LeagueError
from ..kit._tls import client_context


class BuildServiceUnavailable(LeagueError):
    exit_code = 3


# Gives a bearer token for the build service each time it is asked (it may refresh one).
TokenSource = Callable[[], str]


class BuildClient:
    """Speaks to the build service over HTTPS verified against the eco-system's CA, with a token."""

    def __init__(self, base_url: str, timeout: float = 10.0, *, ca_file: str | Path | None = None,
                 token: TokenSource | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise LeagueError(f"the build service address {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.context = client_context(ca_file) if ca_file else None
        self.token = token

    @classmethod
    def from_home(cls, home: Path, token: TokenSource | None = None) -> BuildClient:
        snapshot = home / "ecosystem.json"
        try:
            document = json.loads(snapshot.read_text())
            url = document["endpoints"]["builds"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            raise BuildServiceUnavailable(f"no eco-system with a build service runs from {home}",
                                          hint="start it with `league up` (or set LEAGUE_HOME)") from None
        return cls(url, ca_file=document.get("ca_file"), token=token)

    def _call(self, method: str, path: str,
              body: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(  # noqa: S310 - http(s), checked in __init__
            self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,  # noqa: S310
                                        context=self.context) as response:
                return response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            try:
                problem = json.loads(error.read())
            except ValueError:
                problem = {}
            if error.code in (401, 403):
                reason = problem.get("error_description") or problem.get("error") or "no reason"
                raise LeagueError(f"the build service refused the request ({error.code}: {reason})",
                                  hint="`league login` as a user with the developer role or more") from None
            raise LeagueError(problem.get("error") or f"the build service answered {error.code}",
                              hint=problem.get("hint", "")) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise BuildServiceUnavailable(f"the build service at {self.base_url} does not answer ({reason})",
                                          hint="is the eco-system up? `league status`") from None

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return json.loads(self._call(method, path, body)[0])

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
