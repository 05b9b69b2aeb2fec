"""RED metrics (rate, errors, duration) for one service, under conventional names.

What is measured lives here; how it is served is the probes' job and how it is checked
is promtool's. Label children are created once per (route, method, status class) and
kept, because `.labels()` on every request costs more than the observation itself.
"""

from __future__ import annotations

import platform
import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

# Seconds; spans a fast in-memory answer (1 ms) to a slow report (10 s).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """200 -> "2xx": the label keeps five values whatever the app returns."""
    index = status // 100
    return _STATUS_CLASSES[index] if 0 <= index < len(_STATUS_CLASSES) else "5xx"


@dataclass(frozen=True)
class MetricNames:
    requests: str = "http_requests_total"
    duration: str = "http_request_duration_seconds"
    in_flight: str = "http_requests_in_flight"
    build_info: str = "service_build_info"


NAMES = MetricNames()


class InFlight:
    """Requests in progress in one observer; the event loop thread alone changes it."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class RedMetrics:
    """The request metrics of the services that share one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._requests = Counter(
            NAMES.requests.removesuffix("_total"),
            "HTTP requests answered, by route template, method and status class.",
            ["route", "method", "status_class"],
            registry=registry,
        )
        self._duration = Histogram(
            NAMES.duration,
            "Time from request start to the end of the response, by route template and method.",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        # Counted in plain ints by the observers and read at scrape time: a Gauge's
        # inc/dec takes a lock twice per request for a number only Prometheus reads.
        self._in_flight_counts: list[InFlight] = []
        in_flight = Gauge(
            NAMES.in_flight, "HTTP requests being answered right now.", registry=registry
        )
        in_flight.set_function(lambda: sum(c.count for c in self._in_flight_counts))
        self._build_info = Gauge(
            NAMES.build_info,
            "Always 1; labels say which service, version and Python this process runs.",
            ["service", "version", "python_version"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def in_flight_counter(self) -> InFlight:
        """A counter of requests in progress, summed into the in-flight gauge."""
        counter = InFlight()
        self._in_flight_counts.append(counter)
        return counter

    def set_build_info(self, service: str, version: str) -> None:
        self._build_info.labels(service, version, platform.python_version()).set(1)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "OTHER"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(route, method, status_class(status)),
                self._duration.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (text or OpenMetrics)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, RedMetrics] = weakref.WeakKeyDictionary()


def red_metrics(registry: CollectorRegistry) -> RedMetrics:
    """The RedMetrics of `registry`, created on first use: a name registers only once."""
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = RedMetrics(registry)
    return metrics
