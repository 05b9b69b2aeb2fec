"""The secrets a test run handled, and a scan of the logs it wrote for any of them.

A password, a client secret or a token that reaches a log file is a leak: logs are
kept, shipped and read by more people than the secret was meant for. Tests handle
real ones (the first admin's password, tokens from the device flow, client secrets
shown once), so after a test run every log it wrote is searched for every one of them.

- `keep_secret(*values)` records values as secrets. The record is a file named by
  `LEAGUE_TEST_SECRETS` (the pytest plugin, `pytest_secrets`, sets it for the session),
  appended to one line at a time, so a secret kept by a subprocess or by any fixture is
  not lost; without the variable the record is this process's memory. Values shorter
  than `MIN_SECRET_LENGTH` are ignored: a short value is found by chance in any log.
- `find_secrets(paths)` searches log files (recursively under directories) for every
  kept secret, as written and as JSON or a URL would escape it. A `Finding` names the
  file, the line and the secret's number in the record, never the secret: a report of
  a leak must not be a second leak.
- `scan_before_removal(directory)` is for fixtures that delete what they made (an
  eco-system's LEAGUE_HOME outside pytest's temporary directory): it scans first and
  records what it found for the session's report.

Nothing here prints a secret, and the record file is private (0600) and lives outside
the directories that are scanned.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SECRETS_ENV = "LEAGUE_TEST_SECRETS"
MIN_SECRET_LENGTH = 8
FINDINGS_SUFFIX = ".findings"
# supervisord rotates `x.log` to `x.log.1`...; the kit's serve_app writes `serve-PORT.log`.
_ROTATED_LOG = re.compile(r".+\.log\.\d+")
LOG_SUFFIXES = (".log", ".out", ".err")
LOG_DIRECTORY = "logs"

_lock = threading.Lock()
_in_memory: list[tuple[str, str]] = []  # (secret, kept by) when no record file is set
_findings_in_memory: list[Finding] = []


@dataclass(frozen=True)
class KeptSecret:
    value: str
    kept_by: str  # the test that kept it (PYTEST_CURRENT_TEST), or "" outside a test


@dataclass(frozen=True, order=True)
class Finding:
    """A kept secret found in a log file: where, and which one by its number in the record."""

    path: Path
    line: int
    secret: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: secret #{self.secret}"

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "line": self.line, "secret": self.secret}


# --- where things are --------------------------------------------------------------------------


def record_path() -> Path | None:
    """The session's record of secrets, when one is set."""
    value = os.environ.get(SECRETS_ENV, "").strip()
    return Path(value) if value else None


def is_log_file(path: Path, root: Path | None = None) -> bool:
    """A log by its name (`.log`, a rotated `.log.N`, `.out`, `.err`) or by living under a `logs/`
    directory (below `root`, when given: the directories above what is scanned do not count)."""
    name = path.name
    directories = (path.relative_to(root) if root is not None else path).parent.parts
    return name.endswith(LOG_SUFFIXES) or bool(_ROTATED_LOG.fullmatch(name)) or LOG_DIRECTORY in directories


def log_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The log files among `paths`: a file named is scanned whatever its name; directories are walked."""
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.is_file() and not found.is_symlink() and is_log_file(found, path):
                    yield found


# --- the record --------------------------------------------------------------------------------


def _append_line(path: Path, record: dict[str, object]) -> None:
    """One line, one write, O_APPEND: whole lines even when processes keep secrets at the same time."""
    line = (json.dumps(record, ensure_ascii=True) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def _read_lines(path: Path | None) -> list[dict[str, object]]:
    if path is None or not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed process
        if isinstance(record, dict):
            records.append(record)
    return records


def keep_secret(*values: str) -> None:
    """Record `values` as secrets that no log may contain; empty and short ones are ignored."""
    kept_by = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    fresh = [value for value in values if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH]
    if not fresh:
        return
    path = record_path()
    with _lock:
        for value in fresh:
            if path is None:
                _in_memory.append((value, kept_by))
            else:
                _append_line(path, {"secret": value, "kept_by": kept_by})


def kept_secrets() -> list[KeptSecret]:
    """Every secret kept so far, each once, in the order first kept; the index is its number."""
    found: dict[str, str] = {}
    for record in _read_lines(record_path()):
        value, kept_by = record.get("secret"), record.get("kept_by", "")
        if isinstance(value, str) and value not in found:
            found[value] = str(kept_by)
    with _lock:
        for value, kept_by in _in_memory:
            found.setdefault(value, kept_by)
    return [KeptSecret(value, kept_by) for value, kept_by in found.items()]


# --- the scan ----------------------------------------------------------------------------------


def _spellings(secret: str) -> set[bytes]:
    """How a secret reads in a log: as is, escaped in a JSON string, percent-encoded in a URL."""
    return {secret.encode(), json.dumps(secret)[1:-1].encode(), quote(secret, safe="").encode()}


def find_secrets(paths: Iterable[Path], secrets: Sequence[str] | None = None) -> list[Finding]:
    """Every (log file, line, secret number) where a kept secret (or one of `secrets`) appears."""
    values = [kept.value for kept in kept_secrets()] if secrets is None else list(secrets)
    wanted = [(number, _spellings(value)) for number, value in enumerate(values)
              if len(value) >= MIN_SECRET_LENGTH]
    findings: set[Finding] = set()
    if not wanted:
        return []
    for path in log_files(paths):
        try:
            text = path.read_bytes()
        except OSError:
            continue  # removed while we walked, or not ours to read
        for number, spellings in wanted:
            for spelling in spellings:
                start = text.find(spelling)
                while start >= 0:
                    findings.add(Finding(path, text.count(b"\n", 0, start) + 1, number))
                    start = text.find(spelling, start + len(spelling))
    return sorted(findings)


def findings_path() -> Path | None:
    record = record_path()
    return None if record is None else record.with_name(record.name + FINDINGS_SUFFIX)


def record_findings(findings: Iterable[Finding]) -> None:
    """Keep findings for the session's report (a file next to the record, or this process's memory)."""
    path = findings_path()
    with _lock:
        for finding in findings:
            if path is None:
                _findings_in_memory.append(finding)
            else:
                _append_line(path, finding.to_json())


def recorded_findings() -> list[Finding]:
    found = {Finding(Path(str(r["path"])), int(str(r["line"])), int(str(r["secret"])))
             for r in _read_lines(findings_path()) if {"path", "line", "secret"} <= set(r)}
    with _lock:
        found.update(_findings_in_memory)
    return sorted(found)


def scan_before_removal(directory: Path) -> list[Finding]:
    """Scan `directory`'s logs now, before a fixture deletes it, and record what was found."""
    findings = find_secrets([directory])
    record_findings(findings)
    return findings


__all__ = [
    "MIN_SECRET_LENGTH",
    "SECRETS_ENV",
    "Finding",
    "KeptSecret",
    "find_secrets",
    "is_log_file",
    "keep_secret",
    "kept_secrets",
    "log_files",
    "record_findings",
    "recorded_findings",
    "scan_before_removal",
]
