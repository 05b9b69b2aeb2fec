"""A service from `league new service` passes its own three kinds of tests as written.

Each kind runs on its own, in the service's directory, with its src/ on PYTHONPATH: the
way the build pipeline runs them on a fresh checkout. The code is also held to what it
claims to be: lint-clean and fully typed, since users copy it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

KINDS = ("unit", "integration", "performance")
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("scaffold") / "demo-svc"
    done = subprocess.run([sys.executable, "-m", "sevenleague.cli", "new", "service", "demo-svc",
                           "--dir", str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return directory


def run_kind(service: Path, kind: str, reports: Path) -> tuple[subprocess.CompletedProcess[str], ET.Element]:
    junit = reports / f"{kind}.xml"
    env = {**os.environ, "PYTHONPATH": str(service / "src"), "LEAGUE_PERF_DIR": str(reports / "perf")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"tests/{kind}",
                           f"--junitxml={junit}"], cwd=service, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    suite = ET.parse(junit).getroot()
    return done, (suite if suite.tag == "testsuite" else suite[0])


def test_each_kind_of_test_passes_on_its_own_with_at_least_one_test(service, tmp_path):
    for kind in KINDS:
        done, suite = run_kind(service, kind, tmp_path)
        counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
        assert done.returncode == 0, f"{kind}:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        assert counts["tests"] >= 1, kind
        assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, (kind, counts)
    figures = json.loads((tmp_path / "perf" / "demo-svc-in-process.json").read_text())
    assert figures["gate"] == ["relative_requests_per_second"]
    assert figures["relative_requests_per_second"] > 0


def test_the_code_is_lint_clean_formatted_and_fully_typed(service, tmp_path):
    checks = [
        [str(BIN / "ruff"), "check", "--isolated", "."],
        [str(BIN / "ruff"), "check", "--isolated", "--select", "E,F,W,I,UP,B,SIM,ANN,RUF,PTH", "."],
        [str(BIN / "ruff"), "format", "--isolated", "--check", "."],
        [str(BIN / "mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy"), "src", "tests"],
    ]
    env = {**os.environ, "MYPYPATH": str(service / "src")}
    for argv in checks:
        done = subprocess.run(argv, cwd=service, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, f"{' '.join(argv[1:])}:\n{done.stdout}{done.stderr}"
