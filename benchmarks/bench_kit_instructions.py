"""CPU instructions per request in the real server: bare hello, wrappers, the kit.

Wall-clock figures on a shared machine swing by tens of percent between runs; counted
instructions do not. Each variant runs under `valgrind --tool=callgrind` (user space:
the interpreter, uvicorn, uvloop, the app; the kernel's TCP work is not counted), is
warmed up, then the counters are zeroed, a fixed number of requests is sent over one
keep-alive connection, and the counters are dumped.

    python benchmarks/bench_kit_instructions.py [--requests 2000]

Results: benchmarks/results/kit_instructions.json.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_results

from sevenleague.testing import free_port, wait_for_http

HERE = Path(__file__).parent
VARIANTS = ("bare", "wrapped", "headers", "kit_app")


def send_requests(port: int, count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(count):
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET / answered {response.status}")
    connection.close()


def summary_of(path: Path) -> dict[str, int]:
    events = summary = None
    for line in path.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            summary = [int(x) for x in line.split()[1:]]
    if not events or not summary:
        raise RuntimeError(f"no callgrind summary in {path}")
    return dict(zip(events, summary, strict=True))


def measure(variant: str, requests: int, workdir: Path) -> dict[str, float]:
    port = free_port()
    out = workdir / f"callgrind.{variant}"
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--cache-sim=yes", f"--callgrind-out-file={out}.%p",
         sys.executable, "-m", "sevenleague.kit.serve", f"instrumented_variants:{variant}",
         "--port", str(port), "--drain-seconds", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=180)
        send_requests(port, 300)  # warm up: imports, caches, label children
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True, capture_output=True)
        send_requests(port, requests)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
        dump = Path(f"{out}.{server.pid}.1")
        deadline = time.monotonic() + 30
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        counts = summary_of(dump)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    return {event: value / requests for event, value in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp:
        per_request = {variant: measure(variant, args.requests, Path(tmp)) for variant in VARIANTS}
    bare = per_request["bare"]["Ir"]
    summary = {variant: {"instructions": round(v["Ir"]), "over_bare": round(v["Ir"] - bare),
                         "l1_instruction_misses": round(v.get("I1mr", 0)),
                         "l1_data_read_misses": round(v.get("D1mr", 0))}
               for variant, v in per_request.items()}
    for variant, figures in summary.items():
        print(f"{variant:8s} {figures['instructions']:8d} instructions/request "
              f"(+{figures['over_bare']:d} over bare)")
    path = write_results("kit_instructions", {
        "settings": {"requests": args.requests, "tool": "valgrind --tool=callgrind --cache-sim=yes",
                     "server": "python -m sevenleague.kit.serve (uvicorn, httptools, uvloop)"},
        "per_request": summary,
        "kit_over_bare_ratio": per_request["kit_app"]["Ir"] / bare,
        "kit_own_instructions": round(per_request["kit_app"]["Ir"] - per_request["headers"]["Ir"]),
    })
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
