"""The edge's certificate: what HAProxy presents to the outside.

Either one from the internal CA, longer-lived (90 days: browsers and curl are told to
trust `ca.pem` once, and HAProxy takes a new certificate through its runtime API
without a restart), or one the user provides (e.g. from a public CA), used as is:
checked that the key belongs to it and that it has not expired, never re-signed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..errors import UsageError
from ._ca import CertificateAuthority
from ._leaf import Addresses, ensure_certificate, subject_names, valid_lifetime
from ._renewal import expired, moment
from ._store import LeafPaths, PkiPaths, install_version, load_cert, locked, public_key_der

EDGE_LIFETIME = timedelta(days=90)
EDGE_NAME = "edge"


def ensure_edge_certificate(ca: CertificateAuthority, dns_names: Iterable[str], ips: Addresses,
                            lifetime: timedelta = EDGE_LIFETIME, now: datetime | None = None,
                            ) -> tuple[LeafPaths, bool]:
    """The edge's certificate from the internal CA; replaces a user-provided one no longer configured."""
    link = LeafPaths(ca.paths.edge, ca.ca_file)
    return ensure_certificate(ca, link, EDGE_NAME, subject_names(dns_names, ips), valid_lifetime(lifetime),
                              moment(now))


# --- a certificate the user provides ---------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the edge {what} {path}: {error.strerror}",
                         hint=f"check the path of the {what} in the catalog's [edge] section") from None


def _user_chain(cert_file: Path) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(_read(cert_file, "certificate"))
    except ValueError:
        raise UsageError(f"{cert_file} holds no PEM certificate",
                         hint="give the certificate (then its intermediates) in PEM, "
                              "'-----BEGIN CERTIFICATE-----' blocks") from None
    return chain


def _user_key(key_file: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(_read(key_file, "key"), password=None)
    except TypeError:
        raise UsageError(f"the edge key {key_file} is encrypted",
                         hint="HAProxy starts unattended: decrypt it once (`openssl pkey -in KEY -out "
                              "KEY.plain`) and keep it mode 0600") from None
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(f"{key_file} holds no PEM private key",
                         hint="give the private key in PEM ('-----BEGIN PRIVATE KEY-----')") from None


def check_user_certificate(chain: list[x509.Certificate], key: PrivateKeyTypes, cert_file: Path,
                           key_file: Path, now: datetime) -> None:
    """Refuse a pair HAProxy would refuse, or would serve to clients who then fail."""
    leaf = chain[0]
    if public_key_der(key.public_key()) != public_key_der(leaf.public_key()):
        raise UsageError(f"the edge key {key_file} does not belong to the certificate {cert_file}",
                         hint="give the key the certificate was issued for; "
                              "`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` "
                              "must print the same")
    if expired(leaf, now):
        until = f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        raise UsageError(f"the edge certificate {cert_file} expired on {until}",
                         hint="renew it with its issuer, or remove it from the catalog to use one "
                              "from the internal CA")
    if now < leaf.not_valid_before_utc:
        raise UsageError(f"the edge certificate {cert_file} is not valid before "
                         f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                         hint="check this machine's clock (chrony), or use it once it is valid")


def install_edge_certificate(pki_dir: Path, cert_file: Path, key_file: Path, now: datetime | None = None,
                             ) -> tuple[LeafPaths, bool]:
    """Install a user-provided certificate (leaf first, then intermediates) and key as the edge's.

    Returns its paths and whether it replaced another certificate.
    """
    chain, key = _user_chain(cert_file), _user_key(key_file)
    check_user_certificate(chain, key, cert_file, key_file, moment(now))
    paths = PkiPaths(pki_dir)
    link = LeafPaths(paths.edge, paths.ca_bundle)
    with locked(paths):
        if link.cert.exists() and load_cert(link.cert) == chain[0]:
            return link, False
        key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        return install_version(link.directory, link.ca, chain, key_bytes), True
