"""`league metrics QUERY`: ask the eco-system's Prometheus, and print its answer as a table.

Prometheus is found in the snapshot `league up` wrote (whatever the port offset) and
reached over HTTPS verified against the eco-system's CA, like every other command's
call. What it answers is printed as Prometheus' own API shapes it: an instant vector
is one row per series (its labels, its value), a range vector one row per sample, a
scalar or a string the bare value. A query Prometheus refuses prints its own message,
on one line, exit 1.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from .._json_api import JsonApi
from ..errors import LeagueError


class PrometheusUnavailable(LeagueError):
    """No Prometheus answers: the eco-system is not up, or Prometheus is down."""


class QueryRefused(LeagueError):
    """Prometheus answered the query with an error: bad PromQL, a bad time, too many samples."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


class PrometheusApi(JsonApi):
    what = "Prometheus"
    unavailable = PrometheusUnavailable

    @classmethod
    def from_home(cls, home: Path) -> PrometheusApi:
        url, ca_file = cls.snapshot_endpoint(home, "prometheus")
        return cls(url, timeout=30.0, ca_file=ca_file)

    def refusal(self, status: int, problem: dict[str, Any]) -> LeagueError | None:
        if problem.get("status") == "error" and problem.get("error"):
            return QueryRefused(f"Prometheus refused the query: {_one_line(str(problem['error']))}")
        return None

    def query(self, promql: str, at: str | None = None) -> dict[str, Any]:
        """The `data` of /api/v1/query, with the answer's warnings under "warnings"."""
        parameters = {"query": promql, **({"time": at} if at else {})}
        answer: dict[str, Any] = self._json("GET", "/api/v1/query?" + urllib.parse.urlencode(parameters))
        data: dict[str, Any] = dict(answer.get("data") or {})
        if answer.get("warnings"):
            data["warnings"] = list(answer["warnings"])
        return data


# --- from an answer to rows (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class Rendering:
    """What to print: a table (columns, rows), or one bare value when `columns` is empty."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    value: str = ""


def series_name(metric: dict[str, str]) -> str:
    """Prometheus' own spelling of a series: `name{label="value", ...}`, labels sorted."""
    name = metric.get("__name__", "")
    labels = ", ".join(f"{key}={json.dumps(value)}" for key, value in sorted(metric.items())
                       if key != "__name__")
    return f"{name}{{{labels}}}" if labels or not name else name


def sample_time(timestamp: float) -> str:
    """Unix seconds as UTC RFC 3339, to the millisecond Prometheus keeps."""
    moment = datetime.fromtimestamp(float(timestamp), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def render_result(data: dict[str, Any]) -> Rendering:
    """The rows of a /api/v1/query answer's `data`, in the order Prometheus gave them.

    The order is kept, not sorted: `sort_desc(...)` and `topk(...)` mean it.
    """
    kind = data.get("resultType")
    result: Any = data.get("result") or []
    if kind in ("scalar", "string"):
        return Rendering((), (), str(result[1]))
    if kind == "vector":
        return Rendering(("series", "value"),
                         tuple((series_name(s["metric"]), str(s["value"][1])) for s in result))
    if kind == "matrix":
        rows = []
        for series in result:
            name = series_name(series["metric"])
            for i, (timestamp, value) in enumerate(series.get("values", [])):
                rows.append((name if i == 0 else "", sample_time(timestamp), str(value)))
        return Rendering(("series", "time", "value"), tuple(rows))
    raise LeagueError(f"Prometheus answered a result of an unknown type {kind!r}",
                      hint="print it as it came with --json")


# --- the command ----------------------------------------------------------------------------


def format_rendering(rendering: Rendering) -> list[str]:
    """Lines to print: columns aligned, never wrapped (a long series stays one line, for grep)."""
    if not rendering.columns:
        return [rendering.value]
    if not rendering.rows:
        return ["no series"]
    table = [rendering.columns, *rendering.rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(rendering.columns))]
    return ["  ".join(cell.rjust(width) if column == "value" else cell.ljust(width)
                      for column, cell, width in zip(rendering.columns, row, widths, strict=True)).rstrip()
            for row in table]


def run_metrics_query(home: Path, promql: str, at: str | None, console: Console, as_json: bool) -> int:
    data = PrometheusApi.from_home(home).query(promql, at)
    for warning in data.get("warnings", []):
        print(f"league: Prometheus warns: {_one_line(str(warning))}", file=sys.stderr)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    for line in format_rendering(render_result(data)):
        console.out(line, highlight=False)
    return 0
