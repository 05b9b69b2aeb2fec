"""Where everything lives under the state directory (`LEAGUE_HOME`, default `./.league`).

One directory holds all an eco-system creates, so two eco-systems (or a test) can run
beside each other by pointing at two directories, and `rm -r` after `league down`
leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..build._paths import BuildPaths
from ..errors import LeagueError, UsageError
from ..proxy import HaproxyPaths
from ..telemetry import AlertmanagerPaths, PrometheusPaths, ServerTls

HOME_ENV = "LEAGUE_HOME"
OFFSET_ENV = "LEAGUE_PORT_OFFSET"
DEFAULT_HOME = ".league"


@dataclass(frozen=True)
class StateLayout:
    home: Path

    @property
    def logs(self) -> Path:
        """supervisord's log directory: PROGRAM.log for every program (the agent follows them)."""
        return self.home / "logs"

    @property
    def supervisor_socket(self) -> Path:
        """supervisord's XML-RPC socket (the same path `hosts.LocalHost` gives it)."""
        return self.home / "supervisord.sock"

    @property
    def snapshot(self) -> Path:
        """What `league up` started, for `status` and `down` to read."""
        return self.home / "ecosystem.json"

    @property
    def haproxy(self) -> HaproxyPaths:
        return HaproxyPaths(config=self.home / "haproxy" / "haproxy.cfg", ca_file=self.ca_file,
                            admin_socket=self.home / "haproxy" / "admin.sock",
                            certificate=self.pki / "edge" / "bundle.pem")

    @property
    def prometheus(self) -> PrometheusPaths:
        base = self.home / "prometheus"
        return PrometheusPaths(config=base / "prometheus.yml", targets_dir=base / "targets",
                               ca_file=self.ca_file,
                               data_dir=base / "data", tls=self.server_tls("prometheus", base),
                               credentials_dir=self.scrape_credentials)

    @property
    def alertmanager(self) -> AlertmanagerPaths:
        base = self.home / "alertmanager"
        return AlertmanagerPaths(config=base / "alertmanager.yml", data_dir=base / "data",
                                 tls=self.server_tls("alertmanager", base))

    @property
    def node_exporter(self) -> ServerTls:
        """The node exporter keeps nothing but its web config: it reads the machine, not files of ours."""
        return self.server_tls("node-exporter", self.home / "node-exporter")

    def server_tls(self, name: str, base: Path) -> ServerTls:
        """A Prometheus-family server's HTTPS files: its web config, and its leaf from the PKI."""
        leaf = self.pki / "leaves" / name
        return ServerTls(web_config=base / "web.yml", certificate=leaf / "fullchain.pem",
                         key=leaf / "key.pem")

    @property
    def pki(self) -> Path:
        """The eco-system's CA and every certificate it issued (keys 0600)."""
        return self.home / "pki"

    @property
    def ca_file(self) -> Path:
        """The CA certificate every client of the eco-system's TLS trusts."""
        return self.pki / "ca.pem"

    def tls_bundle(self, name: str) -> Path:
        """Key and certificate chain of one process, in the one file it serves with."""
        return self.pki / "leaves" / name / "bundle.pem"

    @property
    def scrape_credentials(self) -> Path:
        """The tokens Prometheus scrapes kit processes with, one file per audience (0600)."""
        return self.home / "credentials" / "prometheus"

    @property
    def identity_clients(self) -> Path:
        """The service accounts the eco-system wants the identity service to keep (no secrets)."""
        return self.home / "identity" / "clients.json"

    def client_secret(self, name: str) -> Path:
        """Where the identity service puts the secret of the service account `name` (0600)."""
        return self.home / "identity" / "clients" / f"{name}.secret"

    @property
    def deploy(self) -> Path:
        """The deploy service's database, and the releases unpacked for local instances."""
        return self.home / "deploy"

    @property
    def agent(self) -> Path:
        """The log agent's checkpoint: how far it has shipped each file and the journal."""
        return self.home / "agent"

    @property
    def instance_releases(self) -> Path:
        """Which release each local instance runs (written by the deploy, read by `league up`)."""
        return self.deploy / "instances.json"

    @property
    def builds(self) -> BuildPaths:
        return BuildPaths.under(self.home)


def state_home() -> Path:
    """The state directory from the environment, as an absolute path."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def port_offset() -> int:
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{OFFSET_ENV}={raw!r} is not a whole number",
                         hint=f"e.g. {OFFSET_ENV}=1000 moves every port up by 1000") from None
    if value < 0:
        raise UsageError(f"{OFFSET_ENV}={raw!r} is negative", hint="use 0 or more")
    return value


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the real programs the eco-system runs."""

    python: Path
    haproxy: Path
    prometheus: Path
    promtool: Path
    alertmanager: Path
    amtool: Path
    node_exporter: Path


_PACKAGES = {
    "haproxy": "haproxy",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",
}


def _which(name: str) -> Path:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise LeagueError(f"{name} is not installed",
                          hint=f"run `make up`, or `apt-get install {_PACKAGES[name]}`")
    return Path(path)


def find_tools(python: str) -> Tools:
    return Tools(
        python=Path(python),
        haproxy=_which("haproxy"),
        prometheus=_which("prometheus"),
        promtool=_which("promtool"),
        alertmanager=_which("prometheus-alertmanager"),
        amtool=_which("amtool"),
        node_exporter=_which("prometheus-node-exporter"),
    )
