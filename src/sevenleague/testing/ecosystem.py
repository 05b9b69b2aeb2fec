"""A whole eco-system for tests: `league up` in a temporary LEAGUE_HOME on free ports.

It runs the real CLI in a subprocess, exactly as a user would, and `stop()` runs
`league down` and then checks by pid that nothing it started is left. The passwords and
tokens it handles are kept as secrets, and `stop()` scans the eco-system's logs for them
before a fixture deletes its LEAGUE_HOME (see `sevenleague.testing.secrets`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import load_catalog
from ..ecosystem import StateLayout, read_snapshot
from ..ecosystem._plan import plan_listens
from ..hosts import LocalHost, pid_alive
from . import Response, free_port_offset, http_request
from .secrets import keep_secret, scan_before_removal


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
    tokens: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict, repr=False)
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    refresh_tokens: dict[str, str] = field(default_factory=dict, repr=False)

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

    @property
    def ca_file(self) -> Path:
        """The eco-system's CA: every https endpoint above is verified against it."""
        return StateLayout(self.home).ca_file

    def get(self, url: str, **options: Any) -> Response:
        """One request to an endpoint of this eco-system, its TLS verified against the CA."""
        return http_request(url, ca_file=self.ca_file, **options)

    def token(self, audience: str, scope: str = "", username: str = "admin") -> str:
        """An access token for `audience`, signed in as the first admin (or `username`, password kept)."""
        from .identity import refresh, sign_in

        key = (audience, scope, username)
        token, expires_at = self.tokens.get(key, ("", 0.0))
        if expires_at - time.monotonic() < 60:
            issuer = self.endpoints["identity"]
            # one sign-in per user, then the refresh token, as `league` does: the sign-in form
            # allows only so many attempts a minute
            if username in self.refresh_tokens:
                answer = refresh(issuer, self.refresh_tokens[username], audience=audience, scope=scope,
                                 ca_file=self.ca_file)
            else:
                answer = sign_in(issuer, username, self.password_of(username), audience=audience, scope=scope,
                                 ca_file=self.ca_file)
            keep_secret(*(str(value) for name, value in answer.items() if name.endswith("token")))
            self.refresh_tokens[username] = answer["refresh_token"]
            token, expires_at = answer["access_token"], time.monotonic() + float(answer["expires_in"])
            self.tokens[key] = (token, expires_at)
        return token

    def password_of(self, username: str) -> str:
        if username == "admin" and username not in self.passwords:
            self.passwords[username] = (self.home / "identity" / "admin-password").read_text().strip()
        keep_secret(self.passwords[username])
        return self.passwords[username]

    def login(self, username: str = "admin", timeout: float = 60.0) -> str:
        """`league login` as a person does it: the CLI prints a code, the person approves it in a browser."""
        from .identity import approve

        argv = [sys.executable, "-m", "sevenleague.cli", "--catalog", str(self.catalog), "login"]
        process = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        try:
            assert process.stdout is not None
            said = process.stdout.readline()
            code = re.search(r"enter the code (\S+)", said)
            if code is None:
                raise AssertionError(f"league login printed no code: {said!r}")
            approve(self.endpoints["identity"], code.group(1), username, self.password_of(username),
                    ca_file=self.ca_file)
            out, err = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            raise AssertionError(f"league login exited {process.returncode}: {err}")
        return said + out

    def log_path(self, program: str) -> Path:
        return self.home / "logs" / f"{program}.log"

    def stop(self) -> list[int]:
        """`league down`, then the pids still alive among everything ever seen running.

        The logs are complete once everything is down: they are scanned for kept secrets
        then, because fixtures delete LEAGUE_HOME (outside pytest's directory) next.
        """
        self.status()
        supervisord = LocalHost("test", self.home).supervisord_pid()
        self.league("down")
        scan_before_removal(self.home)
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
