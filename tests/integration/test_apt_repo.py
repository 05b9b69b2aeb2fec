"""The signed apt repository, checked by the real apt against the repository served over HTTP.

apt runs as root with a private configuration (APT_CONFIG): its own sources, lists,
caches, dpkg status and an empty trust store, so only `signed-by=` can make it trust
anything and the machine's own apt state is never touched.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from sevenleague.build._apt_repo import (
    KEEP_BY_HASH,
    AptRepository,
    apt_static_app,
    compare_versions,
    parse_deb822,
)
from sevenleague.build._gpg import ArchiveError, SigningKey, ensure_signing_key, export_keyring, stop_agent
from sevenleague.errors import UsageError
from sevenleague.testing import free_port, http_request, wait_for_http

PROBE = "league-apt-probe"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("apt-get", "apt-ftparchive", "dpkg-deb", "gpg")),
    reason="needs root, apt-get, apt-ftparchive, dpkg-deb and gpg",
)


# --- helpers: a .deb, a server, a private apt ------------------------------------------


def build_deb(directory: Path, version: str, text: str, name: str = PROBE, arch: str = "all",
              tag: str = "") -> Path:
    """A throwaway package with one file, /usr/share/<name>/hello.txt holding `text`."""
    directory = directory / f"debs{tag}"
    tree = directory / f"tree-{name}-{version}-{arch}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: sevenleague tests <tests@example.invalid>\nDescription: apt repository probe\n")
    share = tree / "usr" / "share" / name
    share.mkdir(parents=True)
    (share / "hello.txt").write_text(text)
    deb = directory / f"{name}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


@contextlib.contextmanager
def serve(root: Path):
    """The repository mounted at /apt the way the build service mounts it; yields the base URL."""
    port = free_port()
    app = Starlette(routes=[Mount("/apt", app=apt_static_app(root))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}/apt"
        wait_for_http(f"{base}/league-archive-keyring.gpg", timeout=10)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


class PrivateApt:
    """apt-get and apt-cache with every path of their own under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        for sub in ("apt.conf.d", "sources.list.d", "preferences.d", "trusted.gpg.d", "lists/partial",
                    "archives/partial", "state", "cache", "log"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / "status").write_text("")
        d = directory
        self.config = d / "apt.conf"
        self.config.write_text("\n".join([
            f'Dir::Etc::Parts "{d}/apt.conf.d";', 'Dir::Etc::main "/dev/null";',
            f'Dir::Etc::SourceList "{d}/sources.list";', f'Dir::Etc::SourceParts "{d}/sources.list.d";',
            f'Dir::Etc::Preferences "{d}/preferences";', f'Dir::Etc::PreferencesParts "{d}/preferences.d";',
            f'Dir::Etc::Trusted "{d}/trusted.gpg";', f'Dir::Etc::TrustedParts "{d}/trusted.gpg.d";',
            f'Dir::State "{d}/state";', f'Dir::State::Lists "{d}/lists";',
            f'Dir::State::status "{d}/status";',
            f'Dir::Cache "{d}/cache";', f'Dir::Cache::Archives "{d}/archives";',
            'Dir::Cache::pkgcache "";', 'Dir::Cache::srcpkgcache "";', f'Dir::Log "{d}/log";',
            'APT::Sandbox::User "root";', 'Acquire::Languages "none";', 'Acquire::Retries "0";',
            'Acquire::http::Proxy "DIRECT";', "",
        ]))

    def add_line(self, line: str) -> None:
        (self.dir / "sources.list").write_text(line)

    def add_sources(self, stanza: str) -> None:
        (self.dir / "sources.list.d" / "league.sources").write_text(stanza)

    def run(self, *args: str, tool: str = "apt-get", cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(APT_CONFIG=str(self.config), LC_ALL="C")
        return subprocess.run([tool, "-q", *args], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=60, check=False)

    def update(self) -> tuple[int, str]:
        done = self.run("update")
        return done.returncode, done.stdout + done.stderr


def assert_clean_update(apt: PrivateApt) -> None:
    code, output = apt.update()
    assert code == 0, output
    problems = [line for line in output.splitlines() if line.startswith(("W:", "E:", "Err:"))]
    assert problems == [], output
    for word in ("GPG error", "NO_PUBKEY", "not signed", "insecure", "BADSIG"):
        assert word not in output


def agents_for(home: Path) -> list[int]:
    """Live (not zombie) gpg-agent processes whose command line names `home`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and cmdline and cmdline[0].endswith(b"gpg-agent") and str(home).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def gnupg_home(tmp_path):
    home = tmp_path / "gnupg"
    yield home
    left = agents_for(home)
    stop_agent(home)
    assert left == [], f"gpg-agent left running for {home}: {left}"


@pytest.fixture
def key(gnupg_home) -> SigningKey:
    return ensure_signing_key(gnupg_home, "test")


# --- the key ---------------------------------------------------------------------------


def test_archive_key_is_made_once_kept_private_and_leaves_no_agent(tmp_path, gnupg_home):
    first = ensure_signing_key(gnupg_home, "test")
    again = ensure_signing_key(gnupg_home, "test")
    assert again == first and len(first.fingerprint) == 40
    assert first.uid == "sevenleague test archive key"
    assert gnupg_home.stat().st_mode & 0o777 == 0o700
    secrets = list((gnupg_home / "private-keys-v1.d").glob("*.key"))
    assert secrets, "no secret key material under private-keys-v1.d"
    files = [p for p in gnupg_home.rglob("*") if p.is_file()]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}, files
    assert agents_for(gnupg_home) == []

    # The check above is not vacuous: a running agent is found, and stop_agent ends it.
    subprocess.run(["gpg-connect-agent", "--homedir", str(gnupg_home), "/bye"], check=True,
                   capture_output=True, env={**os.environ, "GNUPGHOME": str(gnupg_home)})
    assert agents_for(gnupg_home) != []
    stop_agent(gnupg_home)
    deadline = time.monotonic() + 5
    while agents_for(gnupg_home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agents_for(gnupg_home) == []

    keyring, armored = export_keyring([first], tmp_path / "repo" / "league-archive-keyring.gpg")
    assert keyring.stat().st_mode & 0o777 == 0o644 and armored.stat().st_mode & 0o777 == 0o644
    assert armored.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    (tmp_path / "empty").mkdir(mode=0o700)
    listed = subprocess.run(["gpg", "--batch", "--show-keys", "--with-colons", str(keyring)],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "GNUPGHOME": str(tmp_path / "empty")})
    assert first.fingerprint in listed.stdout


def test_the_secret_key_may_not_live_inside_the_served_root(tmp_path):
    key = SigningKey("0" * 40, "sevenleague x archive key", tmp_path / "repo" / "gnupg")
    with pytest.raises(UsageError, match="inside the served repository"):
        AptRepository(tmp_path / "repo", key)


# --- apt trusts what is signed, and only that -------------------------------------------


def test_apt_installs_from_the_signed_repository_and_sees_every_version(tmp_path, key):
    repo = AptRepository(tmp_path / "repo", key)
    v1 = build_deb(tmp_path, "1.0", "hello 1.0\n")
    v2 = build_deb(tmp_path, "1.1", "hello 1.1\n")
    first = repo.publish(v1)
    assert first.filename == f"pool/main/l/{PROBE}/{PROBE}_1.0_all.deb"
    old_inrelease = (repo.dists / "stable" / "InRelease").read_text()
    repo.publish(v2)
    assert [p.version for p in repo.packages()] == ["1.0", "1.1"]
    assert repo.publish(v1) == first  # the identical file again: nothing changes

    with serve(repo.root) as base:
        apt = PrivateApt(tmp_path / "apt")
        apt.add_line(repo.sources_line(base, keyring=str(repo.keyring)))
        assert_clean_update(apt)
        policy = apt.run("policy", PROBE, tool="apt-cache").stdout
        assert "Candidate: 1.1" in policy and " 1.0 " in policy, policy
        fetched = apt.run("download", f"{PROBE}=1.0", cwd=tmp_path / "apt")
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        assert (tmp_path / "apt" / v1.name).read_bytes() == v1.read_bytes()

        # A client holding the InRelease from before the last publish still gets the
        # Packages it names: apt fetches it by hash and the old by-hash files are kept.
        stanza = parse_deb822(old_inrelease.split("\n\n", 1)[1])[0]
        line = next(x for x in stanza["SHA256"].splitlines() if x.endswith("binary-amd64/Packages.gz"))
        digest = line.split()[0]
        old = http_request(f"{base}/dists/stable/main/binary-amd64/by-hash/SHA256/{digest}")
        assert old.status == 200 and hashlib.sha256(old.body).hexdigest() == digest
        assert b"Version: 1.1" not in gzip.decompress(old.body)

        # Only the public files are served: no lock file, no generation, no listing.
        for path in (".lock", ".dists-1/stable/InRelease", "dists/", "pool/main/"):
            assert http_request(f"{base}/{path}").status == 404, path
        served = http_request(f"{base}/{first.filename}")
        assert served.status == 200 and served.body == v1.read_bytes()
        assert "immutable" in served.headers["cache-control"]
        assert http_request(f"{base}/dists/stable/InRelease").headers["cache-control"] == "no-cache"


def test_a_deb822_sources_file_with_the_key_embedded_is_enough_for_a_host(tmp_path, key):
    repo = AptRepository(tmp_path / "repo", key, suite="dev", codename="league-dev", label="league dev")
    repo.publish(build_deb(tmp_path, "2.0~rc1", "rc\n"))
    with serve(repo.root) as base:
        apt = PrivateApt(tmp_path / "apt")
        apt.add_sources(repo.sources_stanza(base))
        assert_clean_update(apt)
        assert "Candidate: 2.0~rc1" in apt.run("policy", PROBE, tool="apt-cache").stdout


def _tamper_packages(repo: AptRepository) -> None:
    directory = repo.dists / "stable" / "main" / "binary-amd64"
    text = (directory / "Packages").read_text().replace("repository probe", "repository PROBE")
    # Rewritten in place: the by-hash hard links change with them, as an attacker's edit would.
    with (directory / "Packages").open("r+") as stream:
        stream.write(text)
    with (directory / "Packages.gz").open("r+b") as stream:
        stream.truncate(0)
        stream.write(gzip.compress(text.encode(), mtime=0))


def _tamper_inrelease(repo: AptRepository) -> None:
    path = repo.dists / "stable" / "InRelease"
    path.write_text(path.read_text().replace("Origin: sevenleague", "Origin: someone-else"))


def _strip_signatures(repo: AptRepository) -> None:
    (repo.dists / "stable" / "InRelease").unlink()
    (repo.dists / "stable" / "Release.gpg").unlink()


@pytest.mark.parametrize(("tamper", "expected"), [
    # apt checks the size first, then the hash; either way the signed Release caught it.
    (_tamper_packages, "Hash Sum mismatch|unexpected size"),
    (_tamper_inrelease, "BADSIG"),
    (_strip_signatures, "is not signed"),
])
def test_apt_refuses_a_tampered_or_unsigned_repository(tmp_path, key, tamper, expected):
    repo = AptRepository(tmp_path / "repo", key)
    repo.publish(build_deb(tmp_path, "1.0", "hello\n"))
    tamper(repo)
    with serve(repo.root) as base:
        apt = PrivateApt(tmp_path / "apt")
        apt.add_line(repo.sources_line(base, keyring=str(repo.keyring)))
        code, output = apt.update()
    assert re.search(expected, output), output
    assert code != 0 or "W:" in output, output
    assert "Candidate" not in apt.run("policy", PROBE, tool="apt-cache").stdout


def test_apt_refuses_a_repository_signed_by_another_key(tmp_path, gnupg_home, key):
    stranger = ensure_signing_key(tmp_path / "other-gnupg", "stranger")
    try:
        repo = AptRepository(tmp_path / "repo", stranger)
        repo.publish(build_deb(tmp_path, "1.0", "hello\n"))
        trusted, _ = export_keyring([key], tmp_path / "trusted.gpg")
        with serve(repo.root) as base:
            apt = PrivateApt(tmp_path / "apt")
            apt.add_line(repo.sources_line(base, keyring=str(trusted)))
            code, output = apt.update()
        assert code != 0, output
        assert "NO_PUBKEY" in output and "is not signed" in output, output
    finally:
        assert agents_for(tmp_path / "other-gnupg") == []


def test_a_rotation_signs_with_both_keys_so_old_and_new_hosts_keep_updating(tmp_path, gnupg_home, key):
    new = ensure_signing_key(gnupg_home, "test 2")
    assert new.fingerprint != key.fingerprint
    repo = AptRepository(tmp_path / "repo", new, previous_keys=[key])
    repo.publish(build_deb(tmp_path, "1.0", "hello\n"))
    only_old, _ = export_keyring([key], tmp_path / "old.gpg")
    only_new, _ = export_keyring([new], tmp_path / "new.gpg")
    with serve(repo.root) as base:
        for keyring in (only_old, only_new, repo.keyring):
            apt = PrivateApt(tmp_path / f"apt-{keyring.stem}")
            apt.add_line(repo.sources_line(base, keyring=str(keyring)))
            assert_clean_update(apt)
    # The rotation is over: signed by the new key alone, old-key hosts are cut off.
    AptRepository(tmp_path / "repo", new).reindex()
    with serve(repo.root) as base:
        apt = PrivateApt(tmp_path / "apt-after")
        apt.add_line(repo.sources_line(base, keyring=str(only_old)))
        code, output = apt.update()
        assert code != 0 and "NO_PUBKEY" in output, output


# --- publishing is safe ---------------------------------------------------------------


def _served_state(repo: AptRepository) -> tuple[Path, bytes, list]:
    return repo.dists.resolve(), (repo.dists / "stable" / "InRelease").read_bytes(), repo.packages()


def test_republishing_a_version_with_other_content_is_refused_and_changes_nothing(tmp_path, key):
    repo = AptRepository(tmp_path / "repo", key)
    original = build_deb(tmp_path, "1.0", "first\n", tag="a")
    repo.publish(original)
    before = _served_state(repo)
    pool_file = repo.root / repo.packages()[0].filename
    other = build_deb(tmp_path, "1.0", "second\n", tag="b")
    with pytest.raises(ArchiveError) as caught:
        repo.publish(other)
    message = str(caught.value)
    assert f"{PROBE} 1.0 (all) is already published with different content" in message
    assert "new version" in message
    assert _served_state(repo) == before
    assert pool_file.read_bytes() == original.read_bytes()


def test_a_failed_publish_leaves_the_previous_repository_served(tmp_path, key):
    repo = AptRepository(tmp_path / "repo", key)
    repo.publish(build_deb(tmp_path, "1.0", "hello\n"))
    before = _served_state(repo)
    generations = sorted(p.name for p in repo.root.iterdir() if p.name.startswith(".dists-"))
    broken = AptRepository(repo.root, SigningKey("F" * 40, key.uid, key.gnupg_home))
    with pytest.raises(ArchiveError, match="gpg"):
        broken.publish(build_deb(tmp_path, "1.1", "newer\n"))
    assert _served_state(repo) == before
    assert sorted(p.name for p in repo.root.iterdir() if p.name.startswith(".dists-")) == generations
    assert not list(repo.root.glob("pool/main/l/league-apt-probe/*1.1*"))


def test_old_generations_and_by_hash_files_are_pruned_but_every_version_stays(tmp_path, key):
    repo = AptRepository(tmp_path / "repo", key)
    for minor in range(12):
        repo.publish(build_deb(tmp_path, f"1.{minor}", f"{minor}\n"))
    assert [p.version for p in repo.packages()] == [f"1.{minor}" for minor in range(12)]
    assert len(list(repo.root.glob("pool/main/l/league-apt-probe/*.deb"))) == 12
    generations = sorted(p.name for p in repo.root.iterdir() if p.name.startswith(".dists-"))
    assert generations == [".dists-11", ".dists-12"]
    by_hash = repo.dists / "stable" / "main" / "binary-amd64" / "by-hash" / "SHA256"
    assert len(list(by_hash.iterdir())) == KEEP_BY_HASH
    current = hashlib.sha256((by_hash.parent.parent / "Packages.gz").read_bytes()).hexdigest()
    assert (by_hash / current).exists()


def test_bad_input_is_a_clear_error(tmp_path, key):
    repo = AptRepository(tmp_path / "repo", key)
    with pytest.raises(UsageError, match=r"no such \.deb"):
        repo.publish(tmp_path / "missing.deb")
    junk = tmp_path / "junk.deb"
    junk.write_text("not a deb")
    with pytest.raises(UsageError, match=r"not a \.deb file dpkg-deb can read"):
        repo.publish(junk)
    repo.publish(build_deb(tmp_path, "1.0", "hello\n"))
    with pytest.raises(UsageError, match="one suite"):
        AptRepository(repo.root, key, suite="testing").publish(build_deb(tmp_path, "1.2", "x\n"))


def test_compare_versions_agrees_with_dpkg():
    pairs = [("1.0", "1.0.1"), ("1.9", "1.10"), ("1.0~rc1", "1.0"), ("1:0.1", "2.0"), ("1.0-1", "1.0-1.1"),
             ("1.0+b1", "1.0"), ("2.0a", "2.0"), ("0.1~~", "0.1~"), ("1.0-10", "1.0-9")]
    for a, b in pairs:
        for x, y in ((a, b), (b, a), (a, a)):
            mine = compare_versions(x, y)
            op = "lt" if mine < 0 else "gt" if mine > 0 else "eq"
            assert subprocess.run(["dpkg", "--compare-versions", x, op, y]).returncode == 0, (x, op, y)
