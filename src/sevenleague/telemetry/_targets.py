"""What Prometheus scrapes: every instance, HAProxy, the platform processes and every host.

Targets live in file_sd files, one per job, rather than inline in prometheus.yml:
Prometheus picks up a changed file by itself, so adding an instance never needs a
reload, and the files are the readable answer to "what is being watched?".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..catalog import Catalog


@dataclass(frozen=True)
class Target:
    address: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeJob:
    """One Prometheus job, named after what it scrapes (`haproxy`, `hello`, ...)."""

    name: str
    targets: tuple[Target, ...]
    metrics_path: str = "/metrics"
    instances: bool = False  # a service's app instances (the rest are the eco-system's own processes)
    audience: str | None = None  # a kit process: scraped with a token for this audience
    # The target's own `host` (and other) labels win over ours: the agent reports on the
    # programs of its host and labels them so; without this Prometheus would rename them
    # `exported_host`.
    honor_labels: bool = False


def scrape_jobs(catalog: Catalog) -> list[ScrapeJob]:
    spec = catalog.spec

    def platform(name: str, host: str, port: int, *, kit: bool = False, honor_labels: bool = False
                 ) -> ScrapeJob:
        address = f"{catalog.address_of(host)}:{port}"
        return ScrapeJob(name, (Target(address, {"host": host, "component": name}),),
                         audience=name if kit else None, honor_labels=honor_labels)

    jobs = [
        platform("prometheus", spec.prometheus.host, spec.prometheus.port),
        platform("alertmanager", spec.alertmanager.host, spec.alertmanager.port),
        platform("haproxy", spec.edge.host, spec.edge.stats_port),
    ]
    machine = catalog.machine_host
    # The node exporter `league up` runs for this machine (once, however many local hosts name
    # it), and each ssh host's own, which the deploy service makes serve HTTPS there.
    exporters = [*([machine] if machine is not None else []),
                 *(name for name, host in spec.hosts.items() if host.driver == "ssh")]
    if exporters:
        jobs.append(ScrapeJob("node", tuple(
            Target(f"{catalog.address_of(name)}:{spec.hosts[name].node_exporter_port}",
                   {"host": name, "component": "node"}) for name in exporters)))
    jobs += [
        platform("builds", spec.builds.host, spec.builds.port, kit=True),
        platform("identity", spec.identity.host, spec.identity.port, kit=True),
        platform("deploy", spec.deploy.host, spec.deploy.port, kit=True),
        platform("logs", spec.logs.host, spec.logs.port, kit=True),
    ]
    if machine is not None:
        # This machine's agent, and the one per ssh host that runs here too but follows (and is
        # labelled with) that host.
        agents = {machine: spec.logs.agent_port, **catalog.host_agents}
        address = catalog.address_of(machine)
        jobs.append(ScrapeJob("agent", tuple(Target(f"{address}:{port}", {"host": host, "component": "agent"})
                                             for host, port in agents.items()),
                              audience="agent", honor_labels=True))
    for service in spec.services:
        targets = tuple(
            Target(f"{i.address}:{i.port}", {"host": i.host, "service": i.service, "instance_name": i.name})
            for i in catalog.instances_of(service)
        )
        jobs.append(ScrapeJob(service, targets, instances=True, audience=service))
    return jobs


def render_file_sd(job: ScrapeJob) -> str:
    """A file_sd target file: one group per target, so each keeps its own labels."""
    groups = [{"targets": [t.address], "labels": dict(sorted(t.labels.items()))} for t in job.targets]
    return json.dumps(groups, indent=2) + "\n"
