"""Hand HAProxy a renewed certificate through its runtime API, without a reload.

`set ssl cert` stages the new PEM (chain and key) for a `crt` file HAProxy loaded,
`commit ssl cert` swaps it in: new handshakes get the new certificate at once,
connections already open keep theirs, nothing is dropped. The commands carry the
private key, so they are sent and never logged.
"""

from __future__ import annotations

from pathlib import Path

from ..proxy import runtime_command
from ._store import LeafPaths, PkiError


def haproxy_update_cert_commands(path: Path | str, pem: str) -> list[str]:
    """The runtime API commands that replace the certificate HAProxy loaded from `path`.

    `path` is the `crt` file exactly as the config names it. The payload ends at the first
    empty line, so blank lines inside the PEM are dropped.
    """
    payload = "\n".join(line for line in pem.splitlines() if line.strip())
    return [f"set ssl cert {path} <<\n{payload}\n", f"commit ssl cert {path}"]


def push_certificate_to_haproxy(admin_socket: Path, crt_path: Path, certificate: LeafPaths) -> None:
    """Give HAProxy the certificate now in `certificate.bundle` for the `crt` it loaded from `crt_path`."""
    stage, commit = haproxy_update_cert_commands(crt_path, certificate.pinned().bundle.read_text())
    answer = runtime_command(admin_socket, stage)
    if "Transaction" not in answer:
        raise PkiError(f"HAProxy did not take the new certificate for {crt_path}: {answer.strip()}",
                       hint="is this file a `crt` of a `bind` line in haproxy.cfg, spelled the same way?")
    answer = runtime_command(admin_socket, commit)
    if "Success" not in answer:
        raise PkiError(f"HAProxy did not commit the new certificate for {crt_path}: {answer.strip()}",
                       hint="`echo 'show ssl cert' | socat - UNIX:ADMIN_SOCKET` shows what it holds")
