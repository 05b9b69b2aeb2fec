"""Test hosts that behave like real Debian servers: systemd, sshd, apt and dpkg, booted with nspawn.

The `ssh` host driver and deployments are tested against these, not against mocks. A
Debian root filesystem is built once with debootstrap and cached (`ensure_rootfs`);
`NspawnHosts` boots any number of throw-away hosts from it, each in its own network
namespace, wired to a private bridge on this machine:

    this machine (gateway .1 on the bridge)  <->  host .11, host .12, ...

The eco-system's services listen on the gateway address so the hosts reach them, and this
machine (HAProxy) reaches each host's address. Each run gets its own bridge name, netns
names and an unused /24, so parallel test processes do not meet; teardown removes all of
it, and a run killed half way is swept by the next one (see `_REGISTRY`).

Why nspawn and not Docker or VMs: it boots the real init (systemd) of a real Debian tree
in about a second, with no daemon and nothing but Debian packages (systemd-container).

Why `--volatile=overlay` and not `--ephemeral`: both give each boot the pristine rootfs and
drop what it wrote on exit, but on ext4 (no btrfs snapshots) `--ephemeral` copies the whole
tree (~230 MB, 4.7 s per host here) and leaves that copy behind when nspawn is killed;
the overlay's upper layer is a tmpfs inside the container's mount namespace (0.5 s, and it
vanishes with the container whatever happens).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ..hosts import pid_alive

SUITE = "bookworm"
# prometheus-node-exporter: the deploy service installs it on a host that lacks it, from the
# host's own Debian mirror; the test hosts have no mirror, so it comes with the tree (the
# cache key names every package, so adding one builds a new tree).
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv", "python3-pip-whl",
    "adduser", "ca-certificates", "iproute2", "gpg", "curl", "prometheus-node-exporter",
)
# Bump when `_set_up_tree` changes what it does: the cache key includes it, so a new build follows.
SETUP_VERSION = 1
TOOLS = ("debootstrap", "systemd-nspawn", "ip", "nsenter", "ssh-keygen")

# Units that slow a container's boot, break it, or take apt's lock behind a test's back.
MASKED_UNITS = (
    "systemd-networkd-wait-online.service", "console-getty.service", "getty@tty1.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "fstrim.timer",
    "e2scrub_all.timer", "e2scrub_reap.service", "systemd-timesyncd.service",
)
APT_CONF = """\
// sevenleague test host: apt never asks (the ssh driver runs it without a terminal).
APT::Get::Assume-Yes "true";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
Dpkg::Use-Pty "false";
Acquire::Languages "none";
"""
SSHD_CONF = """\
# sevenleague test host: root logs in with the test run's key, never with a password.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

HOST_FIRST = 11  # host addresses are .11, .12, ...; .1 is this machine's side
NAME_PREFIX = "sl"  # bridge slbrXXXX, netns/machine slXXXXhN, veth slvXXXXhN
_REGISTRY = Path("/run/sevenleague-nspawn")  # one JSON per live run: what to sweep if its owner died
_NETWORK_LOCK = Path("/run/lock/sevenleague-nspawn-net.lock")

log = logging.getLogger(__name__)


class NspawnError(RuntimeError):
    """The rootfs could not be built or a host did not boot; the message says what and where."""


@dataclass(frozen=True)
class BootedHost:
    """One booted test host: reach it at `address`:`ssh_port` as root with the run's key."""

    name: str
    address: str
    nspawn_pid: int
    leader_pid: int  # the container's init, for nsenter
    ssh_port: int = 22
    boot_seconds: float = 0.0


@dataclass
class _Network:
    tag: str
    bridge: str
    network: ipaddress.IPv4Network
    netns: list[str] = field(default_factory=list)
    veths: list[str] = field(default_factory=list)
    nspawn_pids: list[int] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)


# --- pure helpers -------------------------------------------------------------------------------


def cache_key(suite: str = SUITE, packages: Sequence[str] = PACKAGES, setup_version: int = SETUP_VERSION,
              architecture: str = "") -> str:
    """The name of a rootfs in the cache: it changes whenever what goes into the tree changes."""
    text = json.dumps([suite, sorted(packages), setup_version, architecture])
    return f"{suite}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _one_line_sources(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(type, URIs, suites) of each `deb [options] URI suite components` line."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        kind, rest = words[0], words[1:]
        if rest and rest[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            yield kind, [rest[0]], [rest[1]]


def _deb822_sources(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(types, URIs, suites) of each stanza of a .sources file; `Enabled: no` stanzas are skipped."""
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield fields.get("types", ""), fields.get("uris", "").split(), fields.get("suites", "").split()


def mirror_from_sources(files: Sequence[tuple[str, str]], suite: str = SUITE) -> str | None:
    """The first `deb` URI that serves `suite`, from (file name, text) pairs in apt's order."""
    for name, text in files:
        entries = _deb822_sources(text) if name.endswith(".sources") else _one_line_sources(text)
        for types, uris, suites in entries:
            if "deb" in types.split() and suite in suites and uris:
                return uris[0]
    return None


def apt_mirror(suite: str = SUITE, etc_apt: Path = Path("/etc/apt")) -> str:
    """This machine's Debian mirror, read from its apt sources (the only registry it may reach)."""
    files = [etc_apt / "sources.list"]
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    texts = [(path.name, path.read_text(errors="replace")) for path in files if path.is_file()]
    mirror = mirror_from_sources(texts, suite)
    if mirror is None:
        raise NspawnError(f"no apt source for {suite} in {etc_apt}/sources.list(.d): debootstrap needs a "
                          "Debian mirror")
    return mirror


def pick_network(used: Sequence[ipaddress.IPv4Network], rng: random.Random | None = None
                 ) -> ipaddress.IPv4Network:
    """A private /24 that overlaps none of `used` (this machine's addresses and routes)."""
    rng = rng or random.Random()  # noqa: S311 - spreading runs apart, not security
    for _ in range(500):
        candidate = ipaddress.IPv4Network(f"10.{rng.randrange(100, 250)}.{rng.randrange(0, 256)}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise NspawnError("no free private /24 found for the test bridge")


# --- small side effects -------------------------------------------------------------------------


def _run(argv: Sequence[str | Path], *, check: bool = True, timeout: float = 60,
         input: bytes | None = None, pass_fds: Sequence[int] = ()) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run([str(a) for a in argv], capture_output=True, timeout=timeout, check=False,
                              input=input.decode() if input is not None else None, text=True,
                              pass_fds=tuple(pass_fds))
    except subprocess.TimeoutExpired:
        raise NspawnError(f"{' '.join(map(str, argv))} did not finish within {timeout:g} s") from None
    if check and done.returncode != 0:
        raise NspawnError(f"{' '.join(map(str, argv))} exited {done.returncode}: "
                          f"{(done.stderr or done.stdout).strip()[-2000:]}")
    return done


def _ip_json(*args: str) -> list[dict[str, Any]]:
    done = _run(["ip", "-j", *args])
    return list(json.loads(done.stdout or "[]"))


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine has an address in or a route to (the default route aside)."""
    used = []
    for link in _ip_json("addr"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in _ip_json("route"):
        dst = route.get("dst", "default")
        if dst != "default":
            used.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return used


def _link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def _netns_names() -> set[str]:
    return {entry["name"] for entry in _ip_json("netns", "list")}


def _is_our_nspawn(pid: int, tag: str) -> bool:
    """Whether `pid` still is the nspawn of run `tag` (a pid may have been reused since)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    machine = f"--machine={NAME_PREFIX}{tag}h".encode()
    return argv[0].endswith(b"systemd-nspawn") and any(arg.startswith(machine) for arg in argv)


def _mount_points() -> list[str]:
    return [line.split()[4].replace("\\040", " ")
            for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    return [point for point in _mount_points() if point == prefix[:-1] or point.startswith(prefix)]


def _remove_tree(path: Path) -> None:
    """Remove a (partial) rootfs: anything debootstrap left mounted first, never crossing a mount."""
    for point in reversed(_mounts_under(path)):
        _run(["umount", "--lazy", point], check=False)
    if _mounts_under(path):
        raise NspawnError(f"{path} still has mounts after umount; not removing it: "
                          f"{_mounts_under(path)}")
    _run(["rm", "-rf", "--one-file-system", path], check=False, timeout=300)


# --- the root filesystem ------------------------------------------------------------------------


def _mask(root: Path, unit: str) -> None:
    link = root / "etc/systemd/system" / unit
    link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to("/dev/null")


def _set_up_tree(root: Path) -> None:
    """Make a fresh debootstrap tree boot like a server: sshd by key, quiet boot, apt that never asks."""
    (root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)  # services must start under systemd
    (root / "etc/machine-id").write_text("")  # each boot makes its own
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").write_text("sevenleague-test-host\n")  # each boot binds its own over it
    for unit in MASKED_UNITS:
        _mask(root, unit)
    (root / "etc/apt/apt.conf.d/90sevenleague-test").write_text(APT_CONF)
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/sevenleague-test.conf").write_text(SSHD_CONF)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    (ssh_dir / "authorized_keys").touch(mode=0o600)  # the mount point of each run's key
    _run(["chroot", root, "debconf-set-selections"],
         input=b"debconf debconf/frontend select Noninteractive\n")
    if not (root / "etc/ssh/ssh_host_ed25519_key.pub").exists():
        _run(["chroot", root, "ssh-keygen", "-A"])
    if not (root / "etc/systemd/system/multi-user.target.wants/ssh.service").is_symlink():
        _run(["chroot", root, "systemctl", "enable", "ssh.service"])
    _run(["chroot", root, "apt-get", "clean"])
    for leftover in (root / "var/lib/apt/lists").glob("*_*"):
        leftover.unlink()


def _architecture() -> str:
    return _run(["dpkg", "--print-architecture"]).stdout.strip()


def ensure_rootfs(cache_dir: Path, *, suite: str = SUITE, packages: Sequence[str] = PACKAGES,
                  timeout: float = 1800) -> Path:
    """The cached Debian root filesystem for test hosts, built with debootstrap on first use.

    The build goes to a temporary directory beside the cache entry and is renamed into place
    only once complete, under an fcntl lock, so a parallel test process waits for it and a
    build that failed or was killed is never used (the next caller removes it). How long
    the build took is written to `<entry>.json` beside it.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(suite, packages, SETUP_VERSION, _architecture())
    final = cache_dir / key
    if final.is_dir():
        return final
    with (cache_dir / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        for partial in cache_dir.glob(f".build-{key}-*"):
            _remove_tree(partial)  # a build that died half way
        mirror = apt_mirror(suite)
        building = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=cache_dir))
        building.chmod(0o755)
        started = time.monotonic()
        try:
            log.info("building the %s test rootfs from %s into %s", suite, mirror, building)
            done = _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                         "--components=main", suite, building, mirror], check=False, timeout=timeout,
                        pass_fds=[lock.fileno()])  # if we die, the lock stays until debootstrap ends
            if done.returncode != 0:
                tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
                debootstrap_log = building / "debootstrap/debootstrap.log"
                if debootstrap_log.exists():
                    tail += debootstrap_log.read_text(errors="replace").splitlines()[-15:]
                raise NspawnError(f"debootstrap {suite} from {mirror} failed ({done.returncode}):\n"
                                  + "\n".join(tail))
            _set_up_tree(building)
            building.rename(final)
        except BaseException:
            _remove_tree(building)
            raise
        seconds = time.monotonic() - started
        (cache_dir / f"{key}.json").write_text(json.dumps(
            {"suite": suite, "mirror": mirror, "packages": sorted(packages),
             "build_seconds": round(seconds, 1), "built_at": time.time()}, indent=2) + "\n")
        log.info("built the test rootfs in %.0f s", seconds)
    return final


def rootfs_build_seconds(rootfs: Path) -> float | None:
    """How long building `rootfs` took, as recorded beside it (None if unknown)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return float(json.loads(rootfs.with_name(rootfs.name + ".json").read_text())["build_seconds"])
    return None


# --- booting hosts ------------------------------------------------------------------------------


def _register(net: _Network) -> None:
    _REGISTRY.mkdir(parents=True, exist_ok=True)
    (_REGISTRY / f"{net.tag}.json").write_text(json.dumps(
        {"owner": os.getpid(), "bridge": net.bridge, "netns": net.netns, "veths": net.veths,
         "nspawn_pids": net.nspawn_pids}))


def _tear_down(net: _Network, *, stop_timeout: float = 20.0, locked: bool = False) -> None:
    """Stop the hosts (SIGTERM: nspawn powers the container off; SIGKILL late), then the wiring."""
    _reap(net.nspawn_pids)
    alive = [pid for pid in net.nspawn_pids if _is_our_nspawn(pid, net.tag)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    while alive and time.monotonic() < deadline:
        _reap(alive)
        alive = [pid for pid in alive if _is_our_nspawn(pid, net.tag)]
        if alive:
            time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive and time.monotonic() < deadline:
        _reap(alive)
        alive = [pid for pid in alive if _is_our_nspawn(pid, net.tag)]
        time.sleep(0.05)
    if alive:
        log.warning("systemd-nspawn %s survived SIGKILL; its netns stays until it exits", alive)
    if locked:
        _remove_wiring(net)
        return
    _NETWORK_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _NETWORK_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_wiring(net)


def _remove_wiring(net: _Network) -> None:
    existing = _netns_names()
    for name in net.netns:
        if name in existing:
            _run(["ip", "netns", "delete", name], check=False)
    for link in [*net.veths, net.bridge]:
        if _link_exists(link):
            _run(["ip", "link", "delete", link], check=False)
    (_REGISTRY / f"{net.tag}.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        _REGISTRY.rmdir()  # only when no other run is registered
    # `ip netns add` made /run/netns a mount of itself; undo that once no netns is left (a
    # plain umount fails while anything is mounted below it, so another user's netns is safe).
    run_netns = Path("/run/netns")
    if run_netns.is_dir() and not any(run_netns.iterdir()) and str(run_netns) in _mount_points():
        _run(["umount", run_netns], check=False)


def _reap(pids: Sequence[int]) -> None:
    """Collect our own children that exited (a zombie still reads as systemd-nspawn)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def sweep_stale_runs() -> list[str]:
    """Remove what runs whose process died (killed test sessions) left behind; returns their tags."""
    swept: list[str] = []
    if not _REGISTRY.is_dir():
        return swept
    for entry in _REGISTRY.glob("*.json"):
        try:
            state = json.loads(entry.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        if pid_alive(int(state.get("owner", 0))):
            continue
        net = _Network(entry.stem, state["bridge"], ipaddress.IPv4Network("0.0.0.0/32"),
                       list(state["netns"]), list(state["veths"]), [int(p) for p in state["nspawn_pids"]])
        _tear_down(net, stop_timeout=5)
        swept.append(net.tag)
    return swept


def _new_tag() -> str:
    """A tag no live run uses (its names and registry entry are free)."""
    for _ in range(100):
        tag = secrets.token_hex(2)
        if not (_REGISTRY / f"{tag}.json").exists() and not _link_exists(f"{NAME_PREFIX}br{tag}"):
            return tag
    raise NspawnError("no free name for the test bridge")


def _create_network(count: int) -> _Network:
    """The bridge with this machine's gateway address, and one wired netns per host.

    Under a machine-wide lock: two runs must not pick the same /24 or name. A failure half
    way removes what was made before it is raised.
    """
    _NETWORK_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _NETWORK_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tag = _new_tag()
        net = _Network(tag, f"{NAME_PREFIX}br{tag}", pick_network(used_networks()))
        try:
            _register(net)
            _run(["ip", "link", "add", net.bridge, "type", "bridge"])
            _run(["ip", "addr", "add", f"{net.gateway}/{net.network.prefixlen}", "dev", net.bridge])
            _run(["ip", "link", "set", net.bridge, "up"])
            for index in range(count):
                _add_host_netns(net, index)
        except BaseException:
            _tear_down(net, locked=True)
            raise
    return net


def _add_host_netns(net: _Network, index: int) -> None:
    name, veth, peer = (f"{NAME_PREFIX}{net.tag}h{index + 1}", f"{NAME_PREFIX}v{net.tag}h{index + 1}",
                        f"{NAME_PREFIX}p{net.tag}h{index + 1}")
    address = f"{net.network.network_address + HOST_FIRST + index}/{net.network.prefixlen}"
    net.netns.append(name)
    net.veths.append(veth)
    _register(net)
    _run(["ip", "netns", "add", name])
    _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
    _run(["ip", "link", "set", veth, "master", net.bridge, "up"])
    _run(["ip", "link", "set", peer, "netns", name])
    for args in (["link", "set", "lo", "up"], ["link", "set", peer, "name", "eth0"],
                 ["addr", "add", address, "dev", "eth0"], ["link", "set", "eth0", "up"],
                 ["route", "add", "default", "via", net.gateway]):
        _run(["ip", "-n", name, *args])


def _container_leader(nspawn_pid: int) -> int | None:
    """The container's init: the child of nspawn that is PID 1 in its own PID namespace."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{child}/status").read_text()
            nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
            if nspid.split()[-1] == "1" and len(nspid.split()) > 2:
                return int(child)
    return None


def _ssh_answers(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _system_state(leader: int) -> str:
    done = _run(["nsenter", "--target", str(leader), "--all", "systemctl", "is-system-running"],
                check=False, timeout=15)
    return done.stdout.strip()


def _log_tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


class NspawnHosts:
    """`count` booted copies of `rootfs` on a private bridge, for the length of a `with` block.

    After `__enter__`: `hosts` (ready: sshd answers and systemd says running or degraded),
    `gateway` (this machine's address on the bridge), `client_key` (root's key on every
    host), `known_hosts` (pins each host's key; all share the rootfs' host keys). On exit, or
    when a boot fails half way, every nspawn, netns, veth and the bridge are removed.
    """

    def __init__(self, rootfs: Path, count: int, workdir: Path, *, boot_timeout: float = 90.0) -> None:
        self.rootfs = rootfs
        self.count = count
        self.workdir = workdir
        self.boot_timeout = boot_timeout
        self.hosts: list[BootedHost] = []
        self.client_key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self._net: _Network | None = None

    # the wiring, once entered
    @property
    def tag(self) -> str:
        return self._require_net().tag

    @property
    def bridge(self) -> str:
        return self._require_net().bridge

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self._require_net().network

    @property
    def gateway(self) -> str:
        return self._require_net().gateway

    def _require_net(self) -> _Network:
        if self._net is None:
            raise NspawnError("the hosts are not booted: use `with NspawnHosts(...) as hosts:`")
        return self._net

    def __enter__(self) -> NspawnHosts:
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        if missing:
            raise NspawnError(f"not installed here: {', '.join(missing)} "
                              "(run scripts/install-system-packages.sh)")
        sweep_stale_runs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._make_keys()
        try:
            self._net = _create_network(self.count)
            self._boot_all(self._net)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._net is not None:
            _tear_down(self._net)

    def leftovers(self) -> list[str]:
        """What of this run still exists on this machine (empty after a clean exit)."""
        net = self._require_net()
        found = [f"nspawn pid {pid}" for pid in net.nspawn_pids if _is_our_nspawn(pid, net.tag)]
        found += [f"netns {name}" for name in sorted(_netns_names() & set(net.netns))]
        found += [f"link {link}" for link in [*net.veths, net.bridge] if _link_exists(link)]
        found += [f"mount {point}" for point in _mounts_under(self.rootfs.parent)
                  if self.rootfs.name in point]
        return found

    def nsenter(self, host: BootedHost, argv: Sequence[str], *, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside `host` without ssh (to look at a host the test broke on purpose)."""
        return _run(["nsenter", "--target", str(host.leader_pid), "--all", *argv], check=check,
                    timeout=timeout)

    def _make_keys(self) -> None:
        for path in (self.client_key, self.client_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sevenleague-test-{os.getpid()}",
              "-f", self.client_key])
        self.client_key.chmod(0o600)
        self.authorized_keys = self.workdir / "authorized_keys"
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o644)

    def _boot_all(self, net: _Network) -> None:
        host_key = (self.rootfs / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        etc_hosts, resolv_conf = self._name_files(net)
        started: list[tuple[str, str, subprocess.Popen[bytes], float, Path]] = []
        for index, name in enumerate(net.netns):
            address = str(net.network.network_address + HOST_FIRST + index)
            console = self.workdir / f"{name}.console.log"
            hostname = self.workdir / f"{name}.hostname"  # each host its own name, as a server has
            hostname.write_text(f"{name}\n")
            with console.open("wb") as out:
                process = subprocess.Popen(
                    ["systemd-nspawn", "--quiet", "--boot", "--volatile=overlay",
                     "--directory", str(self.rootfs),
                     f"--network-namespace-path=/run/netns/{name}", f"--machine={name}",
                     "--register=no", "--keep-unit", "--link-journal=no", "--console=passive",
                     "--resolv-conf=off", "--timezone=off", f"--uuid={secrets.token_hex(16)}",
                     f"--bind-ro={self.authorized_keys}:/root/.ssh/authorized_keys",
                     f"--bind-ro={hostname}:/etc/hostname", f"--bind-ro={etc_hosts}:/etc/hosts",
                     f"--bind-ro={resolv_conf}:/etc/resolv.conf"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            net.nspawn_pids.append(process.pid)
            _register(net)
            started.append((name, address, process, time.monotonic(), console))
        with self.known_hosts.open("w") as known:
            for _, address, *_rest in started:
                known.write(f"{address} {host_key[0]} {host_key[1]}\n")
        pending = list(started)
        ready: dict[str, BootedHost] = {}
        deadline = time.monotonic() + self.boot_timeout
        while pending:
            for item in list(pending):
                name, address, process, since, console = item
                if process.poll() is not None:
                    raise NspawnError(f"host {name}: systemd-nspawn exited {process.returncode} while "
                                      f"booting {self.rootfs}:\n{_log_tail(console)}")
                leader = _container_leader(process.pid)
                if leader is None or _system_state(leader) not in ("running", "degraded"):
                    continue
                if not _ssh_answers(address):
                    continue
                ready[name] = BootedHost(name, address, process.pid, leader,
                                         boot_seconds=round(time.monotonic() - since, 2))
                pending.remove(item)
            if pending and time.monotonic() > deadline:
                name, address, _process, _since, console = pending[0]
                raise NspawnError(f"host {name} ({address}) did not boot within {self.boot_timeout:.0f} s "
                                  f"(systemd: {self._state_of(_process.pid)}):\n{_log_tail(console)}")
            if pending:
                time.sleep(0.2)
        self.hosts = [ready[name] for name in net.netns]
        for host in self.hosts:
            log.info("booted %s at %s in %.1f s", host.name, host.address, host.boot_seconds)

    def _name_files(self, net: _Network) -> tuple[Path, Path]:
        """/etc/hosts naming every host and the gateway; a resolv.conf with no server.

        The hosts cannot reach this machine's resolver: with its address in resolv.conf every
        lookup (Python's http.server does one at start) would wait for DNS timeouts. With no
        server, glibc asks 127.0.0.1, which refuses at once.
        """
        etc_hosts = self.workdir / "hosts"
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
                 f"{net.gateway} sevenleague-gateway"]
        lines += [f"{net.network.network_address + HOST_FIRST + index} {name}"
                  for index, name in enumerate(net.netns)]
        etc_hosts.write_text("\n".join(lines) + "\n")
        resolv_conf = self.workdir / "resolv.conf"
        resolv_conf.write_text("# sevenleague test hosts: no DNS; names are in /etc/hosts\n")
        return etc_hosts, resolv_conf

    @staticmethod
    def _state_of(nspawn_pid: int) -> str:
        leader = _container_leader(nspawn_pid)
        return _system_state(leader) if leader else "no init yet"


@contextlib.contextmanager
def boot_hosts(rootfs: Path, count: int, workdir: Path, *, boot_timeout: float = 90.0
               ) -> Iterator[NspawnHosts]:
    """`with boot_hosts(rootfs, 2, tmp) as hosts:` — the function form of `NspawnHosts`."""
    with NspawnHosts(rootfs, count, workdir, boot_timeout=boot_timeout) as hosts:
        yield hosts


# --- for pytest -----------------------------------------------------------------------------------
# The suite's policy on machines that cannot run test hosts. Not root: the tests are skipped
# (debootstrap, nspawn, netns and bridges need root). As root, anything missing or failing is
# a test failure with the reason: CI runs these as root on Debian, and a silent skip there
# would hide that the host tests never ran.


def rootfs_for_tests(cache_dir: Path) -> Path:
    """`ensure_rootfs` for a test: skipped when not root, failed (not errored) with the reason."""
    import pytest  # only test sessions call this

    if os.geteuid() != 0:
        pytest.skip("building and booting nspawn test hosts needs root")
    try:
        return ensure_rootfs(cache_dir)
    except NspawnError as error:
        pytest.fail(f"the nspawn test rootfs cannot be built here: {error}", pytrace=False)


@contextlib.contextmanager
def nspawn_hosts_for_tests(cache_dir: Path, count: int, workdir: Path) -> Iterator[NspawnHosts]:
    """Booted hosts for a test fixture (`with ... as hosts: yield hosts`), with the policy above."""
    import pytest

    rootfs = rootfs_for_tests(cache_dir)
    try:
        hosts = NspawnHosts(rootfs, count, workdir)
        hosts.__enter__()
    except NspawnError as error:
        pytest.fail(f"nspawn test hosts cannot boot here: {error}", pytrace=False)
    try:
        yield hosts
    finally:
        hosts.close()
