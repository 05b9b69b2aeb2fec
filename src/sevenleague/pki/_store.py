"""Where the PKI lives under `$LEAGUE_HOME/pki/`, and how its files are written.

    pki/                      0700
      .lock                   one writer at a time (two `league up` must not both create a CA)
      ca.pem                  the root certificate: what every client trusts
      root/{cert,key}.pem     the root CA; its key is used only to sign intermediates
      intermediate/{cert,key}.pem
      leaves/NAME -> .NAME.versions/<version>/   (a symlink)
      edge -> .edge.versions/<version>/          (HAProxy's own certificate)

A certificate in use is a symlink to a complete, versioned directory holding
`cert.pem`, `key.pem`, `chain.pem`, `fullchain.pem` and `bundle.pem`. Renewal writes a
new directory in full, then replaces the symlink with one `rename(2)`. Separate
renames of `cert.pem` and `key.pem` would leave an instant where a server reloading
both files gets a new certificate with the old key and refuses to start; with the
symlink swap a reader opening one file (`bundle.pem`: key + chain) always gets one
version, and a reader opening two resolves the directory once (`LeafPaths.pinned()`).
The previous version is kept, so a reader that resolved it just before the swap can
still read it.

Private keys are unencrypted PEM, mode 0600, in 0700 directories: the services must
start unattended, so there is no one to type a passphrase; the file mode is the
protection.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from ..errors import LeagueError
from ..hosts.local import write_bytes

KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700


class PkiError(LeagueError):
    """The PKI's files on disk are damaged or inconsistent."""


@dataclass(frozen=True)
class PkiPaths:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def ca_bundle(self) -> Path:
        """The root certificate, for clients to trust (`ca.pem`)."""
        return self.root / "ca.pem"

    @property
    def root_ca(self) -> Path:
        return self.root / "root"

    @property
    def intermediate_ca(self) -> Path:
        return self.root / "intermediate"

    @property
    def leaves(self) -> Path:
        return self.root / "leaves"

    def leaf(self, name: str) -> Path:
        return self.leaves / name

    @property
    def edge(self) -> Path:
        return self.root / "edge"


@dataclass(frozen=True)
class LeafPaths:
    """The files of one certificate in use; `directory` is the stable symlink."""

    directory: Path
    ca: Path

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @property
    def chain(self) -> Path:
        """The intermediate(s), without the leaf: `openssl verify -untrusted`."""
        return self.directory / "chain.pem"

    @property
    def fullchain(self) -> Path:
        """Leaf then intermediate(s): what a server presents."""
        return self.directory / "fullchain.pem"

    @property
    def bundle(self) -> Path:
        """Full chain and key in one file, read in one `open`: HAProxy's `crt`, uvicorn's certfile."""
        return self.directory / "bundle.pem"

    def pinned(self) -> LeafPaths:
        """The same files in the version in use right now, immune to a swap while reading two of them."""
        return LeafPaths(directory=self.directory.resolve(strict=True), ca=self.ca)


# --- PEM ---------------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_der(public: PublicKeyTypes) -> bytes:
    """Comparable form of a public key, to tell whether a key belongs to a certificate."""
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise PkiError(f"{path} is not a PEM certificate",
                       hint="remove it; the next `league up` issues a new one") from None


def load_private_key(path: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise PkiError(f"{path} is not an unencrypted PEM private key",
                       hint="remove it; the next `league up` issues a new one") from None


def load_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = load_private_key(path)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an ECDSA key", hint="remove it; the next `league up` issues a new one")
    return key


# --- writing -----------------------------------------------------------------------------


def make_private_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)


@contextlib.contextmanager
def locked(paths: PkiPaths) -> Iterator[None]:
    """Serialise writers across processes; readers need no lock (every write is atomic)."""
    make_private_dir(paths.root)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    make_private_dir(path.parent)
    write_bytes(path, key_pem(key), KEY_MODE)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    make_private_dir(path.parent)
    write_bytes(path, cert_pem(cert), CERT_MODE)


def version_name(cert: x509.Certificate) -> str:
    """Sortable by issue time, unique by serial."""
    return f"{cert.not_valid_before_utc:%Y%m%dT%H%M%SZ}-{cert.serial_number:x}"[:64]


def install_version(link: Path, ca: Path, chain: list[x509.Certificate], key_bytes: bytes) -> LeafPaths:
    """Write a complete version of a certificate beside `link`, then point `link` at it.

    `chain` is the leaf first, then its intermediate(s).
    """
    leaf, intermediates = chain[0], chain[1:]
    versions = link.parent / f".{link.name}.versions"
    target = versions / version_name(leaf)
    make_private_dir(versions)
    make_private_dir(target)
    fullchain = b"".join(cert_pem(c) for c in chain)
    write_bytes(target / "cert.pem", cert_pem(leaf), CERT_MODE)
    write_bytes(target / "chain.pem", b"".join(cert_pem(c) for c in intermediates), CERT_MODE)
    write_bytes(target / "fullchain.pem", fullchain, CERT_MODE)
    write_bytes(target / "key.pem", key_bytes, KEY_MODE)
    write_bytes(target / "bundle.pem", fullchain + key_bytes, KEY_MODE)
    previous = link.resolve() if link.is_symlink() else None
    tmp = link.with_name(f".{link.name}.link{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.relative_to(link.parent))
    tmp.replace(link)
    _prune(versions, keep={target.name, previous.name if previous else ""})
    return LeafPaths(directory=link, ca=ca)


def _prune(versions: Path, keep: set[str]) -> None:
    for entry in versions.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)
