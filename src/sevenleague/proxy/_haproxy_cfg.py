"""Render haproxy.cfg from the catalog: the edge of the eco-system.

Decisions, each visible in the output:
- round robin over a service's instances, each checked on its readiness path, so an
  instance that starts, drains or dies leaves the rotation by itself;
- `retry-on` connection failures, empty responses and response timeouts, with
  `redispatch` to another instance, but only for idempotent methods: a POST that may
  have reached the app is never sent twice;
- a refused connection takes the instance out at once (`observe layer4`), without
  waiting for the next health check;
- the edge gives every request an `X-Request-ID` (kept when the caller sent a sane
  one), so one id follows a request through every service;
- a runtime API socket (admin level, `expose-fd listeners`) for draining instances and
  for seamless reloads: the new worker takes over the listening sockets, no connection
  is refused during a reload;
- `idle-close-on-response`: during a reload the old worker keeps its idle keep-alive
  connections open and closes each one after answering the next request on it (with
  `Connection: close`), instead of closing them at once and racing a client that is
  just sending on one; `hard-stop-after` bounds how long an old worker may linger;
- HTTPS only: the edge presents its own certificate (TLS 1.2 and newer), tells browsers
  to stay on HTTPS (HSTS), and its plain HTTP port, when the catalog has one, answers
  every request with a redirect to the same path over HTTPS and nothing else. The stats
  page and the Prometheus exporter are served over the same certificate.
"""

from __future__ import annotations

from pathlib import Path

from ..catalog import Catalog, ServiceSpec, format_duration
from ._paths import HaproxyPaths

IDEMPOTENT = "METH_GET || METH_HEAD || METH_PUT || METH_DELETE || METH_OPTIONS || METH_TRACE"
SANE_REQUEST_ID = r"^[A-Za-z0-9._:+=@/-]{1,128}$"
# One JSON object per request, like every other process' log lines. HAProxy 2.6 has no
# JSON encoder for log fields, so the object is spelled out; %{+E} escapes quotes and
# backslashes in the two fields a client controls.
LOG_FORMAT = (
    "'{"
    '"ts":"%[date,utime(%Y-%m-%dT%H:%M:%SZ)]","accept_ms":%Ts%ms,"level":"info",'
    '"service":"edge","client":"%ci","backend":"%b","server":"%s","status":%ST,"bytes":%B,'
    '"duration_ms":%Ta,"method":"%HM","path":"%{+E}HPO","request_id":"%{+E}ID",'
    '"retries":%rc,"termination":"%ts"'
    "}'"
)


def backend_name(service: str) -> str:
    return f"svc_{service}"


def _route_condition(route: str) -> str:
    prefix = route.rstrip("/")
    return f"{{ path {prefix} }} || {{ path_beg {prefix}/ }}"


def _backend(name: str, service: ServiceSpec, catalog: Catalog, ca_file: Path | None) -> str:
    health = service.health
    lines = [
        f"backend {backend_name(name)}",
        "    balance roundrobin",
        f"    http-request disable-l7-retry unless {IDEMPOTENT}",
        "    option httpchk",
        f"    http-check send meth GET uri {health.path} ver HTTP/1.1 hdr Host {name}",
        "    http-check expect status 200",
        f"    default-server inter {format_duration(health.interval)} fall {health.fall} "
        f"rise {health.rise} observe layer4 error-limit 1 on-error mark-down",
    ]
    for instance in catalog.instances_of(name):
        # With TLS, the instance must prove it is this instance (verifyhost) with a certificate of
        # the eco-system's CA; the health checks ride the same TLS.
        tls = f" ssl verify required ca-file {ca_file} verifyhost {instance.name}" if ca_file else ""
        lines.append(f"    server {instance.name} {instance.address}:{instance.port} check{tls}")
    return "\n".join(lines)


HSTS_SECONDS = 365 * 86400


def _bind(address: str, port: int, certificate: Path | None) -> str:
    tls = f" ssl crt {certificate} alpn http/1.1" if certificate else ""
    return f"    bind {address}:{port}{tls}"


def _redirect_frontend(address: str, http_port: int, https_port: int) -> str:
    """Plain HTTP only says where HTTPS is: same host name, the HTTPS port, same path and query."""
    port = "" if https_port == 443 else f":{https_port}"
    return (
        "frontend edge_http\n"
        f"    bind {address}:{http_port}\n"
        "    log global\n"
        f"    log-format {LOG_FORMAT}\n"
        f"    http-request redirect code 301 location https://%[req.hdr(host),field(1,:)]{port}%[url]\n"
    )


def render_haproxy_cfg(catalog: Catalog, paths: HaproxyPaths) -> str:
    """The whole haproxy.cfg for the edge of `catalog`."""
    spec = catalog.spec
    edge_address = catalog.address_of(spec.edge.host)
    # Longest prefix first, so /api/v2 wins over /api and / catches the rest.
    routed = sorted(spec.services.items(), key=lambda item: len(item[1].route), reverse=True)
    routing = []
    default = "no_route"
    for name, service in routed:
        if service.route == "/":
            default = backend_name(name)
        else:
            routing.append(f"    use_backend {backend_name(name)} if {_route_condition(service.route)}")

    request_id = ("    http-request set-header X-Request-ID %[uuid()] unless "
                  f"{{ req.hdr(x-request-id) -m reg {SANE_REQUEST_ID} }}")
    hsts = (f"    http-after-response set-header Strict-Transport-Security max-age={HSTS_SECONDS}\n"
            if paths.certificate else "")
    parts = [
        f"""\
# Rendered by sevenleague for eco-system {catalog.name!r}; edits are overwritten by `league up`.

global
    log stdout format raw local0 info
    stats socket {paths.admin_socket} mode 600 level admin expose-fd listeners
    stats timeout 30s
    hard-stop-after 30s
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-server-options ssl-min-ver TLSv1.2

defaults
    mode http
    option dontlognull
    option forwardfor
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response response-timeout
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 5s
    timeout check 2s

frontend edge
{_bind(edge_address, spec.edge.port, paths.certificate)}
    option idle-close-on-response
    log global
    log-format {LOG_FORMAT}
{hsts}{request_id}
    unique-id-format %[req.hdr(x-request-id)]
    http-after-response set-header X-Request-ID %[unique-id]
{chr(10).join(routing) + chr(10) if routing else ""}    default_backend {default}

frontend stats
{_bind(edge_address, spec.edge.stats_port, paths.certificate)}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats
    stats refresh 5s
""",
    ]
    if spec.edge.http_port is not None:
        parts.append(_redirect_frontend(edge_address, spec.edge.http_port, spec.edge.port))
    for name, service in spec.services.items():
        parts.append(_backend(name, service, catalog, paths.ca_file) + "\n")
    parts.append(
        "backend no_route\n"
        '    http-request return status 404 content-type text/plain string "no service at this path\\n"\n'
    )
    return "\n".join(parts)


def haproxy_argv(haproxy: Path, paths: HaproxyPaths) -> tuple[str, ...]:
    """Master-worker in the foreground: supervisord watches the master; USR2 reloads it."""
    return (str(haproxy), "-W", "-db", "-f", str(paths.config))


def check_argv(haproxy: Path, config: Path) -> tuple[str, ...]:
    return (str(haproxy), "-c", "-q", "-f", str(config))
