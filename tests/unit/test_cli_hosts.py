"""`league host add` and `league host list` on a catalog file: text kept, bad additions refused whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT


def league(catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sevenleague.cli", "--catalog", str(catalog), *args],
                          capture_output=True, text=True, timeout=60)


def test_host_add_appends_a_table_and_joins_the_environment_keeping_the_rest(tmp_path):
    catalog = tmp_path / "ecosystem.toml"
    shutil.copy(ROOT / "ecosystem.toml", catalog)
    before = catalog.read_text()
    added = league(catalog, "host", "add", "web-1", "--address", "10.0.0.11", "--env", "dev",
                   "--ssh-key", "keys/id_ed25519")
    assert added.returncode == 0, added.stderr
    after = catalog.read_text()
    assert after.startswith(before.split("[environments.dev]")[0])  # comments and layout as they were
    assert '[hosts.web-1]\ndriver = "ssh"\naddress = "10.0.0.11"\nssh_key = "keys/id_ed25519"\n' in after
    assert 'hosts = ["local", "web-1"]' in after
    listed = json.loads(league(catalog, "host", "list", "--json").stdout)
    assert {"name": "web-1", "driver": "ssh", "address": "10.0.0.11", "environment": "dev",
            "instances": []} in listed
    assert {row["name"]: row["instances"] for row in listed}["local"] == ["hello-1", "hello-2"]


def test_host_add_refuses_what_would_break_the_catalog_and_changes_nothing(tmp_path):
    catalog = tmp_path / "ecosystem.toml"
    shutil.copy(ROOT / "ecosystem.toml", catalog)
    before = catalog.read_text()
    twice = league(catalog, "host", "add", "local", "--address", "10.0.0.12")
    assert twice.returncode == 2 and "host 'local' is in" in twice.stderr
    bad = league(catalog, "host", "add", "Web_1", "--address", "10.0.0.12")
    assert bad.returncode == 2 and "hosts.Web_1" in bad.stderr and "Traceback" not in bad.stderr
    assert catalog.read_text() == before
    assert list(tmp_path.iterdir()) == [catalog]  # no scratch file left behind
