"""hello under wrk: (a) bare ASGI app, (b) with the kit, (c) with the kit behind HAProxy.

Same server settings for all three (uvicorn via `python -m sevenleague.kit.serve`, one
process pinned to CPU 0); wrk and HAProxy share CPU 1. The machine is shared and noisy,
so the three run in turn, in many short rounds, and the ratios are medians of per-round
ratios. Each run also records the server's CPU time per request (from /proc), a second
view that wall-clock noise disturbs less.

    python benchmarks/bench_hello.py [--rounds 12] [--seconds 3] [--connections 32]

Targets: (b)/(a) >= 0.75, (c)/(b) >= 0.9. Results: benchmarks/results/hello.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import cpu_seconds, median, write_results
from _edge import start_haproxy

from sevenleague.testing import run_wrk, serve_app

HERE = Path(__file__).parent
ROOT = HERE.parent

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-hello-") as tmp:
        workdir = Path(tmp)
        with serve_app("bare_hello:app", workdir, pythonpath=[HERE], ready_path="/") as bare, \
                serve_app("hello.app:app", workdir) as kit:
            for served in (bare, kit):
                subprocess.run(["taskset", "-pc", "0", str(served.process.pid)], check=True,
                               capture_output=True)
            haproxy, edge_url = start_haproxy(workdir, kit.port)
            edge_url += "/"
            try:
                variants = {"a_bare": bare.url + "/", "b_kit": kit.url + "/", "c_haproxy": edge_url}
                servers = {"a_bare": bare.process.pid, "b_kit": kit.process.pid,
                           "c_haproxy": kit.process.pid}
                for url in variants.values():  # warm up caches and connection pools
                    run_wrk(url, seconds=1, connections=args.connections, cpu=1)
                rounds = []
                names = list(variants)
                for number in range(args.rounds):
                    order = names[number % 3:] + names[:number % 3]
                    result = {}
                    for name in order:
                        before = cpu_seconds(servers[name])
                        wrk = run_wrk(variants[name], seconds=args.seconds,
                                      connections=args.connections, cpu=1)
                        used = cpu_seconds(servers[name]) - before
                        result[name] = {"rps": wrk.requests_per_second, "p99_ms": wrk.p99_ms,
                                        "errors": wrk.errors,
                                        "server_cpu_us_per_request": 1e6 * used / max(wrk.requests, 1)}
                    result["b_over_a"] = result["b_kit"]["rps"] / result["a_bare"]["rps"]
                    result["c_over_b"] = result["c_haproxy"]["rps"] / result["b_kit"]["rps"]
                    rounds.append(result)
                    print(f"round {number + 1}: " + ", ".join(
                        f"{n} {result[n]['rps']:.0f} req/s p99 {result[n]['p99_ms']:.2f} ms" for n in names)
                        + f"; b/a {result['b_over_a']:.3f} c/b {result['c_over_b']:.3f}", flush=True)
            finally:
                haproxy.terminate()
                haproxy.wait(10)

    summary = {
        name: {"rps_median": median([r[name]["rps"] for r in rounds]),
               "p99_ms_median": median([r[name]["p99_ms"] for r in rounds]),
               "server_cpu_us_per_request_median": median(
                   [r[name]["server_cpu_us_per_request"] for r in rounds]),
               "errors": sum(r[name]["errors"] for r in rounds)}
        for name in ("a_bare", "b_kit", "c_haproxy")
    }
    cpu_a = summary["a_bare"]["server_cpu_us_per_request_median"]
    cpu_b = summary["b_kit"]["server_cpu_us_per_request_median"]
    ratios = {"b_over_a": median([r["b_over_a"] for r in rounds]),
              "c_over_b": median([r["c_over_b"] for r in rounds])}
    targets = {"b_over_a": 0.75, "c_over_b": 0.9}
    path = write_results("hello", {
        "settings": {"rounds": args.rounds, "seconds": args.seconds, "connections": args.connections,
                     "wrk_threads": 1, "server": "uvicorn (httptools, uvloop) pinned to CPU 0",
                     "load": "wrk and HAProxy pinned to CPU 1"},
        "summary": summary, "ratios": ratios, "targets": targets,
        "kit_cpu_us_per_request": cpu_b - cpu_a,
        "cpu_ratio_a_over_b": cpu_a / cpu_b if cpu_b else 0.0,
        "meets_targets": {k: ratios[k] >= targets[k] for k in targets}, "rounds": rounds,
    })
    print(f"b/a {ratios['b_over_a']:.3f} (target 0.75), c/b {ratios['c_over_b']:.3f} (target 0.9); "
          f"server CPU per request: bare {cpu_a:.0f} us, kit {cpu_b:.0f} us")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
