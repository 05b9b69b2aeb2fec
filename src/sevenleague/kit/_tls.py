"""Serving a renewed certificate without a restart: watch the bundle, reload the context.

Leaf certificates live a day and are renewed at two thirds of that, by swapping the
symlink in front of their version directory. A server that re-reads its bundle when the
file behind that name changes keeps every open connection and hands the new certificate
to the next handshake: no restart, no drain, no failed request.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

LOG = logging.getLogger("sevenleague.kit")


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
