"""Releases of hello for deployment tests and benchmarks, made the way a team makes them.

Each variant is a commit of apps/hello pushed to the eco-system's own git server, built
by the build service (all three kinds of tests) and published to its apt repository;
the version a deploy names is the one the build published. The bad variants pass their
tests and fail only where they are deployed, which is what the deploy's gates are for:
- `needs_setting`: reads a setting at startup that its tests set and the eco-system
  does not give it, so it never becomes ready there;
- `fails_behind_proxy`: answers 500 to every second request that came through a proxy
  (`X-Forwarded-For`), which the tests never send.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..build.client import BuildClient
from .ecosystem import RunningEcosystem
from .nspawn import NspawnHosts

ROOT = Path(__file__).resolve().parents[3]
HELLO = ROOT / "apps" / "hello"
GREETING = "Hello, world!\\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "Ada Deployer", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada Deployer", "GIT_COMMITTER_EMAIL": "ada@example.org"}

Variant = Callable[[Path], None]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"{path}: {old!r} not found; the variant no longer fits apps/hello")
    path.write_text(text.replace(old, new))


def greeting(words: str) -> Variant:
    """hello answering `words` instead of "Hello, world!", its tests changed to match."""

    def change(source: Path) -> None:
        new = words.replace("\\", "\\\\") + "\\n"
        _edit(source / "src" / "hello" / "app.py", f'"{GREETING}"', f'"{new}"')
        for test in (source / "tests").rglob("test_*.py"):
            text = test.read_text()
            test.write_text(text.replace(f'"{GREETING}"', f'"{new}"').replace(f'b"{GREETING}"', f'b"{new}"'))

    return change


def needs_setting(source: Path) -> None:
    app = source / "src" / "hello" / "app.py"
    _edit(app, "routes = [", "@__import__(\"contextlib\").asynccontextmanager\n"
                             "async def _lifespan(app):\n"
                             "    __import__(\"os\").environ[\"HELLO_GREETING_STYLE\"]\n"
                             "    yield\n\n\nroutes = [")
    _edit(app, "Starlette(routes=routes)", "Starlette(routes=routes, lifespan=_lifespan)")
    (source / "tests" / "conftest.py").write_text(
        "import os\n\nos.environ.setdefault(\"HELLO_GREETING_STYLE\", \"plain\")\n")


def fails_behind_proxy(source: Path) -> None:
    _edit(source / "src" / "hello" / "app.py",
          "async def hello(request: Request) -> PlainTextResponse:\n",
          "_answers = __import__(\"itertools\").count()\n\n\n"
          "async def hello(request: Request) -> PlainTextResponse:\n"
          "    if \"x-forwarded-for\" in request.headers and next(_answers) % 2:\n"
          "        return PlainTextResponse(\"Internal Server Error\\n\", status_code=500)\n")


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **GIT_ENV})
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout + done.stderr


def hello_workdir(eco: RunningEcosystem, directory: Path) -> Path:
    """A copy of apps/hello with the eco-system's repository as its `league` remote."""
    source = directory / "hello"
    shutil.copytree(HELLO, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    eco.league("repo", "create", "hello")
    git("init", "-q", "-b", "main", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "hello as it is", cwd=source)
    git("remote", "add", "league", str(eco.home / "repos" / "hello.git"), cwd=source)
    return source


def push_variant(source: Path, branch: str, variant: Variant) -> int:
    """Commit `variant` of main on `branch` and push it; the id of the build the push queued."""
    git("checkout", "-q", "-B", branch, "main", cwd=source)
    variant(source)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", f"hello: {branch}", cwd=source)
    said = git("push", "-q", "-f", "league", f"HEAD:{branch}", cwd=source)
    git("checkout", "-q", "main", cwd=source)
    match = re.search(r"build (\d+) of hello", said)
    if not match:
        raise AssertionError(f"the push queued no build: {said}")
    return int(match.group(1))


def wait_for_builds(eco: RunningEcosystem, ids: list[int], timeout: float = 900) -> list[dict[str, Any]]:
    client = BuildClient(eco.endpoints["builds"], ca_file=eco.ca_file, token=lambda: eco.token("builds"))
    deadline = time.monotonic() + timeout
    done: dict[int, dict[str, Any]] = {}
    while len(done) < len(ids):
        if time.monotonic() > deadline:
            raise AssertionError(f"builds {sorted(set(ids) - set(done))} not finished after {timeout} s")
        for build_id in ids:
            if build_id not in done and (build := client.get(build_id))["state"] in ("passed", "failed",
                                                                                     "cancelled"):
                done[build_id] = build
        time.sleep(0.5)
    return [done[i] for i in ids]


def publish_hello(eco: RunningEcosystem, directory: Path, variants: dict[str, Variant]) -> dict[str, str]:
    """Each variant pushed, built and published; the version each one got, by name."""
    source = hello_workdir(eco, directory)
    ids = [push_variant(source, name, variant) for name, variant in variants.items()]
    versions = {}
    for name, build in zip(variants, wait_for_builds(eco, ids), strict=True):
        if build["state"] != "passed":
            raise AssertionError(f"the build of {name} {build['state']}: {build['reason']}")
        versions[name] = str(build["published"]["version"])
    return versions


DEPLOY_CATALOG = """
[ecosystem]
name = "deploys"

[hosts.local]
address = "{gateway}"
{ssh_hosts}
[environments.staging]
hosts = ["local"]

[environments.prod]
hosts = [{prod_hosts}]
promote_from = "staging"
soak = "10s"

[edge]
port = 8443
stats_port = 8404

[prometheus]
port = 9090
scrape_interval = "1s"

[alertmanager]
port = 9093

[builds.gates]
# The releases are built while the hosts' tests load the machine: a rebuild may measure a
# third slower there. The deploy tests are about deploys; the gate's own test is in test_builds.
perf_regression = 0.5

[deploy.rollout]
{rollout}

[services.hello]
app = "hello.app:app"
instances = {instances}
port = 8001
hosts = ["local", {prod_hosts}]

[services.hello.health]
interval = "300ms"
fall = 2
rise = 2
"""
SSH_HOST = """
[hosts.{name}]
driver = "ssh"
address = "{address}"
ssh_key = "{key}"
known_hosts = "{known_hosts}"
"""
ROLLOUT = {"verify": '"3s"', "min_requests": "10", "max_error_ratio": "0.1", "readiness_timeout": '"12s"',
           "drain_timeout": '"10s"'}


def deploy_catalog(hosts: NspawnHosts, rollout: dict[str, str] | None = None) -> str:
    """`staging` on this machine (two instances of hello), `prod` on the booted hosts (one each).

    Every platform service listens on this machine's bridge address, where the hosts reach
    the apt repository and the identity service; instances are spread over the hosts in
    turn, so hello-1 and the last one are local and each host has one.
    """
    names = [f"h{n}" for n in range(1, len(hosts.hosts) + 1)]
    ssh_hosts = "".join(SSH_HOST.format(name=name, address=host.address, key=hosts.client_key,
                                        known_hosts=hosts.known_hosts)
                        for name, host in zip(names, hosts.hosts, strict=True))
    settings = {**ROLLOUT, **(rollout or {})}
    return DEPLOY_CATALOG.format(gateway=hosts.gateway, ssh_hosts=ssh_hosts,
                                 prod_hosts=", ".join(f'"{n}"' for n in names),
                                 instances=len(names) + 2,
                                 rollout="\n".join(f"{key} = {value}" for key, value in settings.items()))
