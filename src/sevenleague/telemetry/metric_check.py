"""Check a Prometheus text exposition against the register and the naming conventions.

A family a process serves is a problem when it is not registered, when its type or label
set differs from the register's, or when its name breaks Prometheus' conventions
(snake_case, `_total` on counters only, base units, time in `_seconds`). `promtool check
metrics`, Prometheus' own linter, runs on the same text and its findings are problems too:
it knows rules we do not (help text, reserved label names), and ours know the register.

The rules and the comparison are pure (`check_exposition`, `naming_problems`,
`register_problems`); running promtool (`promtool_problems`, `check_metrics`) and asking
an app for its /metrics in-process (`load_app`, `app_exposition`, and `main`, which the
build's "metric names" step runs in the app's environment) are the side effects.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from .metric_register import REGISTER_PATH, MetricSpec, register_by_name

NAME_RULE = re.compile(r"[a-z_:][a-z0-9_:]*")
_DECLARED_COUNTER = re.compile(r"^#\s*TYPE\s+(\S+)\s+counter\s*$", re.MULTILINE)
# Label names that belong to a type, not to what is measured.
_TYPE_LABELS = frozenset({"le", "quantile"})
# A unit token in a name and the base unit to use instead (Prometheus: seconds, bytes, ratios 0..1).
NON_BASE_UNITS: Mapping[str, str] = {
    **dict.fromkeys(("ms", "msec", "millis", "milliseconds", "us", "microseconds", "ns", "nanoseconds",
                     "sec", "secs", "second", "minute", "minutes", "mins", "hour", "hours", "hr", "hrs",
                     "day", "days"), "seconds"),
    **dict.fromkeys(("byte", "kb", "kib", "kilobytes", "mb", "mib", "megabytes", "gb", "gib", "gigabytes"),
                    "bytes"),
    **dict.fromkeys(("percent", "percentage", "pct"), "ratio"),
}
_TIME_WORDS = frozenset({"latency", "duration", "time", "delay", "elapsed", "wait", "lag", "age"})
METRICS_ATTRIBUTE = "METRICS"  # an app package's own register: a tuple of MetricSpec
DEFAULT_ADD_TO = (f"REGISTER in {REGISTER_PATH} (an app's own metric: to the METRICS tuple of "
                  "MetricSpec in its package)")


@dataclass(frozen=True)
class Problem:
    """One finding: the metric family it is about ("" for the whole exposition) and what is wrong."""

    metric: str
    message: str

    def line(self) -> str:
        return f"{self.metric}: {self.message}" if self.metric else self.message


@dataclass(frozen=True)
class CheckReport:
    """The families an exposition holds (by exposed name) and the problems found in it."""

    families: tuple[str, ...]
    problems: tuple[Problem, ...]


# --- naming rules ------------------------------------------------------------------------------


def naming_problems(name: str, metric_type: str) -> list[Problem]:
    """What breaks Prometheus' naming conventions in `name`, a family of type `metric_type`.

    Counters are named with their `_total`; "untyped" families are checked for case and
    units only.
    """
    problems: list[Problem] = []

    def problem(message: str) -> None:
        problems.append(Problem(name, message))

    if not NAME_RULE.fullmatch(name):
        problem("is not snake_case: a name matches [a-z_:][a-z0-9_:]* (lowercase letters, digits, "
                "underscores)")
    elif ":" in name:
        problem("contains ':', which is kept for recording rules: exporters use underscores")
    if metric_type == "counter" and not name.endswith("_total"):
        problem(f"is a counter: its name must end in _total ({name}_total)")
    if metric_type not in ("counter", "untyped", "unknown") and name.endswith("_total"):
        problem(f"is a {metric_type}: only counters end in _total")
    tokens = name.lower().split("_")
    for token in tokens:
        if token in NON_BASE_UNITS:
            base = NON_BASE_UNITS[token]
            problem(f"uses the unit {token!r}: use the base unit _{base} (and convert the values)")
    of_time = any(t in _TIME_WORDS or NON_BASE_UNITS.get(t) == "seconds" for t in tokens)
    if metric_type in ("histogram", "summary") and of_time and not name.endswith("_seconds"):
        problem(f"is a {metric_type} of time: its name must end in _seconds, the base unit")
    return problems


def register_problems(specs: Iterable[MetricSpec]) -> list[Problem]:
    """Mistakes in register entries themselves: names, units, info metrics, help texts."""
    problems: list[Problem] = []
    for entry in specs:
        problems += naming_problems(entry.name, "gauge" if entry.type == "info" else entry.type)
        stem = entry.name.removesuffix("_total")
        if entry.unit and not stem.endswith(f"_{entry.unit}"):
            problems.append(Problem(entry.name, f"is in {entry.unit}: its name must end in _{entry.unit}"))
        if entry.type == "info" and not entry.name.endswith("_info"):
            problems.append(Problem(entry.name, "is an info metric: its name must end in _info"))
        if not entry.help.strip() or not entry.help.rstrip().endswith("."):
            problems.append(Problem(entry.name, "needs a help text of one sentence, ending in '.'"))
        if len(set(entry.labels)) != len(entry.labels) or _TYPE_LABELS & set(entry.labels):
            problems.append(Problem(entry.name, "labels repeat, or name le/quantile (the type adds those)"))
    return problems


# --- the exposition against the register --------------------------------------------------------


def _type_matches(registered: str, exposed: str) -> bool:
    # The text format has no info type: an info metric is served as a gauge.
    return exposed == registered or (registered == "info" and exposed == "gauge")


def _exposed_name(family: Metric, declared_counters: set[str]) -> str:
    """The name as served: the parser drops a counter's `_total`, the `# TYPE` line kept it."""
    if family.type == "counter" and f"{family.name}_total" in declared_counters:
        return f"{family.name}_total"
    return family.name


def _label_names(family: Metric) -> set[str]:
    return {label for sample in family.samples for label in sample.labels} - _TYPE_LABELS


def _is_created_companion(name: str, metric_type: str, served: set[str]) -> bool:
    """prometheus_client's `X_created` gauge: the creation time of counter/histogram/summary X."""
    if metric_type != "gauge" or not name.endswith("_created"):
        return False
    stem = name.removesuffix("_created")
    return stem in served or f"{stem}_total" in served


def _family_problems(name: str, family: Metric, registered: MetricSpec | None,
                     add_to: str) -> Iterator[Problem]:
    if family.type in ("untyped", "unknown"):
        yield Problem(name, "has no # TYPE line: declare its type")
    yield from naming_problems(name, family.type)
    if registered is None:
        yield Problem(name, f"is not in the register: add a MetricSpec for it to {add_to}")
        return
    if not _type_matches(registered.type, family.type):
        yield Problem(name, f"is served as a {family.type} but registered as a {registered.type}")
    labels = _label_names(family)
    if family.samples and labels != set(registered.labels):
        shown = ", ".join(sorted(labels)) or "none"
        expected = ", ".join(sorted(registered.labels)) or "none"
        yield Problem(name, f"has labels {{{shown}}} but is registered with {{{expected}}}")


def check_exposition(text: str, extra: Iterable[MetricSpec] = (), *,
                     add_to: str = DEFAULT_ADD_TO) -> CheckReport:
    """Every family of `text` (Prometheus text format) against the register (plus `extra`)."""
    register = register_by_name(extra)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        reason = str(error) or "parse error"
        return CheckReport((), (Problem("", f"not a Prometheus text exposition: {reason}"),))
    if not families:
        return CheckReport((), (Problem("", "no metric families: is this a Prometheus text exposition?"),))
    declared_counters = set(_DECLARED_COUNTER.findall(text))
    named = [(_exposed_name(family, declared_counters), family) for family in families]
    served = {name for name, _ in named}
    checked: list[str] = []
    problems: list[Problem] = []
    for name, family in named:
        if _is_created_companion(name, family.type, served):
            continue
        checked.append(name)
        problems += _family_problems(name, family, register.get(name), add_to)
    return CheckReport(tuple(checked), tuple(problems))


# --- promtool (side effect) ---------------------------------------------------------------------


def promtool_problems(text: str, promtool: str = "promtool", timeout: float = 30.0) -> list[Problem]:
    """`promtool check metrics` on `text`: each line it prints becomes a problem."""
    executable = shutil.which(promtool)
    if executable is None:
        return [Problem("", f"{promtool} not found: install the Debian package prometheus "
                            "(it ships /usr/bin/promtool)")]
    try:
        done = subprocess.run([executable, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [Problem("", f"promtool check metrics did not finish in {timeout:g}s")]
    if done.returncode == 0:
        return []
    problems = []
    for line in (done.stdout + done.stderr).splitlines():
        line = line.strip()
        if not line:
            continue
        metric, _, finding = line.partition(" ")
        if line.startswith("error") or not finding or not NAME_RULE.fullmatch(metric.lower()):
            problems.append(Problem("", f"promtool: {line}"))
        else:
            problems.append(Problem(metric, f"promtool: {finding}"))
    return problems or [Problem("", f"promtool check metrics failed (exit {done.returncode}) without a word")]


def check_metrics(text: str, extra: Iterable[MetricSpec] = (), *, add_to: str = DEFAULT_ADD_TO,
                  promtool: str | None = "promtool") -> CheckReport:
    """`check_exposition`, then promtool's findings (None: skip promtool)."""
    report = check_exposition(text, extra, add_to=add_to)
    if promtool is None:
        return report
    return CheckReport(report.families, (*report.problems, *promtool_problems(text, promtool)))


# --- an app's own /metrics (side effect: imports and calls the app) -----------------------------


def load_app(reference: str) -> Any:
    """The ASGI app named by "module:attribute", instrumented with the kit if it is not yet."""
    from .. import kit

    module_name, _, attribute = reference.partition(":")
    app = getattr(importlib.import_module(module_name), attribute or "app")
    if isinstance(app, kit.RequestObserver):
        return app
    service = os.environ.get(kit.SERVICE_ENV) or module_name.partition(".")[0]
    return kit.instrument(app, service=service)


def app_register(reference: str) -> tuple[MetricSpec, ...]:
    """The `METRICS` tuple of the app's top package (its own metrics), or none."""
    package = importlib.import_module(reference.partition(":")[0].partition(".")[0])
    declared = getattr(package, METRICS_ATTRIBUTE, ())
    if not all(isinstance(entry, MetricSpec) for entry in declared):
        raise TypeError(f"{package.__name__}.{METRICS_ATTRIBUTE} must be a tuple of MetricSpec")
    return tuple(declared)


async def _get_metrics(app: Any) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/metrics", "raw_path": b"/metrics", "query_string": b"",
             "root_path": "", "headers": [(b"accept", b"text/plain; version=0.0.4")],
             "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}
    status, body = 0, bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


def app_exposition(app: Any) -> str:
    """What the app's /metrics serves, asked in-process (no server, no lifespan)."""
    status, body = asyncio.run(_get_metrics(app))
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}: {body[:200]!r}")
    return body.decode()


def main(argv: list[str] | None = None) -> int:
    """`python -m sevenleague.telemetry.metric_check --app module:app`: the build's "metric names" step."""
    parser = argparse.ArgumentParser(prog="python -m sevenleague.telemetry.metric_check",
                                     description="Check what an app's /metrics serves against the register.")
    parser.add_argument("--app", required=True, help='the ASGI app as "module:attribute"')
    parser.add_argument("--report", type=Path, help="also write the result here as JSON")
    args = parser.parse_args(argv)
    package = args.app.partition(":")[0].partition(".")[0]
    report = check_metrics(app_exposition(load_app(args.app)), app_register(args.app),
                           add_to=f"{METRICS_ATTRIBUTE} in the package {package} (a tuple of "
                                  f"sevenleague.telemetry.MetricSpec)")
    for problem in report.problems:
        print(problem.line())
    print(f"{len(report.families)} metric families checked, {len(report.problems)} problems")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps({"families": list(report.families),
                                           "problems": [asdict(p) for p in report.problems]}, indent=1))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
