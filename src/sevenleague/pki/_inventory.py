"""Every certificate of the PKI with its expiry: what `league pki status` shows.

Read without the lock: every file is replaced atomically, so a reader sees the old
certificate or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ._leaf import names_of
from ._renewal import expired, needs_renewal, renewal_time
from ._store import PkiPaths, load_cert

KINDS = ("root", "intermediate", "edge", "leaf")


@dataclass(frozen=True)
class CertInfo:
    name: str
    kind: str  # root, intermediate, edge or leaf
    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ips: tuple[str, ...]
    serial: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    renew_at: datetime
    remaining: timedelta
    state: str  # ok, renew-due or expired
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "subject": self.subject, "issuer": self.issuer,
            "dns_names": list(self.dns_names), "ips": list(self.ips), "serial": self.serial,
            "fingerprint_sha256": self.fingerprint_sha256, "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(), "renew_at": self.renew_at.isoformat(),
            "remaining_seconds": int(self.remaining.total_seconds()), "state": self.state,
            "path": str(self.path),
        }


def certificate_state(cert: x509.Certificate, now: datetime) -> str:
    if expired(cert, now):
        return "expired"
    return "renew-due" if needs_renewal(cert, now) else "ok"


def describe(cert: x509.Certificate, name: str, kind: str, path: Path, now: datetime) -> CertInfo:
    names = names_of(cert)
    return CertInfo(
        name=name, kind=kind, subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        dns_names=names.dns_names, ips=tuple(str(ip) for ip in names.ips),
        serial=f"{cert.serial_number:x}", fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, renew_at=renewal_time(cert),
        remaining=cert.not_valid_after_utc - now, state=certificate_state(cert, now), path=path,
    )


def _entries(paths: PkiPaths) -> list[tuple[str, str, Path]]:
    entries = [("root", "root", paths.root_ca / "cert.pem"),
               ("intermediate", "intermediate", paths.intermediate_ca / "cert.pem"),
               ("edge", "edge", paths.edge / "cert.pem")]
    if paths.leaves.is_dir():
        entries += [(leaf.name, "leaf", leaf / "cert.pem") for leaf in sorted(paths.leaves.iterdir())
                    if not leaf.name.startswith(".")]
    return entries


def certificate_inventory(pki_dir: Path, now: datetime) -> list[CertInfo]:
    """Root, intermediate, edge, then the leaves by name; what does not exist yet is left out."""
    return [describe(load_cert(path), name, kind, path, now)
            for name, kind, path in _entries(PkiPaths(pki_dir)) if path.exists()]
