"""The .deb of apps/hello: checked by lintian and systemd-analyze, then installed on this machine.

The package is built once per module from real wheels (pip wheel apps/hello and the
project). The install tests share one package lifecycle and run in file order: install,
serve, reconfigure, trigger, upgrades, rollback, purge. Whatever happens, the machine is left as it
was: the package is purged and its test user removed in the fixture's finally.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sevenleague.build import DebSpec, build_deb, deb_spec_for_wheels
from sevenleague.testing import free_port, http_request, record_figures, wait_for_http

from ..conftest import ROOT

pytestmark = pytest.mark.integration

PACKAGE = "league-test-hello"
V1, V2, V3, V4, V5 = VERSIONS = ("0.1.0-1", "0.1.0-2", "0.1.0-3", "0.1.0-4", "0.1.0-5")
SYSTEM_PYTHON = "/usr/bin/python3"
BASE = Path("/usr/lib") / PACKAGE
UNIT = Path("/lib/systemd/system") / f"{PACKAGE}@.service"
MAX_EXPOSURE = 2.0
# Where a package could leave something behind; each is walked for paths naming the package.
SNAPSHOT_ROOTS = ("/etc", "/var/lib", "/var/cache", "/var/log", "/usr/lib/systemd", "/run/systemd")
SNAPSHOT_DIRS = ("/usr/lib", "/usr/share/doc", "/usr/share/lintian/overrides", "/usr/bin", "/usr/sbin")


def need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)}")


def run(*argv: str | Path, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def dpkg(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """dpkg, waiting for the lock if another engineer's apt holds it."""
    deadline = time.monotonic() + 60
    while True:
        done = run("dpkg", *args, check=False)
        if done.returncode == 0 or "lock" not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert done.returncode == 0, f"dpkg {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done


def python_minor() -> int:
    return int(run(SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[1])").stdout)


def installed_version() -> str | None:
    done = run("dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE, check=False)
    words = done.stdout.split()
    return words[-1] if done.returncode == 0 and "installed" in words else None


def known_to_dpkg() -> bool:
    done = run("dpkg-query", "-W", "-f=${Status}", PACKAGE, check=False)
    return done.returncode == 0 and "not-installed" not in done.stdout


def user_exists(name: str = PACKAGE) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def paths_naming_the_package() -> set[Path]:
    found: set[Path] = set()
    for top in map(Path, SNAPSHOT_ROOTS):
        for directory, dirs, files in os.walk(top):
            found.update(Path(directory, name) for name in dirs + files if PACKAGE in name)
    for top in map(Path, SNAPSHOT_DIRS):
        with contextlib.suppress(FileNotFoundError):
            found.update(path for path in top.iterdir() if PACKAGE in path.name)
    return found


def paths_owned_by(uid: int) -> list[Path]:
    owned = []
    for top in map(Path, ("/etc", "/var", "/usr/lib", "/run")):
        for directory, dirs, files in os.walk(top):
            for path in (Path(directory, name) for name in dirs + files):
                with contextlib.suppress(FileNotFoundError):
                    if path.lstat().st_uid == uid:
                        owned.append(path)
    return owned


def exposure_of(unit_path: Path) -> tuple[float, list[str]]:
    """systemd-analyze's overall exposure of a unit file and the checks it failed."""
    done = run("systemd-analyze", "security", "--offline=yes", unit_path)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert match, done.stdout
    failed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("✗")]
    return float(match.group(1)), failed


@contextlib.contextmanager
def serve_as_user(python: Path, log: Path) -> Iterator[str]:
    """kit.serve from the package's venv as the package's system user; yields the base URL."""
    port = free_port()
    argv = ["setpriv", f"--reuid={PACKAGE}", f"--regid={PACKAGE}", "--init-groups", "--",
            str(python), "-m", "sevenleague.kit.serve", "hello.app:app", "--port", str(port),
            "--drain-seconds", "0", "--service", "hello"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd="/", stdout=out, stderr=subprocess.STDOUT,
                                   env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/healthz", timeout=20)
        status = Path(f"/proc/{process.pid}/status").read_text()
        uid = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        assert uid and int(uid.group(1)) == pwd.getpwnam(PACKAGE).pw_uid
        yield url
    except TimeoutError:
        raise AssertionError(f"kit.serve did not answer:\n{log.read_text()[-2000:]}") from None
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- building -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> list[Path]:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is not here: the package is for Debian's python3")
    if run(SYSTEM_PYTHON, "-m", "pip", "--version", check=False).returncode != 0:
        pytest.skip("pip is not installed for /usr/bin/python3 (apt-get install python3-pip)")
    directory = tmp_path_factory.mktemp("wheels")
    run(SYSTEM_PYTHON, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
        "--wheel-dir", directory, ROOT / "apps" / "hello", ROOT, timeout=300)
    return sorted(directory.glob("*.whl"))


def hello_spec(wheels: list[Path], version: str) -> DebSpec:
    app_wheel = next(path for path in wheels if path.name.startswith("hello-"))
    return deb_spec_for_wheels(
        wheels, app_wheel=app_wheel, package=PACKAGE, version=version, app="hello.app:app",
        summary="says hello, the simplest app in the sevenleague eco-system",
        maintainer="Hello Team <hello@example.org>", service="hello")


@pytest.fixture(scope="module")
def debs(wheels, tmp_path_factory) -> dict[str, Path]:
    need("dpkg-deb")
    out = tmp_path_factory.mktemp("debs")
    started = time.monotonic()
    built = {version: build_deb(hello_spec(wheels, version), wheels, out) for version in VERSIONS}
    record_figures("deb-package", {"build_seconds_each": (time.monotonic() - started) / len(VERSIONS),
                                   "deb_bytes": built[V1].stat().st_size, "wheels": len(wheels)})
    return built


def test_lintian_reports_no_errors(debs):
    need("lintian")
    done = run("lintian", "--no-tag-display-limit", "--show-overrides", debs[V1], check=False,
               timeout=180)
    tags = [line for line in done.stdout.splitlines() if re.match(r"[EWIPXO]: ", line)]
    assert [line for line in tags if line.startswith("E: ")] == [], done.stdout
    assert [line for line in tags if line.startswith("W: ")] == [], done.stdout
    overridden = {line.split()[2] for line in tags if line.startswith("O: ")}
    assert overridden == {"command-with-path-in-maintainer-script", "initial-upload-closes-no-bugs",
                          "non-standard-file-perm"}


def test_the_package_says_what_it_needs_and_holds_only_root_owned_files(debs, wheels):
    fields = dict(line.split(": ", 1) for line in
                  run("dpkg-deb", "--field", debs[V1], "Package", "Version", "Architecture",
                      "Depends").stdout.splitlines())
    minor = python_minor()
    assert fields["Package"] == PACKAGE
    assert fields["Version"] == V1
    assert fields["Architecture"] == run("dpkg", "--print-architecture").stdout.strip()
    depends = fields["Depends"].split(", ")
    assert {f"python3 (>= 3.{minor})", f"python3 (<< 3.{minor + 1})", "python3-venv",
            "python3-pip-whl", "adduser"} <= set(depends)
    info = run("dpkg-deb", "--info", debs[V1]).stdout
    for member in ("control", "conffiles", "md5sums", "postinst", "prerm", "postrm", "triggers"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+{member}\b", info, re.MULTILINE), info
    contents = [line.split() for line in run("dpkg-deb", "--contents", debs[V1]).stdout.splitlines()]
    assert {row[1] for row in contents} == {"root/root"}
    paths = {row[5].removeprefix(".") for row in contents}
    expected = {str(UNIT), f"/etc/default/{PACKAGE}", f"/usr/share/doc/{PACKAGE}/copyright",
                f"/usr/share/doc/{PACKAGE}/changelog.Debian.gz",
                *(f"{BASE}/wheels/{wheel.name}" for wheel in wheels)}
    assert expected <= paths
    assert not [path for path in paths if path.startswith("/opt") or "/venv" in path]


def test_the_hardened_unit_is_exposed_at_most_2(debs, tmp_path):
    need("systemd-analyze")
    run("dpkg-deb", "-x", debs[V1], tmp_path / "root")
    instance = tmp_path / f"{PACKAGE}@8001.service"
    shutil.copyfile(tmp_path / "root" / str(UNIT).lstrip("/"), instance)
    exposure, failed = exposure_of(instance)
    record_figures("deb-unit-exposure", {"unit": instance.name, "exposure": exposure,
                                         "max": MAX_EXPOSURE, "failed_checks": failed})
    assert exposure <= MAX_EXPOSURE, failed


# --- running under systemd: this machine's root, booted in a container -----------------------

HEALTH_PROBE = """
import sys, time, urllib.request
deadline = time.monotonic() + 20
while True:
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
"""


@dataclass
class Container:
    leader: int
    boot_seconds: float

    def run(self, *argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("nsenter", "--target", str(self.leader), "--all", *argv, check=check)

    def get(self, url: str) -> str:
        return self.run(SYSTEM_PYTHON, "-c", HEALTH_PROBE, url).stdout


def _boot_leader(nspawn: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The container's init once systemd in it says it is up, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and nspawn.poll() is None:
        children = run("ps", "-o", "pid=", "--ppid", str(nspawn.pid), check=False).stdout.split()
        if children:
            state = run("nsenter", "--target", children[0], "--all", "systemctl", "is-system-running",
                        check=False).stdout.strip()
            if state in ("running", "degraded"):
                return int(children[0])
        time.sleep(0.2)
    return None


@contextlib.contextmanager
def booted_container(scratch: Path, debs: Path) -> Iterator[Container]:
    """This machine's own root under a tmpfs overlay, booted by systemd-nspawn to basic.target.

    Its own network namespace (loopback only) keeps it off the host's ports; everything it
    writes lands in the tmpfs and is gone after the block.
    """
    upper, merged = scratch / "upper", scratch / "merged"
    upper.mkdir()
    merged.mkdir()
    if run("mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", upper, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    (upper / "data").mkdir()
    (upper / "work").mkdir()
    overlay = f"lowerdir=/,upperdir={upper}/data,workdir={upper}/work"
    mounted = run("mount", "-t", "overlay", "overlay", "-o", overlay, merged, check=False)
    nspawn = None
    log = scratch / "nspawn.log"
    try:
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount an overlay of / here: {mounted.stderr.strip()}")
        started = time.monotonic()
        with log.open("wb") as out:
            nspawn = subprocess.Popen(
                ["systemd-nspawn", "--directory", str(merged), "--boot", "--private-network",
                 "--register=no", "--keep-unit", "--link-journal=no", "--console=passive",
                 f"--uuid={os.urandom(16).hex()}", f"--machine=league-test-{os.getpid()}",
                 f"--bind-ro={debs}:/run/debs", "systemd.unit=basic.target"],
                stdout=out, stderr=subprocess.STDOUT)
        leader = _boot_leader(nspawn, timeout=30)
        if leader is None:
            pytest.skip("systemd-nspawn cannot boot this machine's root here:\n"
                        + "\n".join(log.read_text(errors="replace").splitlines()[-8:]))
        yield Container(leader, time.monotonic() - started)
    finally:
        if nspawn is not None:
            nspawn.terminate()
            try:
                nspawn.wait(30)
            except subprocess.TimeoutExpired:
                nspawn.kill()
                nspawn.wait()
        for mountpoint in (merged, upper):
            if run("umount", mountpoint, check=False).returncode != 0:
                run("umount", "--lazy", mountpoint, check=False)


def test_the_hardened_unit_runs_the_app_under_systemd(debs, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    need("systemd-nspawn", "nsenter", "mount")
    unit = f"{PACKAGE}@8001.service"
    with booted_container(tmp_path, debs[V1].parent) as box:
        box.run("dpkg", "-i", f"/run/debs/{debs[V1].name}")
        box.run("systemctl", "start", unit)
        assert box.get("http://127.0.0.1:8001/healthz").strip() == "ok"
        assert "process_resident_memory_bytes" in box.get("http://127.0.0.1:8001/metrics")
        pid = box.run("systemctl", "show", "--property=MainPID", "--value", unit).stdout.strip()
        status = box.run("cat", f"/proc/{pid}/status").stdout
        assert "NoNewPrivs:\t1" in status
        assert "Seccomp:\t2" in status
        assert re.search(r"^Uid:\t(\d+)", status, re.MULTILINE).group(1) != "0"
        live = re.search(r"Overall exposure level for \S+: ([\d.]+)",
                         box.run("systemd-analyze", "security", unit).stdout)
        assert live and float(live.group(1)) <= MAX_EXPOSURE
        box.run("systemctl", "stop", unit)
        stopped = box.run("systemctl", "show", "--property=Result,ExecMainStatus", unit).stdout
        assert stopped.split() == ["Result=success", "ExecMainStatus=0"]
        box.run("systemctl", "start", unit)
        # Images built for Docker forbid service actions in maintainer scripts (policy-rc.d
        # exits 101), and deb-systemd-invoke obeys; a real host has no such policy.
        box.run("rm", "-f", "/usr/sbin/policy-rc.d")
        box.run("dpkg", "--purge", PACKAGE)
        assert box.run("systemctl", "is-active", unit, check=False).stdout.strip() == "inactive"
        assert box.run("test", "-e", BASE, check=False).returncode == 1
        record_figures("deb-systemd-run", {"boot_seconds": box.boot_seconds,
                                           "exposure_live": float(live.group(1))})


# --- installing on this machine ---------------------------------------------------------------


@dataclass
class Installed:
    before: set[Path]
    debs: dict[str, Path]


def purge_leftovers() -> None:
    """A run killed half-way may have left the test package and user; start from neither."""
    if known_to_dpkg():
        dpkg("--purge", PACKAGE)
    if user_exists():
        run("deluser", "--system", "--quiet", PACKAGE, check=False)


@pytest.fixture(scope="module")
def installed(debs) -> Iterator[Installed]:
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root")
    need("dpkg", "setpriv", "adduser", "deluser", "systemd-analyze", "systemctl")
    purge_leftovers()
    before = paths_naming_the_package()
    try:
        started = time.monotonic()
        dpkg("-i", debs[V1])
        record_figures("deb-install", {"install_seconds": time.monotonic() - started})
        yield Installed(before, debs)
    finally:
        purge_leftovers()


def test_postinst_built_the_venv_where_it_runs(installed, wheels):
    venv = BASE / "venvs" / V1
    assert installed_version() == V1
    assert (BASE / "venv").readlink() == Path("venvs", V1)
    assert (venv / ".ready").read_text().strip() == f"3.{python_minor()}"
    assert (venv / "bin" / "uvicorn").read_text().startswith(f"#!{venv}/bin/python\n")
    assert not (venv / "bin" / "pip").exists()
    assert f"{venv}\n" in (venv / "pyvenv.cfg").read_text()
    build_dir = str(wheels[0].parent)
    leaked = run("grep", "-rlF", build_dir, venv, check=False).stdout.split()
    assert leaked == [], f"the build machine's paths are in the venv: {leaked}"
    run(venv / "bin" / "python", "-c", "import hello.app, sevenleague.kit.serve")
    user = pwd.getpwnam(PACKAGE)
    assert user.pw_uid < 1000
    assert (user.pw_shell, user.pw_dir) == ("/usr/sbin/nologin", "/nonexistent")


def test_systemd_verifies_the_installed_instance(installed):
    done = run("systemd-analyze", "verify", f"{PACKAGE}@8001.service", check=False)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if PACKAGE in line] == []


def test_the_app_answers_as_the_system_user(installed, tmp_path):
    with serve_as_user(BASE / "venv" / "bin" / "python", tmp_path / "serve.log") as url:
        assert http_request(url + "/healthz").status == 200
        assert http_request(url + "/").body == b"Hello, world!\n"


def test_reconfiguring_changes_nothing_that_is_already_right(installed):
    sentinel = BASE / "venvs" / V1 / "sentinel"
    sentinel.touch()
    uid = pwd.getpwnam(PACKAGE).pw_uid
    run("dpkg-reconfigure", PACKAGE)
    for _ in range(2):
        run(f"/var/lib/dpkg/info/{PACKAGE}.postinst", "configure", V1)
    assert sentinel.exists(), "the venv was rebuilt"
    assert (BASE / "venv").readlink() == Path("venvs", V1)
    assert pwd.getpwnam(PACKAGE).pw_uid == uid
    assert sorted(path.name for path in BASE.iterdir()) == ["venv", "venvs", "wheels"]
    sentinel.unlink()


def python3_trigger() -> None:
    """What an upgrade of the package owning /usr/bin/python3 sets off."""
    run("dpkg-trigger", "--no-await", SYSTEM_PYTHON)
    dpkg("--triggers-only", PACKAGE)


def test_the_python_trigger_rebuilds_the_venv_only_when_python_changed(installed):
    venv = BASE / "venvs" / V1
    (venv / "sentinel").touch()
    python3_trigger()
    assert (venv / "sentinel").exists(), "rebuilt although Python did not change"
    (venv / ".ready").write_text("3.0\n")  # as if built by the Python before an upgrade
    python3_trigger()
    assert not (venv / "sentinel").exists(), "not rebuilt for another Python"
    assert (venv / ".ready").read_text().strip() == f"3.{python_minor()}"
    run(venv / "bin" / "python", "-c", "import hello.app")


def venv_names() -> list[str]:
    return sorted(path.name for path in (BASE / "venvs").iterdir())


def test_an_upgrade_builds_a_new_venv_beside_the_one_still_running(installed, tmp_path):
    old_venv, new_venv = BASE / "venvs" / V1, BASE / "venvs" / V2
    with serve_as_user(old_venv / "bin" / "python", tmp_path / "old.log") as url:
        started = time.monotonic()
        dpkg("-i", installed.debs[V2])
        record_figures("deb-upgrade", {"upgrade_seconds": time.monotonic() - started})
        assert installed_version() == V2
        assert (BASE / "venv").readlink() == Path("venvs", V2)
        assert (new_venv / ".ready").exists()
        assert old_venv.is_dir(), "removed under a running instance"
        assert http_request(url + "/healthz").status == 200
    assert f"{new_venv}/bin/python -m sevenleague.kit.serve" in UNIT.read_text()
    run("dpkg-reconfigure", PACKAGE)
    assert venv_names() == [V1, V2], "the previous version's venv is kept for a rollback"
    with serve_as_user(BASE / "venv" / "bin" / "python", tmp_path / "new.log") as url:
        assert http_request(url + "/").status == 200


def test_the_venvs_of_the_three_newest_versions_stay_and_older_ones_go(installed):
    dpkg("-i", installed.debs[V3])
    assert venv_names() == [V1, V2, V3]
    dpkg("-i", installed.debs[V4])
    assert installed_version() == V4
    assert venv_names() == [V2, V3, V4]


def test_a_rollback_to_a_kept_version_runs_no_pip(installed, tmp_path):
    venv = BASE / "venvs" / V2
    ready = (venv / ".ready").stat().st_mtime_ns
    (venv / "sentinel").touch()
    started = time.monotonic()
    done = dpkg("-i", installed.debs[V2])
    rollback_seconds = time.monotonic() - started
    record_figures("deb-rollback", {"rollback_seconds": rollback_seconds})
    assert "downgrading" in (done.stdout + done.stderr).lower()
    assert installed_version() == V2
    assert (BASE / "venv").readlink() == Path("venvs", V2)
    assert (venv / ".ready").stat().st_mtime_ns == ready, "postinst rebuilt the venv"
    assert (venv / "sentinel").exists(), "postinst rebuilt the venv"
    assert f"{venv}/bin/python -m sevenleague.kit.serve" in UNIT.read_text()
    assert venv_names() == [V2, V3, V4], "the configured version counts as the newest"
    (venv / "sentinel").unlink()
    with serve_as_user(BASE / "venv" / "bin" / "python", tmp_path / "rollback.log") as url:
        assert http_request(url + "/").status == 200


def test_a_venv_an_instance_still_runs_is_kept_beyond_the_three(installed, tmp_path):
    running = BASE / "venvs" / V2  # the configured version, and the oldest venv once V5 is in
    with serve_as_user(running / "bin" / "python", tmp_path / "old.log") as url:
        done = dpkg("-i", installed.debs[V5])
        assert f"keeping {running}, a running instance still uses it" in done.stderr
        assert venv_names() == [V2, V3, V4, V5]
        assert http_request(url + "/healthz").status == 200
    run("dpkg-reconfigure", PACKAGE)
    assert venv_names() == [V3, V4, V5]


def test_purge_leaves_nothing_behind_but_the_system_user(installed):
    uid = pwd.getpwnam(PACKAGE).pw_uid
    run("systemctl", "enable", f"{PACKAGE}@8001.service")
    link = Path(f"/etc/systemd/system/multi-user.target.wants/{PACKAGE}@8001.service")
    assert link.is_symlink()
    state = Path("/var/lib") / PACKAGE
    state.mkdir(mode=0o750)  # what systemd's StateDirectory= makes on the first start
    (state / "hello.db").write_text("data")
    for path in (state, state / "hello.db"):
        os.chown(path, uid, uid)
    default = Path("/etc/default") / PACKAGE
    default.write_text(default.read_text() + "EXTRA=edited by the admin\n")
    dpkg("--purge", PACKAGE)
    assert not known_to_dpkg()
    assert paths_naming_the_package() == installed.before
    assert paths_owned_by(uid) == []
    assert PACKAGE not in Path("/var/lib/dpkg/triggers/File").read_text()
    assert user_exists(), "system users stay after purge (see docs/packaging.md)"
