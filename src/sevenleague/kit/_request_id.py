"""Request ids: taken from the caller when it sent a sane one, made up otherwise.

The edge (HAProxy) assigns an id to every request, so one id follows a request through
every service it touches. An id that arrives malformed is replaced rather than trusted,
because it ends up in log lines.

A made-up id is this process' random prefix and a counter: unique within the process,
unique across processes with overwhelming odds, and free of a system call per request.
It names a request; it is not a secret and grants nothing.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:+=@/-]{1,128}")


_PREFIX = os.urandom(4).hex().encode()
_COUNTER = itertools.count(1)


def _reseed() -> None:
    """A forked worker gets its own prefix, or two workers would hand out the same ids."""
    global _PREFIX, _COUNTER
    _PREFIX = os.urandom(4).hex().encode()
    _COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> bytes:
    """16 hex digits: 8 of this process' random prefix, 8 of a counter."""
    return b"%s%08x" % (_PREFIX, next(_COUNTER) & 0xFFFFFFFF)


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The caller's `X-Request-ID` when it is sane, else a new one."""
    for name, value in headers:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return value
            break
    return new_request_id()
