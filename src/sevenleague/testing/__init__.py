"""Helpers for tests of the eco-system and of apps built on the kit.

They start real processes on loopback, on free ports, and stop them by pid; nothing here
stands in for the thing under test. Apps made with `league new service` use them too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..kit._tls import client_context
from ._in_process import InProcessThroughput as InProcessThroughput
from ._in_process import throughput_in_process as throughput_in_process

PERF_DIR_ENV = "LEAGUE_PERF_DIR"


# --- ports -----------------------------------------------------------------------------


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ephemeral_port_floor() -> int:
    """The lowest port the kernel hands out for outgoing connections (Linux's default: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_offset(ports: Iterable[int], *, low: int = 10000, high: int | None = None,
                     tries: int = 200) -> int:
    """An offset that moves every one of `ports` onto a free port (for LEAGUE_PORT_OFFSET).

    Every moved port stays below the kernel's ephemeral range: a port free now in that
    range can be taken a moment later as the source port of any outgoing connection
    (an SSH session, a scrape), and the program meant to listen there then fails to bind.
    """
    ports = list(ports)
    high = ephemeral_port_floor() if high is None else high
    if high - max(ports) <= low:
        raise RuntimeError(f"no room below port {high} to move ports up to {max(ports)} by {low} or more")
    for _ in range(tries):
        offset = random.randrange(low, high - max(ports), 10)  # noqa: S311 - not security
        if all(port_free(p + offset) for p in ports):
            return offset
    raise RuntimeError(f"no free offset found for ports {ports}")


# --- HTTP ------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _connection(scheme: str, host: str, port: int | None, timeout: float,
                ca_file: str | Path | None) -> http.client.HTTPConnection:
    if scheme == "https":
        context = client_context(ca_file) if ca_file else ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def http_request(url: str, *, method: str = "GET", headers: Mapping[str, str] | None = None,
                 body: bytes | None = None, timeout: float = 5.0,
                 ca_file: str | Path | None = None) -> Response:
    """One request; an https URL is verified against `ca_file` (the eco-system's CA) when given."""
    parts = urlsplit(url)
    connection = _connection(parts.scheme, parts.hostname or "127.0.0.1", parts.port, timeout, ca_file)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()},
                        response.read())
    finally:
        connection.close()


def wait_for_http(url: str, *, timeout: float = 20.0, status: int = 200,
                  ca_file: str | Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = http_request(url, timeout=1.0, ca_file=ca_file)
            if response.status == status:
                return
            last = f"HTTP {response.status}"
        except OSError as error:
            last = str(error)
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s (last: {last})")


# --- a real server process -----------------------------------------------------------------


@dataclass
class ServedApp:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines the process wrote so far (its log is flushed at least every 0.2 s)."""
        records = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
        return records

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return int(self.process.returncode)


@contextlib.contextmanager
def serve_app(app: str, log_dir: Path, *, port: int | None = None, drain_seconds: float = 0.3,
              env: Mapping[str, str] | None = None, pythonpath: Iterable[Path] = (),
              ready_path: str = "/healthz", ready_timeout: float = 20.0,
              tls_bundle: Path | None = None, ca_file: Path | None = None,
              service: str | None = None) -> Iterator[ServedApp]:
    """Run `app` ("module:attr") with `python -m sevenleague.kit.serve` until the block ends.

    With `tls_bundle` it serves HTTPS only, and readiness is checked against `ca_file`.
    """
    port = port or free_port()
    log_path = log_dir / f"serve-{port}.log"
    environment = dict(os.environ)
    environment.update(env or {})
    extra = os.pathsep.join(str(p) for p in pythonpath)
    if extra:
        environment["PYTHONPATH"] = extra + os.pathsep + environment.get("PYTHONPATH", "")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sevenleague.kit.serve", app, "--port", str(port),
             "--drain-seconds", str(drain_seconds),
             *(["--tls-bundle", str(tls_bundle)] if tls_bundle else []),
             *(["--service", service] if service else [])],
            stdout=log, stderr=subprocess.STDOUT, env=environment,
        )
    scheme = "https" if tls_bundle else "http"
    served = ServedApp(f"{scheme}://127.0.0.1:{port}", port, process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                tail = log_path.read_text().splitlines()[-5:]
                raise RuntimeError(f"{app} exited with {process.returncode} before answering:\n"
                                   + "\n".join(tail))
            try:
                wait_for_http(served.url + ready_path, timeout=0.5, ca_file=ca_file)
                break
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
        yield served
    finally:
        served.stop()


# --- load ------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


_LATENCY_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _LATENCY_UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if not total:
        raise ValueError(f"unexpected wrk output:\n{output}")
    seconds = float(total.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[total.group(3)]
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds,
        requests_per_second=float(rps.group(1)) if rps else 0.0,
        p50_ms=_latency_ms(percentiles["50"]) if "50" in percentiles else 0.0,
        p99_ms=_latency_ms(percentiles["99"]) if "99" in percentiles else 0.0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in socket.groups()) if socket else 0,
    )


def run_wrk(url: str, *, seconds: float = 2.0, connections: int = 16, threads: int = 1,
            cpu: int | None = None, headers: Mapping[str, str] | None = None) -> WrkResult:
    """Load `url` with wrk (Debian's package) and return its figures.

    wrk speaks https too; it does not verify the server's certificate, which a load
    generator need not.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: run `make test`, or `apt-get install wrk`")
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", *extra, url]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    return parse_wrk(done.stdout)


def record_figures(name: str, figures: Mapping[str, Any] | WrkResult, *,
                   gate: Iterable[str] = ()) -> Path:
    """Write a test's measured figures as JSON under $LEAGUE_PERF_DIR (default build/perf).

    `gate` names the figures a build compares with the last passed build of the service
    (see docs/builds.md): only figures stable enough to judge a change by belong there;
    the rest are reported, never gating.
    """
    data = asdict(figures) if isinstance(figures, WrkResult) else dict(figures)
    gated = list(gate)
    unknown = [key for key in gated if not isinstance(data.get(key), int | float)]
    if unknown:
        raise ValueError(f"gate names figures that are not numbers in {name!r}: {unknown}")
    directory = Path(os.environ.get(PERF_DIR_ENV, "build/perf"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    record = {"name": name, "recorded_at": time.time(), **data}
    if gated:
        record["gate"] = gated
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


# --- steady traffic while something happens ---------------------------------------------------


@dataclass
class LoadTally:
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] | None = None
    errors: list[str] | None = None
    served_by: dict[str, int] | None = None
    failed_at: list[float] | None = None  # time.time() of each failure, to place it against events

    def as_figures(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "statuses": self.statuses or {},
                "errors": (self.errors or [])[:20], "served_by": self.served_by or {}}


class SteadyLoad:
    """Clients sending GETs in a loop over keep-alive connections, counting every outcome.

    A request fails when it gets no answer (connection reset, timeout) or an answer that is
    not 2xx. Each client reconnects after a failure, as a browser or an SDK would.
    """

    def __init__(self, url: str, *, clients: int = 4, method: str = "GET", timeout: float = 10.0,
                 pause: float = 0.0, ca_file: str | Path | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        import threading

        self.url = url
        self.ca_file = ca_file
        self.headers = dict(headers or {})
        self.clients = clients
        self.method = method
        self.timeout = timeout
        self.pause = pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.tally = LoadTally(statuses={}, errors=[], served_by={}, failed_at=[])
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadTally:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.tally

    def _count(self, status: int | None, served_by: str | None, error: str | None) -> None:
        tally = self.tally
        assert tally.statuses is not None and tally.errors is not None and tally.served_by is not None
        with self._lock:
            if status is not None:
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if served_by:
                tally.served_by[served_by] = tally.served_by.get(served_by, 0) + 1
            if status is not None and 200 <= status < 300:
                tally.ok += 1
            else:
                tally.failed += 1
                tally.errors.append(error or f"HTTP {status}")
                assert tally.failed_at is not None
                tally.failed_at.append(time.time())

    def _client(self) -> None:
        parts = urlsplit(self.url)
        path = parts.path or "/"
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if connection is None:
                connection = _connection(parts.scheme, parts.hostname or "127.0.0.1", parts.port,
                                         self.timeout, self.ca_file)
            try:
                connection.request(self.method, path, headers=self.headers)
                response = connection.getresponse()
                response.read()
                self._count(response.status, response.getheader("x-served-by"), None)
                if response.getheader("connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                self._count(None, None, f"{type(error).__name__}: {error}")
                if connection is not None:
                    connection.close()
                connection = None
            if self.pause:
                time.sleep(self.pause)
        if connection is not None:
            connection.close()
