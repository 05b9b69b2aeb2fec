"""Request ids: taken from the caller when it sent a sane one, made up otherwise.

The edge (HAProxy) assigns an id to every request, so one id follows a request through
every service it touches. An id that arrives malformed is replaced rather than trusted,
because it ends up in log lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:+=@/-]{1,128}")


def new_request_id() -> bytes:
    """16 random hex digits: unique enough to find one request among billions of lines."""
    return os.urandom(8).hex().encode()


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The caller's `X-Request-ID` when it is sane, else a new one."""
    for name, value in headers:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return value
            break
    return new_request_id()
