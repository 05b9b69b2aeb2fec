"""The internal PKI: chains verify, lifetimes and renewal decisions, files, inventory, errors."""

from __future__ import annotations

import ipaddress
import json
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError
from rich.console import Console

from sevenleague.cli._pki import format_remaining, run_pki_status
from sevenleague.errors import UsageError
from sevenleague.pki import (
    DEFAULT_LEAF_LIFETIME,
    EDGE_LIFETIME,
    certificate_inventory,
    ensure_ca,
    ensure_edge_certificate,
    ensure_leaf,
    haproxy_update_cert_commands,
    install_edge_certificate,
    issue_leaf,
    needs_renewal,
    renewal_time,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DNS = ["hello-1.hello.internal", "localhost"]
IPS = ["127.0.0.1"]


@pytest.fixture
def pki(tmp_path) -> Path:
    return tmp_path / "home" / "pki"


@pytest.fixture
def ca(pki):
    return ensure_ca(pki, "demo", now=NOW)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def chain_of(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def verifier(ca_file: Path, at: datetime):
    return PolicyBuilder().store(Store([load(ca_file)])).time(at)


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


# --- chains ------------------------------------------------------------------------------


def test_leaf_chain_verifies_for_its_dns_names_and_loopback_ip(ca):
    paths = issue_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    leaf, intermediates = load(paths.cert), chain_of(paths.chain)
    at = NOW + timedelta(hours=1)
    for subject in (DNSName("hello-1.hello.internal"), DNSName("localhost"),
                    IPAddress(ipaddress.IPv4Address("127.0.0.1"))):
        chain = verifier(paths.ca, at).build_server_verifier(subject).verify(leaf, intermediates)
        assert chain == [leaf, ca.intermediate_cert, ca.root_cert]


def test_leaf_verifies_as_a_client_certificate_since_instances_call_each_other(ca):
    paths = issue_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    verified = (verifier(paths.ca, NOW + timedelta(hours=1)).build_client_verifier()
                .verify(load(paths.cert), chain_of(paths.chain)))
    assert [str(n.value) for n in verified.subjects or []] == [*DNS, "127.0.0.1"]


def test_leaf_does_not_verify_for_another_name_another_ca_or_after_expiry(ca, tmp_path):
    paths = issue_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    leaf, intermediates = load(paths.cert), chain_of(paths.chain)
    at = NOW + timedelta(hours=1)
    with pytest.raises(VerificationError):
        (verifier(paths.ca, at).build_server_verifier(DNSName("ledger-1.ledger.internal"))
         .verify(leaf, intermediates))
    other = ensure_ca(tmp_path / "other", "other", now=NOW)
    with pytest.raises(VerificationError):
        verifier(other.ca_file, at).build_server_verifier(DNSName("localhost")).verify(leaf, intermediates)
    with pytest.raises(VerificationError):
        (verifier(paths.ca, NOW + timedelta(hours=25)).build_server_verifier(DNSName("localhost"))
         .verify(leaf, intermediates))


def test_full_chain_and_bundle_hold_leaf_intermediate_and_key(ca):
    paths = issue_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    assert chain_of(paths.fullchain) == [load(paths.cert), ca.intermediate_cert]
    bundle = paths.bundle.read_bytes()
    assert chain_of(paths.bundle) == [load(paths.cert), ca.intermediate_cert]
    key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    assert key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()) in bundle
    assert paths.ca.read_bytes() == ca.root_cert.public_bytes(serialization.Encoding.PEM)


# --- what the certificates say -------------------------------------------------------------


def test_ca_certificates_may_sign_only_what_their_level_allows(ca):
    root, intermediate = ca.root_cert, ca.intermediate_cert
    constraints = ext(root, x509.BasicConstraints)
    assert constraints.critical and (constraints.value.ca, constraints.value.path_length) == (True, 1)
    assert ext(intermediate, x509.BasicConstraints).value.path_length == 0
    for cert in (root, intermediate):
        usage = ext(cert, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert root.not_valid_after_utc - root.not_valid_before_utc == timedelta(days=3650)
    assert intermediate.not_valid_after_utc - intermediate.not_valid_before_utc == timedelta(days=365)
    intermediate.verify_directly_issued_by(root)


def test_leaf_is_an_end_entity_for_server_and_client_auth_named_after_its_service(ca):
    leaf = load(issue_leaf(ca, "hello-1", DNS, IPS, now=NOW).cert)
    assert ext(leaf, x509.BasicConstraints).value.ca is False
    usage = ext(leaf, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert set(ext(leaf, x509.ExtendedKeyUsage).value) == {ExtendedKeyUsageOID.SERVER_AUTH,
                                                           ExtendedKeyUsageOID.CLIENT_AUTH}
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hello-1"


def test_every_key_is_ecdsa_p256(ca):
    paths = issue_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    for cert in (ca.root_cert, ca.intermediate_cert, load(paths.cert)):
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_leaf_lives_24_hours_by_default_and_as_long_as_asked_otherwise(ca):
    leaf = load(issue_leaf(ca, "hello-1", DNS, IPS, now=NOW).cert)
    assert leaf.not_valid_before_utc == NOW
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=24)
    short = load(issue_leaf(ca, "hello-2", DNS, IPS, lifetime=timedelta(minutes=5), now=NOW).cert)
    assert short.not_valid_after_utc - short.not_valid_before_utc == timedelta(minutes=5)


def test_leaf_never_outlives_its_intermediate(ca):
    leaf = load(issue_leaf(ca, "hello-1", DNS, IPS, lifetime=timedelta(days=2000), now=NOW).cert)
    assert leaf.not_valid_after_utc == ca.intermediate_cert.not_valid_after_utc


# --- renewal -----------------------------------------------------------------------------


def test_needs_renewal_from_exactly_two_thirds_of_its_life(ca):
    leaf = load(issue_leaf(ca, "hello-1", DNS, IPS, now=NOW).cert)
    assert renewal_time(leaf) == NOW + timedelta(hours=16)
    assert not needs_renewal(leaf, NOW + timedelta(hours=16) - timedelta(microseconds=1))
    assert needs_renewal(leaf, NOW + timedelta(hours=16))
    assert needs_renewal(leaf, NOW + timedelta(days=3))


def test_ensure_leaf_renews_only_when_due(ca):
    paths, renewed = ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    first = load(paths.cert)
    assert renewed
    for later in (NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=15, minutes=59, seconds=59)):
        assert ensure_leaf(ca, "hello-1", list(reversed(DNS)), IPS, now=later) == (paths, False)
    assert load(paths.cert) == first
    _, renewed = ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW + timedelta(hours=16))
    second = load(paths.cert)
    assert renewed and second.serial_number != first.serial_number
    assert second.not_valid_before_utc == NOW + timedelta(hours=16)
    assert load(paths.cert).public_key() != first.public_key()


def test_ensure_leaf_renews_when_its_names_change(ca):
    paths, _ = ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    _, renewed = ensure_leaf(ca, "hello-1", [*DNS, "hello.internal"], IPS, now=NOW)
    assert renewed
    assert "hello.internal" in [n.value for n in ext(load(paths.cert), x509.SubjectAlternativeName).value]
    _, renewed = ensure_leaf(ca, "hello-1", [*DNS, "hello.internal"], [*IPS, "::1"], now=NOW)
    assert renewed


def test_ensure_leaf_renews_a_leaf_of_a_replaced_ca(ca, pki):
    paths, _ = ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    for directory in ("root", "intermediate"):
        for file in (pki / directory).iterdir():
            file.unlink()
    new_ca = ensure_ca(pki, "demo", now=NOW)
    assert new_ca.root_cert != ca.root_cert
    _, renewed = ensure_leaf(new_ca, "hello-1", DNS, IPS, now=NOW)
    assert renewed
    load(paths.cert).verify_directly_issued_by(new_ca.intermediate_cert)


def test_renewal_swaps_the_whole_version_and_keeps_the_previous_one_for_late_readers(ca):
    paths, _ = ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    first = paths.pinned()
    later = NOW
    for _ in range(3):
        later += timedelta(hours=16)
        ensure_leaf(ca, "hello-1", DNS, IPS, now=later)
    versions = sorted(p.name for p in paths.directory.parent.glob(".hello-1.versions/*"))
    assert len(versions) == 2
    assert not first.directory.exists()
    current = paths.pinned()
    assert current.directory.name == versions[-1]
    key = serialization.load_pem_private_key(current.key.read_bytes(), password=None)
    assert key.public_key() == load(current.cert).public_key()
    assert paths.directory.is_symlink() and not Path(paths.directory.readlink()).is_absolute()


def test_intermediate_is_reissued_at_two_thirds_of_its_year_and_the_root_kept(ca, pki):
    due = NOW + timedelta(days=365) * 2 / 3
    assert ensure_ca(pki, "demo", now=due - timedelta(seconds=1)).intermediate_cert == ca.intermediate_cert
    renewed = ensure_ca(pki, "demo", now=due)
    assert renewed.root_cert == ca.root_cert
    assert renewed.intermediate_cert != ca.intermediate_cert
    renewed.intermediate_cert.verify_directly_issued_by(ca.root_cert)


# --- the CA and its files ----------------------------------------------------------------


def fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def test_ensure_ca_creates_once_and_loads_after(ca, pki):
    again = ensure_ca(pki, "demo", now=NOW + timedelta(days=1))
    assert fingerprint(again.root_cert) == fingerprint(ca.root_cert)
    assert fingerprint(again.intermediate_cert) == fingerprint(ca.intermediate_cert)
    assert "PRIVATE" not in repr(again)


def test_ensure_ca_from_several_writers_at_once_creates_one_root(pki):
    with ThreadPoolExecutor(max_workers=6) as pool:
        cas = list(pool.map(lambda _: ensure_ca(pki, "demo"), range(6)))
    assert len({fingerprint(c.root_cert) for c in cas}) == 1
    assert len({fingerprint(c.intermediate_cert) for c in cas}) == 1


def test_keys_are_0600_and_directories_0700(ca, pki):
    ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW)
    ensure_edge_certificate(ca, ["localhost"], IPS, now=NOW)
    keys = [p for p in pki.rglob("*") if p.name in ("key.pem", "bundle.pem") and not p.is_symlink()]
    assert len(keys) == 6  # root, intermediate, leaf and edge keys; leaf and edge bundles
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    directories = [pki, *(p for p in pki.rglob("*") if p.is_dir() and not p.is_symlink())]
    for directory in directories:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


# --- inventory and `league pki status` ---------------------------------------------------


def test_inventory_lists_every_certificate_with_its_state(ca, pki):
    ensure_edge_certificate(ca, ["edge.internal"], IPS, now=NOW)
    ensure_leaf(ca, "hello-2", DNS, IPS, now=NOW)
    ensure_leaf(ca, "hello-1", DNS, IPS, now=NOW + timedelta(hours=10))
    infos = certificate_inventory(pki, NOW + timedelta(hours=20))
    assert [(i.name, i.kind, i.state) for i in infos] == [
        ("root", "root", "ok"), ("intermediate", "intermediate", "ok"), ("edge", "edge", "ok"),
        ("hello-1", "leaf", "ok"), ("hello-2", "leaf", "renew-due"),
    ]
    hello_2 = infos[-1]
    assert hello_2.remaining == timedelta(hours=4)
    assert hello_2.dns_names == ("hello-1.hello.internal", "localhost") and hello_2.ips == ("127.0.0.1",)
    assert hello_2.subject == "CN=hello-2,O=sevenleague"
    late = certificate_inventory(pki, NOW + timedelta(days=2))
    assert [i.state for i in late if i.kind == "leaf"] == ["expired", "expired"]
    assert certificate_inventory(pki.parent / "nothing", NOW) == []


def test_pki_status_prints_a_table_and_json(ca, pki, capsys):
    ensure_leaf(ca, "hello-1", DNS, IPS)
    console = Console(record=True, width=220)
    assert run_pki_status(pki.parent, console, as_json=False) == 0
    text = console.export_text()
    sans = "hello-1.hello.internal, localhost, 127.0.0.1"
    for expected in ("hello-1", "leaf", "root", "intermediate", sans, "23h 59m", "ok"):
        assert expected in text
    assert "BEGIN" not in text
    capsys.readouterr()
    assert run_pki_status(pki.parent, Console(), as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["certificates"]] == ["root", "intermediate", "hello-1"]
    assert report["certificates"][-1]["state"] == "ok"


def test_pki_status_without_a_pki_says_how_to_create_one(tmp_path):
    console = Console(record=True, width=200)
    assert run_pki_status(tmp_path, console, as_json=False) == 3
    assert "league up" in console.export_text()


def test_pki_status_fails_when_a_certificate_expired(ca, pki):
    ensure_leaf(ca, "old", DNS, IPS, now=datetime.now(UTC) - timedelta(days=2))
    console = Console(record=True, width=220)
    assert run_pki_status(pki.parent, console, as_json=False) == 1
    assert "expired" in console.export_text()


@pytest.mark.parametrize(("remaining", "text"), [
    (timedelta(hours=23, minutes=59, seconds=30), "23h 59m"),
    (timedelta(days=89, hours=23, minutes=5), "89d 23h"),
    (timedelta(seconds=42), "0m 42s"),
    (-timedelta(hours=2, minutes=5), "expired 2h 5m ago"),
])
def test_remaining_time_reads_at_a_glance(remaining, text):
    assert format_remaining(remaining) == text


# --- the edge ------------------------------------------------------------------------------


def test_edge_certificate_from_the_internal_ca_lives_90_days(ca):
    paths, renewed = ensure_edge_certificate(ca, ["league.example.org"], IPS, now=NOW)
    edge = load(paths.cert)
    assert renewed and paths.directory.name == "edge"
    assert edge.not_valid_after_utc - edge.not_valid_before_utc == EDGE_LIFETIME == timedelta(days=90)
    assert ensure_edge_certificate(ca, ["league.example.org"], IPS, now=NOW + timedelta(days=59))[1] is False
    assert ensure_edge_certificate(ca, ["league.example.org"], IPS, now=NOW + timedelta(days=60))[1] is True


def self_signed(tmp_path: Path, name: str, key, not_before: datetime, not_after: datetime,
                encrypt: bool = False) -> tuple[Path, Path]:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption = (serialization.BestAvailableEncryption(b"secret") if encrypt
                  else serialization.NoEncryption())
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           encryption))
    return cert_file, key_file


def test_a_user_provided_edge_certificate_is_used_as_is(ca, pki, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert_file, key_file = self_signed(tmp_path, "shop.example.org", key, NOW - timedelta(days=1),
                                      NOW + timedelta(days=365))
    paths, installed = install_edge_certificate(pki, cert_file, key_file, now=NOW)
    assert installed and paths.cert.read_bytes() == cert_file.read_bytes()
    assert stat.S_IMODE(paths.pinned().key.stat().st_mode) == 0o600
    assert install_edge_certificate(pki, cert_file, key_file, now=NOW)[1] is False
    [edge] = [i for i in certificate_inventory(pki, NOW) if i.kind == "edge"]
    assert edge.subject == "CN=shop.example.org" and edge.not_after == NOW + timedelta(days=365)
    # Without a user certificate configured any more, the internal CA's replaces it.
    assert ensure_edge_certificate(ca, ["localhost"], IPS, now=NOW)[1] is True


def test_a_user_provided_edge_certificate_with_the_wrong_key_is_refused(pki, tmp_path):
    cert_file, _ = self_signed(tmp_path, "shop.example.org", ec.generate_private_key(ec.SECP256R1()),
                               NOW - timedelta(days=1), NOW + timedelta(days=30))
    _, other_key = self_signed(tmp_path, "other.example.org", ec.generate_private_key(ec.SECP256R1()),
                               NOW - timedelta(days=1), NOW + timedelta(days=30))
    with pytest.raises(UsageError, match="does not belong to the certificate") as error:
        install_edge_certificate(pki, cert_file, other_key, now=NOW)
    assert error.value.hint and "openssl" in error.value.hint
    assert "PRIVATE KEY" not in str(error.value) and "BEGIN" not in str(error.value)
    assert not (pki / "edge").exists()


def test_an_expired_or_encrypted_user_edge_certificate_is_refused(pki, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    cert_file, key_file = self_signed(tmp_path, "old.example.org", key, NOW - timedelta(days=90),
                                      NOW - timedelta(days=1))
    with pytest.raises(UsageError, match="expired on") as error:
        install_edge_certificate(pki, cert_file, key_file, now=NOW)
    assert error.value.hint
    cert_file, key_file = self_signed(tmp_path, "locked.example.org", key, NOW - timedelta(days=1),
                                      NOW + timedelta(days=30), encrypt=True)
    with pytest.raises(UsageError, match="is encrypted") as error:
        install_edge_certificate(pki, cert_file, key_file, now=NOW)
    with pytest.raises(UsageError, match="cannot read"):
        install_edge_certificate(pki, tmp_path / "missing.crt", key_file, now=NOW)
    with pytest.raises(UsageError, match="holds no PEM certificate"):
        install_edge_certificate(pki, key_file, key_file, now=NOW)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dns_names": ["hello_1.internal"]}, "not a valid DNS name"),
    ({"dns_names": ["-hello.internal"]}, "not a valid DNS name"),
    ({"dns_names": ["*.hello.internal"]}, "not a valid DNS name"),
    ({"dns_names": ["a" * 64 + ".internal"]}, "not a valid DNS name"),
    ({"dns_names": ["127.0.0.1"]}, "is an IP address, not a DNS name"),
    ({"ips": ["localhost"]}, "is not an IP address"),
    ({"dns_names": [], "ips": []}, "at least one DNS name or IP address"),
    ({"lifetime": timedelta(0)}, "is not positive"),
    ({"lifetime": timedelta(hours=-1)}, "is not positive"),
    ({"lifetime": timedelta(seconds=1)}, "too short to be renewed"),
    ({"name": "../escape"}, "not usable as a directory name"),
    ({"name": ""}, "not usable as a directory name"),
])
def test_bad_input_is_a_usage_error_that_says_how_to_fix_it(ca, pki, kwargs, message):
    arguments = {"name": "hello-1", "dns_names": DNS, "ips": IPS, "lifetime": DEFAULT_LEAF_LIFETIME} | kwargs
    for issue in (ensure_leaf, issue_leaf):
        with pytest.raises(UsageError, match=message) as error:
            issue(ca, **arguments)
        assert error.value.hint
        assert error.value.exit_code == 2
    assert not (pki / "leaves" / "hello-1").exists()


def test_a_ca_name_that_cannot_be_a_subject_is_a_usage_error(pki):
    with pytest.raises(UsageError, match="CA name") as error:
        ensure_ca(pki, "demo\n,CN=evil")
    assert error.value.hint


def test_dns_names_are_normalised_before_comparing(ca):
    paths, _ = ensure_leaf(ca, "hello-1", ["Hello-1.Hello.Internal.", "localhost"], IPS, now=NOW)
    assert ensure_leaf(ca, "hello-1", DNS, [ipaddress.ip_address("127.0.0.1")], now=NOW)[1] is False
    names = ext(load(paths.cert), x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == DNS


# --- HAProxy's runtime API -----------------------------------------------------------------


def test_haproxy_update_commands_stage_then_commit_the_pem_without_blank_lines():
    cert = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n"
    assert haproxy_update_cert_commands(Path("/s/pki/edge/bundle.pem"), f"{cert}\n{key}") == [
        f"set ssl cert /s/pki/edge/bundle.pem <<\n{cert}{key}",
        "commit ssl cert /s/pki/edge/bundle.pem",
    ]
