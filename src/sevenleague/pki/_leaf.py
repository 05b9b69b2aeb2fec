"""Leaf certificates: one per app instance and platform service, short-lived.

A leaf lives 24 h by default. Short lives replace revocation: a stolen key is useless
a day later, and no CRL or OCSP responder has to run. A leaf carries both serverAuth
and clientAuth, because instances also call each other and may present it as a
client certificate. Its SANs are the names clients use (the catalog's DNS names and
the loopback address), since TLS clients check the SANs and ignore the subject's CN.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import UsageError
from ._ca import ORGANIZATION, CertificateAuthority, new_key
from ._renewal import moment, needs_renewal
from ._store import LeafPaths, install_version, key_pem, load_cert, load_private_key, locked, public_key_der

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Addresses = Iterable[str | IPAddress]

DEFAULT_LEAF_LIFETIME = timedelta(hours=24)
SERVICE_USAGES = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LEAF_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class SubjectNames:
    """The SANs of a certificate, normalised (lower case, sorted, no duplicates) to compare."""

    dns_names: tuple[str, ...]
    ips: tuple[IPAddress, ...]


# --- pure: validation --------------------------------------------------------------------


def _dns_name(raw: str) -> str:
    name = raw.strip().lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise UsageError(f"{raw!r} is an IP address, not a DNS name",
                         hint="pass IP addresses in `ips`, e.g. ips=['127.0.0.1']")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UsageError(f"{raw!r} is not a valid DNS name for a certificate",
                         hint="use letters, digits and '-' in dot-separated labels of at most 63 "
                              "characters, e.g. hello-1.hello.internal (no wildcards, no '_')")
    return name


def _ip(raw: str | IPAddress) -> IPAddress:
    if isinstance(raw, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return raw
    try:
        return ipaddress.ip_address(raw.strip())
    except ValueError:
        raise UsageError(f"{raw!r} is not an IP address", hint="e.g. 127.0.0.1 or ::1") from None


def subject_names(dns_names: Iterable[str], ips: Addresses) -> SubjectNames:
    """Validated SANs; at least one is needed, since TLS clients match only SANs."""
    names = SubjectNames(dns_names=tuple(sorted({_dns_name(n) for n in dns_names})),
                         ips=tuple(sorted({_ip(i) for i in ips}, key=lambda a: (a.version, int(a)))))
    if not names.dns_names and not names.ips:
        raise UsageError("a certificate needs at least one DNS name or IP address",
                         hint="give the names clients connect to, e.g. dns_names=['hello-1.hello.internal', "
                              "'localhost'], ips=['127.0.0.1']")
    return names


def valid_leaf_name(name: str) -> str:
    if not _LEAF_NAME.match(name):
        raise UsageError(f"certificate name {name!r} is not usable as a directory name",
                         hint="use the instance or service name: lower-case letters, digits, '.', '_' "
                              "or '-', starting with a letter or digit, at most 63 characters")
    return name


def valid_lifetime(lifetime: timedelta) -> timedelta:
    if lifetime <= timedelta(0):
        raise UsageError(f"certificate lifetime {lifetime} is not positive",
                         hint="e.g. timedelta(hours=24), the default for leaves")
    if lifetime < timedelta(seconds=3):
        raise UsageError(f"certificate lifetime {lifetime} is too short to be renewed in time",
                         hint="use at least a few seconds; leaves default to 24 hours")
    return lifetime


def names_of(cert: x509.Certificate) -> SubjectNames:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return SubjectNames((), ())
    ips = [ip for ip in san.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return SubjectNames(dns_names=tuple(sorted(n.lower() for n in san.get_values_for_type(x509.DNSName))),
                        ips=tuple(sorted(ips, key=lambda a: (a.version, int(a)))))


# --- pure: the certificate ---------------------------------------------------------------


def build_leaf_certificate(ca: CertificateAuthority, public_key: ec.EllipticCurvePublicKey, name: str,
                           names: SubjectNames, not_before: datetime, lifetime: timedelta,
                           ) -> x509.Certificate:
    """A leaf never outlives the intermediate that signs it."""
    not_after = min(not_before + lifetime, ca.intermediate_cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns_names]
    sans += [x509.IPAddress(ip) for ip in names.ips]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                                 x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.intermediate_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(SERVICE_USAGES), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.intermediate_key.public_key()),
                       critical=False)
        .sign(ca.intermediate_key, hashes.SHA256())
    )


def renewal_reason(current: x509.Certificate | None, key_matches: bool, ca: CertificateAuthority,
                   names: SubjectNames, now: datetime) -> str | None:
    """Why the certificate in use must be replaced, or None when it can stay."""
    if current is None:
        return "missing"
    if not key_matches:
        return "key does not match"
    if names_of(current) != names:
        return "names changed"
    try:
        current.verify_directly_issued_by(ca.intermediate_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "issued by another CA"
    if needs_renewal(current, now):
        return "renewal due"
    return None


# --- files ---------------------------------------------------------------------------------


def _issue(ca: CertificateAuthority, link: LeafPaths, name: str, names: SubjectNames,
           lifetime: timedelta, now: datetime) -> LeafPaths:
    key = new_key()
    cert = build_leaf_certificate(ca, key.public_key(), name, names, now, lifetime)
    return install_version(link.directory, ca.ca_file, [cert, ca.intermediate_cert], key_pem(key))


def _current(paths: LeafPaths) -> tuple[x509.Certificate | None, bool]:
    if not (paths.cert.exists() and paths.key.exists()):
        return None, False
    pinned = paths.pinned()
    cert, key = load_cert(pinned.cert), load_private_key(pinned.key)
    return cert, public_key_der(key.public_key()) == public_key_der(cert.public_key())


def issue_leaf(ca: CertificateAuthority, name: str, dns_names: Iterable[str], ips: Addresses,
               lifetime: timedelta = DEFAULT_LEAF_LIFETIME, now: datetime | None = None) -> LeafPaths:
    """A new key and certificate for `name`, installed in place of the current one."""
    link = LeafPaths(ca.paths.leaf(valid_leaf_name(name)), ca.ca_file)
    names, lifetime = subject_names(dns_names, ips), valid_lifetime(lifetime)
    with locked(ca.paths):
        return _issue(ca, link, name, names, lifetime, moment(now))


def ensure_certificate(ca: CertificateAuthority, link: LeafPaths, name: str, names: SubjectNames,
                       lifetime: timedelta, now: datetime) -> tuple[LeafPaths, bool]:
    """`link` re-issued only when `renewal_reason` says so; inputs already validated."""
    with locked(ca.paths):
        current, key_matches = _current(link)
        if renewal_reason(current, key_matches, ca, names, now) is None:
            return link, False
        return _issue(ca, link, name, names, lifetime, now), True


def ensure_leaf(ca: CertificateAuthority, name: str, dns_names: Iterable[str], ips: Addresses,
                lifetime: timedelta = DEFAULT_LEAF_LIFETIME, now: datetime | None = None,
                ) -> tuple[LeafPaths, bool]:
    """The leaf for `name`, re-issued only when missing, due, for other names or from another CA.

    Returns its paths and whether a new certificate was installed (the caller then has the
    server pick it up).
    """
    link = LeafPaths(ca.paths.leaf(valid_leaf_name(name)), ca.ca_file)
    names = subject_names(dns_names, ips)
    return ensure_certificate(ca, link, name, names, valid_lifetime(lifetime), moment(now))
