"""A pytest plugin: a session fails when a log it wrote holds a secret one of its tests used.

Load it with `pytest_plugins = ["sevenleague.testing.pytest_secrets"]` in the top
conftest.py. For the session it sets `LEAGUE_TEST_SECRETS` to a private record outside
pytest's temporary directory (subprocesses inherit it, so what they keep is kept too);
tests and fixtures add to it with `keep_secret`. When the session ends, every log under
pytest's temporary directory for this run is searched, together with what fixtures
found before deleting directories of their own (`scan_before_removal`); any finding
turns the exit status into a failure and is listed by file, line and secret number,
with the test that kept the secret. The record is deleted at the end.

Each pytest invocation is its own session (`make test` runs unit, integration and
performance tests separately): each scans the logs it wrote.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .secrets import SECRETS_ENV, Finding, find_secrets, kept_secrets, log_files, recorded_findings


@dataclass
class _Session:
    directory: Path  # holds the record; made private (0700) by mkdtemp
    previous: str | None  # the variable's value before, e.g. in a pytest run by a test
    findings: list[Finding] = field(default_factory=list)
    secrets: int = 0  # how many were searched for
    logs: int = 0  # how many log files under pytest's directory were searched


_STATE = pytest.StashKey[_Session]()


def pytest_configure(config: pytest.Config) -> None:
    state = _Session(Path(tempfile.mkdtemp(prefix="league-test-secrets-")), os.environ.get(SECRETS_ENV))
    config.stash[_STATE] = state
    os.environ[SECRETS_ENV] = str(state.directory / "secrets.jsonl")


def _basetemp(config: pytest.Config) -> Path | None:
    factory = getattr(config, "_tmp_path_factory", None)  # set by pytest's tmp_path plugin
    if factory is None:
        return None
    basetemp: Path = factory.getbasetemp()
    return basetemp


@pytest.hookimpl(tryfirst=True)  # before any plugin cleans up temporary directories
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    basetemp = _basetemp(session.config)
    findings = sorted({*recorded_findings(), *(find_secrets([basetemp]) if basetemp else [])})
    state.findings = findings
    state.secrets = len(kept_secrets())
    state.logs = sum(1 for _ in log_files([basetemp])) if basetemp else 0
    if findings and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.secrets:
        return
    findings = state.findings
    if not findings:
        terminalreporter.write_line(f"secrets in logs: none of {state.secrets} kept secrets is in the "
                                    f"{state.logs} log files under {_basetemp(config)}")
        return
    kept = kept_secrets()
    terminalreporter.write_sep("=", f"{len(findings)} secrets found in logs", red=True, bold=True)
    for finding in findings:
        kept_by = kept[finding.secret].kept_by if finding.secret < len(kept) else ""
        terminalreporter.write_line(f"{finding}  (kept by {kept_by or 'a fixture'})")
    terminalreporter.write_line("A password, a client secret or a token reached a log: find who wrote that "
                                "line, and log a name or an id instead of the value.")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    if state.previous is not None:
        os.environ[SECRETS_ENV] = state.previous
    else:
        os.environ.pop(SECRETS_ENV, None)
    shutil.rmtree(state.directory, ignore_errors=True)
