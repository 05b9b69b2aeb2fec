"""Describe the whole eco-system of one catalog: files to write, programs to run.

Pure: the catalog, the layout and the tool paths go in, a `Plan` comes out. Nothing
here reads or touches the machine; `apply_plan` does that, and decides nothing.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..build._paths import CACHE_ENV
from ..build._settings import render_build_settings
from ..catalog import Catalog
from ..hosts import Program
from ..proxy import backend_name, haproxy_argv, render_haproxy_cfg
from ..telemetry import (
    ScrapeJob,
    alertmanager_argv,
    node_exporter_argv,
    prometheus_argv,
    render_alertmanager_yml,
    render_file_sd,
    render_prometheus_yml,
    render_web_config,
    scrape_jobs,
    target_file,
)
from ._layout import StateLayout, Tools
from ._releases import InstanceRelease

# How long an instance may take to finish its in-flight requests once it stops accepting.
GRACEFUL_SECONDS = 20.0


@dataclass(frozen=True)
class RenderedFile:
    path: Path
    text: str
    mode: int = 0o644
    checker: str = ""  # "haproxy", "prometheus", "alertmanager": the tool that vets it


@dataclass(frozen=True)
class Listen:
    """A port something in the plan will listen on, and the catalog key that asked for it."""

    address: str
    port: int
    owner: str


@dataclass(frozen=True)
class CertificateRequest:
    """A certificate the eco-system's CA issues (and renews) for one process, by name."""

    name: str
    dns_names: tuple[str, ...]
    ips: tuple[str, ...]
    edge: bool = False
    lifetime: float = 86400.0  # seconds; the edge's own lifetime is the PKI's (90 days)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dns_names": list(self.dns_names), "ips": list(self.ips),
                "edge": self.edge, "lifetime": self.lifetime}


@dataclass(frozen=True)
class Plan:
    files: tuple[RenderedFile, ...]
    programs: tuple[Program, ...]
    listens: tuple[Listen, ...]
    snapshot: dict[str, Any]
    certificates: tuple[CertificateRequest, ...] = ()


def drain_seconds(interval: float, fall: int) -> float:
    """Long enough for the edge's checks to see a draining instance fail `fall` times."""
    return round(interval * (fall + 1), 3)


# Environment every kit process gets: whom to trust, and who issues the tokens it checks.
CA_FILE_ENV = "LEAGUE_CA_FILE"
ISSUER_ENV = "LEAGUE_OIDC_ISSUER"
SERVICE_URLS_ENV = "LEAGUE_SERVICE_URLS"
CLIENT_ID_ENV = "LEAGUE_CLIENT_ID"
CLIENT_SECRET_FILE_ENV = "LEAGUE_CLIENT_SECRET_FILE"  # noqa: S105 - a variable name
# The git hook's service account: it queues builds, nothing else.
SOURCE_CLIENT = "source"
# Prometheus' service account: it reads every kit process' /metrics, nothing else.
SCRAPE_CLIENT = "prometheus"
# The deploy service's account: it reads builds (a promotion's gate), nothing else.
DEPLOY_CLIENT = "deploy"
# The log agent's account: it writes records to the logs service, nothing else.
AGENT_CLIENT = "agent"
# What a service calling another on a user's behalf may ask for there: the user's own
# roles still cap it, and administering another service is never delegated.
DELEGATED_ACTIONS = ("read", "write", "operate")


def trust_environment(catalog: Catalog, layout: StateLayout) -> dict[str, str]:
    return {CA_FILE_ENV: str(layout.ca_file), ISSUER_ENV: identity_url(catalog)}


def edge_url(catalog: Catalog) -> str:
    return _url(catalog.address_of(catalog.spec.edge.host), catalog.spec.edge.port, "")


def calls_environment(catalog: Catalog, layout: StateLayout, name: str) -> dict[str, str]:
    """How a service reaches the services it calls (through the edge) and the account it calls with."""
    calls = catalog.spec.services[name].calls
    if not calls:
        return {}
    edge = edge_url(catalog)
    urls = {callee: edge + catalog.spec.services[callee].route.rstrip("/") for callee in calls}
    return {SERVICE_URLS_ENV: json.dumps(urls, sort_keys=True), CLIENT_ID_ENV: name,
            CLIENT_SECRET_FILE_ENV: str(layout.client_secret(name))}


def wanted_clients(catalog: Catalog, scraped: list[str]) -> list[dict[str, object]]:
    """The service accounts the identity service keeps: the git hook's, and one per calling service."""
    clients: list[dict[str, object]] = [
        {"name": SOURCE_CLIENT, "audiences": ["builds"], "scopes": ["builds.read", "builds.write"]},
        {"name": SCRAPE_CLIENT, "audiences": scraped, "scopes": [f"{name}.metrics" for name in scraped]},
        {"name": DEPLOY_CLIENT, "audiences": ["builds"], "scopes": ["builds.read"]},
        {"name": AGENT_CLIENT, "audiences": ["logs"], "scopes": ["logs.write"]}]
    for name, service in sorted(catalog.spec.services.items()):
        if service.calls:
            clients.append({"name": name, "audiences": sorted(service.calls),
                            "scopes": [f"{callee}.{action}" for callee in sorted(service.calls)
                                       for action in DELEGATED_ACTIONS]})
    return clients


def scrape_audiences(jobs: list[ScrapeJob]) -> list[str]:
    """Every kit process Prometheus scrapes, by the audience its token must name."""
    return [job.audience for job in jobs if job.audience]


def render_identity_clients(catalog: Catalog, scraped: list[str]) -> str:
    return json.dumps({"clients": wanted_clients(catalog, scraped)}, indent=2) + "\n"


def instance_programs(catalog: Catalog, tools: Tools, layout: StateLayout,
                      releases: Mapping[str, InstanceRelease] | None = None) -> list[Program]:
    """Every app instance under kit.serve, serving HTTPS only with its own certificate, checking tokens.

    An instance a deploy switched to a release runs that release's venv; the others run
    from the workspace (`tools.python`).
    """
    releases = releases or {}
    programs = []
    trust = trust_environment(catalog, layout)
    for name, service in catalog.spec.services.items():
        drain = drain_seconds(service.health.interval, service.health.fall)
        calls = calls_environment(catalog, layout, name)
        for instance in catalog.instances_of(name):
            if catalog.spec.hosts[instance.host].driver != "local":
                continue  # systemd runs it there, once a deploy has installed it
            programs.append(Program(
                name=instance.name,
                argv=(
                    str(releases[instance.name].python if instance.name in releases else tools.python),
                    "-m", "sevenleague.kit.serve", service.app,
                    "--host", instance.address, "--port", str(instance.port),
                    "--drain-seconds", str(drain), "--graceful-seconds", str(GRACEFUL_SECONDS),
                    "--service", name, "--instance", instance.name,
                    "--tls-bundle", str(layout.tls_bundle(instance.name)),
                ),
                environment={"LEAGUE_SERVICE": name, "LEAGUE_INSTANCE": instance.name, **trust, **calls},
                stop_timeout=drain + GRACEFUL_SECONDS + 5,
                kind="instance",
            ))
    return programs


def identity_url(catalog: Catalog) -> str:
    return _url(catalog.address_of(catalog.spec.identity.host), catalog.spec.identity.port, "")


def identity_program(catalog: Catalog, layout: StateLayout, tools: Tools) -> Program:
    """The OIDC provider: its keys and users under the state directory."""
    spec = catalog.spec.identity
    return platform_service("identity", "sevenleague.identity.service:app", catalog.address_of(spec.host),
                            spec.port, layout, tools,
                            {"LEAGUE_IDENTITY_TOKEN_LIFETIME": str(int(spec.token_lifetime)),
                             "LEAGUE_IDENTITY_CLIENTS": str(layout.identity_clients),
                             **trust_environment(catalog, layout)})


def renewer_program(layout: StateLayout, tools: Tools) -> Program:
    """Renews every certificate at two thirds of its life while the eco-system runs."""
    return Program(name="renewer", argv=(str(tools.python), "-m", "sevenleague.pki.renewer",
                                         "--home", str(layout.home)), stop_timeout=5)


def _url(address: str, port: int, path: str = "/") -> str:
    """Every address in the eco-system is https: there is no plain-HTTP path between its parts."""
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}{path}"


def builds_url(catalog: Catalog) -> str:
    return _url(catalog.address_of(catalog.spec.builds.host), catalog.spec.builds.port, "")


def platform_service(name: str, app: str, address: str, port: int, layout: StateLayout, tools: Tools,
                     environment: dict[str, str], *, service: str = "", instance: str = "") -> Program:
    """A platform service is a kit app like any other, one instance, its data under the state directory.

    Like an instance it serves HTTPS only, with its own leaf, and checks tokens from the
    identity service (`environment` brings `LEAGUE_OIDC_ISSUER`). Program and leaf are
    `name`; the service is `name` too and the instance `name-1`, unless given.
    """
    service, instance = service or name, instance or f"{name}-1"
    return Program(
        name=name,
        argv=(str(tools.python), "-m", "sevenleague.kit.serve", app, "--host", address, "--port", str(port),
              "--drain-seconds", "0", "--graceful-seconds", "5",
              "--service", service, "--instance", instance, "--tls-bundle", str(layout.tls_bundle(name))),
        environment={"LEAGUE_HOME": str(layout.home), "LEAGUE_SERVICE": service, "LEAGUE_INSTANCE": instance,
                     **environment},
        stop_timeout=20,
    )


def deploy_url(catalog: Catalog) -> str:
    return _url(catalog.address_of(catalog.spec.deploy.host), catalog.spec.deploy.port, "")


def deploy_program(catalog: Catalog, layout: StateLayout, tools: Tools) -> Program:
    """The deploy service: it asks the build service about builds with its own account."""
    spec = catalog.spec.deploy
    return platform_service("deploy", "sevenleague.deploy.service:app", catalog.address_of(spec.host),
                            spec.port, layout, tools,
                            {SERVICE_URLS_ENV: json.dumps({"builds": builds_url(catalog)}),
                             CLIENT_ID_ENV: DEPLOY_CLIENT,
                             CLIENT_SECRET_FILE_ENV: str(layout.client_secret(DEPLOY_CLIENT)),
                             **trust_environment(catalog, layout)})


def builds_program(catalog: Catalog, layout: StateLayout, tools: Tools) -> Program:
    """The build service: queue, pipeline, artifacts and the apt repository."""
    spec = catalog.spec.builds
    shared_cache = layout.builds.cache != layout.builds.root / "cache"
    return platform_service("builds", "sevenleague.build.service:app", catalog.address_of(spec.host),
                            spec.port, layout, tools,
                            {**({CACHE_ENV: str(layout.builds.cache)} if shared_cache else {}),
                             **trust_environment(catalog, layout)})


def logs_url(catalog: Catalog) -> str:
    return _url(catalog.address_of(catalog.spec.logs.host), catalog.spec.logs.port, "")


def logs_program(catalog: Catalog, layout: StateLayout, tools: Tools) -> Program:
    """The logs service: every record the agent ships, kept `retention` long and `max_size` big."""
    spec = catalog.spec.logs
    return platform_service("logs", "sevenleague.logs.service:app", catalog.address_of(spec.host),
                            spec.port, layout, tools,
                            {"LEAGUE_LOGS_RETENTION": str(spec.retention),
                             "LEAGUE_LOGS_MAX_BYTES": str(spec.max_size),
                             **trust_environment(catalog, layout)})


def program_owners(programs: list[Program]) -> dict[str, dict[str, str]]:
    """Whose lines each program's log holds: a kit process says it in its environment, HAProxy is
    the edge, any other program is its own service and instance."""
    owners = {}
    for program in programs:
        if "LEAGUE_SERVICE" in program.environment:
            service, instance = program.environment["LEAGUE_SERVICE"], program.environment["LEAGUE_INSTANCE"]
        elif program.name == "haproxy":
            service = instance = "edge"
        else:
            service = instance = program.name
        owners[program.name] = {"service": service, "instance": instance}
    return owners


def shipping_environment(catalog: Catalog, layout: StateLayout) -> dict[str, str]:
    """What every log agent needs to ship: the logs service's URL and the `agent` account."""
    return {SERVICE_URLS_ENV: json.dumps({"logs": logs_url(catalog)}),
            CLIENT_ID_ENV: AGENT_CLIENT,
            CLIENT_SECRET_FILE_ENV: str(layout.client_secret(AGENT_CLIENT)),
            **trust_environment(catalog, layout)}


def agent_program(catalog: Catalog, layout: StateLayout, tools: Tools, machine: str,
                  others: list[Program]) -> Program:
    """The log agent of this machine: it follows every program's log in supervisord's log directory
    and ships the lines to the logs service with its own account.

    It learns whose lines a log holds from the plan itself (`others` and its own), so a
    program added to the plan is followed from the `league up` that adds it.
    """
    agent = platform_service(AGENT_CLIENT, "sevenleague.agent.service:app", catalog.address_of(machine),
                             catalog.spec.logs.agent_port, layout, tools, {})
    return replace(agent, environment={  # its own log is followed too: it names itself
        **agent.environment,
        "LEAGUE_AGENT_HOST": machine,
        "LEAGUE_AGENT_LOG_DIR": str(layout.logs),
        "LEAGUE_AGENT_PROGRAMS": json.dumps(program_owners([*others, agent]), sort_keys=True),
        "LEAGUE_AGENT_STATE_DIR": str(layout.agent),
        "LEAGUE_AGENT_SUPERVISOR_SOCKET": str(layout.supervisor_socket),
        **shipping_environment(catalog, layout),
    })


def host_agent_name(host: str) -> str:
    """The program, instance and leaf of the agent that follows ssh host `host`'s journal."""
    return f"{AGENT_CLIENT}-{host}"


def _ssh_option_path(path: Path) -> str:
    """A file as the value of an `ssh -o` option: `%` starts a token there, a space separates values."""
    text = str(path).replace("%", "%%")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def ssh_journal_command(catalog: Catalog, host: str) -> list[str]:
    """OpenSSH's client running journalctl on ssh host `host`, logged in as the ssh driver does.

    The host's user, port, key and known_hosts (the files relative to the catalog's
    folder); never a question (BatchMode), never a host key it does not know
    (StrictHostKeyChecking), and a dead connection noticed within 30 s (three unanswered
    keep-alives 10 s apart), after which the agent connects again.
    """
    spec = catalog.spec.hosts[host]
    base = catalog.source.parent
    argv = ["ssh"]
    if spec.ssh_key:
        argv += ["-o", f"IdentityFile={_ssh_option_path((base / spec.ssh_key).absolute())}",
                 "-o", "IdentitiesOnly=yes"]
    if spec.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={_ssh_option_path((base / spec.known_hosts).absolute())}"]
    return [*argv, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=10", "-p", str(spec.ssh_port), f"{spec.ssh_user}@{spec.address}",
            "journalctl"]


def host_units(catalog: Catalog, host: str) -> dict[str, dict[str, str]]:
    """Whose lines each instance unit of an ssh host logs: `PACKAGE@PORT` -> its service and instance."""
    return {f"{catalog.package_of(i.service)}@{i.port}": {"service": i.service, "instance": i.name}
            for i in catalog.instances if i.host == host}


def host_agent_programs(catalog: Catalog, layout: StateLayout, tools: Tools) -> list[Program]:
    """One log agent per ssh host that runs instances, here on this machine, following that host's
    journal over SSH (the instances' units only) with a checkpoint of its own.

    Nothing of sevenleague needs installing on the host. Each listens next to this machine's
    agent (`[logs] agent_port + 1 + i`) for its /readyz and /metrics, which say nothing
    about SSH: the agent is ready while the host is down, and reconnects by itself.
    """
    machine = catalog.machine_host
    if machine is None:
        return []
    programs = []
    for host, port in catalog.host_agents.items():
        name = host_agent_name(host)
        agent = platform_service(name, "sevenleague.agent.service:app", catalog.address_of(machine), port,
                                 layout, tools, {}, service=AGENT_CLIENT, instance=name)
        programs.append(replace(agent, environment={
            **agent.environment,
            "LEAGUE_AGENT_HOST": host,
            "LEAGUE_AGENT_SOURCE": "journal",
            "LEAGUE_AGENT_JOURNAL_COMMAND": json.dumps(ssh_journal_command(catalog, host)),
            "LEAGUE_AGENT_PROGRAMS": json.dumps(host_units(catalog, host), sort_keys=True),
            "LEAGUE_AGENT_STATE_DIR": str(layout.agent / host),
            **shipping_environment(catalog, layout),
        }))
    return programs


def node_exporter_program(catalog: Catalog, layout: StateLayout, tools: Tools, machine: str) -> Program:
    """The Debian package's node exporter, for this machine, serving HTTPS with its own leaf."""
    return Program("node-exporter", node_exporter_argv(
        tools.node_exporter, catalog.address_of(machine), catalog.spec.hosts[machine].node_exporter_port,
        layout.node_exporter), stop_timeout=10)


def render_snapshot(catalog: Catalog, layout: StateLayout) -> dict[str, Any]:
    """The map `league status` reads: what runs where and how to ask it if it is healthy."""
    spec = catalog.spec
    edge = catalog.address_of(spec.edge.host)
    prom = catalog.address_of(spec.prometheus.host)
    am = catalog.address_of(spec.alertmanager.host)
    ca = str(layout.ca_file)
    machine = catalog.machine_host
    on_machine: list[dict[str, Any]] = []
    machine_endpoints: dict[str, str] = {}
    if machine is not None:
        address = catalog.address_of(machine)
        exporter_port = spec.hosts[machine].node_exporter_port
        machine_endpoints = {"agent": _url(address, spec.logs.agent_port, ""),
                             "node_exporter": _url(address, exporter_port)}
        agents = {"agent": spec.logs.agent_port,  # this machine's, then one per ssh host (not SSH-bound)
                  **{host_agent_name(host): port for host, port in catalog.host_agents.items()}}
        on_machine = [
            *({"name": name, "port": port, "probe": {"http": _url(address, port, "/readyz"), "ca": ca}}
              for name, port in agents.items()),
            # its root page: /metrics would make a status probe run every collector
            {"name": "node-exporter", "port": exporter_port,
             "probe": {"http": _url(address, exporter_port), "ca": ca}},
        ]
    return {
        "ecosystem": catalog.name,
        "catalog": str(catalog.source.absolute()),
        "port_offset": catalog.port_offset,
        "home": str(layout.home),
        "haproxy_admin_socket": str(layout.haproxy.admin_socket),
        "ca_file": str(layout.ca_file),
        "endpoints": {
            "edge": _url(edge, spec.edge.port),
            **({"edge_http": f"http://{edge}:{spec.edge.http_port}/"} if spec.edge.http_port else {}),
            "prometheus": _url(prom, spec.prometheus.port),
            "alertmanager": _url(am, spec.alertmanager.port),
            "haproxy_stats": _url(edge, spec.edge.stats_port, "/stats"),
            "builds": builds_url(catalog),
            "apt": builds_url(catalog) + "/apt/",
            "identity": identity_url(catalog),
            "deploy": deploy_url(catalog),
            "logs": logs_url(catalog),
            **machine_endpoints,
        },
        "processes": [
            {"name": "haproxy", "port": spec.edge.port, "probe": {"tcp": [edge, spec.edge.port]}},
            {"name": "prometheus", "port": spec.prometheus.port,
             "probe": {"http": _url(prom, spec.prometheus.port, "/-/ready"), "ca": ca}},
            {"name": "alertmanager", "port": spec.alertmanager.port,
             "probe": {"http": _url(am, spec.alertmanager.port, "/-/ready"), "ca": ca}},
            {"name": "builds", "port": spec.builds.port,
             "probe": {"http": builds_url(catalog) + "/readyz", "ca": ca}},
            {"name": "identity", "port": spec.identity.port,
             "probe": {"http": identity_url(catalog) + "/readyz", "ca": ca}},
            {"name": "deploy", "port": spec.deploy.port,
             "probe": {"http": deploy_url(catalog) + "/readyz", "ca": ca}},
            {"name": "logs", "port": spec.logs.port,
             "probe": {"http": logs_url(catalog) + "/readyz", "ca": ca}},
            *on_machine,
        ],
        "instances": [
            {
                "name": i.name, "service": i.service, "host": i.host, "port": i.port,
                "url": i.url, "backend": backend_name(i.service),
                "probe": {"http": i.url + spec.services[i.service].health.path, "ca": ca},
            }
            for i in catalog.instances if spec.hosts[i.host].driver == "local"
        ],
    }


def plan_listens(catalog: Catalog) -> list[Listen]:
    spec = catalog.spec
    edge = catalog.address_of(spec.edge.host)
    machine = catalog.machine_host
    on_machine = [] if machine is None else [
        Listen(catalog.address_of(machine), spec.logs.agent_port, "logs.agent_port"),
        *(Listen(catalog.address_of(machine), port, f"logs.agent_port ({host_agent_name(host)})")
          for host, port in catalog.host_agents.items()),
        Listen(catalog.address_of(machine), spec.hosts[machine].node_exporter_port,
               f"hosts.{machine}.node_exporter_port"),
    ]
    return [
        Listen(edge, spec.edge.port, "edge.port"),
        Listen(edge, spec.edge.stats_port, "edge.stats_port"),
        *([Listen(edge, spec.edge.http_port, "edge.http_port")] if spec.edge.http_port else []),
        Listen(catalog.address_of(spec.prometheus.host), spec.prometheus.port, "prometheus.port"),
        Listen(catalog.address_of(spec.alertmanager.host), spec.alertmanager.port, "alertmanager.port"),
        Listen(catalog.address_of(spec.builds.host), spec.builds.port, "builds.port"),
        Listen(catalog.address_of(spec.identity.host), spec.identity.port, "identity.port"),
        Listen(catalog.address_of(spec.deploy.host), spec.deploy.port, "deploy.port"),
        Listen(catalog.address_of(spec.logs.host), spec.logs.port, "logs.port"),
        *on_machine,
        *(Listen(i.address, i.port, f"services.{i.service}.port ({i.name})") for i in catalog.instances
          if spec.hosts[i.host].driver == "local"),
    ]


def _address_names(address: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An address is an IP SAN when it parses as one, a DNS SAN otherwise."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return (address,), ()
    return (), (address,)


def node_exporter_certificate(host: str) -> str:
    """The leaf of an ssh host's node exporter (this machine's is plain `node-exporter`)."""
    return f"node-exporter-{host}"


def certificate_requests(catalog: Catalog) -> list[CertificateRequest]:
    """One leaf per instance and platform service, named as the catalog names them, the edge's, and
    one per ssh host's node exporter (the deploy service carries it there)."""
    spec = catalog.spec

    def request(name: str, host: str, *aliases: str, edge: bool = False) -> CertificateRequest:
        dns, ips = _address_names(catalog.address_of(host))
        names = tuple(dict.fromkeys((*aliases, name, "localhost", *dns)))
        return CertificateRequest(name, names, tuple(dict.fromkeys((*ips, "127.0.0.1"))), edge,
                                  spec.pki.leaf_lifetime)

    requests = [
        request("edge", spec.edge.host, edge=True),
        request("prometheus", spec.prometheus.host),
        request("alertmanager", spec.alertmanager.host),
        request("builds", spec.builds.host),
        request("identity", spec.identity.host),
        request("deploy", spec.deploy.host),
        request("logs", spec.logs.host),
    ]
    if catalog.machine_host is not None:
        requests += [request("agent", catalog.machine_host), request("node-exporter", catalog.machine_host)]
        requests += [request(host_agent_name(host), catalog.machine_host, AGENT_CLIENT)
                     for host in catalog.host_agents]
    requests += [request(node_exporter_certificate(name), name) for name, host in spec.hosts.items()
                 if host.driver == "ssh"]
    requests += [request(i.name, i.host, i.service) for i in catalog.instances]
    return requests


def render_plan(catalog: Catalog, layout: StateLayout, tools: Tools,
                releases: Mapping[str, InstanceRelease] | None = None) -> Plan:
    jobs = scrape_jobs(catalog)
    scraped = scrape_audiences(jobs)
    files = [
        RenderedFile(layout.haproxy.config, render_haproxy_cfg(catalog, layout.haproxy),
                     checker="haproxy"),
        *(RenderedFile(target_file(layout.prometheus, job), render_file_sd(job)) for job in jobs),
        RenderedFile(layout.prometheus.config,
                     render_prometheus_yml(catalog, jobs, layout.prometheus), checker="prometheus"),
        RenderedFile(layout.alertmanager.config, render_alertmanager_yml(catalog),
                     checker="alertmanager"),
        RenderedFile(layout.builds.settings, render_build_settings(catalog, builds_url(catalog) + "/apt/")),
        RenderedFile(layout.identity_clients, render_identity_clients(catalog, scraped)),
        *(RenderedFile(tls.web_config, render_web_config(tls))
          for tls in (layout.prometheus.tls, layout.alertmanager.tls) if tls is not None),
    ]
    machine = catalog.machine_host
    platform = [
        Program("haproxy", haproxy_argv(tools.haproxy, layout.haproxy), stop_timeout=10),
        Program("prometheus", prometheus_argv(tools.prometheus, catalog, layout.prometheus),
                stop_timeout=30),
        Program("alertmanager", alertmanager_argv(tools.alertmanager, catalog, layout.alertmanager),
                stop_timeout=10),
        builds_program(catalog, layout, tools),
        identity_program(catalog, layout, tools),
        deploy_program(catalog, layout, tools),
        logs_program(catalog, layout, tools),
        renewer_program(layout, tools),
    ]
    instances = instance_programs(catalog, tools, layout, releases)
    if machine is not None:
        files.append(RenderedFile(layout.node_exporter.web_config, render_web_config(layout.node_exporter)))
        platform.append(node_exporter_program(catalog, layout, tools, machine))
        platform += host_agent_programs(catalog, layout, tools)
        platform.append(agent_program(catalog, layout, tools, machine, platform + instances))
    listens = plan_listens(catalog)
    snapshot = render_snapshot(catalog, layout)
    snapshot["listens"] = [[listen.address, listen.port] for listen in listens]
    certificates = certificate_requests(catalog)
    snapshot["certificates"] = [c.to_json() for c in certificates]
    snapshot["scrape_tokens"] = {"client": SCRAPE_CLIENT, "directory": str(layout.scrape_credentials),
                                 "audiences": scraped}
    return Plan(
        files=tuple(files),
        programs=tuple(platform + instances),
        listens=tuple(listens),
        snapshot=snapshot,
        certificates=tuple(certificates),
    )
