"""The eco-system's own archive signing key, kept in a GNUPGHOME of its own.

apt trusts a repository only through a key the host was given (`signed-by=`), so the
eco-system needs one key that signs its index and nothing else. It lives in a dedicated
GNUPGHOME (never the operator's ~/.gnupg, whose keys, agent and config are not ours to
touch), has no passphrase because the build service signs unattended, and is sign-only:
a leak lets someone forge packages, never read anything. gpg starts a gpg-agent per
homedir for every secret-key operation; each operation here stops it again, so builds
and tests leave no daemons behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LeagueError, UsageError
from ..hosts.local import write_bytes

KEY_ALGORITHM = "ed25519"
KEYRING_NAME = "league-archive-keyring.gpg"
ARMORED_KEYRING_NAME = "league-archive-keyring.asc"
# sockaddr_un.sun_path is 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107
GPG_TIMEOUT = 60.0
# A key is unusable when gpg marks it (r)evoked, (e)xpired, (i)nvalid or (d)isabled.
UNUSABLE_VALIDITY = frozenset("reid")


class ArchiveError(LeagueError):
    """The eco-system's apt archive (its signing key or its repository) could not do what was asked."""


@dataclass(frozen=True)
class SigningKey:
    fingerprint: str
    uid: str
    gnupg_home: Path


# --- pure helpers ----------------------------------------------------------------------


def archive_uid(name: str) -> str:
    """The key's user id; a fixed shape so a later call finds the key it made before."""
    if not name or any(c in name for c in '<>:"\n\r\t') or name != name.strip():
        raise UsageError(
            f"archive key name {name!r} is not usable in a gpg user id",
            hint="use the eco-system's name, e.g. `demo` (no <, >, :, quotes or line breaks)",
        )
    return f"sevenleague {name} archive key"


def parse_signing_keys(colons: str) -> list[tuple[str, list[str]]]:
    """(fingerprint, uids) of each usable signing key in `gpg --with-colons` key listing output."""
    keys: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    usable = awaiting_fingerprint = False
    for line in colons.splitlines():
        fields = line.split(":") + [""] * 12
        if fields[0] in ("sec", "pub"):
            usable = fields[1] not in UNUSABLE_VALIDITY and "S" in fields[11]
            awaiting_fingerprint, current = True, None
        elif fields[0] == "fpr" and awaiting_fingerprint:
            awaiting_fingerprint = False
            if usable:
                current = (fields[9], [])
                keys.append(current)
        elif fields[0] == "uid" and current is not None and fields[1] not in UNUSABLE_VALIDITY:
            current[1].append(fields[9].replace("\\x3a", ":"))
    return keys


def gpg_argv(gnupg_home: Path, *args: str) -> list[str]:
    """gpg pinned to one homedir, never prompting: the build service has no terminal."""
    return ["gpg", "--homedir", str(gnupg_home), "--batch", "--no-tty", "--yes",
            "--pinentry-mode", "loopback", "--passphrase", "", *args]


def signer_args(keys: Sequence[SigningKey]) -> list[str]:
    """`--local-user FPR!` for each key: the `!` stops gpg from picking another (sub)key."""
    args: list[str] = []
    for key in keys:
        args += ["--local-user", f"{key.fingerprint}!"]
    return args


# --- side effects ----------------------------------------------------------------------


def _environment(gnupg_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPG_AGENT")}
    env["GNUPGHOME"] = str(gnupg_home)
    env["LC_ALL"] = "C"
    return env


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise ArchiveError(f"{tool} is not installed", hint=f"apt-get install {package}")


def run_gpg(gnupg_home: Path, *args: str, what: str) -> bytes:
    """Run gpg in `gnupg_home`; a failure names `what` was attempted and gpg's own last words."""
    _require("gpg", "gnupg")
    try:
        result = subprocess.run(gpg_argv(gnupg_home, *args), capture_output=True, timeout=GPG_TIMEOUT,
                                env=_environment(gnupg_home), check=False)
    except subprocess.TimeoutExpired:
        raise ArchiveError(f"gpg did not finish {what} within {GPG_TIMEOUT:.0f}s (GNUPGHOME {gnupg_home})",
                           hint="look for a stuck gpg-agent for that homedir") from None
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise ArchiveError(f"gpg failed {what} (GNUPGHOME {gnupg_home}){detail}",
                           hint=f"inspect the keys with GNUPGHOME={gnupg_home} gpg --list-secret-keys")
    return result.stdout


def stop_agent(gnupg_home: Path) -> None:
    """Stop the gpg-agent (and any other daemon) gpg started for this homedir."""
    if shutil.which("gpgconf") is None or not gnupg_home.is_dir():
        return
    subprocess.run(["gpgconf", "--homedir", str(gnupg_home), "--kill", "all"], capture_output=True,
                   timeout=GPG_TIMEOUT, env=_environment(gnupg_home), check=False)


@contextlib.contextmanager
def agent_session(gnupg_home: Path) -> Iterator[None]:
    """A block of gpg calls sharing one agent, stopped at the end whatever happened."""
    try:
        yield
    finally:
        stop_agent(gnupg_home)


def _check_socket_path(gnupg_home: Path) -> None:
    if shutil.which("gpgconf") is None:
        return
    result = subprocess.run(["gpgconf", "--homedir", str(gnupg_home), "--list-dirs", "agent-socket"],
                            capture_output=True, text=True, timeout=GPG_TIMEOUT,
                            env=_environment(gnupg_home), check=False)
    socket = result.stdout.strip()
    if len(socket.encode()) > MAX_SOCKET_PATH:
        raise UsageError(f"GNUPGHOME {gnupg_home} is too long for gpg-agent's socket "
                         f"({len(socket.encode())} > {MAX_SOCKET_PATH} bytes)",
                         hint="put the archive key's GNUPGHOME on a shorter path")


def secure_home(gnupg_home: Path) -> None:
    """Directories 0700 and files 0600: gpg warns about, and others must not read, anything wider."""
    gnupg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    gnupg_home.chmod(0o700)
    for directory, dirnames, filenames in os.walk(gnupg_home):
        for dirname in dirnames:
            (Path(directory) / dirname).chmod(0o700)
        for filename in filenames:
            path = Path(directory) / filename
            if path.is_file() and not path.is_symlink():
                path.chmod(0o600)


@contextlib.contextmanager
def _home_lock(gnupg_home: Path) -> Iterator[None]:
    """Two processes making the key at once would make two keys under one user id."""
    fd = os.open(gnupg_home / ".league-key.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def find_signing_key(gnupg_home: Path, uid: str) -> str | None:
    if not (gnupg_home / "pubring.kbx").exists() and not (gnupg_home / "pubring.gpg").exists():
        return None
    listing = run_gpg(gnupg_home, "--with-colons", "--list-secret-keys", what="listing secret keys")
    for fingerprint, uids in parse_signing_keys(listing.decode(errors="replace")):
        if uid in uids:
            return fingerprint
    return None


def ensure_signing_key(gnupg_home: Path, name: str) -> SigningKey:
    """The archive key named `name` in `gnupg_home`, made on first use and found on every later call."""
    uid = archive_uid(name)
    secure_home(gnupg_home)
    _check_socket_path(gnupg_home)
    with _home_lock(gnupg_home), agent_session(gnupg_home):
        fingerprint = find_signing_key(gnupg_home, uid)
        if fingerprint is None:
            run_gpg(gnupg_home, "--quick-generate-key", uid, KEY_ALGORITHM, "sign", "never",
                    what=f"generating the archive key {uid!r}")
            fingerprint = find_signing_key(gnupg_home, uid)
    secure_home(gnupg_home)
    if fingerprint is None:
        raise ArchiveError(f"gpg made no usable signing key {uid!r} in {gnupg_home}",
                           hint="check `gpg --list-secret-keys` in that GNUPGHOME")
    return SigningKey(fingerprint=fingerprint, uid=uid, gnupg_home=gnupg_home)


def _home_of(keys: Sequence[SigningKey]) -> Path:
    homes = {key.gnupg_home for key in keys}
    if len(homes) != 1:
        listed = ", ".join(sorted(map(str, homes)))
        raise UsageError(f"signing keys live in {len(homes)} GNUPGHOMEs ({listed})",
                         hint="keep every archive key (old and new during a rotation) in one GNUPGHOME")
    return homes.pop()


def export_keyring(keys: Sequence[SigningKey], keyring: Path) -> tuple[Path, Path]:
    """Write the public keys as a binary keyring for `signed-by=` and an armored `.asc` copy beside it.

    Binary because every apt accepts it for `signed-by=`; armored because it survives
    copy and paste and can be embedded in a deb822 `.sources` file.
    """
    home = _home_of(keys)
    fingerprints = [key.fingerprint for key in keys]
    with agent_session(home):
        binary = run_gpg(home, "--export", *fingerprints, what="exporting the archive public key")
        armored = run_gpg(home, "--armor", "--export", *fingerprints, what="exporting the archive public key")
    if not binary:
        raise ArchiveError(f"gpg exported nothing for {', '.join(fingerprints)} from {home}",
                           hint="the key was deleted; run ensure_signing_key again and re-publish")
    armored_path = keyring.with_suffix(".asc")
    write_bytes(keyring, binary, 0o644)
    write_bytes(armored_path, armored, 0o644)
    return keyring, armored_path


def sign_release(keys: Sequence[SigningKey], release: Path) -> tuple[Path, Path]:
    """InRelease (clearsigned, what apt fetches first) and Release.gpg (detached, for older clients)."""
    home = _home_of(keys)
    inrelease = release.with_name("InRelease")
    detached = release.with_name("Release.gpg")
    signers = signer_args(keys)
    with agent_session(home):
        run_gpg(home, *signers, "--digest-algo", "SHA512", "--clearsign", "--output", str(inrelease),
                str(release), what=f"clearsigning {release}")
        run_gpg(home, *signers, "--digest-algo", "SHA512", "--armor", "--detach-sign",
                "--output", str(detached), str(release), what=f"signing {release}")
    return inrelease, detached
