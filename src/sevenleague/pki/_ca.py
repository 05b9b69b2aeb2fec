"""The eco-system's own certificate authority: a root and one intermediate.

Two levels so the root key is needed only once a year (to sign a new intermediate)
and every day's leaves are signed by a key that can be replaced without asking every
client to trust a new root. ECDSA P-256 everywhere: small keys and signatures, fast
handshakes, supported by every TLS stack we run (OpenSSL, HAProxy, Python's `ssl`).
The root has `pathLen 1` and the intermediate `pathLen 0`: neither can be used to
create a further CA. No name constraints: the catalog decides the names, and one
machine's PKI is trusted only by that eco-system's own services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import UsageError
from ..hosts.local import write_bytes
from ._renewal import moment, needs_renewal
from ._store import (
    CERT_MODE,
    PkiError,
    PkiPaths,
    cert_pem,
    load_cert,
    load_ec_key,
    locked,
    make_private_dir,
    public_key_der,
    write_cert,
    write_key,
)

ROOT_LIFETIME = timedelta(days=3650)
INTERMEDIATE_LIFETIME = timedelta(days=365)
ORGANIZATION = "sevenleague"
_CA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,47}$")


@dataclass(frozen=True)
class CertificateAuthority:
    """What signs leaves: the intermediate and its key, plus the root clients trust."""

    name: str
    paths: PkiPaths
    root_cert: x509.Certificate
    intermediate_cert: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def ca_file(self) -> Path:
        return self.paths.ca_bundle


# --- pure: keys in, certificates out -------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)


def build_root_certificate(key: ec.EllipticCurvePrivateKey, name: str, now: datetime) -> x509.Certificate:
    subject = _name(f"{name} root CA")
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_intermediate_certificate(key: ec.EllipticCurvePrivateKey, name: str, root_cert: x509.Certificate,
                                   root_key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    not_after = min(now + INTERMEDIATE_LIFETIME, root_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} intermediate CA")).issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA256())
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _valid_ca_name(name: str) -> str:
    if not _CA_NAME.match(name):
        raise UsageError(f"CA name {name!r} is not usable in a certificate subject",
                         hint="use the eco-system's name: letters, digits, space, '.', '_' or '-', "
                              "at most 48 characters")
    return name


# --- files ---------------------------------------------------------------------------------


def _load_or_create_root(paths: PkiPaths, name: str, now: datetime) -> x509.Certificate:
    cert_path, key_path = paths.root_ca / "cert.pem", paths.root_ca / "key.pem"
    if cert_path.exists():
        cert = load_cert(cert_path)
        if public_key_der(load_ec_key(key_path).public_key()) != public_key_der(cert.public_key()):
            raise PkiError(f"the root CA key {key_path} does not belong to {cert_path}",
                           hint=f"remove {paths.root} and run `league up`: a new CA is created and every "
                                "certificate re-issued")
        return cert
    key = new_key()
    cert = build_root_certificate(key, name, now)
    write_key(key_path, key)  # the key first: a certificate on disk always has its key beside it
    write_cert(cert_path, cert)
    return cert


def _intermediate_usable(paths: PkiPaths, root_cert: x509.Certificate, now: datetime) -> bool:
    cert_path, key_path = paths.intermediate_ca / "cert.pem", paths.intermediate_ca / "key.pem"
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = load_cert(cert_path)
    if not _issued_by(cert, root_cert) or needs_renewal(cert, now):
        return False
    return public_key_der(load_ec_key(key_path).public_key()) == public_key_der(cert.public_key())


def _issue_intermediate(paths: PkiPaths, name: str, root_cert: x509.Certificate, now: datetime) -> None:
    root_key = load_ec_key(paths.root_ca / "key.pem")
    key = new_key()
    cert = build_intermediate_certificate(key, name, root_cert, root_key, now)
    write_key(paths.intermediate_ca / "key.pem", key)
    write_cert(paths.intermediate_ca / "cert.pem", cert)


def ensure_ca(pki_dir: Path, name: str, now: datetime | None = None) -> CertificateAuthority:
    """The CA in `pki_dir`, created on first use; the intermediate is re-issued at 2/3 of its life.

    Safe to call from several processes at once: the first creates, the others load.
    """
    name = _valid_ca_name(name)
    paths = PkiPaths(pki_dir)
    when = moment(now)
    with locked(paths):
        make_private_dir(paths.leaves)
        root_cert = _load_or_create_root(paths, name, when)
        write_bytes(paths.ca_bundle, cert_pem(root_cert), CERT_MODE)
        if not _intermediate_usable(paths, root_cert, when):
            _issue_intermediate(paths, name, root_cert, when)
        return CertificateAuthority(
            name=name, paths=paths, root_cert=root_cert,
            intermediate_cert=load_cert(paths.intermediate_ca / "cert.pem"),
            intermediate_key=load_ec_key(paths.intermediate_ca / "key.pem"),
        )
