"""One blocking HTTP request, the way the kit's outgoing calls need it.

`http.client` rather than `urllib.request` because urllib follows redirects and, when it
does, copies the request's headers to wherever the redirect points: an `Authorization`
header (a bearer token, a client secret) would go to a host nobody chose. Here a
redirect is just an answer. The answer's body is bounded, TLS is verified against the
eco-system's CA (`LEAGUE_CA_FILE`, as every outgoing call of the kit), and a failure is
described without quoting a header or a body, so the description is safe to log.

Blocking on purpose: the service client runs it in a worker thread
(`asyncio.to_thread`), which keeps the event loop serving while a call waits and keeps
the kit free of an async HTTP stack.
"""

from __future__ import annotations

import functools
import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from ._call_errors import shown
from ._service_urls import ServiceURL
from ._tls import client_context

MAX_ANSWER_BYTES = 8 * 1024 * 1024


class Unreachable(Exception):
    """No usable answer: the connection, the TLS handshake or the read failed. The message is safe to log."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def describe(error: BaseException) -> str:
    """What went wrong, in a few words: the exception's kind and its own short message."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its certificate does not verify ({shown(error.verify_message or error.reason, 120)})"
    detail = getattr(error, "strerror", None) or str(error)
    return shown(f"{type(error).__name__}: {detail}" if detail else type(error).__name__, 160)


@functools.lru_cache(maxsize=1)
def _system_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def send(base: ServiceURL, method: str, target: str, *, headers: Mapping[str, str], body: bytes | None,
         timeout: float, limit: int = MAX_ANSWER_BYTES) -> Answer:
    """`method target` at `base`'s host; `Unreachable` when no complete answer came back.

    https is verified against the eco-system's CA (`LEAGUE_CA_FILE`), else the system's.
    """
    connection: http.client.HTTPConnection
    if base.scheme == "https":
        context = client_context() or _system_context()
        connection = http.client.HTTPSConnection(base.host, base.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(base.host, base.port, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=dict(headers))
        response = connection.getresponse()
        data = response.read(limit + 1)
        if len(data) > limit:
            raise Unreachable(f"{base.origin} answered more than {limit} bytes")
        return Answer(response.status, {name.lower(): value for name, value in response.getheaders()}, data)
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(f"{base.origin}: {describe(error)}") from error
    finally:
        connection.close()
