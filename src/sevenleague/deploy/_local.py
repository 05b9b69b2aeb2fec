"""The `local` driver: releases from the same .deb, run by this machine's supervisord.

A release is prepared once per version: the .deb is fetched from the eco-system's apt
repository (over HTTPS, verified against the CA, its SHA-256 checked against the
repository's index), unpacked with `dpkg-deb -x` into the state directory, and a venv
is built from its wheels alone, exactly as the package's postinst does on a real host
(`/usr/bin/python3`, `--no-index`, the app's wheel named in the postinst). Switching an
instance records its release (`deploy/instances.json`) and applies the plan again:
supervisord restarts that one program, nothing else, because nothing else changed.

Releases stay under `deploy/releases/PACKAGE/VERSION` (the newest `keep`, and any an
instance runs), so a rollback needs neither the build service nor the network.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import http.client
import re
import shlex
import shutil
import subprocess
import sys
import threading
import xmlrpc.client
from pathlib import Path
from urllib.parse import urlsplit

from ..build._apt_repo import parse_packages_index
from ..catalog import Instance, load_catalog
from ..ecosystem import (
    InstanceRelease,
    StateLayout,
    find_tools,
    read_instance_releases,
    read_snapshot,
    record_instance_release,
    render_plan,
)
from ..hosts import HostError, LocalHost
from ..kit._tls import client_context

SUITE, COMPONENT = "stable", "main"
SYSTEM_PYTHON = "/usr/bin/python3"  # what the package's postinst builds with, and depends on
READY_MARK = ".ready"
CHUNK = 1 << 16
SUPERVISORD_TURN = threading.Lock()


def _run(argv: list[str], what: str, timeout: float = 300) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HostError(f"{what}: {error}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise HostError(f"{what} failed: {said[-1] if said else f'exit {done.returncode}'}",
                        hint=shlex.join(argv))
    return done.stdout


def fetch(url: str, ca_file: Path, sink: Path | None = None, timeout: float = 30) -> bytes:
    """One GET over HTTPS verified against the CA; into `sink` when given (a .deb is large)."""
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout,
                                             context=client_context(ca_file))
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        if response.status != 200:
            raise HostError(f"GET {url}: HTTP {response.status}",
                            hint="is the version published? `league builds`")
        if sink is None:
            return response.read()
        with sink.open("wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
        return b""
    except OSError as error:
        raise HostError(f"GET {url}: {error}", hint="is the build service up? `league status`") from None
    finally:
        connection.close()


def app_wheel_of(postinst: str) -> str:
    """The app's own wheel, as the package's postinst names it (APP_WHEEL=...)."""
    match = re.search(r"^APP_WHEEL=(.+)$", postinst, re.MULTILINE)
    if not match:
        raise HostError("the package's postinst names no APP_WHEEL: not a package sevenleague built")
    return shlex.split(match.group(1))[0]


class LocalDriver:
    def __init__(self, layout: StateLayout, apt_url: str, ca_file: Path) -> None:
        self.layout = layout
        self.apt_url = apt_url.rstrip("/") + "/"
        self.ca_file = ca_file
        self.releases = layout.deploy / "releases"

    def release_dir(self, package: str, version: str) -> Path:
        return self.releases / package / version.replace(":", "_")

    def python_of(self, package: str, version: str) -> Path:
        return self.release_dir(package, version) / "venv" / "bin" / "python"

    def is_prepared(self, package: str, version: str) -> bool:
        return (self.release_dir(package, version) / READY_MARK).exists()

    async def prepare(self, package: str, version: str) -> None:
        if version and not self.is_prepared(package, version):
            await asyncio.to_thread(self._prepare, package, version)

    def _prepare(self, package: str, version: str) -> None:
        target = self.release_dir(package, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        with (target.parent / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two environments may prepare the same version at once
            if not self.is_prepared(package, version):
                self._build(package, version, target)

    def _build(self, package: str, version: str, target: Path) -> None:
        """Built where it will stay (a venv records its own path); `.ready`, written last, marks it whole."""
        architecture = _run(["dpkg", "--print-architecture"], "dpkg --print-architecture").strip()
        index = fetch(f"{self.apt_url}dists/{SUITE}/{COMPONENT}/binary-{architecture}/Packages", self.ca_file)
        found = [p for p in parse_packages_index(index.decode())
                 if p.name == package and p.version == version]
        if not found:
            raise HostError(f"{package} {version} is not in the apt repository {self.apt_url}",
                            hint=f"`league builds {package}` lists what was published")
        published = found[0]
        shutil.rmtree(target, ignore_errors=True)  # what an interrupted prepare left
        target.mkdir()
        try:
            deb = target / Path(published.filename).name
            fetch(self.apt_url + published.filename, self.ca_file, sink=deb, timeout=120)
            digest = hashlib.sha256()
            with deb.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
            if digest.hexdigest() != published.sha256:
                raise HostError(f"{deb.name} does not match the repository's SHA-256",
                                hint="the download was damaged or replaced; try again")
            root = target / "root"
            _run(["dpkg-deb", "-x", str(deb), str(root)], f"unpacking {deb.name}")
            wheel = app_wheel_of(_run(["dpkg-deb", "-I", str(deb), "postinst"], "reading its postinst"))
            wheels = root / "usr" / "lib" / package / "wheels"
            venv = target / "venv"
            _run([SYSTEM_PYTHON, "-I", "-m", "venv", "--without-pip", str(venv)], "creating the venv")
            _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                  "--isolated", "--no-index", "--find-links", str(wheels), "--only-binary", ":all:",
                  "--no-cache-dir", "--disable-pip-version-check", "--quiet", str(wheels / wheel)],
                 f"installing {wheel}")
            (target / READY_MARK).write_text(version + "\n")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    async def switch(self, instance: Instance, package: str, version: str) -> None:
        release = InstanceRelease(version, self.python_of(package, version)) if version else None
        if release is not None and not self.is_prepared(package, version):
            raise HostError(f"{package} {version} is not prepared on this machine")
        await asyncio.to_thread(self._switch, instance.name, release)

    def _switch(self, name: str, release: InstanceRelease | None) -> None:
        # One supervisord runs every local instance: switches of one batch take turns, each
        # applying exactly its own change (the record and the apply under the same lock).
        with SUPERVISORD_TURN:
            record_instance_release(self.layout.instance_releases, name, release)
            snapshot = read_snapshot(self.layout.snapshot)
            catalog = load_catalog(Path(snapshot["catalog"]), port_offset=int(snapshot.get("port_offset", 0)))
            plan = render_plan(catalog, self.layout, find_tools(sys.executable),
                               read_instance_releases(self.layout.instance_releases))
            host = LocalHost(catalog.name, self.layout.home)
            try:
                changes = host.apply(plan.programs)
                if name not in changes.changed and name not in changes.added:
                    host.restart(name)  # same program text (the same release again): start it afresh
            except (xmlrpc.client.Error, OSError) as error:
                raise HostError(f"supervisord could not restart {name}: {error}",
                                hint=f"see {self.layout.logs / 'supervisord.log'}") from None

    async def prune(self, package: str, keep: int, in_use: set[str]) -> list[str]:
        return await asyncio.to_thread(self._prune, package, keep, in_use)

    def _prune(self, package: str, keep: int, in_use: set[str]) -> list[str]:
        folder = self.releases / package
        if not folder.is_dir():
            return []
        ready = sorted((p for p in folder.iterdir() if (p / READY_MARK).exists()),
                       key=lambda p: (p / READY_MARK).stat().st_mtime, reverse=True)
        removed = []
        for path in ready[keep:]:
            version = (path / READY_MARK).read_text().strip()
            if version not in in_use:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(version)
        return removed
