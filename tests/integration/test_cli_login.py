"""`league login`, `league token`, `league user ...` against the identity service, for real.

The identity service runs over HTTPS with a certificate from a CA made by
`sevenleague.pki`; `$LEAGUE_HOME/ecosystem.json` names it and the CA, as `league up`
writes it. The CLI runs as a subprocess; the test plays the person at the browser by
submitting the `/device` form over HTTPS. Every token it checks is verified
independently with joserfc against the published JWKS. Every password and token the
test comes across is collected, and the last test finds none of them in the service's
log or in anything the CLI wrote to stderr.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from sevenleague.pki import ensure_ca, issue_leaf
from sevenleague.testing import Response, ServedApp, free_port, http_request, serve_app
from sevenleague.testing.secrets import keep_secret

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
USER_CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")
DEVICE_LIFETIME = 10  # seconds: the shortest the service allows, so the expiry test is short


@dataclass
class Eco:
    served: ServedApp
    home: Path
    issuer: str
    ca_file: Path
    secrets: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def keep(self, *values: str) -> None:
        self.secrets.extend(value for value in values if value)
        keep_secret(*values)  # and the session scans every log for them

    def request(self, path: str, **kwargs: Any) -> Response:
        return http_request(self.issuer + path, ca_file=self.ca_file, **kwargs)

    @property
    def admin_password(self) -> str:
        return (self.home / "identity" / "admin-password").read_text().strip()


def environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEAGUE_")}
    return {**env, "LEAGUE_HOME": str(home)}


def league(eco: Eco, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sevenleague.cli", *args], env=environment(home or eco.home),
                          capture_output=True, text=True, timeout=60, check=False)
    eco.stderr.append(done.stderr)
    return done


def client_home(eco: Eco, name: str) -> Path:
    """Another machine's state directory: only the snapshot, pointing at the same eco-system."""
    home = eco.home.parent / name
    home.mkdir(exist_ok=True)
    (home / "ecosystem.json").write_text((eco.home / "ecosystem.json").read_text())
    return home


def session(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / "cli" / "session.json").read_text())
    return data


def keep_session(eco: Eco, home: Path) -> dict[str, Any]:
    data = session(home)
    eco.keep(data["refresh_token"], *(cached["token"] for cached in data["access_tokens"].values()))
    return data


# --- the person at the browser ------------------------------------------------------------------------


def decide(eco: Eco, user_code: str, username: str, password: str, action: str = "approve") -> Response:
    page = eco.request(f"/device?user_code={user_code}")
    assert page.status == 200
    cookie = page.headers["set-cookie"]
    assert "Secure" in cookie  # the issuer is https
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.body.decode())
    assert csrf is not None
    body = urlencode({"csrf_token": csrf.group(1), "user_code": user_code, "username": username,
                      "password": password, "action": action}).encode()
    return eco.request("/device", method="POST", body=body,
                       headers={**FORM, "Cookie": cookie.split(";", 1)[0]})


class LoginProcess:
    """`league login` running, its stdout read line by line as it comes."""

    def __init__(self, eco: Eco, home: Path) -> None:
        self.eco = eco
        self.process = subprocess.Popen([sys.executable, "-m", "sevenleague.cli", "login"],
                                        env=environment(home), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def user_code(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.lines.get(timeout=deadline - time.monotonic())
            self.out.append(line)
            found = USER_CODE.search(line)
            if found:
                self.eco.keep(found.group(1))
                return found.group(1)
        raise AssertionError(f"no user code in {self.out}")

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        code = self.process.wait(timeout)
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.eco.stderr.append(stderr)
        time.sleep(0.1)
        while not self.lines.empty():
            self.out.append(self.lines.get())
        return code, "".join(self.out), stderr


def login(eco: Eco, home: Path, username: str, password: str) -> str:
    running = LoginProcess(eco, home)
    assert decide(eco, running.user_code(), username, password).status == 200
    code, out, stderr = running.finish()
    assert code == 0, stderr
    keep_session(eco, home)
    return out


def verify(eco: Eco, token: str, audience: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(eco.request("/jwks.json").json())
    decoded = jwt.decode(token, keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": eco.issuer},
                          aud={"essential": True, "value": audience},
                          exp={"essential": True}, sub={"essential": True}).validate(decoded.claims)
    return dict(decoded.claims)


def refresh(eco: Eco, refresh_token: str, **params: str) -> Response:
    body = urlencode({"grant_type": "refresh_token", "client_id": "league", "refresh_token": refresh_token,
                      **params}).encode()
    return eco.request("/token", method="POST", body=body, headers=FORM)


@pytest.fixture(scope="module")
def eco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Eco]:
    root = tmp_path_factory.mktemp("login")
    ca = ensure_ca(root / "pki", "demo")
    leaf = issue_leaf(ca, "identity", ["localhost"], ["127.0.0.1"])
    home = root / "home"
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    env = {"LEAGUE_HOME": str(home), "LEAGUE_OIDC_ISSUER": issuer, "LEAGUE_IDENTITY_DEVICE_INTERVAL": "1",
           "LEAGUE_IDENTITY_DEVICE_LIFETIME": str(DEVICE_LIFETIME), "LEAGUE_IDENTITY_LOGIN_RATE": "200/60"}
    with serve_app("sevenleague.identity.service:app", root, port=port, env=env, tls_bundle=leaf.bundle,
                   ca_file=ca.ca_file) as served:
        (home / "ecosystem.json").write_text(json.dumps(
            {"ecosystem": "demo", "ca_file": str(ca.ca_file), "endpoints": {"identity": issuer}}))
        found = Eco(served, home, issuer, ca.ca_file)
        found.keep(found.admin_password)
        yield found


# --- signing in -------------------------------------------------------------------------------------------


def test_login_prints_the_code_and_saves_a_private_session_once_approved(eco):
    out = login(eco, eco.home, "admin", eco.admin_password)
    assert f"open {eco.issuer}/device and enter the code" in out
    assert f"{eco.issuer}/device?user_code=" in out
    assert "logged in as admin (admin)" in out
    path = eco.home / "cli" / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = session(eco.home)
    assert saved["issuer"] == eco.issuer and saved["username"] == "admin"
    assert saved["refresh_expires_at"] > time.time() + 12 * 3600 - 60


def test_token_prints_only_a_token_for_the_service_asked_for(eco):
    done = league(eco, "token", "--audience", "builds")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    eco.keep(token)
    assert done.stdout == token + "\n" and done.stderr == ""
    claims = verify(eco, token, "builds")
    assert claims["preferred_username"] == "admin" and claims["client_id"] == "league"
    assert set(claims["scope"].split()) == {"builds.read", "builds.write", "builds.operate", "builds.admin"}
    again = league(eco, "token", "--audience", "builds")
    assert again.stdout.strip() == token  # cached while it has more than 30 s left
    narrow = league(eco, "token", "-a", "builds", "--scope", "builds.read")
    eco.keep(narrow.stdout.strip())
    assert verify(eco, narrow.stdout.strip(), "builds")["scope"] == "builds.read"
    keep_session(eco, eco.home)


def test_each_refresh_rotates_the_refresh_token_and_a_reused_one_ends_the_sign_in(eco):
    first = keep_session(eco, eco.home)["refresh_token"]
    assert league(eco, "token", "-a", "ledger").returncode == 0
    second = keep_session(eco, eco.home)["refresh_token"]
    assert second != first
    reused = refresh(eco, first, audience="ledger")
    assert reused.status == 400 and reused.json()["error"] == "invalid_grant"
    assert "used before" in reused.json()["error_description"]
    assert refresh(eco, second).json()["error"] == "invalid_grant"  # the whole family is revoked

    done = league(eco, "token", "-a", "audit")
    assert done.returncode == 4 and done.stdout == ""
    assert f"not logged in to the eco-system at {eco.home}" in done.stderr and "league login" in done.stderr
    assert not (eco.home / "cli" / "session.json").exists()
    assert "Traceback" not in done.stderr
    login(eco, eco.home, "admin", eco.admin_password)


def test_refresh_refuses_a_secret_client_and_a_malformed_request_without_spending_the_token(eco):
    current = keep_session(eco, eco.home)["refresh_token"]
    confidential = refresh(eco, current, client_secret="x")
    assert confidential.status == 401 and confidential.json()["error"] == "invalid_client"
    bad_target = refresh(eco, current, audience="../etc")
    assert bad_target.json()["error"] == "invalid_target"
    assert league(eco, "token", "-a", "hello").returncode == 0  # `current` still worked
    keep_session(eco, eco.home)


# --- users ----------------------------------------------------------------------------------------------


def test_user_add_hands_the_password_over_once_on_stdout_or_in_a_private_file(eco, tmp_path):
    added = league(eco, "user", "add", "bob", "--role", "developer", "--name", "Bob Builder")
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    eco.keep(password)
    assert len(password) >= 12 and added.stdout == password + "\n"
    assert "added user bob (developer)" in added.stderr

    target = tmp_path / "carol.password"
    filed = league(eco, "user", "add", "carol", "-r", "viewer", "-r", "operator",
                   "--password-file", str(target))
    assert filed.returncode == 0, filed.stderr
    assert filed.stdout == "" and str(target) in filed.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    eco.keep(target.read_text().strip())
    again = league(eco, "user", "add", "dora", "--password-file", str(target))
    assert again.returncode == 1 and "exists already" in again.stderr

    listed = json.loads(league(eco, "user", "list", "--json").stdout)
    users = {found["username"]: found for found in listed}
    assert users["bob"]["roles"] == ["developer"] and users["bob"]["name"] == "Bob Builder"
    assert users["carol"]["roles"] == ["viewer", "operator"] and "dora" not in users
    table = league(eco, "user", "list").stdout
    assert "bob" in table and "carol" in table and "active" in table

    taken = league(eco, "user", "add", "bob", "--password-file", str(tmp_path / "bob.password"))
    assert taken.returncode == 1 and "exists already" in taken.stderr
    assert not (tmp_path / "bob.password").exists()  # no empty file left behind
    wrong = league(eco, "user", "add", "erin", "--role", "root")
    assert wrong.returncode == 1 and "unknown roles root" in wrong.stderr
    keep_session(eco, eco.home)


def test_a_disabled_users_sign_in_stops_working_and_non_admins_cannot_manage_users(eco):
    added = league(eco, "user", "add", "frank", "--role", "viewer")
    password = added.stdout.strip()
    eco.keep(password)
    franks = client_home(eco, "franks-laptop")
    assert "logged in as frank (viewer)" in login(eco, franks, "frank", password)
    token = league(eco, "token", "-a", "hello", home=franks).stdout.strip()
    eco.keep(token)
    assert verify(eco, token, "hello")["scope"] == "hello.read"
    refused = league(eco, "user", "list", home=franks)
    assert refused.returncode == 1 and "identity.admin" in refused.stderr
    keep_session(eco, franks)

    disabled = league(eco, "user", "disable", "frank")
    assert disabled.returncode == 0 and "disabled frank" in disabled.stdout
    after = league(eco, "token", "-a", "ledger", home=franks)
    assert after.returncode == 4 and "not logged in" in after.stderr
    assert not (franks / "cli" / "session.json").exists()
    assert league(eco, "user", "enable", "frank").returncode == 0
    assert league(eco, "token", "-a", "ledger", home=franks).returncode == 4  # enabling restores no session
    users = {u["username"]: u for u in json.loads(league(eco, "user", "list", "--json").stdout)}
    assert users["frank"]["disabled"] is False


# --- the flow's other endings -----------------------------------------------------------------------------


def test_a_denied_login_says_so_and_saves_nothing(eco):
    home = client_home(eco, "denied")
    running = LoginProcess(eco, home)
    assert decide(eco, running.user_code(), "admin", eco.admin_password, action="deny").status == 200
    code, _, stderr = running.finish()
    assert code == 1 and "denied" in stderr and "Traceback" not in stderr
    assert not (home / "cli" / "session.json").exists()


def test_ctrl_c_ends_the_login_cleanly(eco):
    home = client_home(eco, "interrupted")
    running = LoginProcess(eco, home)
    running.user_code()
    running.process.send_signal(signal.SIGINT)
    code, _, stderr = running.finish()
    assert code == 130 and "login cancelled" in stderr and "Traceback" not in stderr
    assert not (home / "cli" / "session.json").exists()


def test_a_code_nobody_approves_expires_with_a_clear_error(eco):
    home = client_home(eco, "expired")
    running = LoginProcess(eco, home)
    running.user_code()
    code, _, stderr = running.finish(timeout=DEVICE_LIFETIME + 20)
    assert code == 1 and "the code expired before it was approved" in stderr
    assert not (home / "cli" / "session.json").exists()


def test_logout_forgets_the_session_and_revokes_its_sign_in(eco):
    home = client_home(eco, "leaving")
    login(eco, home, "admin", eco.admin_password)
    copied = json.loads((home / "cli" / "session.json").read_text())["refresh_token"]
    eco.keep(copied)
    done = league(eco, "logout", home=home)
    # a copy of the refresh token taken before the logout is worth nothing after it
    from sevenleague.identity.client import IdentityClient, IdentityRefused

    with pytest.raises(IdentityRefused) as refused:
        IdentityClient(eco.issuer, eco.ca_file).refresh(copied, audience="identity")
    assert refused.value.error == "invalid_grant"
    assert done.returncode == 0 and "logged out" in done.stdout
    assert not (home / "cli" / "session.json").exists()
    assert league(eco, "token", home=home).returncode == 4
    assert "was not logged in" in league(eco, "logout", home=home).stdout


def test_without_an_eco_system_the_cli_says_how_to_start_one(eco, tmp_path):
    done = league(eco, "login", home=tmp_path)
    assert done.returncode == 3 and f"no eco-system runs from {tmp_path}" in done.stderr
    assert "league up" in done.stderr and "Traceback" not in done.stderr


def test_no_password_or_token_reaches_the_log_or_the_cli_stderr(eco):
    time.sleep(0.3)  # the kit flushes its log at least every 0.2 s
    log = eco.served.log_path.read_text()
    assert "request" in log and len(eco.secrets) > 10
    assert [secret[:6] + "..." for secret in eco.secrets if secret in log] == []
    stderr = "\n".join(eco.stderr)
    assert [secret[:6] + "..." for secret in eco.secrets if secret in stderr] == []
    assert "Traceback" not in log and '"status":500' not in log
