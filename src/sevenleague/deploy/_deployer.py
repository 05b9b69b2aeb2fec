"""What the deploy service does between its HTTP API and the engine.

It reads the catalog the running eco-system was started from (the snapshot names it),
checks what a request asks for against it, takes the lock, and runs the engine as a
task of the service's own event loop: the HTTP answer returns at once with the
deployment's id, and its steps are in the database for anyone to follow.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import Catalog, Instance, load_catalog
from ..ecosystem import StateLayout, probe_http, read_snapshot
from ..errors import LeagueError
from ._edge import HaproxyEdge
from ._engine import HostDriver, Rollout, Target
from ._gates import Facts, GateResult, check_gates
from ._local import LocalDriver
from ._store import FAILED, DeployStore

BuildLookup = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]  # (service, version) -> build


class NotFound(LeagueError):
    """The request names a service, environment or version the eco-system does not have."""


class Conflict(LeagueError):
    """The request cannot be done in the current state (nothing to roll back to, say)."""


class GatesFailed(LeagueError):
    def __init__(self, results: list[GateResult]) -> None:
        self.results = results
        failed = results[-1]
        super().__init__(f"gate {failed.gate} failed: {failed.detail}")


@dataclass(frozen=True)
class Context:
    catalog: Catalog
    layout: StateLayout
    ca_file: Path
    apt_url: str


class Deployer:
    def __init__(self, home: Path, store: DeployStore, find_build: BuildLookup,
                 drivers: Callable[[Context], Mapping[str, HostDriver]] | None = None) -> None:
        self.layout = StateLayout(home)
        self.store = store
        self.find_build = find_build
        self.make_drivers = drivers or default_drivers
        self.tasks: set[asyncio.Task[None]] = set()

    def context(self) -> Context:
        snapshot = read_snapshot(self.layout.snapshot)
        catalog = load_catalog(Path(snapshot["catalog"]), port_offset=int(snapshot.get("port_offset", 0)))
        return Context(catalog, self.layout, Path(snapshot["ca_file"]), snapshot["endpoints"]["apt"])

    @staticmethod
    def check_names(ctx: Context, service: str, environment: str) -> list[Instance]:
        spec = ctx.catalog.spec
        if service not in spec.services:
            raise NotFound(f"no service {service!r} in the catalog",
                           hint=f"services: {', '.join(sorted(spec.services)) or '(none)'}")
        if environment not in spec.environments:
            raise NotFound(f"no environment {environment!r} in the catalog",
                           hint=f"environments: {', '.join(sorted(spec.environments)) or '(none)'}")
        instances = ctx.catalog.instances_in(service, environment)
        if not instances:
            raise NotFound(f"{service} has no instances in {environment}",
                           hint=f"place it on one of {', '.join(spec.environments[environment].hosts)}"
                                f" (services.{service}.hosts)")
        return instances

    def targets(self, service: str, environment: str, instances: list[Instance]) -> list[Target]:
        versions = self.store.versions(service, environment)
        return [Target(i, versions.get(i.name, {}).get("version", "")) for i in instances]

    async def deploy(self, service: str, environment: str, version: str, actor: str, kind: str = "deploy",
                     verify: bool = True) -> int:
        ctx = self.context()
        targets = self.targets(service, environment, self.check_names(ctx, service, environment))
        before = Counter(t.previous for t in targets).most_common(1)[0][0]
        deployment = self.store.start(kind, service, environment, version, before, actor)
        task = asyncio.create_task(self._run(ctx, deployment, service, environment, version, targets, verify))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return deployment

    async def rollback(self, service: str, environment: str, to: str | None, actor: str) -> int:
        ctx = self.context()
        instances = self.check_names(ctx, service, environment)
        if to is None:
            to = self.previous_release(service, environment, instances)
            remote = [i.name for i in instances if ctx.catalog.spec.hosts[i.host].driver != "local"]
            if not to and remote:
                # Before the first release, nothing ran there: going back would stop the service.
                raise Conflict(f"no earlier release of {service} in {environment}: {', '.join(remote)} "
                               "ran nothing before", hint=f"name one: league rollback {service} --env "
                                                          f"{environment} --to VERSION")
        return await self.deploy(service, environment, to, actor, kind="rollback", verify=False)

    def previous_release(self, service: str, environment: str, instances: list[Instance]) -> str:
        """The release before the one running now: what the last deployment that brought it replaced."""
        running = {v["version"] for n, v in self.store.versions(service, environment).items()
                   if n in {i.name for i in instances}}
        for deployment in self.store.history(service, environment, limit=200):
            if deployment["state"] == "succeeded" and deployment["version"] in running \
                    and deployment["from_version"] not in running:
                return str(deployment["from_version"])
        raise Conflict(f"no earlier release of {service} in {environment} to roll back to",
                       hint=f"name one: league rollback {service} --env {environment} --to VERSION")

    async def promote(self, service: str, source: str, target: str,
                      actor: str) -> tuple[int, list[GateResult]]:
        ctx = self.context()
        self.check_names(ctx, service, target)
        if source not in ctx.catalog.spec.environments:
            raise NotFound(f"no environment {source!r} in the catalog")
        results = check_gates(await self.facts(ctx, service, source, target))
        if not all(r.passed for r in results):
            self.store.audit(actor, "promote", service, target, "refused",
                             detail=f"from {source}: gate {results[-1].gate}: {results[-1].detail}")
            raise GatesFailed(results)
        first = ctx.catalog.instances_in(service, source)[0].name
        version = self.store.versions(service, source)[first]["version"]
        deployment = await self.deploy(service, target, str(version), actor, kind="promote")
        return deployment, results

    async def facts(self, ctx: Context, service: str, source: str, target: str) -> Facts:
        spec = ctx.catalog.spec.environments[target]
        instances = ctx.catalog.instances_in(service, source)
        versions = self.store.versions(service, source)
        probes = await asyncio.gather(*(asyncio.to_thread(
            probe_http, i.url + ctx.catalog.spec.services[service].health.path, 2.0, str(ctx.ca_file))
            for i in instances))
        unhealthy = tuple(i.name for i, (ok, _) in zip(instances, probes, strict=True) if not ok)
        facts = Facts(service=service, source=source, target=target, promote_from=spec.promote_from,
                      soak=spec.soak, versions=versions, instances=tuple(i.name for i in instances),
                      unhealthy=unhealthy, build=None, now=time.time())
        if facts.release is not None:
            build = await self.find_build(service, facts.release)
            facts = Facts(**{**facts.__dict__, "build": build})
        return facts

    async def _run(self, ctx: Context, deployment: int, service: str, environment: str, version: str,
                   targets: list[Target], verify: bool) -> None:
        async def report(instance: str, action: str, state: str, detail: str) -> None:
            await asyncio.to_thread(self.store.step, deployment, instance, action, state, detail)

        async def record(instance: Instance, running: str) -> None:
            await asyncio.to_thread(self.store.set_version, service, environment, instance.name, running)

        catalog = ctx.catalog
        rollout = catalog.rollout_of(service)
        package = catalog.package_of(service)
        todo = [t for t in targets if t.previous != version]
        drivers: Mapping[str, HostDriver] = {}
        try:
            if not todo:
                await report("", "nothing to do", "done", f"every instance runs {version} already")
                self.store.finish(deployment, "succeeded", f"every instance ran {version} already")
                return
            drivers = self.make_drivers(ctx)
            outcome = await Rollout(
                package=package, version=version, targets=todo, rollout=rollout, drivers=drivers,
                edge=HaproxyEdge(ctx.layout.haproxy.admin_socket),
                health_path=catalog.spec.services[service].health.path, ca_file=str(ctx.ca_file),
                report=report, record_version=record, verify=verify).run()
            if outcome.state == "succeeded":
                in_use = {v["version"] for v in self.store.versions(service).values()}
                for host in sorted({t.instance.host for t in todo}):
                    removed = await drivers[host].prune(package, rollout.keep_releases, in_use)
                    if removed:
                        await report(host, "prune", "done", ", ".join(removed))
            self.store.finish(deployment, outcome.state, outcome.reason)
        except Exception as error:  # the deployment must end and say why, whatever happened
            await report("", "error", "failed", f"{type(error).__name__}: {error}")
            self.store.finish(deployment, FAILED, f"{type(error).__name__}: {error}")
        finally:
            for driver in drivers.values():
                close = getattr(driver, "close", None)
                if close is not None:
                    await close()


def default_drivers(ctx: Context) -> dict[str, HostDriver]:
    drivers: dict[str, HostDriver] = {}
    for name, host in ctx.catalog.spec.hosts.items():
        if host.driver == "local":
            drivers[name] = LocalDriver(ctx.layout, ctx.apt_url, ctx.ca_file)
        else:
            from ._ssh import SshDriver

            drivers[name] = SshDriver(name, host, ctx)
    return drivers

