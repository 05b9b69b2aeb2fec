"""The scan for secrets in logs: it finds what was planted, passes clean logs, never repeats a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sevenleague.testing import secrets
from sevenleague.testing.secrets import (
    SECRETS_ENV,
    find_secrets,
    is_log_file,
    keep_secret,
    kept_secrets,
    recorded_findings,
    scan_before_removal,
)

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1LTEyMyJ9.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
PASSWORD = 'pa"ss wörd/with&odd=chars'


@pytest.fixture
def record(tmp_path, monkeypatch) -> Path:
    """A record of this test's own, so what it keeps stays out of the session's."""
    path = tmp_path / "record" / "secrets.jsonl"
    path.parent.mkdir()
    monkeypatch.setenv(SECRETS_ENV, str(path))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_planted_secret_is_found_by_file_line_and_number_never_by_value(record, tmp_path):
    keep_secret("an-unrelated-secret-value", TOKEN)
    log = write(tmp_path / "run" / "serve-4242.log",
                '{"msg": "request", "path": "/token"}\n{"msg": "oops", "token": "' + TOKEN + '"}\n')
    findings = find_secrets([tmp_path / "run"])
    assert [(f.path, f.line, f.secret) for f in findings] == [(log, 2, 1)]
    shown = str(findings[0]) + json.dumps(findings[0].to_json()) + repr(findings[0])
    assert TOKEN not in shown and TOKEN[:16] not in shown
    assert str(log) in shown and "#1" in shown


def test_clean_logs_pass(record, tmp_path):
    keep_secret(TOKEN, PASSWORD)
    write(tmp_path / "run" / "logs" / "identity.log", '{"msg": "request", "status": 200}\n' * 100)
    write(tmp_path / "run" / "supervisord.log", "INFO spawned: 'identity' with pid 42\n")
    assert find_secrets([tmp_path / "run"]) == []


def test_a_secret_is_found_as_json_or_a_url_would_escape_it(record, tmp_path):
    keep_secret(PASSWORD)
    write(tmp_path / "json" / "a.log", json.dumps({"body": PASSWORD}) + "\n")
    write(tmp_path / "url" / "b.log", "GET /device?password=pa%22ss%20w%C3%B6rd%2Fwith%26odd%3Dchars\n")
    assert len(find_secrets([tmp_path / "json"])) == 1
    assert len(find_secrets([tmp_path / "url"])) == 1


def test_logs_are_known_by_name_or_by_their_directory_other_files_are_not_scanned(record, tmp_path):
    keep_secret(TOKEN)
    for name in ("a.log", "supervisord.log.2", "worker.out", "worker.err", "logs/haproxy", "x/logs/y.txt",
                 "client.secret", "notes.txt"):
        write(tmp_path / "run" / name, TOKEN + "\n")
    found = {f.path.relative_to(tmp_path / "run").as_posix() for f in find_secrets([tmp_path / "run"])}
    assert found == {"a.log", "supervisord.log.2", "worker.out", "worker.err", "logs/haproxy", "x/logs/y.txt"}
    assert not is_log_file(Path("/srv/logs/home/client.secret"), root=Path("/srv/logs/home"))
    named = write(tmp_path / "named.txt", TOKEN)
    assert len(find_secrets([named])) == 1  # a file named explicitly is scanned whatever its name


def test_empty_and_short_values_are_not_kept(record):
    keep_secret("", "short", "1234567")
    assert kept_secrets() == []
    assert not record.exists()


def test_the_record_is_shared_with_subprocesses_and_private(record):
    keep_secret(TOKEN)
    code = "from sevenleague.testing.secrets import keep_secret; keep_secret('kept-by-a-subprocess-123')"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
    assert [kept.value for kept in kept_secrets()] == [TOKEN, "kept-by-a-subprocess-123"]
    assert kept_secrets()[0].kept_by.endswith("test_the_record_is_shared_with_subprocesses_and_private")
    assert record.stat().st_mode & 0o777 == 0o600


def test_without_a_record_the_secrets_are_kept_in_memory(monkeypatch, tmp_path):
    monkeypatch.delenv(SECRETS_ENV, raising=False)
    monkeypatch.setattr(secrets, "_in_memory", [])
    monkeypatch.setattr(secrets, "_findings_in_memory", [])
    keep_secret(TOKEN)
    write(tmp_path / "a.log", TOKEN)
    assert [f.secret for f in scan_before_removal(tmp_path)] == [0]
    assert len(recorded_findings()) == 1


def test_a_scan_before_removal_is_recorded_for_the_session(record, tmp_path):
    keep_secret(TOKEN)
    home = tmp_path / "league-home"
    write(home / "logs" / "identity.log", f"token={TOKEN}\n")
    assert len(scan_before_removal(home)) == 1
    write(home / "logs" / "identity.log", "clean\n")  # what was found stays found
    assert [f.path.name for f in recorded_findings()] == ["identity.log"]


PLUGIN_TEST = '''
from sevenleague.testing.secrets import keep_secret

def test_it(tmp_path):
    keep_secret("{secret}")
    (tmp_path / "service.log").write_text("{logged}\\n")
'''


@pytest.mark.parametrize("leaks", [False, True], ids=["clean", "leaking"])
def test_the_plugin_fails_a_session_whose_logs_hold_a_secret_and_names_the_file(tmp_path, leaks):
    secret = "s3cr3t-" + "x" * 20
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(PLUGIN_TEST).format(secret=secret,
                                                             logged=secret if leaks else "nothing"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "sevenleague.testing.pytest_secrets",
                           "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}", str(test_file)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert secret not in done.stdout + done.stderr
    if leaks:
        assert done.returncode == 1, done.stdout
        assert "1 secrets found in logs" in done.stdout and "service.log:1: secret #0" in done.stdout
        assert "test_inner.py::test_it" in done.stdout  # who kept it
    else:
        assert done.returncode == 0, done.stdout
        assert "secrets found" not in done.stdout
