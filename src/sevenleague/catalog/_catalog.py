"""The catalog as the rest of sevenleague sees it: validated, offset, with instances named."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ._model import CatalogSpec, RolloutSpec, ServiceSpec

# Names the eco-system's own processes, scrape jobs and service accounts use; a service may not
# take them ("node" is the node exporter's scrape job, "node-exporter" its program).
RESERVED_NAMES = frozenset(
    {"edge", "haproxy", "prometheus", "alertmanager", "supervisord", "league", "builds", "show", "identity",
     "renewer", "source", "deploy", "logs", "agent", "node", "node-exporter"}
)


@dataclass(frozen=True)
class Instance:
    """One running copy of a service: the unit the edge balances over and Prometheus scrapes."""

    name: str
    service: str
    index: int
    host: str
    address: str
    port: int

    @property
    def url(self) -> str:
        """Instances serve HTTPS only, with a certificate of the eco-system's CA."""
        return f"https://{self.address}:{self.port}"


def instance_ports(spec: ServiceSpec) -> list[int]:
    return [spec.port + i for i in range(spec.instances)]


def machine_host(spec: CatalogSpec) -> str | None:
    """The host that stands for this machine: the first with driver "local", if any.

    Several local hosts are one machine under several addresses (how a test spreads
    instances), so what is once per machine (the log agent, the node exporter) runs
    once, for this one.
    """
    return next((name for name, host in spec.hosts.items() if host.driver == "local"), None)


def host_agent_ports(spec: CatalogSpec) -> dict[str, int]:
    """The port of the log agent that follows each ssh host's journal, by host.

    `league up` runs these agents on this machine (they read the host's journal over SSH,
    so nothing of sevenleague runs there): the i-th ssh host in name order gets
    `[logs] agent_port + 1 + i`, whether or not it runs an instance yet, so a host's port
    does not move when instances come and go.
    """
    ssh_hosts = sorted(name for name, host in spec.hosts.items() if host.driver == "ssh")
    return {name: spec.logs.agent_port + 1 + i for i, name in enumerate(ssh_hosts)}


def plan_instances(name: str, spec: ServiceSpec, catalog: CatalogSpec) -> list[Instance]:
    """Instances of one service, spread over its hosts in turn (1 -> first host, 2 -> next...)."""
    instances = []
    for i, port in enumerate(instance_ports(spec)):
        host = spec.hosts[i % len(spec.hosts)]
        address = catalog.hosts[host].address
        instances.append(
            Instance(name=f"{name}-{i + 1}", service=name, index=i + 1, host=host, address=address, port=port)
        )
    return instances


@dataclass(frozen=True)
class Catalog:
    """A validated `ecosystem.toml` with `LEAGUE_PORT_OFFSET` already applied to every port."""

    source: Path
    spec: CatalogSpec
    port_offset: int = 0

    @property
    def name(self) -> str:
        return self.spec.ecosystem.name

    @cached_property
    def instances(self) -> list[Instance]:
        return [
            instance
            for name, service in self.spec.services.items()
            for instance in plan_instances(name, service, self.spec)
        ]

    def instances_of(self, service: str) -> list[Instance]:
        return [i for i in self.instances if i.service == service]

    @property
    def machine_host(self) -> str | None:
        return machine_host(self.spec)

    @property
    def host_agents(self) -> dict[str, int]:
        """The ssh hosts whose journal an agent on this machine follows, and its port: those that
        run an instance, when there is a local host to run the agents on."""
        if self.machine_host is None:
            return {}
        used = {instance.host for instance in self.instances}
        return {host: port for host, port in host_agent_ports(self.spec).items() if host in used}

    def address_of(self, host: str) -> str:
        return self.spec.hosts[host].address

    def environment_of(self, host: str) -> str | None:
        """The environment a host belongs to (the catalog allows one), or None."""
        for name, environment in self.spec.environments.items():
            if host in environment.hosts:
                return name
        return None

    def instances_in(self, service: str, environment: str) -> list[Instance]:
        """The instances of `service` a deploy to `environment` switches: those on its hosts."""
        hosts = set(self.spec.environments[environment].hosts)
        return [i for i in self.instances_of(service) if i.host in hosts]

    def rollout_of(self, service: str) -> RolloutSpec:
        return self.spec.services[service].rollout or self.spec.deploy.rollout

    def package_of(self, service: str) -> str:
        return self.spec.services[service].package or service
