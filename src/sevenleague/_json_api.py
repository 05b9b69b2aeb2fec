"""A platform service's HTTP API from Python: HTTPS verified against the eco-system's CA, a bearer
token per call, JSON both ways, and every failure turned into a `LeagueError` the CLI can print.

The build and deploy clients (and the next services') differ only in their name, the
error they raise when the service does not answer, and how they read a refusal.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from .errors import LeagueError
from .kit._tls import client_context

# Gives a bearer token for the service each time it is asked (it may refresh one).
TokenSource = Callable[[], str]


class JsonApi:
    what: ClassVar[str] = "the service"  # how messages name it: "the build service"
    unavailable: ClassVar[type[LeagueError]] = LeagueError
    refused_hint: ClassVar[str] = "`league login` as a user whose role allows it"

    def __init__(self, base_url: str, timeout: float = 10.0, *, ca_file: str | Path | None = None,
                 token: TokenSource | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise LeagueError(f"{self.what} address {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.context = client_context(ca_file) if ca_file else None
        self.token = token

    @classmethod
    def snapshot_endpoint(cls, home: Path, endpoint: str) -> tuple[str, str | None]:
        """The service's URL and the CA, from the snapshot `league up` wrote in `home`."""
        try:
            document = json.loads((home / "ecosystem.json").read_text())
            return document["endpoints"][endpoint], document.get("ca_file")
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            raise cls.unavailable(f"no eco-system with a {cls.what.removeprefix('the ')} runs from {home}",
                                  hint="start it with `league up` (or set LEAGUE_HOME)") from None

    def refusal(self, status: int, problem: dict[str, Any]) -> LeagueError | None:
        """A service-specific error for an answer that is not 2xx, or None for the generic one."""
        return None

    def _open(self, method: str, path: str, data: bytes | None = None, *,
              headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:
        """The service's answer, open for reading; a refusal or no answer as a `LeagueError`."""
        sent = dict(headers or {})
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(  # noqa: S310 - http(s), checked in __init__
            self.base_url + path, data=data, method=method, headers=sent)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout if timeout is None else timeout,  # noqa: S310
                                          context=self.context)
        except urllib.error.HTTPError as error:
            try:
                problem = json.loads(error.read())
            except ValueError:
                problem = {}
            if error.code in (401, 403):
                reason = problem.get("error_description") or problem.get("error") or "no reason"
                raise LeagueError(f"{self.what} refused the request ({error.code}: {reason})",
                                  hint=self.refused_hint) from None
            raise self.refusal(error.code, problem) or LeagueError(
                problem.get("error") or f"{self.what} answered {error.code}",
                hint=problem.get("hint") or None) from None
        except (urllib.error.URLError, OSError) as error:
            raise self._unanswered(error) from None

    def _unanswered(self, error: Exception) -> LeagueError:
        reason = getattr(error, "reason", error)
        return self.unavailable(f"{self.what} at {self.base_url} does not answer ({reason})",
                                hint="is the eco-system up? `league status`")

    def _call(self, method: str, path: str,
              body: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        with self._open(method, path, data, headers={"Content-Type": "application/json"}) as response:
            try:
                return response.read(), dict(response.headers)
            except OSError as error:
                raise self._unanswered(error) from None

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return json.loads(self._call(method, path, body)[0])
