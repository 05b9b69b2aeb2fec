"""git push -> build -> published .deb, through a real eco-system, real git, pytest, dpkg-deb and apt.

One eco-system for the module, with a build cache shared by every run of the suite
(build/test-cache), so only the first build of a CI run fetches wheels from PyPI.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sevenleague.build._runner import build_mark, build_processes
from sevenleague.build.client import BuildClient
from sevenleague.errors import LeagueError
from sevenleague.testing import free_port, http_request, wait_for_http
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem
from sevenleague.testing.identity import bearer

from ..conftest import ROOT
from .conftest import fast_scrape_catalog

SERVICE = "league-demo"
BUILD_CACHE = ROOT / "build" / "test-cache" / "builds"
GIT_ENV = {"GIT_AUTHOR_NAME": "Ada Builder", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada Builder", "GIT_COMMITTER_EMAIL": "ada@example.org"}


@pytest.fixture(scope="module")
def eco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEcosystem]:
    directory = tmp_path_factory.mktemp("builds-eco")
    catalog = fast_scrape_catalog(directory)
    # The same code built twice may measure a third slower on a machine busy with other
    # tests; the regression this module pushes (2 ms of sleep per request) costs far more
    # than half. A gate at 50% tells them apart on any machine.
    catalog.write_text(catalog.read_text().replace("perf_regression = 0.15", "perf_regression = 0.5"))
    running = start_ecosystem(catalog, extra_env={"LEAGUE_BUILD_CACHE": str(BUILD_CACHE)})
    running.login()  # `league build` and `league builds` act as the signed-in user
    yield running
    left = running.stop()
    shutil.rmtree(running.home, ignore_errors=True)
    assert left == [], f"processes left running after league down: {left}"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **GIT_ENV})
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout + done.stderr


def api(eco: RunningEcosystem) -> BuildClient:
    return BuildClient(eco.endpoints["builds"], ca_file=eco.ca_file, token=lambda: eco.token("builds"))


def wait_for_build(eco: RunningEcosystem, build_id: int, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        build = api(eco).get(build_id)
        if build["state"] in ("passed", "failed", "cancelled"):
            return build
        time.sleep(0.5)
    raise AssertionError(f"build {build_id} still {build['state']} after {timeout} s")


def push(workdir: Path, message: str, branch: str = "main") -> int:
    """Commit everything and push; the hook's answer names the queued build."""
    git("add", "-A", cwd=workdir)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=workdir)
    said = git("push", "-q", "league", f"HEAD:{branch}", cwd=workdir)
    match = re.search(r"build (\d+) of " + SERVICE, said)
    assert match, f"the push queued no build: {said}"
    return int(match.group(1))


def published(eco: RunningEcosystem) -> list[tuple[str, str]]:
    """(package, version) pairs in the repository's Packages index, fetched over HTTP."""
    base = eco.endpoints["apt"]
    packages = eco.get(base + "dists/stable/main/binary-amd64/Packages.gz")
    assert packages.status == 200
    text = gzip.decompress(packages.body).decode()
    stanzas = [dict(re.findall(r"^(\S+): (.*)$", s, re.M)) for s in text.split("\n\n") if s.strip()]
    return [(s["Package"], s["Version"]) for s in stanzas]


@pytest.fixture(scope="module")
def workdir(eco: RunningEcosystem, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("src") / SERVICE
    eco.league("new", "service", SERVICE, "--dir", str(directory))
    git("init", "-q", "-b", "main", cwd=directory)
    said = eco.league("repo", "create", SERVICE).stdout
    clone_url = str(eco.home / "repos" / f"{SERVICE}.git")
    assert clone_url in said
    git("remote", "add", "league", clone_url, cwd=directory)
    return directory


@pytest.fixture(scope="module")
def green_build(eco: RunningEcosystem, workdir: Path) -> dict[str, Any]:
    """The scaffolded service exactly as `league new service` wrote it, pushed once."""
    return wait_for_build(eco, push(workdir, "A new service"))


def test_a_pushed_scaffold_builds_green_and_is_published(eco: RunningEcosystem, green_build: dict[str, Any]):
    assert green_build["state"] == "passed", green_build["reason"]
    listed = json.loads(eco.league("builds", "--json").stdout)
    assert green_build["id"] in [b["id"] for b in listed if b["state"] == "passed"]
    for kind in ("unit", "integration", "performance"):
        assert green_build["tests"][kind]["passed"] >= 1
        assert green_build["tests"][kind]["failures"] == 0
    assert green_build["commit_info"]["author"] == "Ada Builder"
    assert [s["state"] for s in green_build["steps"]] == ["passed"] * len(green_build["steps"])
    artifacts = {a["name"]: a for a in green_build["artifacts"]}
    deb = Path(green_build["deb"]["path"])
    assert deb.name in artifacts and deb.exists()
    for entry in artifacts.values():  # every recorded checksum is the file's
        assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert "docs/index.html" in artifacts and "tests/unit.xml" in artifacts
    assert any(name.startswith("perf/") for name in artifacts)
    assert green_build["performance"]["gated"], "the scaffold's performance test gates a figure"
    assert (SERVICE, green_build["published"]["version"]) in published(eco)
    docs = eco.get(eco.endpoints["builds"] + f"/artifacts/{SERVICE}/{green_build['id']}/docs/index.html",
                   headers=bearer(eco.token("builds")))
    assert docs.status == 200 and b"API reference" in docs.body


def test_build_show_prints_steps_and_log(eco: RunningEcosystem, green_build: dict[str, Any]):
    shown = eco.league("build", "show", str(green_build["id"]), "--log").stdout
    assert "publish" in shown and "==> unit tests" in shown and "passed" in shown


def test_league_build_queues_follows_and_exits_with_the_result(eco: RunningEcosystem,
                                                                green_build: dict[str, Any]):
    done = eco.league("build", SERVICE, "--ref", "main", check=False)
    assert done.returncode == 0, done.stderr
    assert "✓ unit tests" in done.stdout and "✓ publish" in done.stdout and "passed" in done.stdout
    missing = eco.league("build", SERVICE, "--ref", "no-such-branch", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"league: 'no-such-branch' is not a commit in {SERVICE}'s repository "
        "(hint: push it first, or name a branch, tag or commit that exists)"]


def test_the_api_describes_itself_and_answers_bad_requests_with_a_reason(eco: RunningEcosystem):
    base = eco.endpoints["builds"]
    spec = json.loads(eco.get(base + "/openapi.json").body)
    auth = bearer(eco.token("builds"))
    assert {"/api/builds", "/api/builds/{build_id}", "/api/builds/{build_id}/log",
            "/api/builds/{build_id}/cancel"} <= set(spec["paths"])
    bad = {
        "not json": (b"{service", 400, "not JSON"),
        "no service": (b"{}", 400, "service is required"),
        "bad name": (b'{"service": "Bad Name"}', 400, "is not a service name"),
        "no repository": (b'{"service": "nothing-here"}', 404, "no repository"),
    }
    for case, (body, status, message) in bad.items():
        answer = eco.get(base + "/api/builds", method="POST", body=body, headers=auth)
        assert answer.status == status, case
        assert message in json.loads(answer.body)["error"], case
    assert eco.get(base + "/api/builds?limit=0", headers=auth).status == 400
    assert eco.get(base + "/api/builds/999999", headers=auth).status == 404
    shown = eco.league("build", "show", "999999", check=False)
    assert shown.returncode == 1 and "no build 999999" in shown.stderr


BAD_PUSHES = {
    "failing unit test": (
        lambda d: (d / "tests" / "unit" / "test_broken.py").write_text(
            "def test_two_and_two():\n    assert 2 + 2 == 5\n"),
        "unit tests failed",
    ),
    "no performance tests": (
        lambda d: shutil.rmtree(d / "tests" / "performance"),
        "no performance tests",
    ),
    "performance regression": (
        lambda d: (d / "src" / SERVICE.replace("-", "_") / "app.py").write_text(
            (d / "src" / SERVICE.replace("-", "_") / "app.py").read_text().replace(
                "async def hello(request: Request) -> PlainTextResponse:\n",
                "async def hello(request: Request) -> PlainTextResponse:\n    import time\n\n"
                "    time.sleep(0.002)\n")),
        "performance regressed: league-demo-in-process.relative_requests_per_second",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PUSHES))
def test_a_bad_push_fails_with_its_reason_and_publishes_nothing(
        eco: RunningEcosystem, workdir: Path, green_build: dict[str, Any], case: str):
    before = published(eco)
    change, reason = BAD_PUSHES[case]
    branch = "break-" + case.replace(" ", "-")
    git("checkout", "-q", "-b", branch, "main", cwd=workdir)
    change(workdir)
    try:
        build = wait_for_build(eco, push(workdir, f"Break it: {case}", branch))
    finally:
        git("checkout", "-q", "-f", "main", cwd=workdir)
    assert build["state"] == "failed"
    assert reason in build["reason"], build["reason"]
    assert "published" not in build and "publish" not in [s["name"] for s in build["steps"]]
    assert published(eco) == before
    assert (SERVICE, green_build["published"]["version"]) in before
    code = eco.league("build", "show", str(build["id"]), check=False)
    assert code.returncode == 1 and reason.split(":")[0] in code.stdout


def test_killing_the_build_service_mid_build_leaves_nothing_running(eco: RunningEcosystem, workdir: Path,
                                                                    green_build: dict[str, Any]):
    build_id = push(workdir, "Build me, then lose the build service")
    queued = api(eco).queue(SERVICE, "main", requested_by="test")  # waits behind the first
    assert api(eco).cancel(queued["id"])["state"] == "cancelled"
    with pytest.raises(LeagueError, match="already cancelled"):
        api(eco).cancel(queued["id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = api(eco).get(build_id)["steps"]
        if any(s["name"] == "integration tests" and s["state"] == "running" for s in steps):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the build never reached its integration tests")
    pid = next(p["pid"] for p in eco.status()["processes"] if p["name"] == "builds")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # supervisord starts it again
        status = eco.status()
        builds = next(p for p in status["processes"] if p["name"] == "builds")
        if builds["pid"] not in (None, pid) and builds["healthy"]:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the build service did not come back")
    build = api(eco).get(build_id)
    assert build["state"] == "failed"
    assert "interrupted" in build["reason"] and "integration tests" in build["reason"]
    assert not [b for b in api(eco).list() if b["state"] == "running"]
    left = build_processes(build_mark(eco.home / "build" / "builds.sqlite3", build_id))
    assert left == [], f"processes of the interrupted build are still alive: {left}"


def apt_options(tmp: Path, eco: RunningEcosystem) -> list[str]:
    """apt with only the eco-system's repository, its key given by signed-by and nothing else."""
    keyring = eco.home / "apt" / "league-archive-keyring.gpg"
    sources = tmp / "sources.list"
    sources.write_text(f"deb [signed-by={keyring}] {eco.endpoints['apt']} stable main\n")
    for folder in ("lists/partial", "archives/partial"):
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    return ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=-",
            "-o", f"Dir::State::Lists={tmp / 'lists'}", "-o", f"Dir::Cache::Archives={tmp / 'archives'}",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "-o", "APT::Sandbox::User=root",
            "-o", f"Acquire::https::CaInfo={eco.ca_file}"]  # served over the eco-system's TLS


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert not check or done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done


def package_paths() -> set[Path]:
    """Every path a package named SERVICE could leave in the places Debian packages write."""
    roots = [Path("/usr/lib"), Path("/etc"), Path("/etc/default"), Path("/var/lib"), Path("/usr/share/doc"),
             Path("/lib/systemd/system"), Path("/usr/share/lintian/overrides"), Path("/etc/systemd/system")]
    return {p for root in roots if root.is_dir() for p in root.glob(f"*{SERVICE}*")}


def test_the_published_package_installs_with_apt_runs_and_purges_clean(
        eco: RunningEcosystem, green_build: dict[str, Any], tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root")
    version = green_build["published"]["version"]
    options = apt_options(tmp_path, eco)
    before = package_paths()
    updated = run("apt-get", *options, "update")
    assert "NO_PUBKEY" not in updated.stderr and "not signed" not in updated.stderr, updated.stderr
    try:
        run("apt-get", *options, "install", "-y", "--no-install-recommends", f"{SERVICE}={version}")
        verified = run("systemd-analyze", "verify", f"{SERVICE}@8123.service", check=False)
        assert verified.returncode == 0, verified.stderr
        python = Path(f"/usr/lib/{SERVICE}/venv/bin/python")
        assert python.exists()
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        server = subprocess.Popen(
            ["setpriv", f"--reuid={SERVICE}", f"--regid={SERVICE}", "--init-groups", str(python), "-m",
             "sevenleague.kit.serve", f"{SERVICE.replace('-', '_')}.app:app", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd="/")
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
            assert http_request(f"http://127.0.0.1:{port}/healthz").status == 200
            assert http_request(f"http://127.0.0.1:{port}/").body == f"Hello from {SERVICE}!\n".encode()
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        run("apt-get", *options, "purge", "-y", SERVICE, check=False)
    assert run("dpkg-query", "-W", SERVICE, check=False).returncode != 0
    assert package_paths() == before, "purge left files behind"
    run("userdel", SERVICE, check=False)  # Debian keeps system users on purge; the test machine need not
