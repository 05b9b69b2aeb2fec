"""The texts of a new service, with __NAME__, __MODULE__ and __VERSION__ to fill in.

Plain text with placeholders rather than a template language: the files stay readable
as the code they become (braces and all), and filling them in cannot fail. This code is
the example users copy, so it is held to more than the rest: ruff-clean under the
project's rules, fully typed, and it must pass its own three kinds of tests as rendered.
"""

from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "__NAME__"
version = "__VERSION__"
description = "__NAME__: a service in the sevenleague eco-system."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["sevenleague", "starlette>=0.37"]

[project.optional-dependencies]
dev = ["pytest>=8", "httpx>=0.27"]

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["src"]
addopts = "--import-mode=importlib"
"""

INIT = '''\
"""__NAME__: a service in the sevenleague eco-system."""

__version__ = "__VERSION__"
'''

APP = '''\
"""Answers "/". Probes, metrics, logs and request ids come from the kit around it."""

from sevenleague import kit
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from . import __version__


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello from __NAME__!\\n")


routes = [Route("/", hello)]
app = kit.instrument(
    Starlette(routes=routes),
    service="__NAME__",
    version=__version__,
)
'''

TEST_UNIT = '''\
"""The app in-process: its answer, and what the kit adds around it."""

import asyncio
import tomllib
from pathlib import Path

import httpx

from __MODULE__ import __version__
from __MODULE__.app import app

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SERVICE = "__NAME__"


async def fetch(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


def get(path: str) -> httpx.Response:
    return asyncio.run(fetch(path))


def test_root_says_hello() -> None:
    response = get("/")
    assert response.status_code == 200
    assert response.text == f"Hello from {SERVICE}!\\n"


def test_every_response_names_the_service_and_a_request_id() -> None:
    response = get("/")
    assert response.headers["x-served-by"].startswith(f"{SERVICE}/")
    assert response.headers["x-request-id"]


def test_probes_and_metrics_come_with_the_kit() -> None:
    assert get("/healthz").status_code == 200
    assert get("/readyz").text == "ready\\n"
    metrics = get("/metrics").text.splitlines()
    build_info = [line for line in metrics if line.startswith("service_build_info{")]
    assert len(build_info) == 1
    assert f'service="{SERVICE}"' in build_info[0]
    assert f'version="{__version__}"' in build_info[0]


def test_the_version_reported_is_the_one_packaged() -> None:
    with PYPROJECT.open("rb") as file:
        assert tomllib.load(file)["project"]["version"] == __version__
'''

TEST_INTEGRATION = '''\
"""The app as a real server process, the way the eco-system runs each instance."""

from pathlib import Path

from sevenleague.testing import http_request, serve_app

SRC = Path(__file__).resolve().parents[2] / "src"
APP = "__MODULE__.app:app"
GREETING = b"Hello from __NAME__!\\n"


def test_a_running_server_answers_and_counts_its_requests(tmp_path: Path) -> None:
    with serve_app(APP, tmp_path, pythonpath=[SRC]) as server:
        answers = [http_request(server.url + "/") for _ in range(3)]
        metrics = http_request(server.url + "/metrics").body.decode()
    assert [answer.body for answer in answers] == [GREETING] * 3
    counted = 'http_requests_total{method="GET",route="/",status_class="2xx"} 3.0'
    assert counted in metrics


def test_every_request_is_one_json_log_line_with_its_request_id(tmp_path: Path) -> None:
    with serve_app(APP, tmp_path, pythonpath=[SRC]) as server:
        http_request(server.url + "/", headers={"X-Request-ID": "first"})
        http_request(server.url + "/", headers={"X-Request-ID": "second"})
        server.stop()
        lines = [line for line in server.log_records() if line.get("msg") == "request"]
    assert [(line["service"], line["request_id"]) for line in lines] == [
        ("__NAME__", "first"),
        ("__NAME__", "second"),
    ]
'''

TEST_PERFORMANCE = '''\
"""Throughput in-process: the figure each build compares with the last passed build.

`throughput_in_process` calls the app directly (no server, no sockets) in rounds, each
followed by a round of a bare Starlette app that sees the same machine at the same
moment; the gated figure is the app's rate relative to that yardstick, which stays
within a few percent on a busy, shared machine where absolute figures do not.
"""

from sevenleague.testing import record_figures, throughput_in_process

from __MODULE__.app import app

GATED = ("relative_requests_per_second",)


def test_every_request_succeeds_and_the_throughput_is_recorded() -> None:
    result = throughput_in_process(app, path="/")
    record_figures("__NAME__-in-process", result.figures(), gate=GATED)
    print(f"\\n__NAME__ in-process: {result.figures()}")
    assert set(result.statuses) == {200}
    assert max(result.rates) > 50
'''

README = """\
# __NAME__

A service in the sevenleague eco-system: a Starlette app wrapped by `sevenleague.kit`,
which gives it health and readiness probes, Prometheus metrics, JSON logs and request
ids. It answers `GET /` with a greeting; make it do what it is for.

    python -m pytest tests/unit tests/integration tests/performance
    PYTHONPATH=src python -m sevenleague.kit.serve __MODULE__.app:app --port 8100

Pushing to the eco-system's git server builds it: tests, wheel, .deb and docs.
[docs/index.md](docs/index.md) says more.
"""

DOCS_INDEX = """\
# __NAME__

## What it does

`__NAME__` answers `GET /` with a greeting. Replace this paragraph with what it is for:
who calls it, what it answers, what it depends on.

Around the app, `sevenleague.kit` adds what every service in the eco-system has:

- `/healthz`: the process is alive;
- `/readyz`: ready for traffic (503 while starting, and while draining after SIGTERM);
- `/metrics`: Prometheus metrics, among them `http_requests_total`,
  `http_request_duration_seconds` and `service_build_info`.

Every response carries `X-Request-ID` (the caller's, or a new one) and `X-Served-By`,
and every request is one JSON line on stdout.

## Run it

It needs Python 3.11 or newer and an environment where `sevenleague` is installed
(league's own `.venv`, for one); `pip install -e '.[dev]'` adds what the tests use.

    PYTHONPATH=src python -m sevenleague.kit.serve __MODULE__.app:app --port 8100
    curl -i http://127.0.0.1:8100/

SIGTERM drains: `/readyz` turns 503 at once, requests are still answered for
`--drain-seconds`, then the server stops.

## Test it

Three kinds, each runnable on its own (the build runs them that way), from this
directory; pytest finds the code in `src/` by itself:

    python -m pytest tests/unit          # in-process, through httpx
    python -m pytest tests/integration   # a real server process on a free port
    python -m pytest tests/performance   # throughput in-process, recorded in build/perf/

The performance test gates one figure, `relative_requests_per_second`: the build fails
when it drops by more than 15% from the last passed build. Wall-clock throughput is no
good for that on a shared machine, where neighbours can halve the CPU's speed for tens
of seconds; so the app is measured in turns with a bare Starlette app on the same
machine at the same moments, and the figure is the app's throughput relative to that
yardstick's. `requests_per_second` is recorded too, for reading, not for gating. A load
test through a real server is a fine addition; record its figures without `gate`.

## Build and ship it

    python -m pip wheel --no-deps -w dist .

Pushing to the eco-system's git server runs the same pipeline as for every service:
the three kinds of tests, the performance comparison, the wheel, the .deb and these
docs.

## Behind the edge

`league new service` printed the `[services.__NAME__]` entry for `ecosystem.toml`, with
`route = "/__NAME__"`. The edge passes the path on unchanged, so a request for
`/__NAME__/x` reaches the app as `/__NAME__/x`: give the app's routes that prefix, or
take `route = "/"` when no other service has it.

## Layout

- `src/__MODULE__/app.py`: the app;
- `tests/unit/`: in-process tests;
- `tests/integration/`: tests against a real server process;
- `tests/performance/`: the gated throughput figure;
- `docs/`: this page.
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
.pytest_cache/
.venv/
build/
dist/
"""
