"""The internal PKI with real TLS stacks: openssl, uvicorn (Python's ssl) and HAProxy.

Each test has its own PKI in a temporary directory and servers on free loopback ports.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509

from sevenleague.pki import (
    LeafPaths,
    ensure_ca,
    ensure_edge_certificate,
    ensure_leaf,
    issue_leaf,
    needs_renewal,
    push_certificate_to_haproxy,
)
from sevenleague.testing import free_port

pytestmark = pytest.mark.integration

HELLO_DNS = ["hello-1.hello.internal", "localhost"]
LOOPBACK = ["127.0.0.1"]


@pytest.fixture
def ca(tmp_path):
    return ensure_ca(tmp_path / "pki", "demo")


def serial_of(der: bytes | None) -> int:
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def client_context(ca_file: Path, client: LeafPaths | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    if client is not None:
        context.load_cert_chain(str(client.bundle))
    return context


def https_get(port: int, context: ssl.SSLContext, server_hostname: str) -> tuple[bytes, int]:
    """One request on a fresh connection: the response and the serial of the certificate the server showed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_hostname) as tls:
        serial = serial_of(tls.getpeercert(binary_form=True))
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_hostname}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
        return response, serial


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- a uvicorn server presenting a leaf and requiring a client certificate (mTLS) -----------


async def hello_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b"hello over TLS\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def uvicorn_tls(leaf: LeafPaths) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(hello_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            ssl_certfile=str(leaf.bundle), ssl_ca_certs=str(leaf.ca),
                            ssl_cert_reqs=ssl.CERT_REQUIRED)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


# --- tests ---------------------------------------------------------------------------------


def test_openssl_verifies_the_leaf_through_the_intermediate_to_the_root(ca):
    leaf = issue_leaf(ca, "hello-1", HELLO_DNS, LOOPBACK)
    for extra in ([], ["-verify_hostname", "hello-1.hello.internal"], ["-verify_ip", "127.0.0.1"],
                  ["-purpose", "sslserver"], ["-purpose", "sslclient"]):
        result = subprocess.run(["openssl", "verify", "-CAfile", str(leaf.ca), "-untrusted", str(leaf.chain),
                                 *extra, str(leaf.cert)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, (extra, result.stdout, result.stderr)
    wrong = subprocess.run(["openssl", "verify", "-CAfile", str(leaf.ca), "-untrusted", str(leaf.chain),
                            "-verify_hostname", "ledger.internal", str(leaf.cert)],
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0
    alone = subprocess.run(["openssl", "verify", "-CAfile", str(leaf.ca), str(leaf.cert)],
                           capture_output=True, text=True, check=False)
    assert alone.returncode != 0  # the intermediate is needed: servers send fullchain.pem


def test_uvicorn_serves_the_leaf_to_clients_that_trust_the_ca_and_refuses_the_others(ca, tmp_path):
    server_leaf = issue_leaf(ca, "hello-1", HELLO_DNS, LOOPBACK)
    caller = issue_leaf(ca, "ledger-1", ["ledger-1.ledger.internal"], LOOPBACK)
    with uvicorn_tls(server_leaf) as port:
        trusted = client_context(ca.ca_file, caller)
        for hostname in ("localhost", "hello-1.hello.internal", "127.0.0.1"):
            response, serial = https_get(port, trusted, hostname)
            assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"hello over TLS\n")
            assert serial == x509.load_pem_x509_certificate(server_leaf.cert.read_bytes()).serial_number

        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            https_get(port, trusted, "ledger.internal")

        other = ensure_ca(tmp_path / "other-pki", "other")
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            https_get(port, client_context(other.ca_file, caller), "localhost")

        no_client_cert = client_context(ca.ca_file)
        try:
            response, _ = https_get(port, no_client_cert, "localhost")
        except (ssl.SSLError, ConnectionError):  # TLS 1.3: the refusal comes after the client's handshake
            response = b""
        assert not response.startswith(b"HTTP/")

        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            with contextlib.suppress(ConnectionError, TimeoutError):
                while chunk := plain.recv(65536):
                    answer += chunk
        assert not answer.startswith(b"HTTP/")


HAPROXY_CFG = """\
global
    stats socket {admin} mode 600 level admin
    ssl-server-verify required

defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend edge
    bind 127.0.0.1:{edge_port} ssl crt {edge_bundle}
    default_backend hello

backend hello
    server hello-1 127.0.0.1:{app_port} ssl verify required ca-file {ca} crt {client_bundle} \
verifyhost hello-1.hello.internal sni str(hello-1.hello.internal)
"""


def test_haproxy_serves_the_edge_certificate_calls_instances_over_mtls_and_takes_a_renewal_live(ca):
    edge, _ = ensure_edge_certificate(ca, ["localhost"], LOOPBACK)
    haproxy_leaf = issue_leaf(ca, "haproxy", ["haproxy.internal"], LOOPBACK)
    hello = issue_leaf(ca, "hello-1", HELLO_DNS, LOOPBACK)
    short = Path(tempfile.mkdtemp(prefix="pki-", dir="/tmp"))  # unix socket paths are short
    edge_port = free_port()
    with uvicorn_tls(hello) as app_port:
        config = short / "haproxy.cfg"
        config.write_text(HAPROXY_CFG.format(admin=short / "admin.sock", edge_port=edge_port,
                                             edge_bundle=edge.bundle, app_port=app_port, ca=ca.ca_file,
                                             client_bundle=haproxy_leaf.bundle))
        check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr

        with (short / "haproxy.log").open("wb") as log:
            process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=log, stderr=log)
        try:
            wait_for_port(edge_port)
            trusted = client_context(ca.ca_file)
            response, first_serial = https_get(edge_port, trusted, "localhost")
            assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"hello over TLS\n")

            renewed, was_renewed = ensure_edge_certificate(ca, ["localhost", "edge.internal"], LOOPBACK)
            assert was_renewed
            push_certificate_to_haproxy(short / "admin.sock", edge.bundle, renewed)
            response, second_serial = https_get(edge_port, trusted, "localhost")
            assert response.startswith(b"HTTP/1.1 200")
            assert second_serial != first_serial
            assert second_serial == x509.load_pem_x509_certificate(edge.cert.read_bytes()).serial_number
        finally:
            process.terminate()
            process.wait(10)
            shutil.rmtree(short, ignore_errors=True)


# --- renewal while serving -----------------------------------------------------------------


class ReloadingTlsServer:
    """Each new connection gets the certificate in `bundle.pem` at that moment.

    The bundle (chain and key in one file, behind a symlink swapped atomically) is re-read
    only when it changed, like a server that reloads its certificate without a restart.
    """

    def __init__(self, leaf: LeafPaths) -> None:
        self.leaf = leaf
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stamp: tuple[int, int] | None = None
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def current_context(self) -> ssl.SSLContext:
        info = self.leaf.bundle.stat()
        if (info.st_ino, info.st_mtime_ns) != self.stamp:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.leaf.bundle))
            self.context, self.stamp = context, (info.st_ino, info.st_mtime_ns)
        return self.context

    def serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            try:
                with self.current_context().wrap_socket(raw, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            except (OSError, ssl.SSLError) as error:
                self.errors.append(repr(error))

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()
        self.thread.join(5)


def test_a_short_lived_leaf_is_renewed_while_fresh_handshakes_keep_succeeding(ca):
    lifetime = timedelta(seconds=6)
    leaf, _ = ensure_leaf(ca, "hello-1", HELLO_DNS, LOOPBACK, lifetime=lifetime)
    first = x509.load_pem_x509_certificate(leaf.cert.read_bytes())
    server = ReloadingTlsServer(leaf)
    client = client_context(ca.ca_file)
    serials: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def handshakes() -> None:
        while not stop.is_set():
            try:
                response, serial = https_get(server.port, client, "hello-1.hello.internal")
                assert response.startswith(b"HTTP/1.1 200")
                serials.append(serial)
            except (OSError, AssertionError) as error:
                failures.append(repr(error))
            time.sleep(0.01)

    loop = threading.Thread(target=handshakes, daemon=True)
    loop.start()
    try:
        not_yet = ensure_leaf(ca, "hello-1", HELLO_DNS, LOOPBACK, lifetime=lifetime)[1]
        while not needs_renewal(first, datetime.now(UTC)):
            time.sleep(0.05)
        _, renewed = ensure_leaf(ca, "hello-1", HELLO_DNS, LOOPBACK, lifetime=lifetime)
        second = x509.load_pem_x509_certificate(leaf.cert.read_bytes())
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(10)
        server.close()
    assert (not_yet, renewed) == (False, True)
    assert failures == [] and server.errors == []
    assert len(serials) > 50
    switched = serials.index(second.serial_number)
    assert set(serials[:switched]) == {first.serial_number}
    assert set(serials[switched:]) == {second.serial_number}
