"""How long a rolling deploy and a rollback take, here and on real hosts, against a plain restart.

One eco-system as in tests/integration/test_deploys.py: `staging` is two instances of
hello on this machine (supervisord), `prod` three Debian hosts booted with
systemd-nspawn (systemd units of the installed .deb, over SSH). Two releases of hello
are built and published by the eco-system's build service, then deployed once each
everywhere (the first install on a host builds its venv: timed apart), so the timed
runs below measure the steady state: each host keeps both releases.

Every run happens while 4 clients send requests through the edge, and counts the
failed ones:
- `league deploy` of the other release, batch of 1 and batch of all (`batch_percent =
  100`), with the verification window set to 0 (it is a policy wait, not a cost);
- `league rollback`;
- the Piku way for comparison: stop every instance of hello, start it again, wait until
  all are ready; nobody tells the edge.
The app's own start time is measured apart, from the start command to a ready instance,
here and on a host; the deploy's cost per instance is its time beyond that.

    python benchmarks/bench_deploy.py

Targets: <= 5 s per instance beyond the app's own start time; rollback <= 3 s per instance.
Results: benchmarks/results/deploy.json.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write_results

from sevenleague.catalog import load_catalog
from sevenleague.ecosystem import probe_http
from sevenleague.hosts import LocalHost, SshHost
from sevenleague.testing import SteadyLoad
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem
from sevenleague.testing.nspawn import NspawnHosts, ensure_rootfs
from sevenleague.testing.releases import deploy_catalog, greeting, publish_hello

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = {"staging": ["hello-1", "hello-5"], "prod": ["hello-2", "hello-3", "hello-4"]}
TARGET_PER_INSTANCE, TARGET_ROLLBACK = 5.0, 3.0


def league(eco: RunningEcosystem, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = eco.league(*args, check=False, timeout=900)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"league {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def loaded(eco: RunningEcosystem, action: Any) -> dict[str, Any]:
    with SteadyLoad(eco.endpoints["edge"], clients=4, ca_file=eco.ca_file, pause=0.005) as steady:
        seconds = action()
        tally = steady.stop()
    return {"seconds": round(seconds, 2), "requests_ok": tally.ok, "requests_failed": tally.failed}


def set_batch(catalog: Path, percent: int) -> None:
    text = re.sub(r"\nbatch_percent = \d+", "", catalog.read_text())
    catalog.write_text(text.replace("[deploy.rollout]\n", f"[deploy.rollout]\nbatch_percent = {percent}\n"))


def wait_ready(eco: RunningEcosystem, urls: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(probe_http(url, 2.0, str(eco.ca_file))[0] for url in urls):
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready after {timeout}s: {urls}")
        time.sleep(0.02)


async def on_hosts(hosts: NspawnHosts, *commands: list[str]) -> None:
    """Each command on every host, the hosts in parallel."""
    async def one(host: Any) -> None:
        async with SshHost(host.name, host.address, client_key=hosts.client_key,
                           known_hosts=hosts.known_hosts) as ssh:
            for argv in commands:
                await ssh.run(argv)

    await asyncio.gather(*(one(h) for h in hosts.hosts))


def app_start(eco: RunningEcosystem, hosts: NspawnHosts, local: str, unit: str) -> dict[str, float]:
    """From the start command to a ready instance, one local instance and one on a host (no load)."""
    host = LocalHost("deploys", eco.home)
    url = readiness_urls(eco, [local])
    host.stop(local)
    started = time.monotonic()
    host.start(local)
    wait_ready(eco, url)
    here = time.monotonic() - started
    first = hosts.hosts[0]
    remote = [u for u in readiness_urls(eco, list(ENVIRONMENTS["prod"])) if f"//{first.address}:" in u]

    async def restart() -> float:
        async with SshHost(first.name, first.address, client_key=hosts.client_key,
                           known_hosts=hosts.known_hosts) as ssh:
            await ssh.systemctl("stop", unit)
            began = time.monotonic()
            await ssh.systemctl("start", unit)
        await asyncio.to_thread(wait_ready, eco, remote)
        return time.monotonic() - began

    return {"staging": round(here, 2), "prod": round(asyncio.run(restart()), 2)}


def restart_everything(eco: RunningEcosystem, hosts: NspawnHosts) -> float:
    """Piku's way, for the whole service: stop every instance, start it again; the edge is not told."""
    host = LocalHost("deploys", eco.home)
    started = time.monotonic()
    for name in ENVIRONMENTS["staging"]:
        host.stop(name)
    asyncio.run(on_hosts(hosts, ["sh", "-c", "systemctl stop 'hello@*.service'"]))
    for name in ENVIRONMENTS["staging"]:
        host.start(name)
    asyncio.run(on_hosts(hosts, ["sh", "-c", "systemctl start $(systemctl list-units --all --plain "
                                             "--no-legend 'hello@*.service' | cut -d' ' -f1)"]))
    wait_ready(eco, readiness_urls(eco, [n for names in ENVIRONMENTS.values() for n in names]))
    return time.monotonic() - started


def readiness_urls(eco: RunningEcosystem, names: list[str]) -> list[str]:
    """From the catalog the eco-system runs: instances on ssh hosts are not in its snapshot."""
    catalog = load_catalog(eco.catalog, port_offset=eco.offset)
    return [i.url + "/readyz" for i in catalog.instances if i.name in names]


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    rootfs = ensure_rootfs(ROOT / "build" / "test-cache" / "nspawn")
    results: dict[str, Any] = {}
    with NspawnHosts(rootfs, 3, scratch / "hosts") as hosts:
        catalog = scratch / "ecosystem.toml"
        catalog.write_text(deploy_catalog(hosts, {"verify": '"0s"', "readiness_timeout": '"60s"'}))
        eco = start_ecosystem(catalog, home=scratch / "home",
                              extra_env={"LEAGUE_BUILD_CACHE": str(ROOT / "build" / "test-cache" / "builds")})
        try:
            eco.login()
            versions = publish_hello(eco, scratch, {"a": greeting("Hello from A"),
                                                    "b": greeting("Hello from B")})
            first = {}
            for env in ENVIRONMENTS:  # first installs: the hosts build each release's venv once
                first[env] = round(league(eco, "deploy", "hello", versions["b"], "--env", env)[0], 2)
                league(eco, "deploy", "hello", versions["a"], "--env", env)
            results["first_install_seconds"] = first
            unit = next(f"hello@{i.port}.service" for i in load_catalog(eco.catalog, port_offset=eco.offset)
                        .instances if i.name == "hello-2")
            start = app_start(eco, hosts, "hello-1", unit)
            results["app_start_seconds"] = start
            for env, names in ENVIRONMENTS.items():
                figures: dict[str, Any] = {"instances": len(names)}
                for label, percent in (("batch_1", 1), ("batch_all", 100)):
                    set_batch(catalog, percent)
                    figures[f"deploy_{label}"] = loaded(eco, lambda env=env: league(
                        eco, "deploy", "hello", versions["b"], "--env", env)[0])
                    figures[f"rollback_{label}"] = loaded(eco, lambda env=env: league(
                        eco, "rollback", "hello", "--env", env)[0])
                figures["deploy_beyond_start_per_instance"] = round(
                    figures["deploy_batch_1"]["seconds"] / len(names) - start[env], 2)
                figures["rollback_per_instance"] = round(
                    figures["rollback_batch_1"]["seconds"] / len(names), 2)
                results[env] = figures
            results["restart_every_instance"] = loaded(eco, lambda: restart_everything(eco, hosts))
        finally:
            eco.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    results["targets"] = {"deploy_beyond_start_per_instance": TARGET_PER_INSTANCE,
                          "rollback_per_instance": TARGET_ROLLBACK}
    path = write_results("deploy", results)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
