"""Serving a renewed certificate without a restart: watch the bundle, reload the context.

Leaf certificates live a day and are renewed at two thirds of that, by swapping the
symlink in front of their version directory. A server that re-reads its bundle when the
file behind that name changes keeps every open connection and hands the new certificate
to the next handshake: no restart, no drain, no failed request.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from pathlib import Path

LOG = logging.getLogger("sevenleague.kit")

# The eco-system's CA certificate: what every outgoing https call of a kit process trusts.
CA_FILE_ENV = "LEAGUE_CA_FILE"


@functools.lru_cache(maxsize=8)
def _context_for(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def client_context(ca_file: str | Path | None = None) -> ssl.SSLContext | None:
    """A verifying TLS context for calls inside the eco-system: its own CA, not the system's.

    None when no CA is named (argument or `LEAGUE_CA_FILE`): the caller then uses the
    system's trust store, which is right for addresses outside the eco-system. The
    context is made once per CA file: building one reads and parses the file.
    """
    chosen = ca_file if ca_file is not None else os.environ.get(CA_FILE_ENV, "").strip()
    return _context_for(str(chosen)) if chosen else None


def _stamp(path: Path) -> tuple[int, int, int, int]:
    stat = path.stat()  # follows the symlink: a swapped version is another inode
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size


class BundleWatch:
    """Knows when the PEM bundle at `path` became another file since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = _stamp(path)

    def changed(self) -> bool:
        try:
            now = _stamp(self.path)
        except OSError:
            return False  # mid-swap or removed: keep serving what is loaded
        if now == self.seen:
            return False
        self.seen = now
        return True

    def reload_into(self, context: ssl.SSLContext) -> bool:
        """Load the new bundle into the live context; a bad file leaves the old one serving."""
        try:
            context.load_cert_chain(self.path)
        except (OSError, ssl.SSLError) as error:
            LOG.error("the renewed certificate %s cannot be loaded (%s); still serving the previous one",
                      self.path, type(error).__name__)
            return False
        LOG.info("serving the renewed certificate from %s", self.path)
        return True
