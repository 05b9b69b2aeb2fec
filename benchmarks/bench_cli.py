"""`league up` from cold to all-healthy, `league status` and `league down`, timed.

Cold means a new, empty LEAGUE_HOME with the Debian packages and .venv already
installed: what a second-day `make up` costs. Each figure is the median of several runs.

    python benchmarks/bench_cli.py [--runs 3] [--status-runs 10]

Targets: up <= 10 s, status <= 0.5 s. Results: benchmarks/results/cli.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median, write_results

from sevenleague.testing import free_port_offset
from sevenleague.testing.ecosystem import catalog_ports

ROOT = Path(__file__).resolve().parent.parent
LEAGUE = [sys.executable, "-m", "sevenleague.cli", "--catalog", str(ROOT / "ecosystem.toml")]


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(LEAGUE + args, env=env, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--status-runs", type=int, default=10)
    args = parser.parse_args()
    ups, downs, statuses, status_jsons = [], [], [], []
    for run in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
        offset = free_port_offset(catalog_ports(ROOT / "ecosystem.toml"))
        env = {**os.environ, "LEAGUE_HOME": str(home), "LEAGUE_PORT_OFFSET": str(offset)}
        try:
            ups.append(timed(["up"], env))
            for _ in range(args.status_runs):
                statuses.append(timed(["status"], env))
                status_jsons.append(timed(["status", "--json"], env))
        finally:
            downs.append(timed(["down"], env))
            if downs[-1] < 10:
                shutil.rmtree(home, ignore_errors=True)
            else:
                print(f"down took {downs[-1]:.1f}s; state kept in {home} for a look", flush=True)
        print(f"run {run + 1}: up {ups[-1]:.2f}s, status median {median(statuses):.3f}s, "
              f"down {downs[-1]:.2f}s", flush=True)
    summary = {"up_seconds_median": median(ups), "status_seconds_median": median(statuses),
               "status_json_seconds_median": median(status_jsons), "down_seconds_median": median(downs)}
    targets = {"up_seconds_median": 10.0, "status_seconds_median": 0.5}
    path = write_results("cli", {
        "settings": {"runs": args.runs, "status_runs_per_up": args.status_runs,
                     "catalog": "ecosystem.toml (the demo)"},
        "summary": summary, "targets": targets,
        "meets_targets": {k: summary[k] <= v for k, v in targets.items()},
        "raw": {"up": ups, "status": statuses, "status_json": status_jsons, "down": downs},
    })
    print(", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
