"""The agent's metrics, as a prometheus_client custom collector read at scrape time.

What it exports is named, typed and explained by the metric register
(`telemetry.metric_register`); this module only reads the agent's counters and the last
supervisord reading and hands them over, in the register's terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ..telemetry.metric_register import spec
from ._processes import ProgramState

READ = "sevenleague_agent_records_read_total"
SHIPPED = "sevenleague_agent_records_shipped_total"
BUFFERED = "sevenleague_agent_records_buffered"
FAILURES = "sevenleague_agent_ship_failures_total"
LAST_SHIPPED = "sevenleague_agent_last_shipped_timestamp_seconds"
PROCESS_UP = "sevenleague_process_up"
PROCESS_START = "sevenleague_process_start_time_seconds"
NAMES = (READ, SHIPPED, BUFFERED, FAILURES, LAST_SHIPPED, PROCESS_UP, PROCESS_START)


@dataclass(frozen=True)
class AgentReading:
    """The numbers at one moment; `processes` is None when supervisord's state is unknown."""

    host: str
    records_read: int
    records_shipped: int
    records_buffered: int
    ship_failures: int
    last_shipped: float | None
    processes: list[ProgramState] | None


def _family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    entry = spec(name)
    labels = list(entry.labels)
    if entry.type == "counter":
        return CounterMetricFamily(name, entry.help, labels=labels)
    if entry.type == "gauge":
        return GaugeMetricFamily(name, entry.help, labels=labels)
    raise ValueError(f"{name} is registered as a {entry.type}; the agent exports counters and gauges only")


class AgentCollector:
    """Exports `read()` (None before the agent started: no samples, the families only)."""

    def __init__(self, read: Callable[[], AgentReading | None]) -> None:
        self.read = read

    def describe(self) -> list[Metric]:
        return [_family(name) for name in NAMES]

    def collect(self) -> Iterator[Metric]:
        families = {name: _family(name) for name in NAMES}
        reading = self.read()
        if reading is not None:
            for name, value in ((READ, reading.records_read), (SHIPPED, reading.records_shipped),
                                (BUFFERED, reading.records_buffered), (FAILURES, reading.ship_failures)):
                families[name].add_metric([], value)
            if reading.last_shipped is not None:
                families[LAST_SHIPPED].add_metric([], reading.last_shipped)
            for state in reading.processes or ():
                labels = [reading.host, state.program]
                families[PROCESS_UP].add_metric(labels, 1.0 if state.up else 0.0)
                if state.started > 0:
                    families[PROCESS_START].add_metric(labels, state.started)
        yield from families.values()
