"""RED metrics (rate, errors, duration) for one service, under conventional names.

What is measured lives here as plain integers; how it is served is prometheus_client's
job, through this class acting as a custom collector (the public `*MetricFamily` types),
and how it is checked is promtool's. Counting with prometheus_client's Counter and
Histogram objects cost about 25,000 CPU instructions per request (a lock, checks and a
loop over the buckets for every observation); a dictionary of integers and a bisect
cost a small fraction of that, and the exposition is the same text.

Observations arrive from one thread (the event loop, through the request ledger);
a scrape reads a snapshot of the dictionaries.
"""

from __future__ import annotations

import platform
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from ..telemetry.metric_register import spec

# Seconds; spans a fast in-memory answer (1 ms) to a slow report (10 s).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_BUCKET_LABELS = (*(str(bound) for bound in DURATION_BUCKETS), "+Inf")


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

# Help texts come from the register, so what /metrics says and docs/metrics.md agree.
HELP = {name: spec(name).help for name in (NAMES.requests, NAMES.duration, NAMES.in_flight, NAMES.build_info)}


class InFlight:
    """Requests in progress in one observer; the event loop thread alone changes it."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _Durations:
    """One histogram child: counts per bucket (the last is +Inf), and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0


class RedMetrics:
    """The request metrics of the services that share one registry (a custom collector)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._requests: dict[tuple[str, str, str], int] = {}
        self._durations: dict[tuple[str, str], _Durations] = {}
        self._in_flight_counts: list[InFlight] = []
        self._build_info: dict[tuple[str, str, str], None] = {}
        registry.register(self)

    def in_flight_counter(self) -> InFlight:
        """A counter of requests in progress, summed into the in-flight gauge at scrape time."""
        counter = InFlight()
        self._in_flight_counts.append(counter)
        return counter

    def set_build_info(self, service: str, version: str) -> None:
        self._build_info[(service, version, platform.python_version())] = None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "OTHER"
        key = (route, method, status_class(status))
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        durations = self._durations.get((route, method))
        if durations is None:
            durations = self._durations[(route, method)] = _Durations()
        durations.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        durations.total += seconds

    # --- exposition (prometheus_client's collector protocol) --------------------------------

    def describe(self) -> list[Metric]:
        """The families this collector exports, so a registry refuses duplicate names."""
        return list(self._families(with_samples=False))

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        requests = CounterMetricFamily(NAMES.requests.removesuffix("_total"), HELP[NAMES.requests],
                                       labels=["route", "method", "status_class"])
        durations = HistogramMetricFamily(NAMES.duration, HELP[NAMES.duration], labels=["route", "method"])
        in_flight = GaugeMetricFamily(NAMES.in_flight, HELP[NAMES.in_flight],
                                      value=sum(c.count for c in self._in_flight_counts) if with_samples
                                      else None)
        build_info = GaugeMetricFamily(NAMES.build_info, HELP[NAMES.build_info],
                                       labels=["service", "version", "python_version"])
        if with_samples:
            for (route, method, klass), count in list(self._requests.items()):
                requests.add_metric([route, method, klass], count)
            for (route, method), child in list(self._durations.items()):
                cumulative, buckets = 0, []
                for label, count in zip(_BUCKET_LABELS, child.counts, strict=True):
                    cumulative += count
                    buckets.append((label, cumulative))
                durations.add_metric([route, method], buckets, child.total)
            for labels in list(self._build_info):
                build_info.add_metric(list(labels), 1)
        yield from (requests, durations, in_flight, build_info)

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
