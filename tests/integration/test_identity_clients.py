"""The service accounts the eco-system wants (LEAGUE_IDENTITY_CLIENTS), across real restarts.

The identity service is started, stopped and started again on one `LEAGUE_HOME`; each
time the file says what should exist, and a client-credentials request with the secret
from the handed-over file shows what does.
"""

from __future__ import annotations

import base64
import json
import stat
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlencode

import pytest

from sevenleague.testing import Response, ServedApp, free_port, http_request, serve_app
from sevenleague.testing.secrets import keep_secret

pytestmark = pytest.mark.integration


def start(tmp_path: Path, clients: Path) -> AbstractContextManager[ServedApp]:
    port = free_port()
    env = {"LEAGUE_HOME": str(tmp_path / "home"), "LEAGUE_OIDC_ISSUER": f"http://127.0.0.1:{port}",
           "LEAGUE_IDENTITY_CLIENTS": str(clients)}
    return serve_app("sevenleague.identity.service:app", tmp_path, port=port, env=env)


def client_token(url: str, client_id: str, secret: str, audience: str) -> Response:
    keep_secret(secret)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    answer = http_request(url + "/token", method="POST",
                          body=urlencode({"grant_type": "client_credentials", "audience": audience}).encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded",
                                   "Authorization": f"Basic {basic}"})
    if answer.status == 200:
        keep_secret(answer.json()["access_token"])
    return answer


def want(path: Path, *clients: dict[str, object]) -> None:
    path.write_text(json.dumps({"clients": list(clients)}))


def test_wanted_accounts_are_made_updated_and_given_a_new_secret_when_theirs_is_gone(tmp_path):
    clients = tmp_path / "clients.json"
    secret_file = tmp_path / "home" / "identity" / "clients" / "hello.secret"
    want(clients, {"name": "hello", "audiences": ["ledger"], "scopes": ["ledger.read"]})
    with start(tmp_path, clients) as served:
        secret = secret_file.read_text().strip()
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
        answer = client_token(served.url, "hello", secret, "ledger")
        assert answer.status == 200 and answer.json()["scope"] == "ledger.read"
        assert client_token(served.url, "hello", secret, "audit").status == 400
        log = served.log_path.read_text()

    want(clients, {"name": "hello", "audiences": ["ledger", "audit"],
                   "scopes": ["ledger.read", "audit.write"]})
    with start(tmp_path, clients) as served:
        assert secret_file.read_text().strip() == secret  # kept
        answer = client_token(served.url, "hello", secret, "audit")
        assert answer.status == 200 and answer.json()["scope"] == "ledger.read audit.write"
        log += served.log_path.read_text()

    secret_file.unlink()
    with start(tmp_path, clients) as served:
        renewed = secret_file.read_text().strip()
        assert renewed != secret
        assert client_token(served.url, "hello", secret, "ledger").status == 401
        assert client_token(served.url, "hello", renewed, "ledger").status == 200
        log += served.log_path.read_text()

    assert "made hello" in log and "updated hello" in log and "new secret for hello" in log
    assert secret not in log and renewed not in log


def test_a_wrong_wanted_clients_file_stops_the_start_naming_the_file(tmp_path):
    clients = tmp_path / "clients.json"
    want(clients, {"name": "hello", "audiences": "ledger"})
    with pytest.raises(RuntimeError, match="exited") as caught, start(tmp_path, clients):
        pass
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert f"{clients}: clients[0]: audiences must be a list of strings" in log + str(caught.value)
    assert not (tmp_path / "home" / "identity" / "identity.sqlite3").exists()  # nothing was made
