"""The register of every metric the eco-system's own processes export: one source in code.

The kit takes its help texts from here, `league metrics check` and the build's "metric
names" step compare what a process serves with it, and docs/metrics.md is printed from it:

    python -m sevenleague.telemetry.metric_register > docs/metrics.md

A unit test fails when docs/metrics.md differs from what this prints.

Light on purpose: every kit process imports it (for its help texts), so it needs the
standard library only (and sevenleague.errors).

Counters are registered under the name their samples carry, with `_total`
(`http_requests_total`); the text exposition's `# TYPE` line names them the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..errors import LeagueError

MetricType = Literal["counter", "gauge", "histogram", "summary", "info"]

REGISTER_PATH = "src/sevenleague/telemetry/metric_register.py"

KIT = "every kit process"
LOGS = "logs service"
AGENT = "host agent"


@dataclass(frozen=True)
class MetricSpec:
    """One metric family as its exporter serves it.

    `unit` is the base unit its name ends in ("seconds", "bytes"), "" for counts and
    ratios; `labels` are the label names of its samples, without the `le` of histogram
    buckets and the `quantile` of summaries; `help` says what it means in one sentence.
    An "info" metric is a gauge of value 1 whose labels carry the information; the text
    exposition shows it as a gauge.
    """

    name: str
    type: MetricType
    unit: str
    labels: tuple[str, ...]
    help: str
    exported_by: str


def _kit() -> tuple[MetricSpec, ...]:
    return (
        MetricSpec("http_requests_total", "counter", "", ("route", "method", "status_class"),
                   "HTTP requests answered, by route template, method and status class.", KIT),
        MetricSpec("http_request_duration_seconds", "histogram", "seconds", ("route", "method"),
                   "Time from request start to the end of the response, by route template and method.", KIT),
        MetricSpec("http_requests_in_flight", "gauge", "", (),
                   "HTTP requests being answered right now.", KIT),
        MetricSpec("service_build_info", "info", "", ("service", "version", "python_version"),
                   "Always 1; labels say which service, version and Python this process runs.", KIT),
    )


def _prometheus_client_defaults() -> tuple[MetricSpec, ...]:
    """The families prometheus_client's default registry adds to every kit process (on Linux)."""
    generation = ("generation",)
    return (
        MetricSpec("process_cpu_seconds_total", "counter", "seconds", (),
                   "User and system CPU time the process has used.", KIT),
        MetricSpec("process_virtual_memory_bytes", "gauge", "bytes", (),
                   "Virtual memory size of the process.", KIT),
        MetricSpec("process_resident_memory_bytes", "gauge", "bytes", (),
                   "Resident memory size of the process.", KIT),
        MetricSpec("process_start_time_seconds", "gauge", "seconds", (),
                   "When the process started, in seconds since the Unix epoch.", KIT),
        MetricSpec("process_open_fds", "gauge", "", (),
                   "File descriptors the process has open.", KIT),
        MetricSpec("process_max_fds", "gauge", "", (),
                   "Most file descriptors the process may open.", KIT),
        MetricSpec("python_gc_objects_collected_total", "counter", "", generation,
                   "Objects the garbage collector collected, by generation.", KIT),
        MetricSpec("python_gc_objects_uncollectable_total", "counter", "", generation,
                   "Uncollectable objects the garbage collector found, by generation.", KIT),
        MetricSpec("python_gc_collections_total", "counter", "", generation,
                   "Times the garbage collector collected each generation.", KIT),
        MetricSpec("python_info", "info", "", ("implementation", "major", "minor", "patchlevel", "version"),
                   "Always 1; labels say which Python implementation and version runs the process.", KIT),
    )


def _logs_service() -> tuple[MetricSpec, ...]:
    return (
        MetricSpec("sevenleague_logs_records_ingested_total", "counter", "", (),
                   "Records stored, not counting duplicates.", LOGS),
        MetricSpec("sevenleague_logs_records_duplicate_total", "counter", "", (),
                   "Records received whose id was already stored, so not stored again.", LOGS),
        MetricSpec("sevenleague_logs_records_expired_total", "counter", "", (),
                   "Records removed by retention, for age or for the store's size limit.", LOGS),
        MetricSpec("sevenleague_logs_store_records", "gauge", "", (),
                   "Records in the store now.", LOGS),
        MetricSpec("sevenleague_logs_store_bytes", "gauge", "bytes", (),
                   "Size of the store on disk.", LOGS),
        MetricSpec("sevenleague_logs_store_segments", "gauge", "", (),
                   "Segment files the store is made of.", LOGS),
        MetricSpec("sevenleague_logs_oldest_record_timestamp_seconds", "gauge", "seconds", (),
                   "Time of the oldest stored record, in seconds since the Unix epoch.", LOGS),
        MetricSpec("sevenleague_logs_ingest_batches_total", "counter", "", ("outcome",),
                   "Ingest requests, by outcome (accepted or rejected).", LOGS),
    )


def _host_agent() -> tuple[MetricSpec, ...]:
    process = ("host", "program")
    return (
        MetricSpec("sevenleague_agent_records_read_total", "counter", "", (),
                   "Log records read from program logs and the journal.", AGENT),
        MetricSpec("sevenleague_agent_records_shipped_total", "counter", "", (),
                   "Log records the logs service accepted (duplicates included).", AGENT),
        MetricSpec("sevenleague_agent_records_buffered", "gauge", "", (),
                   "Log records read but not yet accepted by the logs service.", AGENT),
        MetricSpec("sevenleague_agent_ship_failures_total", "counter", "", (),
                   "Batches the logs service did not accept (to be sent again).", AGENT),
        MetricSpec("sevenleague_agent_last_shipped_timestamp_seconds", "gauge", "seconds", (),
                   "When a batch was last accepted, in seconds since the Unix epoch.", AGENT),
        MetricSpec("sevenleague_process_up", "gauge", "", process,
                   "1 when supervisord says the program is RUNNING, else 0.", AGENT),
        MetricSpec("sevenleague_process_start_time_seconds", "gauge", "seconds", process,
                   "When supervisord last started the program, in seconds since the Unix epoch.", AGENT),
    )


REGISTER: tuple[MetricSpec, ...] = (*_kit(), *_prometheus_client_defaults(), *_logs_service(), *_host_agent())


class UnknownMetric(LeagueError, KeyError):
    """A name the register does not hold; says where to add it (a KeyError, for lookups)."""


def register_by_name(extra: Iterable[MetricSpec] = ()) -> dict[str, MetricSpec]:
    """The register (and `extra`, an app's own metrics) by name; a name twice is a mistake."""
    by_name: dict[str, MetricSpec] = {}
    for entry in (*REGISTER, *extra):
        if entry.name in by_name:
            raise ValueError(f"metric {entry.name} is registered twice ({by_name[entry.name].exported_by} "
                             f"and {entry.exported_by})")
        by_name[entry.name] = entry
    return by_name


_BY_NAME: Mapping[str, MetricSpec] = register_by_name()


def spec(name: str) -> MetricSpec:
    """The registered metric `name` (counters with `_total`); UnknownMetric (a KeyError) if absent."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownMetric(f"metric {name} is not in the register",
                            hint=f"add a MetricSpec for it to REGISTER in {REGISTER_PATH}") from None


# --- docs/metrics.md -----------------------------------------------------------------------

_INTRO = """\
# Metrics: the register of names

Generated from `REGISTER` in `src/sevenleague/telemetry/metric_register.py` by
`python -m sevenleague.telemetry.metric_register`; do not edit by hand.

Every metric the eco-system's own processes export is registered once, in code, with its
type, unit, labels and meaning. The kit takes its help texts from the register, this page
is printed from it, and `league metrics check` compares what a process serves with it, so
the three cannot disagree.

## Conventions

Names follow [Prometheus' naming conventions](https://prometheus.io/docs/practices/naming/):

- `snake_case`, matching `[a-z_:][a-z0-9_:]*`; ours start with `sevenleague_` (the kit's
  RED metrics keep the names dashboards expect: `http_...`, `service_build_info`).
- `<namespace>_<what>_<unit>`, in base units: `_seconds`, `_bytes`, never `_ms`,
  `_milliseconds`, `_kilobytes`, `_mb`, `_minutes`, `_hours` or `_percent` (a ratio is
  0..1 and its name says `_ratio`). A histogram of durations ends in `_seconds`.
- Counters end in `_total`, and nothing else does. A point in time is a gauge in seconds
  since the Unix epoch, named `..._timestamp_seconds` or `..._start_time_seconds`.
- Labels have few values (a route template, not a path; a status class, not a status).

## Checking

`league metrics check FILE|URL ...` reads a Prometheus text exposition (a file, `-` for
stdin, or a process' `/metrics` over HTTPS) and prints one line per problem: a family
that is not registered, a type or label set other than registered, a name against the
conventions, and what `promtool check metrics` says. It exits 1 when there is a problem.
The build's "metric names" step runs the same check on what an app's `/metrics` serves,
with the app's own register added (report only: it does not fail the build).

## Adding a metric

1. Add a `MetricSpec(name, type, unit, labels, help, exported_by)` to `REGISTER` in
   `src/sevenleague/telemetry/metric_register.py` (an app registers its own metrics in a
   module-level `METRICS` tuple of `MetricSpec` in its package instead).
2. Take the help text from `spec(name).help` where the metric is created.
3. Regenerate this page: `python -m sevenleague.telemetry.metric_register > docs/metrics.md`.

Counters are registered with their `_total`. Process and Python metrics come from
prometheus_client's default collectors; the `_created` gauges prometheus_client adds
beside its own counters, histograms and summaries are the creation time of the metric
they follow and need no entry.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_metrics_page(register: Iterable[MetricSpec] = REGISTER) -> str:
    """docs/metrics.md: the conventions, then one table per exporter, in register order."""
    by_exporter: dict[str, list[MetricSpec]] = {}
    for entry in register:
        by_exporter.setdefault(entry.exported_by, []).append(entry)
    lines = [_INTRO.rstrip("\n")]
    for exporter, entries in by_exporter.items():
        lines += ["", f"## Exported by: {exporter}", "",
                  "| name | type | unit | labels | meaning |", "| --- | --- | --- | --- | --- |"]
        for entry in entries:
            labels = ", ".join(f"`{label}`" for label in entry.labels) or "none"
            unit = entry.unit or "none"
            lines.append(f"| `{entry.name}` | {entry.type} | {unit} | {labels} | {_cell(entry.help)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_metrics_page())
