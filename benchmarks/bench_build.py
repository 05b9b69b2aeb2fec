"""From `git push` to a published .deb for hello: cold (empty wheel cache) and warm.

A fresh eco-system in a temporary LEAGUE_HOME with its own, empty build cache (wheels,
environments and pip's download cache), so the cold build fetches every wheel from
PyPI as a first build on a new machine would. Each warm build pushes one more commit
to the same repository. Timed from the start of `git push` to the build's end (publish
included), as the user waits for it.

    python benchmarks/bench_build.py [--warm-runs 3]

Targets: warm <= 20 s, cold <= 60 s. Results: benchmarks/results/build.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, write_results

from sevenleague.build.client import BuildClient
from sevenleague.testing.ecosystem import RunningEcosystem, start_ecosystem

ROOT = Path(__file__).resolve().parent.parent
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def timed_push(eco: RunningEcosystem, source: Path, message: str) -> dict[str, Any]:
    git("commit", "-q", "--allow-empty", "-m", message, cwd=source)
    start = time.time()
    said = git("push", "-q", "league", "HEAD:main", cwd=source)
    build_id = int(re.search(r"build (\d+) of hello", said).group(1))  # type: ignore[union-attr]
    client = BuildClient(eco.endpoints["builds"], ca_file=eco.ca_file, token=lambda: eco.token("builds"))
    while (build := client.get(build_id))["state"] not in ("passed", "failed", "cancelled"):
        time.sleep(0.2)
    if build["state"] != "passed":
        raise SystemExit(f"build {build_id} {build['state']}: {build['reason']}")
    steps = {s["name"]: s["seconds"] for s in build["steps"]}
    return {"build": build_id, "push_to_published_seconds": round(build["finished_at"] - start, 2),
            "steps_seconds": steps, "deb_bytes": build["deb"]["size"], "deb": build["deb"]["name"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-build-"))
    source = scratch / "hello"
    shutil.copytree(ROOT / "apps" / "hello", source,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    eco = start_ecosystem(ROOT / "ecosystem.toml", home=scratch / "home",
                          extra_env={"LEAGUE_BUILD_CACHE": str(scratch / "cache")})
    try:
        eco.league("repo", "create", "hello")
        git("init", "-q", "-b", "main", cwd=source)
        git("add", "-A", cwd=source)
        git("remote", "add", "league", str(eco.home / "repos" / "hello.git"), cwd=source)
        cold = timed_push(eco, source, "hello, first push")
        warm = [timed_push(eco, source, f"hello, push {n + 2}") for n in range(args.warm_runs)]
    finally:
        eco.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    warm_seconds = [w["push_to_published_seconds"] for w in warm]
    path = write_results("build", {
        "cold_seconds": cold["push_to_published_seconds"],
        "warm_seconds_median": round(median(warm_seconds), 2),
        "warm_seconds": warm_seconds,
        "deb_bytes": warm[-1]["deb_bytes"],
        "deb": warm[-1]["deb"],
        "targets": {"warm_seconds": 20, "cold_seconds": 60},
        "cold": cold,
        "warm": warm,
    })
    print(f"cold {cold['push_to_published_seconds']} s, warm median {median(warm_seconds):.2f} s "
          f"({warm_seconds}), .deb {warm[-1]['deb_bytes'] / 1e6:.1f} MB -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
