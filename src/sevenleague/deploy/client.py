"""The deploy service's HTTP API from Python: for the CLI and tests.

The address comes from the snapshot `league up` wrote. A refusal the user can act on
(the lock is held, a promotion gate failed) is a `DeployRefused` carrying the
service's own words and what it sent along (the lock, the gates).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from .._json_api import JsonApi, TokenSource
from ..errors import LeagueError


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


class DeployClient(JsonApi):
    what = "the deploy service"
    unavailable = DeployServiceUnavailable
    refused_hint = "`league login` as a user whose role allows it (developer deploys, operator promotes)"

    @classmethod
    def from_home(cls, home: Path, token: TokenSource | None = None) -> DeployClient:
        url, ca_file = cls.snapshot_endpoint(home, "deploy")
        return cls(url, timeout=30.0, ca_file=ca_file, token=token)

    def refusal(self, status: int, problem: dict[str, Any]) -> LeagueError | None:
        if status in (409, 412):
            return DeployRefused(problem.get("error") or f"{self.what} answered {status}",
                                 hint=problem.get("hint") or None, status=status, details=problem)
        return None

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

    def locks(self) -> list[dict[str, Any]]:
        locks: list[dict[str, Any]] = self._json("GET", "/api/locks")["locks"]
        return locks

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
