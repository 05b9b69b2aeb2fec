"""The deploy engine: one algorithm for every host driver.

For each batch of instances, each instance goes through the same careful steps:

    drain at the edge -> wait for its requests in flight -> maintenance -> switch the
    release on its host -> wait for its own readiness -> back in rotation -> wait until
    the edge's checks see it up -> verification window on its error rate

Any failure (the host could not install or start it, readiness never came, the edge
never saw it up, the window showed too many errors) rolls back every instance already
switched, in any host, through the same steps (without a window: the previous release
was already judged good). Instances the edge has taken out never get a user's request,
so only a release that is ready and then fails its users costs failed requests, and
only inside the first instance's window.

The engine decides; drivers act on hosts and the edge acts on HAProxy. Both are small
interfaces, so the same engine runs locally (supervisord) and on SSH + systemd hosts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..catalog import Instance, RolloutSpec
from ..ecosystem import probe_http
from ..errors import LeagueError
from ._rollout import Counters, batches, judge
from ._store import FAILED, ROLLED_BACK, SUCCEEDED

POLL_SECONDS = 0.1


class DeployFailed(LeagueError):
    """One step of one instance failed; the message names the instance and the step."""


class HostDriver(Protocol):
    """What the engine needs of a host: have a release there, and run an instance on it."""

    async def prepare(self, package: str, version: str) -> None:
        """Make `version` installable on the host without touching a running instance."""

    async def switch(self, instance: Instance, package: str, version: str) -> None:
        """Stop the instance, make it run `version` ("" = as `league up` runs it), start it."""

    async def prune(self, package: str, keep: int, in_use: set[str]) -> list[str]:
        """Forget releases beyond the newest `keep`, never one in `in_use`; the versions removed."""


class Edge(Protocol):
    """The load balancer's part: take an instance out, put it back, count its answers."""

    async def drain(self, instance: Instance) -> None: ...

    async def in_flight(self, instance: Instance) -> int: ...

    async def maintenance(self, instance: Instance) -> None: ...

    async def ready(self, instance: Instance) -> None: ...

    async def is_up(self, instance: Instance) -> bool: ...

    async def counters(self, instance: Instance) -> Counters: ...


@dataclass(frozen=True)
class Target:
    instance: Instance
    previous: str  # the version it ran before this deployment ("" = as `league up` runs it)


Report = Callable[[str, str, str, str], Awaitable[None]]  # instance, action, state, detail


@dataclass
class Outcome:
    state: str
    reason: str = ""
    switched: list[str] | None = None


class Rollout:
    """One deployment of `version` over `targets`, reporting every step through `report`."""

    def __init__(self, *, package: str, version: str, targets: list[Target], rollout: RolloutSpec,
                 drivers: Mapping[str, HostDriver], edge: Edge, health_path: str, ca_file: str,
                 report: Report, record_version: Callable[[Instance, str], Awaitable[None]],
                 verify: bool = True) -> None:
        self.package = package
        self.version = version
        self.targets = targets
        self.rollout = rollout
        self.drivers = drivers
        self.edge = edge
        self.health_path = health_path
        self.ca_file = ca_file
        self.report = report
        self.record_version = record_version
        self.verify = verify

    async def run(self) -> Outcome:
        try:
            await self._prepare({t.instance.host for t in self.targets if self.version}, self.version)
        except LeagueError as error:
            await self.report("", "prepare", "failed", str(error))
            return Outcome(FAILED, f"prepare: {error}", [])
        switched: list[Target] = []
        groups = batches(self.targets, self.rollout)
        for number, group in enumerate(groups, 1):
            results = await asyncio.gather(*(self._roll(t, self.version, self.verify) for t in group),
                                           return_exceptions=True)
            switched += group
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                reason = "; ".join(str(f) for f in failures)
                await self.report("", "rollback", "started", reason)
                undone = await self._undo(switched)
                state = ROLLED_BACK if undone else FAILED
                return Outcome(state, reason, [t.instance.name for t in switched])
            if number < len(groups) and self.rollout.pause:
                await self.report("", "pause", "started", f"{self.rollout.pause:g}s before the next batch")
                await asyncio.sleep(self.rollout.pause)
        return Outcome(SUCCEEDED, "", [t.instance.name for t in switched])

    async def _prepare(self, hosts: set[str], version: str) -> None:
        async def one(host: str) -> None:
            await self.report(host, "prepare", "started", f"{self.package} {version}")
            await self.drivers[host].prepare(self.package, version)
            await self.report(host, "prepare", "done", f"{self.package} {version}")

        results = await asyncio.gather(*(one(h) for h in sorted(hosts)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, LeagueError):
                raise failure
        if failures:
            raise DeployFailed("; ".join(str(f) for f in failures))

    async def _undo(self, switched: list[Target]) -> bool:
        """Every switched instance back on what it ran before, the same careful way; True if all are."""
        previous = {t.previous for t in switched if t.previous}
        ok = True
        for version in sorted(previous):
            try:
                await self._prepare({t.instance.host for t in switched if t.previous == version}, version)
            except LeagueError as error:
                await self.report("", "rollback", "failed", str(error))
                ok = False
        for target in reversed(switched):
            try:
                await self._roll(target, target.previous, verify=False)
            except (LeagueError, OSError) as error:
                await self.report(target.instance.name, "rollback", "failed", str(error))
                ok = False
        return ok

    async def _roll(self, target: Target, version: str, verify: bool) -> None:
        instance = target.instance
        name = instance.name
        shown = version or "the workspace"
        await self.report(name, "drain", "started", "")
        await self.edge.drain(instance)
        left = await self._wait(lambda: self._drained(instance), self.rollout.drain_timeout)
        await self.report(name, "drain", "done", "" if left else "requests still in flight at the timeout")
        await self.edge.maintenance(instance)
        await self.report(name, "switch", "started", shown)
        try:
            await self.drivers[instance.host].switch(instance, self.package, version)
        except LeagueError as error:
            await self.report(name, "switch", "failed", str(error))
            raise DeployFailed(f"{name}: switching to {shown} failed: {error}") from None
        await self.record_version(instance, version)
        await self.report(name, "switch", "done", shown)
        url = f"{instance.url}{self.health_path}"
        if not await self._wait(lambda: self._ready(url), self.rollout.readiness_timeout):
            await self.report(name, "ready", "failed",
                              f"{url} not ready after {self.rollout.readiness_timeout:g}s")
            raise DeployFailed(f"{name}: {shown} was not ready within {self.rollout.readiness_timeout:g}s")
        await self.report(name, "ready", "done", url)
        before = await self.edge.counters(instance)
        await self.report(name, "in rotation", "started", "")  # from here on, users may reach it
        await self.edge.ready(instance)
        if not await self._wait(lambda: self.edge.is_up(instance), self.rollout.readiness_timeout):
            await self.report(name, "in rotation", "failed", "the edge's checks never saw it up")
            raise DeployFailed(f"{name}: the edge never saw {shown} up")
        await self.report(name, "in rotation", "done", "")
        if verify and self.rollout.verify > 0:
            await self._window(instance, before)

    async def _window(self, instance: Instance, before: Counters) -> None:
        await self.report(instance.name, "verify", "started", f"{self.rollout.verify:g}s")
        started = time.monotonic()
        limit = max(self.rollout.verify, self.rollout.readiness_timeout)
        while True:
            await asyncio.sleep(POLL_SECONDS)
            seen = (await self.edge.counters(instance)).since(before)
            verdict = judge(seen, self.rollout, elapsed=time.monotonic() - started, limit=limit)
            if verdict.done:
                break
        await self.report(instance.name, "verify", "done" if verdict.healthy else "failed", verdict.detail)
        if not verdict.healthy:
            raise DeployFailed(f"{instance.name}: {verdict.detail}")

    async def _drained(self, instance: Instance) -> bool:
        return await self.edge.in_flight(instance) == 0

    async def _ready(self, url: str) -> bool:
        ok, _ = await asyncio.to_thread(probe_http, url, 2.0, self.ca_file)
        return ok

    @staticmethod
    async def _wait(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if await check():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
