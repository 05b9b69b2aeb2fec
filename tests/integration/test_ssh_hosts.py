"""The `ssh` host driver against real Debian hosts: systemd-nspawn containers on a test bridge.

Two hosts boot once for the module from the cached rootfs (built by debootstrap on the
first run, see sevenleague.testing.nspawn); every test talks to them over real SSH with
`SshHost`, as a deployment would. A tiny package, sl-probe, is built here in two versions:
a systemd unit serving HTTP on port 8123, so the tests see a real install, start,
upgrade and downgrade, and traffic both ways across the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sevenleague.hosts import HostError, HostsFailed, SshHost, on_hosts
from sevenleague.testing import free_port, http_request, record_figures, wait_for_http
from sevenleague.testing.nspawn import (
    NspawnError,
    NspawnHosts,
    ensure_rootfs,
    mirror_from_sources,
    nspawn_hosts_for_tests,
    rootfs_build_seconds,
    rootfs_for_tests,
    sweep_stale_runs,
)

from ..conftest import ROOT

pytestmark = pytest.mark.integration

CACHE = ROOT / "build" / "test-cache" / "nspawn"
PROBE, PORT = "sl-probe", 8123
UNIT = f"{PROBE}.service"
VERSIONS = ("1.0", "2.0")
STARTED = time.monotonic()

PROBE_UNIT = f"""\
[Unit]
Description=sevenleague test probe: a static HTTP server

[Service]
WorkingDirectory=/usr/share/{PROBE}
ExecStart=/usr/bin/python3 -m http.server {PORT} --bind 0.0.0.0

[Install]
WantedBy=multi-user.target
"""


def build_probe(version: str, out: Path) -> Path:
    """sl-probe VERSION as a .deb: the unit, and a page that says its version."""
    tree = out / f"{PROBE}-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {PROBE}\nVersion: {version}\nArchitecture: all\nMaintainer: Tests <t@example.org>\n"
        f"Depends: python3\nDescription: sevenleague test probe\n serves its version on port {PORT}\n")
    (tree / "lib/systemd/system").mkdir(parents=True)
    (tree / "lib/systemd/system" / UNIT).write_text(PROBE_UNIT)
    (tree / "usr/share" / PROBE).mkdir(parents=True)
    (tree / "usr/share" / PROBE / "index.html").write_text(f"{PROBE} {version}\n")
    deb = out / f"{PROBE}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", tree, deb], check=True,
                   capture_output=True)
    return deb


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("debs")
    return {version: build_probe(version, out) for version in VERSIONS}


@pytest.fixture(scope="module")
def booted(tmp_path_factory) -> Iterator[NspawnHosts]:
    started = time.monotonic()
    with nspawn_hosts_for_tests(CACHE, 2, tmp_path_factory.mktemp("nspawn")) as hosts:
        record_figures("nspawn-hosts", {
            "rootfs_build_seconds": rootfs_build_seconds(hosts.rootfs),
            "boot_all_seconds": round(time.monotonic() - started, 2),
            "boot_seconds": {host.name: host.boot_seconds for host in hosts.hosts}})
        yield hosts
    assert hosts.leftovers() == []


def ssh_hosts(booted: NspawnHosts, **options) -> list[SshHost]:
    return [SshHost(host.name, host.address, client_key=booted.client_key, known_hosts=booted.known_hosts,
                    **options) for host in booted.hosts]


@contextlib.asynccontextmanager
async def connected(booted: NspawnHosts) -> AsyncIterator[list[SshHost]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(host) for host in ssh_hosts(booted)]


def run(coroutine):
    return asyncio.run(coroutine)


def our_names(booted: NspawnHosts) -> list[str]:
    """Any netns, link or nspawn process on this machine that carries this run's tag."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    names = [f"{prefix}{booted.tag}" for prefix in ("sl", "slbr", "slv", "slp")]
    return [line for text in (links, netns, processes) for line in text.splitlines()
            if any(name in line for name in names)]


@contextlib.contextmanager
def serve_directory(directory: Path, address: str) -> Iterator[str]:
    """A static HTTP server on this machine's bridge address (where the eco-system's services listen)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer((address, free_port(address)), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- the rootfs -------------------------------------------------------------------------------------


def test_the_mirror_is_the_first_bookworm_source_in_either_apt_format():
    one_line = "# deb http://commented.example/debian bookworm main\n" \
               "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm-updates main\n" \
               "deb http://one.example/debian bookworm main\n"
    deb822 = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n" \
             "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n\n" \
             "Types: deb\n# a comment\nURIs: http://new.example/debian\nSuites: bookworm bookworm-updates\n"
    assert mirror_from_sources([("debian.sources", deb822), ("x.list", one_line)]) == "http://new.example/debian"
    assert mirror_from_sources([("sources.list", one_line)]) == "http://one.example/debian"
    assert mirror_from_sources([("sources.list", one_line)], suite="trixie") is None


@pytest.mark.timeout(1800)  # the first run builds it: debootstrap takes minutes
def test_the_rootfs_is_cached_complete_and_ready_to_boot():
    rootfs = rootfs_for_tests(CACHE)
    assert rootfs.parent == CACHE and not list(CACHE.glob(".build-*"))
    assert not (rootfs / "usr/sbin/policy-rc.d").exists()
    assert (rootfs / "etc/machine-id").read_text() == ""
    assert (rootfs / "etc/systemd/system/multi-user.target.wants/ssh.service").is_symlink()
    assert (rootfs / "etc/systemd/system/apt-daily.timer").readlink() == Path("/dev/null")
    assert rootfs_build_seconds(rootfs) is not None


# --- commands and facts --------------------------------------------------------------------------


def test_commands_run_on_both_hosts_in_parallel_over_one_connection_each(booted):
    async def scenario():
        async with connected(booted) as hosts:
            names = await on_hosts(hosts, lambda host: host.run(["cat", "/etc/hostname"]))
            states = await on_hosts(hosts, lambda host: host.system_state())
            offsets = await on_hosts(hosts, lambda host: host.clock_offset())
            free = await on_hosts(hosts, lambda host: host.free_bytes("/"))
            gateway = await on_hosts(hosts, lambda host: host.run(
                ["python3", "-c", "import socket, sys; socket.create_connection((sys.argv[1], 22), 3)",
                 booted.gateway], check=False))
            return names, states, offsets, free, gateway

    names, states, offsets, free, gateway = run(scenario())
    assert {name: result.stdout.strip() for name, result in names.items()} == {
        host.name: host.name for host in booted.hosts}
    assert set(states.values()) <= {"running", "degraded"}, states
    assert all(abs(offset) < 1.0 for offset in offsets.values()), offsets
    assert all(value > 50_000_000 for value in free.values()), free
    # the hosts reach this machine's bridge address (port 22 is closed here: refused, not unreachable)
    assert all("Connection refused" in result.stderr or result.returncode == 0
               for result in gateway.values()), gateway


def test_put_file_writes_atomically_once_and_changes_nothing_the_second_time(booted):
    path = "/etc/sl-test/nested/app.conf"
    stat = ["stat", "-c", "%i %.9Y %a %U:%G", path]

    async def scenario():
        async with connected(booted) as (host, _):
            first = await host.put_file(path, b"answer = 42\n", mode=0o640, group="adm")
            before = (await host.run(stat)).stdout
            second = await host.put_file(path, b"answer = 42\n", mode=0o640, group="adm")
            after = (await host.run(stat)).stdout
            mode_changed = await host.put_file(path, b"answer = 42\n", mode=0o600, group="adm")
            content = (await host.run(["cat", path])).stdout
            leftovers = (await host.run(["ls", "-A", "/etc/sl-test/nested"])).stdout.split()
            removed = [await host.remove_file(path), await host.remove_file(path)]
            return first, second, before, after, mode_changed, content, leftovers, removed

    first, second, before, after, mode_changed, content, leftovers, removed = run(scenario())
    assert (first, second, mode_changed) == (True, False, True)
    assert before == after, "the second put_file touched the file"
    assert before.split()[2:] == ["640", "root:adm"]
    assert content == "answer = 42\n"
    assert leftovers == ["app.conf"], "a temporary file was left beside the target"
    assert removed == [True, False]


# --- packages and units --------------------------------------------------------------------------


def test_a_package_installed_with_dpkg_runs_its_unit_and_serves_across_the_bridge(booted, debs):
    async def install(host: SshHost) -> tuple[bool, bool, str | None]:
        for deb in debs.values():
            await host.put_file(f"/var/tmp/{deb.name}", deb.read_bytes())
        first = await host.dpkg_install(f"/var/tmp/{debs['2.0'].name}")
        again = await host.dpkg_install(f"/var/tmp/{debs['2.0'].name}")
        await host.daemon_reload()
        await host.systemctl("restart", UNIT)
        return first, again, await host.installed_version(PROBE)

    async def check(host: SshHost):
        return await host.unit_state(UNIT)

    async def scenario():
        async with connected(booted) as hosts:
            installed = await on_hosts(hosts, install)
            states = await on_hosts(hosts, check)
            return installed, states

    installed, states = run(scenario())
    assert set(installed.values()) == {(True, False, "2.0")}
    for state in states.values():
        assert (state.active_state, state.sub_state) == ("active", "running")
        assert state.main_pid > 0
    one, two = booted.hosts
    for host in booted.hosts:  # this machine -> each host, through the bridge
        wait_for_http(f"http://{host.address}:{PORT}/", timeout=20)
        assert http_request(f"http://{host.address}:{PORT}/").body == b"sl-probe 2.0\n"

    second_address = two.address

    async def across_and_downgrade():
        async with connected(booted) as (first, second):
            page = await second.run(["curl", "-sS", "--max-time", "5", f"http://{one.address}:{PORT}/"])
            journal = await first.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"])
            for _ in range(50):  # journald may take a moment to store the request's line
                if second_address in journal.stdout:
                    break
                await asyncio.sleep(0.1)
                journal = await first.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"])
            downgraded = await first.dpkg_install(f"/var/tmp/{debs['1.0'].name}")
            await first.systemctl("restart", UNIT)
            return page.stdout, journal.stdout, downgraded, await first.installed_version(PROBE)

    page, journal, downgraded, version = run(across_and_downgrade())
    assert page == "sl-probe 2.0\n"
    assert '"GET / HTTP/1.1" 200' in journal and two.address in journal, journal
    assert (downgraded, version) == (True, "1.0")
    wait_for_http(f"http://{one.address}:{PORT}/", timeout=20)
    assert http_request(f"http://{one.address}:{PORT}/").body == b"sl-probe 1.0\n"


def test_apt_installs_exactly_the_version_asked_from_the_given_source_only(booted, debs, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for deb in debs.values():
        (repo / deb.name).write_bytes(deb.read_bytes())
    packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo, check=True,
                              capture_output=True).stdout
    (repo / "Packages").write_bytes(packages)
    release = subprocess.run(["apt-ftparchive", "release", "."], cwd=repo, check=True,
                             capture_output=True).stdout
    (repo / "Release").write_bytes(release)
    sources = "/etc/apt/sevenleague-test.list"

    async def scenario(url: str):
        async with connected(booted) as (_, host):
            await host.put_file(sources, f"deb [trusted=yes] {url}/ ./\n".encode())
            steps = [await host.installed_version(PROBE),
                     await host.apt_install(PROBE, "2.0", sources_file=sources),
                     await host.installed_version(PROBE),
                     await host.apt_install(PROBE, "2.0", sources_file=sources),
                     await host.apt_install(PROBE, "1.0", sources_file=sources),
                     await host.installed_version(PROBE)]
            lists = (await host.run(["ls", "/var/lib/apt/lists"])).stdout.split()
            with pytest.raises(HostError) as missing:
                await host.apt_install(PROBE, "9.9", sources_file=sources)
            return steps, lists, missing.value

    with serve_directory(repo, booted.gateway) as url:
        steps, lists, missing = run(scenario(url))
    # host 2 may hold 2.0 from the dpkg test; apt then has nothing to do for 2.0
    assert steps[2:] == ["2.0", False, True, "1.0"]
    assert steps[1] == (steps[0] != "2.0")
    assert [name for name in lists if name.endswith("_Packages")] == [
        f"{booted.gateway}:{url.rsplit(':', 1)[1].rstrip('/')}_._Packages"], lists
    assert "deb.debian.org" not in " ".join(lists)
    assert "9.9" in str(missing) and booted.hosts[1].name in str(missing)


# --- errors --------------------------------------------------------------------------------------


def test_a_failing_command_raises_a_host_error_naming_host_and_command(booted):
    async def scenario():
        async with connected(booted) as (host, _):
            with pytest.raises(HostError) as failed:
                await host.run(["ls", "/no/such/dir"])
            unchecked = await host.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
            fed = await host.run(["sha256sum"], input=b"abc")
            env = await host.run(["sh", "-c", 'echo "$GREETING"'], env={"GREETING": "hello world"})
            with pytest.raises(HostError) as slow:
                await host.run(["sleep", "5"], timeout=0.5)
            return failed.value, unchecked, fed, env, slow.value

    failed, unchecked, fed, env, slow = run(scenario())
    first = booted.hosts[0].name
    assert str(failed).startswith(f"{first}: `ls /no/such/dir` exited 2: ")
    assert "No such file or directory" in str(failed)
    assert failed.__cause__ is None and failed.__context__ is None  # no asyncssh error chained
    assert (unchecked.returncode, unchecked.stdout, unchecked.stderr) == (3, "out\n", "err\n")
    assert fed.stdout.startswith("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert env.stdout == "hello world\n"
    assert "did not finish within 0.5 s" in str(slow) and "`sleep 5`" in str(slow)


def test_a_wrong_key_a_wrong_host_key_or_no_host_is_a_host_error_with_a_hint(booted, tmp_path):
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other_key], check=True)
    wrong_known = tmp_path / "known_hosts"
    wrong_known.write_text("".join(f"{host.address} {other_key.with_suffix('.pub').read_text()}"
                                   for host in booted.hosts))
    host = booted.hosts[0]
    nowhere = str(booted.network.network_address + 99)
    attempts = {
        "key": SshHost(host.name, host.address, client_key=other_key, known_hosts=booted.known_hosts),
        "host key": SshHost(host.name, host.address, client_key=booted.client_key, known_hosts=wrong_known),
        "nowhere": SshHost("ghost", nowhere, client_key=booted.client_key, known_hosts=booted.known_hosts,
                           connect_timeout=1),
    }

    async def attempt(target: SshHost) -> HostError:
        with pytest.raises(HostError) as refused:
            await target.run(["true"])
        return refused.value

    async def scenario():
        return {kind: await attempt(target) for kind, target in attempts.items()}

    errors = run(scenario())
    assert "ssh login refused" in str(errors["key"]) and "authorized_keys" in errors["key"].hint
    assert "host key not trusted" in str(errors["host key"]) and "known_hosts" in errors["host key"].hint
    assert f"ghost (root@{nowhere}:22): cannot connect" in str(errors["nowhere"])
    assert "sshd listening" in errors["nowhere"].hint
    for error in errors.values():
        assert error.__cause__ is None and error.__suppress_context__, "an asyncssh traceback is chained"


def test_on_hosts_reports_every_failed_host_after_all_finished(booted):
    async def step(host: SshHost) -> str:
        if host.name == booted.hosts[0].name:
            await host.run(["false"])
        await host.run(["sleep", "0.3"])
        return "done"

    async def scenario():
        async with connected(booted) as hosts:
            with pytest.raises(HostsFailed) as failed:
                await on_hosts(hosts, step)
            return failed.value

    failed = run(scenario())
    one, two = booted.hosts
    assert failed.results == {two.name: "done"}
    assert list(failed.errors) == [one.name]
    assert failed.lines() == [f"{one.name}: `false` exited 1: no output"]


# --- no leftovers ----------------------------------------------------------------------------------


def test_a_boot_that_fails_half_way_leaves_nothing_behind(booted, tmp_path):
    rootfs = ensure_rootfs(CACHE)
    hosts = NspawnHosts(rootfs, 1, tmp_path, boot_timeout=0)
    with pytest.raises(NspawnError, match="did not boot within"):
        hosts.__enter__()
    assert hosts.leftovers() == []
    assert subprocess.run(["ip", "link", "show", hosts.bridge], capture_output=True).returncode != 0
    assert f"sl{hosts.tag}h1" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                   text=True).stdout


KILLED_RUN = """
import os, sys
from pathlib import Path
from sevenleague.testing.nspawn import NspawnHosts
hosts = NspawnHosts(Path(sys.argv[1]), 1, Path(sys.argv[2])).__enter__()
print(hosts.tag, flush=True)
os.kill(os.getpid(), 9)
"""


def test_the_next_run_sweeps_what_a_killed_run_left(booted, tmp_path):
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, ensure_rootfs(CACHE), tmp_path],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    tag = done.stdout.strip()
    assert f"sl{tag}h1" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag in sweep_stale_runs()
    assert f"sl{tag}h1" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "link", "show", f"slbr{tag}"], capture_output=True).returncode != 0
    assert f"--machine=sl{tag}h1" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                        text=True).stdout


def test_teardown_leaves_no_netns_bridge_or_nspawn_behind(booted):
    booted.close()
    assert booted.leftovers() == []
    assert our_names(booted) == []
    record_figures("ssh-hosts-module", {"module_seconds": round(time.monotonic() - STARTED, 1)})
