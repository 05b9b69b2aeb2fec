"""The deploy service's HTTP API from Python: for the CLI and tests.

The address comes from the snapshot `league up` wrote. A refusal the user can act on
(the lock is held, a promotion gate failed) is a `DeployRefused` carrying the
service's own words and what it sent along (the lock, the gates).
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

TokenSource = Callable[[], str]


class DeployServiceUnavailable(LeagueError):
    exit_code = 3


class DeployRefused(LeagueError):
    """The deploy service said no for a reason of state: a lock, a gate, nothing to roll back to."""

    exit_code = 5

    def __init__(self, message: str, *, hint: str | None = None, status: int,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.details = details or {}


class DeployClient:
    def __init__(self, base_url: str, timeout: float = 30.0, *, ca_file: str | Path | None = None,
                 token: TokenSource | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.context = client_context(ca_file) if ca_file else None
        self.token = token

    @classmethod
    def from_home(cls, home: Path, token: TokenSource | None = None) -> DeployClient:
        try:
            document = json.loads((home / "ecosystem.json").read_text())
            url = document["endpoints"]["deploy"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            raise DeployServiceUnavailable(f"no eco-system with a deploy service runs from {home}",
                                           hint="start it with `league up` (or set LEAGUE_HOME)") from None
        return cls(url, ca_file=document.get("ca_file"), token=token)

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(  # noqa: S310 - the snapshot's https URL
            self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            try:
                problem = json.loads(error.read())
            except ValueError:
                problem = {}
            if error.code in (401, 403):
                reason = problem.get("error_description") or problem.get("error") or "no reason"
                raise LeagueError(f"the deploy service refused the request ({error.code}: {reason})",
                                  hint="`league login` as a user whose role allows it (developer deploys, "
                                       "operator promotes)") from None
            message = problem.get("error") or f"the deploy service answered {error.code}"
            if error.code in (409, 412):
                raise DeployRefused(message, hint=problem.get("hint") or None, status=error.code,
                                    details=problem) from None
            raise LeagueError(message, hint=problem.get("hint") or None) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DeployServiceUnavailable(f"the deploy service at {self.base_url} does not answer "
                                           f"({reason})",
                                           hint="is the eco-system up? `league status`") from None

    def deploy(self, service: str, environment: str, version: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", "/api/deployments", {
            "service": service, "environment": environment, "version": version})
        return result

    def rollback(self, service: str, environment: str, to: str | None = None) -> dict[str, Any]:
        body = {"service": service, "environment": environment, **({"to": to} if to else {})}
        result: dict[str, Any] = self._json("POST", "/api/rollbacks", body)
        return result

    def promote(self, service: str, source: str, target: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", "/api/promotions",
                                            {"service": service, "from": source, "to": target})
        return result

    def deployment(self, deployment_id: int, after: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/api/deployments/{deployment_id}?after={after}")
        return result

    def releases(self, service: str, environment: str | None = None) -> dict[str, Any]:
        wanted = {"service": service, "environment": environment}
        query = urllib.parse.urlencode({k: v for k, v in wanted.items() if v})
        result: dict[str, Any] = self._json("GET", f"/api/releases?{query}")
        return result

    def audit(self, service: str | None = None, environment: str | None = None,
              after: int = 0) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({k: v for k, v in {"service": service, "environment": environment,
                                                          "after": after}.items() if v})
        entries: list[dict[str, Any]] = self._json("GET", f"/api/audit?{query}")["entries"]
        return entries
