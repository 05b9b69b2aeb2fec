"""The `ssh` driver: Debian hosts with systemd, apt and dpkg, reached over SSH.

`prepare` makes a version installable without touching a running instance: the
eco-system's apt source, its key and its CA on the host (idempotent files), then the
.deb fetched by apt from the eco-system's repository (`apt-get download`, checked
against the signed index) into `/var/cache/sevenleague/PACKAGE/`, where the last
releases stay. `switch` installs that exact .deb with dpkg (only when another version is
installed: the postinst keeps the venvs of the last 3 versions, so going back costs no
pip), writes the instance's settings and certificate, and restarts its unit
`PACKAGE@PORT`. Rolling back is the same `dpkg -i` of a kept .deb: neither the build
service nor the network is needed.

`ensure_node_exporter` makes the host's own node exporter (Debian's package) serve HTTPS
with its certificate; the deploy service runs it for every ssh host at its start and on
its certificate timer (`_certificates.enrol_node_exporters`).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from ..build._deb_files import default_system_user
from ..catalog import HostSpec, Instance
from ..hosts import HostError
from ._host_files import (
    CA_PATH,
    NODE_EXPORTER_BUNDLE,
    NODE_EXPORTER_PACKAGE,
    NODE_EXPORTER_UNIT,
    HostFile,
    apt_source_files,
    instance_files,
    node_exporter_files,
)
from ._local import fetch

if TYPE_CHECKING:
    from ..hosts.ssh import SshHost
    from ._deployer import Context

CACHE_DIR = "/var/cache/sevenleague"
# One round trip per switch. The engine has drained the instance at the edge and taken it
# out of rotation, so it needs no drain of its own: SIGINT makes the kit finish what is
# in flight and exit at once, where SIGTERM (systemd's stop) would first wait out its
# DRAIN_SECONDS for a load balancer that is no longer sending. Then reload the units
# if their settings changed, enable (idempotent) and start.
RESTART_SCRIPT = """
unit=$1
pid=$(systemctl show --property=MainPID --value "$unit")
if [ "${pid:-0}" != 0 ]; then
    kill -INT "$pid" 2>/dev/null || true
    tries=0
    while [ -e "/proc/$pid" ] && [ "$tries" -lt 600 ]; do sleep 0.05; tries=$((tries + 1)); done
fi
if [ -n "$2" ]; then systemctl daemon-reload; fi
systemctl enable --quiet "$unit"
systemctl restart "$unit"
"""
KEYRING_NAME = "league-archive-keyring.gpg"
# The exporter's systemd collector asks systemd over the system bus: dbus comes with it
# (Debian only recommends it, and the driver installs without recommends).
NODE_EXPORTER_PACKAGES = (NODE_EXPORTER_PACKAGE, "dbus")
# One round trip: reload the units if the drop-in changed, restart the exporter if its
# settings changed or it does not run; prints "restarted" when it did.
NODE_EXPORTER_SCRIPT = """
unit=$1
if [ -n "$2" ]; then systemctl daemon-reload; fi
systemctl enable --quiet "$unit"
if [ -n "$2" ] || ! systemctl is-active --quiet "$unit"; then
    systemctl restart "$unit" && echo restarted
fi
"""


def deb_pattern(package: str, version: str) -> str:
    """apt-get download's file name, any architecture: the epoch's ':' is written %3a."""
    return f"{package}_{version.replace(':', '%3a')}_*.deb"


class SshDriver:
    def __init__(self, name: str, spec: HostSpec, ctx: Context) -> None:
        from ..hosts.ssh import SshHost

        base = ctx.catalog.source.parent
        self.name = name
        self.spec = spec
        self.ctx = ctx
        self.host: SshHost = SshHost(
            name, spec.address, user=spec.ssh_user, port=spec.ssh_port,
            client_key=(base / spec.ssh_key) if spec.ssh_key else None,
            known_hosts=(base / spec.known_hosts) if spec.known_hosts else None)
        self.sources = f"/etc/apt/sources.list.d/sevenleague-{ctx.catalog.name}.sources"

    def kept(self, package: str) -> str:
        return f"{CACHE_DIR}/{package}"

    async def _put(self, files: list[HostFile]) -> bool:
        changed = False
        for file in files:
            changed |= await self.host.put_file(file.path, file.content, file.mode, file.owner, file.group)
        return changed

    async def enroll(self) -> None:
        """The eco-system's apt source, archive key and CA on the host: written only when they differ."""
        keyring = fetch(self.ctx.apt_url.rstrip("/") + "/" + KEYRING_NAME, self.ctx.ca_file)
        await self._put(apt_source_files(self.ctx.catalog.name, self.ctx.apt_url, keyring,
                                         self.ctx.ca_file.read_bytes()))

    async def kept_deb(self, package: str, version: str) -> str | None:
        """The .deb of `version` this host keeps, if it does."""
        pattern = f"{self.kept(package)}/{deb_pattern(package, version)}"
        found = await self.host.run(["sh", "-c", f"ls -1 {pattern} 2>/dev/null"], check=False)
        return found.stdout.split()[0] if found.stdout.split() else None

    async def prepare(self, package: str, version: str) -> None:
        folder = self.kept(package)
        if await self.kept_deb(package, version):
            return
        await self.enroll()
        await self.host.run(["mkdir", "-p", folder])
        await self.host.run(["apt-get", "update", "-q", "-o", f"Dir::Etc::sourcelist={self.sources}",
                             "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"], timeout=300)
        script = f"cd {shlex.quote(folder)} && apt-get download -q {shlex.quote(f'{package}={version}')}"
        try:
            await self.host.run(["sh", "-c", script], timeout=300)
        except HostError as error:
            raise HostError(f"{self.name}: {package} {version} could not be fetched from the apt repository: "
                            f"{error.message}", hint=f"`league builds {package}` lists what was published") \
                from None

    async def switch(self, instance: Instance, package: str, version: str) -> None:
        unit = f"{package}@{instance.port}.service"
        if not version:
            await self.host.systemctl("disable", "--now", unit, check=False)
            return
        deb = await self.kept_deb(package, version)
        if deb is None:
            raise HostError(f"{self.name}: {package} {version} is not prepared here")
        if await self.host.installed_version(package) != version:
            await self.host.dpkg_install(deb)
        changed = await self._put(self.instance_files(instance, package))
        await self.host.run(["sh", "-c", RESTART_SCRIPT, "restart", unit, "1" if changed else ""])

    def instance_files(self, instance: Instance, package: str) -> list[HostFile]:
        catalog = self.ctx.catalog
        from ..ecosystem._plan import drain_seconds, identity_url

        bundle = self.ctx.layout.tls_bundle(instance.name).read_bytes()
        health = catalog.spec.services[instance.service].health
        # The edge's checks notice a draining instance in this time, as for local instances.
        environment = {"LEAGUE_CA_FILE": CA_PATH, "LEAGUE_OIDC_ISSUER": identity_url(catalog),
                       "LEAGUE_SERVICE": instance.service,
                       "DRAIN_SECONDS": f"{drain_seconds(health.interval, health.fall):g}"}
        return instance_files(package, default_system_user(package), instance.service, "0.0.0.0",
                              environment, [(instance.name, instance.port, bundle)])

    async def ensure_node_exporter(self, bundle: bytes) -> list[str]:
        """The host's exporter installed, serving HTTPS with `bundle` on its `node_exporter_port`.

        What it did, in order: "installed", "configured", "certificate", "restarted" (empty
        when the host was already so). A renewed bundle alone needs no restart: the exporter
        reads it again for every handshake.
        """
        done = []
        listed = await self.host.run(["dpkg-query", "-W", "-f=${Package}\t${Status}\n", "--",
                                      *NODE_EXPORTER_PACKAGES], check=False)  # exits 1 if one is unknown
        installed = {line.split("\t")[0] for line in listed.stdout.splitlines()
                     if line.endswith("\tinstall ok installed")}
        missing = [package for package in NODE_EXPORTER_PACKAGES if package not in installed]
        if missing:
            await self._install_from_host_sources(missing)
            done.append("installed")
        files = node_exporter_files(self.spec.node_exporter_port, bundle)
        settings = [file for file in files if file.path != NODE_EXPORTER_BUNDLE]
        configured = await self._put(settings)
        if configured:
            done.append("configured")
        if await self._put([file for file in files if file.path == NODE_EXPORTER_BUNDLE]):
            done.append("certificate")
        restart = await self.host.run(["sh", "-c", NODE_EXPORTER_SCRIPT, "node-exporter", NODE_EXPORTER_UNIT,
                                       "1" if configured else ""])
        if "restarted" in restart.stdout:
            done.append("restarted")
        return done

    async def _install_from_host_sources(self, packages: list[str]) -> None:
        """`apt-get install` from the host's own Debian mirror; its lists refreshed once if that fails."""
        from ..hosts.ssh import APT_INSTALL_OPTIONS, NONINTERACTIVE

        install = ["apt-get", "install", *APT_INSTALL_OPTIONS, *packages]
        try:
            await self.host.run(install, env=NONINTERACTIVE, timeout=600)
            return
        except HostError:
            pass  # stale or missing package lists, most often
        try:
            await self.host.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=120"],
                                env=NONINTERACTIVE, timeout=600, check=False)
            await self.host.run(install, env=NONINTERACTIVE, timeout=600)
        except HostError as error:
            raise HostError(f"{self.name}: {' and '.join(packages)} not installed, and apt cannot install "
                            f"them: {error.message}",
                            hint=f"give {self.name} a Debian mirror in its apt sources, or install "
                                 f"{' '.join(packages)} there; its machine metrics are missing until then"
                            ) from None

    async def prune(self, package: str, keep: int, in_use: set[str]) -> list[str]:
        """Keep the newest `keep` .debs (and any in use); the postinst already prunes venvs the same way."""
        folder = self.kept(package)
        listed = await self.host.run(["ls", "-1t", folder], check=False)
        removed = []
        for name in listed.stdout.split()[keep:]:
            version = name.removeprefix(f"{package}_").rsplit("_", 1)[0].replace("%3a", ":")
            if version not in in_use:
                await self.host.run(["rm", "-f", f"{folder}/{name}"])
                removed.append(version)
        return removed

    async def close(self) -> None:
        await self.host.close()

