"""HAProxy in front of one hello instance, rendered by the eco-system's own renderer: the benchmarks' edge."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sevenleague.catalog import load_catalog
from sevenleague.proxy import HaproxyPaths, render_haproxy_cfg
from sevenleague.testing import free_port, wait_for_http

EDGE_CATALOG = """\
[ecosystem]
name = "bench"
[hosts.local]
address = "127.0.0.1"
[edge]
port = {edge}
stats_port = {stats}
[prometheus]
port = {prometheus}
[alertmanager]
port = {alertmanager}
[services.hello]
app = "hello.app:app"
instances = 1
port = {hello}
hosts = ["local"]
"""


def start_haproxy(workdir: Path, hello_port: int, *, name: str = "edge", certificate: Path | None = None,
                  ca_file: Path | None = None, cpu: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """HAProxy pinned to `cpu`; with `certificate` it serves HTTPS and speaks TLS to hello (`ca_file`)."""
    edge = free_port()
    catalog_path = workdir / f"{name}.toml"
    catalog_path.write_text(EDGE_CATALOG.format(edge=edge, stats=free_port(), prometheus=free_port(),
                                                alertmanager=free_port(), hello=hello_port))
    paths = HaproxyPaths(config=workdir / f"{name}-haproxy.cfg", admin_socket=workdir / f"{name}.sock",
                         ca_file=ca_file, certificate=certificate)
    paths.config.write_text(render_haproxy_cfg(load_catalog(catalog_path), paths))
    log = (workdir / f"{name}-haproxy.log").open("wb")
    process = subprocess.Popen(["taskset", "-c", str(cpu), "haproxy", "-db", "-f", str(paths.config)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"{'https' if certificate else 'http'}://127.0.0.1:{edge}"
    wait_for_http(url + "/", ca_file=ca_file)
    return process, url
