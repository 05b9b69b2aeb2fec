"""Where the other services are: `LEAGUE_SERVICE_URLS`, a JSON object of service name to base URL.

`league up` writes it for every service that declares `calls` in the catalog, pointing at
the edge (`https://edge:8443/echo`), so a call is balanced, drained and health-checked
like any other request. A base URL may carry a path prefix; the path of a call is
appended to it.

Bearer tokens travel in these calls, so a URL is https, or plain http to a loopback
address only (a test, a sidecar on the same host): a token sent in clear across a network
is a token given away. A malformed map stops the service at startup rather than at its
first call.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._call_errors import ClientConfigError, UnknownService

SERVICE_URLS_ENV = "LEAGUE_SERVICE_URLS"
# The catalog's service name pattern, repeated so the kit does not import the catalog (pydantic).
_SERVICE_NAME = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
# What may follow the base URL: an absolute path and a query, nothing that could change the host.
_CALL_PATH = re.compile(r"/(?!/)[\x21-\x7E]*")


@dataclass(frozen=True)
class ServiceURL:
    """One service's base URL, taken apart for `http.client`."""

    scheme: str
    host: str
    port: int
    prefix: str

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def target(self, path: str) -> str:
        """The request target for `path` ("/whoami?x=1") under this base URL's prefix."""
        if not _CALL_PATH.fullmatch(path):
            raise ValueError(f"{path[:80]!r} is not a path: it starts with one /, without spaces")
        return self.prefix + path

    def __str__(self) -> str:
        return self.origin + self.prefix


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_base_url(url: object, where: str) -> ServiceURL:
    """A base URL, refused unless it is https (or http to loopback) with a host and nothing after the path.

    `where` names the setting it came from, for the message.
    """
    if not isinstance(url, str):
        raise ClientConfigError(f"{where}: expected a URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise ClientConfigError(f"{where}: {url[:100]!r} is not a URL ({error})") from error
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise ClientConfigError(f"{where}: {url[:100]!r} is not an http(s) URL with a host",
                                hint='e.g. "https://127.0.0.1:8443/echo"')
    if parts.scheme == "http" and not is_loopback(host):
        raise ClientConfigError(f"{where}: plain http to {host} would send tokens in clear",
                                hint="use https (the eco-system's CA, LEAGUE_CA_FILE), or a loopback address")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ClientConfigError(f"{where}: a base URL has no credentials, query or fragment")
    return ServiceURL(parts.scheme, host, port or (443 if parts.scheme == "https" else 80),
                      parts.path.rstrip("/"))


def parse_service_urls(text: str | None) -> dict[str, ServiceURL]:
    """The map in `LEAGUE_SERVICE_URLS`; unset or blank is an empty map (a service that calls nobody)."""
    if text is None or not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ClientConfigError(f"{SERVICE_URLS_ENV} is not JSON ({error})",
                                hint='an object, e.g. {"echo": "https://127.0.0.1:8443/echo"}') from error
    if not isinstance(document, dict):
        raise ClientConfigError(f"{SERVICE_URLS_ENV} must be a JSON object of service name to base URL")
    return service_urls(document)


def service_urls(urls: Mapping[str, object]) -> dict[str, ServiceURL]:
    """Each base URL checked (a `ServiceURL` is taken as it is), under a checked service name."""
    found: dict[str, ServiceURL] = {}
    for service, url in urls.items():
        if not isinstance(service, str) or not _SERVICE_NAME.fullmatch(service):
            raise ClientConfigError(f"{SERVICE_URLS_ENV}: {str(service)[:64]!r} is not a service name",
                                    hint="lowercase letters, digits and dashes, as in the catalog")
        found[service] = url if isinstance(url, ServiceURL) else parse_base_url(
            url, f"{SERVICE_URLS_ENV}[{service!r}]")
    return found


def url_of(urls: Mapping[str, ServiceURL], service: str) -> ServiceURL:
    """The base URL of `service`; `UnknownService` (naming the known ones) when there is none."""
    found = urls.get(service)
    if found is None:
        raise UnknownService(service, sorted(urls))
    return found
