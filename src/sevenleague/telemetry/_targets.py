"""What Prometheus scrapes: every instance, HAProxy, the platform processes and the machine.

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
    if machine is not None:
        # The node exporter `league up` runs for this machine. An ssh host is left out: its
        # packaged exporter serves plain HTTP, and nothing in the eco-system talks plain HTTP
        # to anything (it joins this job once ssh hosts get a leaf for their exporter).
        jobs.append(platform("node", machine, spec.hosts[machine].node_exporter_port))
    jobs += [
        platform("builds", spec.builds.host, spec.builds.port, kit=True),
        platform("identity", spec.identity.host, spec.identity.port, kit=True),
        platform("deploy", spec.deploy.host, spec.deploy.port, kit=True),
        platform("logs", spec.logs.host, spec.logs.port, kit=True),
    ]
    if machine is not None:
        jobs.append(platform("agent", machine, spec.logs.agent_port, kit=True, honor_labels=True))
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
