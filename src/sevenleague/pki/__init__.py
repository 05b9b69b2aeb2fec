"""The eco-system's internal PKI: a CA, short-lived leaf certificates, renewal at 2/3 of life."""

from ._ca import CertificateAuthority, ensure_ca
from ._edge import EDGE_LIFETIME, ensure_edge_certificate, install_edge_certificate
from ._haproxy import haproxy_update_cert_commands, push_certificate_to_haproxy
from ._inventory import CertInfo, certificate_inventory
from ._leaf import DEFAULT_LEAF_LIFETIME, ensure_leaf, issue_leaf
from ._renewal import needs_renewal, renewal_time
from ._store import LeafPaths, PkiError, PkiPaths

__all__ = [
    "DEFAULT_LEAF_LIFETIME",
    "EDGE_LIFETIME",
    "CertInfo",
    "CertificateAuthority",
    "LeafPaths",
    "PkiError",
    "PkiPaths",
    "certificate_inventory",
    "ensure_ca",
    "ensure_edge_certificate",
    "ensure_leaf",
    "haproxy_update_cert_commands",
    "install_edge_certificate",
    "issue_leaf",
    "needs_renewal",
    "push_certificate_to_haproxy",
    "renewal_time",
]
