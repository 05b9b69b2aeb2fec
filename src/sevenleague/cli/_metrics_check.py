"""`league metrics check [FILE|URL ...]`: is what a process serves registered and well named?

Each source is a Prometheus text exposition: a file, `-` for stdin, or a process'
`/metrics` over HTTPS, verified against the eco-system's CA like every other command's
call. Kit processes answer /metrics only to a bearer token with scope SERVICE.metrics;
`--token-file` names one (Prometheus' own are in .league/credentials/prometheus/).

One line per problem on stdout, `SOURCE: METRIC: what is wrong`, a count on stderr, and
exit 1 when there is one.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console

from ..errors import LeagueError, UsageError

TEXT_FORMAT = "text/plain; version=0.0.4"  # the format the check reads, not OpenMetrics
FETCH_TIMEOUT = 10.0


def _default_ca_file() -> Path | None:
    from ..ecosystem._layout import StateLayout, state_home

    ca_file = StateLayout(state_home()).ca_file
    return ca_file if ca_file.exists() else None


def fetch_exposition(url: str, *, ca_file: Path | None, token: str | None) -> str:
    """GET `url` as Prometheus text, the TLS verified against `ca_file` (the eco-system's CA)."""
    from ..kit._tls import client_context

    headers = {"Accept": TEXT_FORMAT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s), checked by the caller
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT,  # noqa: S310
                                    context=client_context(ca_file)) as response:
            body: bytes = response.read()
            return body.decode()
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise LeagueError(f"{url} refused the scrape ({error.code})",
                              hint="a kit process' /metrics needs a token with scope SERVICE.metrics: "
                                   "--token-file .league/credentials/prometheus/SERVICE.token") from None
        raise LeagueError(f"{url} answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise LeagueError(f"{url} does not answer ({reason})",
                          hint="is it up? `league status`; --ca-file names the CA if not .league/pki/ca.pem"
                          ) from None


def read_exposition(source: str, *, ca_file: Path | None, token: str | None) -> str:
    """The text of one source: `-` (stdin), an http(s) URL, or a file."""
    if source == "-":
        return sys.stdin.read()
    if source.startswith(("https://", "http://")):
        return fetch_exposition(source, ca_file=ca_file, token=token)
    try:
        return Path(source).read_text()
    except OSError as error:
        raise UsageError(f"{source}: cannot be read ({error.strerror or error})") from None


def _read_token(token_file: Path | None) -> str | None:
    if token_file is None:
        return None
    try:
        return token_file.read_text().strip()
    except OSError as error:
        raise UsageError(f"--token-file {token_file}: cannot be read ({error.strerror or error})") from None


def run_metrics_check(sources: list[str], console: Console, *, token_file: Path | None = None,
                      ca_file: Path | None = None) -> int:
    from ..telemetry.metric_check import check_metrics

    token = _read_token(token_file)
    ca = ca_file if ca_file is not None else _default_ca_file()
    families = problems = 0
    for source in sources:
        report = check_metrics(read_exposition(source, ca_file=ca, token=token))
        families += len(report.families)
        problems += len(report.problems)
        for problem in report.problems:
            console.print(f"{source}: {problem.line()}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        print(f"league: {problems} problems in {families} metric families", file=sys.stderr)
        return 1
    console.print(f"{families} metric families checked, all registered and well named", markup=False)
    return 0
