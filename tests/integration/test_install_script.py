"""scripts/install-system-packages.sh: installs only what is missing, explains itself otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ..conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-system-packages.sh"


def run_script(packages: str, *, as_user: bool) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON": "/bin/true",
           "LEAGUE_DEBIAN_PACKAGES": packages}
    with tempfile.TemporaryDirectory() as directory:
        # a copy any user can read, wherever the checkout lives
        script = Path(directory) / SCRIPT.name
        shutil.copy(SCRIPT, script)
        Path(directory).chmod(0o755)
        script.chmod(0o755)
        argv = ["sh", str(script)]
        if as_user and os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("setpriv (util-linux) is needed to run the script as another user")
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False,
                              cwd="/")


def test_nothing_missing_means_nothing_done_and_nothing_said():
    done = run_script("haproxy wrk", as_user=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_user_without_root_gets_the_exact_apt_get_line_and_exit_2():
    done = run_script("haproxy sevenleague-test-absent-package", as_user=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "missing Debian packages: sevenleague-test-absent-package",
        "install them as root, then run make again:",
        "    sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        "sevenleague-test-absent-package",
    ]
