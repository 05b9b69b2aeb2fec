"""Certificates that expire quickly are renewed under load, and no request fails.

The demo eco-system with 15-second leaf certificates: the renewer renews each at ten
seconds, the instances load the new bundle for the next handshake, and the edge keeps
opening new TLS connections to them all along (it closes idle ones), so a certificate
problem would show up as a failed request.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from sevenleague.testing import SteadyLoad, record_figures
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem

from ..conftest import ROOT

LIFETIME = 15


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEcosystem]:
    text = (ROOT / "ecosystem.toml").read_text()
    text = text.replace('leaf_lifetime = "24h"', f'leaf_lifetime = "{LIFETIME}s"')
    assert f'"{LIFETIME}s"' in text
    catalog = tmp_path_factory.mktemp("renewal") / "ecosystem.toml"
    catalog.write_text(text)
    running = start_ecosystem(catalog)
    yield running
    left = running.stop()
    shutil.rmtree(running.home, ignore_errors=True)
    assert left == [], f"processes left running after league down: {left}"


def served_serial(port: int, ca_file: Path) -> int:
    """The serial of the certificate an instance presents to a new TLS connection."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_short_lived_certificates_are_renewed_under_load_without_a_failed_request(short_lived):
    ca_file = short_lived.home / "pki" / "ca.pem"
    status = short_lived.status()
    # the instances under load, and the platform services beside them
    ports = {i["name"]: i["port"] for i in status["instances"]} | {
        p["name"]: p["port"] for p in status["processes"] if p["name"] in ("builds", "identity")}
    before = {name: served_serial(port, ca_file) for name, port in ports.items()}
    with SteadyLoad(short_lived.endpoints["edge"], clients=4, ca_file=short_lived.ca_file) as load:
        deadline = time.monotonic() + LIFETIME * 2
        while time.monotonic() < deadline:
            now = {name: served_serial(port, ca_file) for name, port in ports.items()}
            if all(now[name] != before[name] for name in ports):
                break
            time.sleep(0.5)
        time.sleep(2.0)  # traffic keeps flowing on the new certificates
    tally = load.tally
    record_figures("certificate-renewal-under-load", tally.as_figures())
    assert all(now[name] != before[name] for name in ports), "an instance still serves its first certificate"
    assert tally.ok > 100
    assert tally.failed == 0, tally.errors
    status = json.loads(short_lived.league("pki", "status", "--json").stdout)["certificates"]
    leaves = [c for c in status if c["name"] in ports]
    assert {c["state"] for c in leaves} == {"ok"}
    assert all(c["remaining_seconds"] <= LIFETIME for c in leaves)
