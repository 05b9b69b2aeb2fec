"""Renewed certificates, carried to the instances that run on other hosts.

The renewer renews every leaf on this machine at two thirds of its life; an instance on
an ssh host reads its bundle from `/etc/sevenleague/tls/NAME.pem` there. The deploy
service, which already reaches those hosts, copies each deployed instance's bundle
over whenever it differs (the copy is idempotent: a hash is compared first), on a
timer well inside the certificates' life and on demand (`POST /api/certificates`).
The kit re-reads a bundle that changed, so no instance restarts for it.

Each ssh host's node exporter gets its own leaf (`node-exporter-HOST`) the same way, in
the same rounds (`enrol_node_exporters`): the deploy service installs and configures the
exporter there too, because it is the one part of the eco-system that already holds the
hosts' SSH keys. The exporter, like the kit, reads its files again for every handshake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from ..build._deb_files import default_system_user
from ..errors import LeagueError
from ._host_files import MODE_GROUP_READ, bundle_path

log = logging.getLogger("sevenleague.deploy")
LONGEST_INTERVAL = 300.0  # seconds


def sync_interval(leaf_lifetime: float) -> float:
    """Often enough that a renewed certificate (due at 2/3 of its life) arrives well before expiry."""
    return max(1.0, min(LONGEST_INTERVAL, leaf_lifetime / 6))


async def push_certificates(ctx: Any, versions: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each deployed instance on an ssh host gets this machine's current bundle; what was copied, by host.

    `versions` maps instance names to what the deploy service recorded they run; an
    instance that runs nothing there (never deployed, or stopped) has no user to own it.
    """
    from ._ssh import SshDriver

    catalog = ctx.catalog
    copied: dict[str, list[str]] = {}

    async def one(host: str) -> None:
        spec = catalog.spec.hosts[host]
        instances = [i for i in catalog.instances
                     if i.host == host and versions.get(i.name, {}).get("version")]
        if not instances:
            return
        driver = SshDriver(host, spec, ctx)
        try:
            for instance in instances:
                package = catalog.package_of(instance.service)
                bundle = ctx.layout.tls_bundle(instance.name).read_bytes()
                if await driver.host.put_file(bundle_path(instance.name), bundle, MODE_GROUP_READ,
                                              group=default_system_user(package)):
                    copied.setdefault(host, []).append(instance.name)
                    log.info("copied the renewed certificate of %s to %s", instance.name, host)
        except LeagueError as error:
            log.warning("certificates for %s: %s", host, error)
        finally:
            await driver.close()

    await asyncio.gather(*(one(name) for name, spec in catalog.spec.hosts.items() if spec.driver == "ssh"))
    return copied


async def enrol_node_exporters(ctx: Any) -> dict[str, list[str]]:
    """Every ssh host's node exporter installed and serving HTTPS with its current leaf; what each did
    (`SshDriver.ensure_node_exporter`'s words, or "failed: REASON").

    A host that cannot be reached, or has no package and no mirror to fetch it from, is
    logged with the reason and left for the next round; the others go on.
    """
    from ..ecosystem._plan import node_exporter_certificate
    from ._ssh import SshDriver

    catalog = ctx.catalog
    done: dict[str, list[str]] = {}

    async def one(host: str) -> None:
        bundle_file = ctx.layout.tls_bundle(node_exporter_certificate(host))
        if not bundle_file.is_file():
            log.warning("node exporter of %s: no certificate at %s yet (`league up` issues it)", host,
                        bundle_file)
            return
        driver = SshDriver(host, catalog.spec.hosts[host], ctx)
        try:
            done[host] = await driver.ensure_node_exporter(bundle_file.read_bytes())
            if done[host]:
                log.info("node exporter of %s: %s", host, ", ".join(done[host]))
        except LeagueError as error:
            done[host] = [f"failed: {error.message}"]
            log.warning("node exporter of %s: %s", host, " ".join(error.lines()))
        finally:
            await driver.close()

    await asyncio.gather(*(one(name) for name, spec in catalog.spec.hosts.items() if spec.driver == "ssh"))
    return done
