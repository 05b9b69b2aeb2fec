"""The schema of `ecosystem.toml`: typed, validated, documented in one place.

Every field carries its description; `docs/catalog.md` is generated from these models,
so the reference page and the validator can never disagree.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ._duration import parse_duration, parse_wait
from ._size import parse_size

NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
NAME_RULE = "names use lowercase letters, digits and '-', start with a letter, at most 32 characters"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
Wait = Annotated[float, BeforeValidator(parse_wait)]  # a duration that may be "0s": no wait
Size = Annotated[int, BeforeValidator(parse_size)]  # bytes, written "1GiB" or "500MB"


class _Section(BaseModel):
    """Strict on purpose: a typo in a key or a quoted number is an error, not a default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EcosystemSpec(_Section):
    name: Name = Field(description="Name of this eco-system; shown in status and external labels.")
    description: str = Field("", description="One line saying what this eco-system runs.")


class HostSpec(_Section):
    driver: Literal["local", "ssh"] = Field(
        "local",
        description='How sevenleague runs things there: "local" is supervisord on this machine, '
                    '"ssh" is systemd and apt on a Debian host reached over SSH.',
    )
    address: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address other processes use to reach this host (IP or DNS name).",
    )
    ssh_user: str = Field("root", pattern=r"^[a-z_][a-z0-9_-]*$",
                          description="User the ssh driver logs in as (it installs packages: root).")
    ssh_port: Port = Field(22, description="Port of the host's SSH server.")
    ssh_key: str = Field("", description="Private key file the ssh driver logs in with, relative to the "
                                         "catalog's folder (default: the SSH agent and ~/.ssh).")
    known_hosts: str = Field("", description="known_hosts file that pins the host's key, relative to the "
                                             "catalog's folder (default: ~/.ssh/known_hosts).")
    node_exporter_port: Port = Field(
        9100,
        description="Port of the host's Prometheus node exporter (CPU, memory, disks, network). "
                    "`league up` runs one, over HTTPS, on the first host with driver \"local\"; "
                    "the deploy service makes each ssh host's packaged one serve HTTPS on this port.")


class EnvironmentSpec(_Section):
    hosts: list[Name] = Field(min_length=1, description="Hosts that belong to this environment.")
    promote_from: Name | None = Field(
        None, description="Environment whose running release `league promote` may bring here.")
    soak: Wait = Field(
        0.0, ge=0.0,
        description='How long a release must have run healthy in `promote_from` before it may be '
                    'promoted here, e.g. "30m".')


class RolloutSpec(_Section):
    batch_size: int = Field(1, ge=1, le=1000, description="Instances switched at the same time.")
    batch_percent: int | None = Field(
        None, ge=1, le=100,
        description="Instances switched at the same time, as a percentage of the environment's "
                    "(rounded up); wins over batch_size when set.")
    pause: Wait = Field(0.0, ge=0.0, description='Wait between two batches, e.g. "30s".')
    drain_timeout: Wait = Field(
        30.0, ge=0.0, description="Longest wait for an instance's requests in flight to finish.")
    readiness_timeout: Duration = Field(
        60.0, gt=0.0, description="Longest wait for a switched instance to answer its readiness path.")
    verify: Wait = Field(
        10.0, ge=0.0,
        description="Verification window: how long a switched instance serves users while its error "
                    "rate is watched, before the next one is touched.")
    max_error_ratio: float = Field(
        0.05, ge=0.0, le=1.0,
        description="Share of 5xx answers of a switched instance, in its window, that fails the deploy.")
    min_requests: int = Field(
        1, ge=1, description="Answers an instance must have given in its window before its error "
                             "ratio counts (fewer: the window is extended until the readiness timeout).")
    keep_releases: int = Field(3, ge=1, le=20, description="Releases kept on each host for rollback.")


class DeploySpec(_Section):
    host: Name = Field("local", description="Host that runs the deploy service.")
    port: Port = Field(9500, description="Port of the deploy service's HTTP API.")
    rollout: RolloutSpec = Field(
        RolloutSpec(), description="How every service rolls out, unless it sets its own.")


class EdgeSpec(_Section):
    host: Name = Field("local", description="Host that runs the edge load balancer (HAProxy).")
    port: Port = Field(description="Port where users reach every service, over HTTPS.")
    http_port: Port | None = Field(
        None, description="Plain HTTP port that only redirects to the HTTPS port (none when unset).")
    stats_port: Port = Field(description="Port of HAProxy's stats page and Prometheus exporter (HTTPS).")


class PrometheusSpec(_Section):
    host: Name = Field("local", description="Host that runs Prometheus.")
    port: Port = Field(description="Port of Prometheus' web UI and HTTP API.")
    scrape_interval: Duration = Field(5.0, description='How often every target is scraped, e.g. "5s".')
    retention: Duration = Field(15 * 86400.0, description='How long samples are kept, e.g. "15d".')


class AlertmanagerSpec(_Section):
    host: Name = Field("local", description="Host that runs Alertmanager.")
    port: Port = Field(description="Port of Alertmanager's web UI and API.")


class LogsSpec(_Section):
    host: Name = Field("local", description="Host that runs the logs service, where every log line is kept.")
    port: Port = Field(9600, description="Port of the logs service's HTTP API: ingest, search, follow.")
    agent_port: Port = Field(
        9610,
        description="Port of the log agent's health and metrics; the agent runs on the first host with "
                    "driver \"local\" and ships every program's log lines to the logs service. Each ssh "
                    "host's journal is followed over SSH by an agent of its own on that same machine, "
                    "listening on `agent_port + 1 + i` for the i-th ssh host in name order (0 first).")
    retention: Duration = Field(7 * 86400.0, description='How long a record is kept, e.g. "7d".')
    max_size: Size = Field(
        1024**3, ge=1024**2,
        description='Most the whole store may take, e.g. "1GiB" or "500MB" (a GiB is 1024^3 bytes, '
                    "a GB 1000^3); beyond it the oldest records go first.")


class HealthCheckSpec(_Section):
    path: str = Field("/readyz", pattern=r"^/", description="Readiness path the edge checks.")
    interval: Duration = Field(0.5, description='Time between two checks of one instance, e.g. "500ms".')
    fall: int = Field(2, ge=1, le=100, description="Failed checks in a row that take an instance out.")
    rise: int = Field(2, ge=1, le=100, description="Passed checks in a row that put it back in.")


class BuildGatesSpec(_Section):
    perf_regression: float = Field(
        0.15, ge=0.0, le=10.0,
        description="Largest drop of a gated performance figure, against the last passed build,"
                    " before the build fails (0.15 is 15%).",
    )
    min_coverage: float = Field(
        0.0, ge=0.0, le=100.0,
        description="Unit-test line coverage (percent) below which the build fails; 0 only reports it.",
    )
    ruff_clean: bool = Field(False, description="Fail the build on any ruff finding instead of reporting it.")


class BuildsSpec(_Section):
    host: Name = Field("local", description="Host that runs the build service and serves the apt repository.")
    port: Port = Field(9300, description="Port of the build service's HTTP API and apt repository.")
    workers: int = Field(1, ge=1, le=8, description="Builds that run at the same time.")
    gates: BuildGatesSpec = Field(
        BuildGatesSpec(), description="Gates for every service that sets none of its own."
    )


class IdentitySpec(_Section):
    host: Name = Field("local", description="Host that runs the identity service (OIDC provider).")
    port: Port = Field(9400, description="Port of the identity service: discovery, JWKS, tokens, login.")
    token_lifetime: Duration = Field(
        600.0,
        description='How long an access token is valid, e.g. "10m": short, so a leaked one soon expires.',
    )


class PkiSpec(_Section):
    leaf_lifetime: Duration = Field(
        86400.0, ge=10.0, le=86400.0,
        description='How long the certificate of an instance or platform service lasts, at most "24h";'
                    " it is renewed at two thirds of that.",
    )


class ServiceSpec(_Section):
    description: str = Field("", description="One line saying what the service does.")
    app: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description='ASGI application to run, as "module:attribute".',
    )
    instances: int = Field(ge=1, le=1000, description="How many instances run, at least 1.")
    port: Port = Field(
        description="Port of the first instance; instance N listens on port + N - 1."
    )
    hosts: list[Name] = Field(
        min_length=1, description="Hosts the instances are spread over, in turn."
    )
    route: str = Field(
        "/", pattern=r"^/", description='Path prefix at the edge that reaches this service.'
    )
    health: HealthCheckSpec = Field(
        HealthCheckSpec(), description="How the edge decides an instance is ready."
    )
    build: BuildGatesSpec | None = Field(
        None, description="This service's build gates (default: the [builds.gates] table)."
    )
    calls: list[Name] = Field(
        default_factory=list,
        description="Services this one calls on its callers' behalf: it gets a service account that "
                    "may exchange a caller's token for one addressed to each of them.",
    )
    package: str = Field(
        "", pattern=r"^([a-z0-9][a-z0-9+.-]+)?$",
        description="Debian package that `league deploy` installs (default: the service's name).")
    rollout: RolloutSpec | None = Field(
        None, description="This service's rollout (default: the [deploy.rollout] table).")


class CatalogSpec(_Section):
    """The whole file, as written."""

    ecosystem: EcosystemSpec
    hosts: dict[Name, HostSpec] = Field(min_length=1, description="Machines, by name.")
    environments: dict[Name, EnvironmentSpec] = Field(
        default_factory=dict, description="Environments (dev, staging, prod...), by name."
    )
    edge: EdgeSpec
    prometheus: PrometheusSpec
    alertmanager: AlertmanagerSpec
    builds: BuildsSpec = Field(BuildsSpec(), description="The build service and the apt repository.")
    identity: IdentitySpec = Field(IdentitySpec(), description="The identity service (OIDC provider).")
    pki: PkiSpec = Field(PkiSpec(), description="The eco-system's CA and the certificates it issues.")
    deploy: DeploySpec = Field(DeploySpec(), description="The deploy service: releases, rollouts, audit.")
    logs: LogsSpec = Field(LogsSpec(), description="The logs service, and the agent that feeds it.")
    services: dict[Name, ServiceSpec] = Field(
        default_factory=dict, description="The apps this eco-system runs, by name."
    )
