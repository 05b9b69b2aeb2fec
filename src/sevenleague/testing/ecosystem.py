"""A whole eco-system for tests: `league up` in a temporary LEAGUE_HOME on free ports.

It runs the real CLI in a subprocess, exactly as a user would, and `stop()` runs
`league down` and then checks by pid that nothing it started is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import load_catalog
from ..ecosystem import StateLayout, read_snapshot
from ..ecosystem._plan import plan_listens
from ..hosts import LocalHost, pid_alive
from . import free_port_offset


def catalog_ports(catalog_path: Path) -> list[int]:
    """Every port `league up` would listen on, as the plan lists them."""
    return [listen.port for listen in plan_listens(load_catalog(catalog_path))]


@dataclass
class RunningEcosystem:
    home: Path
    catalog: Path
    offset: int
    env: dict[str, str]
    seen_pids: set[int] = field(default_factory=set)

    def league(self, *args: str, check: bool = True, timeout: float = 180.0,
               catalog: Path | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "sevenleague.cli", "--catalog", str(catalog or self.catalog), *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"league {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def status(self) -> dict[str, Any]:
        data = json.loads(self.league("status", "--json", check=False).stdout)
        self.seen_pids.update(p["pid"] for p in data["processes"] + data["instances"] if p["pid"])
        return data

    @property
    def endpoints(self) -> dict[str, str]:
        """Fixed by `league up`: read from the state directory, no command run."""
        return dict(read_snapshot(StateLayout(self.home).snapshot)["endpoints"])

    def log_path(self, program: str) -> Path:
        return self.home / "logs" / f"{program}.log"

    def stop(self) -> list[int]:
        """`league down`, then the pids still alive among everything ever seen running."""
        self.status()
        supervisord = LocalHost("test", self.home).supervisord_pid()
        self.league("down")
        pids = self.seen_pids | ({supervisord} if supervisord else set())
        return sorted(pid for pid in pids if pid_alive(pid))


def start_ecosystem(catalog: Path, *, home: Path | None = None,
                    extra_env: dict[str, str] | None = None) -> RunningEcosystem:
    home = home or Path(tempfile.mkdtemp(prefix="league-"))
    offset = free_port_offset(catalog_ports(catalog))
    env = {**os.environ, "LEAGUE_HOME": str(home), "LEAGUE_PORT_OFFSET": str(offset),
           **(extra_env or {})}
    running = RunningEcosystem(home=home, catalog=catalog, offset=offset, env=env)
    running.league("up", "--timeout", "90")
    running.status()
    return running
