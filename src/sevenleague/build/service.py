"""The build service: queue, builds, logs and artifacts over HTTP; the apt repository too.

A platform service like any app: built with `kit`, run by `python -m
sevenleague.kit.serve sevenleague.build.service:app`, its state under `$LEAGUE_HOME`
(SQLite database, artifacts, the served apt repository). The git hook, the CLI and
later the console all go through this API; nothing else opens its database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__, kit
from ..catalog._model import NAME_PATTERN
from ..kit.api import API_EXCEPTION_HANDLERS, api_schemas, openapi_route, problem
from ._apt_repo import apt_static_app
from ._paths import BuildPaths
from ._settings import read_settings
from ._store import STATES, BuildStore
from ._worker import BuildWorker, log_slice

HOME_ENV = "LEAGUE_HOME"

schemas = api_schemas("sevenleague builds", __version__)


class _State:
    paths: BuildPaths
    store: BuildStore
    worker: BuildWorker


state = _State()


def _build_id(request: Request) -> int:
    return int(request.path_params["build_id"])


async def list_builds(request: Request) -> Response:
    """
    summary: Builds, newest first.
    parameters:
      - {name: service, in: query, required: false, schema: {type: string}}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 500}}
    responses:
      200: {description: "{builds: [build, ...]}"}
      400: {description: a parameter is malformed}
    """
    service = request.query_params.get("service") or None
    raw_limit = request.query_params.get("limit", "50")
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= 500:
        return problem(400, f"limit={raw_limit!r} must be a whole number from 1 to 500")
    builds = state.store.list(service, int(raw_limit))
    return JSONResponse({"builds": [b.to_json() for b in builds]})


def _resolve(repo: Path, ref: str) -> str:
    argv = ["git", "--git-dir", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return done.stdout.strip() if done.returncode == 0 else ""


async def queue_build(request: Request) -> Response:
    """
    summary: Queue a build of a commit of a service's repository.
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [service]
            properties:
              service: {type: string}
              ref: {type: string, description: "branch, tag or commit (default HEAD)"}
              requested_by: {type: string}
    responses:
      201: {description: the queued build}
      400: {description: the body is malformed}
      404: {description: no repository or no such ref}
    """
    try:
        body: Any = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as error:
        return problem(400, f"the body is not JSON: {error}")
    if not isinstance(body, dict):
        return problem(400, "the body must be a JSON object", 'e.g. {"service": "hello", "ref": "main"}')
    service, ref, by = body.get("service"), body.get("ref") or "HEAD", body.get("requested_by", "")
    if not isinstance(service, str) or not service:
        return problem(400, "service is required", 'e.g. {"service": "hello"}')
    if not re.fullmatch(NAME_PATTERN, service):
        return problem(400, f"{service!r} is not a service name", "lowercase letters, digits and '-'")
    if not isinstance(ref, str) or not isinstance(by, str) or ref.startswith("-"):
        return problem(400, "ref and requested_by must be strings (and ref not an option)")
    repo = state.paths.repos / f"{service}.git"
    if not repo.is_dir():
        return problem(404, f"no repository for {service!r}", f"league repo create {service}")
    commit = _resolve(repo, ref)
    if not commit:
        return problem(404, f"{ref!r} is not a commit in {service}'s repository",
                        "push it first, or name a branch, tag or commit that exists")
    build = state.store.enqueue(service=service, repo=str(repo), ref=ref, commit=commit, requested_by=by)
    state.worker.wake()
    return JSONResponse(build.to_json(), status_code=201)


async def show_build(request: Request) -> Response:
    """
    summary: One build with its steps and record.
    responses:
      200: {description: the build}
      404: {description: no such build}
    """
    build = state.store.find(_build_id(request))
    if build is None:
        return problem(404, f"no build {_build_id(request)}", "league builds lists them")
    return JSONResponse(build.to_json())


async def build_log(request: Request) -> Response:
    """
    summary: The build's log from a byte offset; X-Next-Offset says where to go on.
    parameters:
      - {name: offset, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: log text}
      400: {description: bad offset}
      404: {description: no such build}
    """
    build = state.store.find(_build_id(request))
    if build is None:
        return problem(404, f"no build {_build_id(request)}", "league builds lists them")
    raw = request.query_params.get("offset", "0")
    if not (raw.isascii() and raw.isdigit()):
        return problem(400, f"offset={raw!r} must be a whole number of bytes")
    text, next_offset = log_slice(Path(build.record.get("log", "/nonexistent")), int(raw))
    return PlainTextResponse(text, headers={"X-Next-Offset": str(next_offset), "X-Build-State": build.state})


async def cancel_build(request: Request) -> Response:
    """
    summary: Cancel a queued or running build.
    responses:
      200: {description: "the build, cancelled"}
      404: {description: no such build}
      409: {description: the build had already finished}
    """
    build = state.store.find(_build_id(request))
    if build is None:
        return problem(404, f"no build {_build_id(request)}")
    if not state.worker.cancel(build.id):
        return problem(409, f"build {build.id} already {build.state}")
    return JSONResponse(state.store.get(build.id).to_json())


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    home = os.environ.get(HOME_ENV)
    if not home:
        raise RuntimeError(f"{HOME_ENV} is not set: the build service keeps its data under it")
    state.paths = BuildPaths.under(Path(home).absolute())
    state.paths.artifacts.mkdir(parents=True, exist_ok=True)
    state.paths.apt.mkdir(parents=True, exist_ok=True)
    state.store = BuildStore(state.paths.database)
    workers = int(read_settings(state.paths.settings).get("workers", 1))
    state.worker = BuildWorker(state.paths, state.store, workers)
    state.worker.start()
    try:
        yield
    finally:
        state.worker.stop()
        state.store.close()


class _LazyStatic:
    """Static files under a directory only known once the lifespan has read $LEAGUE_HOME."""

    def __init__(self, which: str) -> None:
        self.which = which
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            self.app = (apt_static_app(state.paths.apt) if self.which == "apt"
                        else StaticFiles(directory=state.paths.artifacts, html=True, check_dir=False))
        await self.app(scope, receive, send)


routes = [
    Route("/api/builds", list_builds, methods=["GET"]),
    Route("/api/builds", queue_build, methods=["POST"]),
    Route("/api/builds/{build_id:int}", show_build, methods=["GET"]),
    Route("/api/builds/{build_id:int}/log", build_log, methods=["GET"]),
    Route("/api/builds/{build_id:int}/cancel", cancel_build, methods=["POST"]),
    openapi_route(schemas),
    Mount("/apt", app=_LazyStatic("apt")),
    Mount("/artifacts", app=_LazyStatic("artifacts")),
]

# The apt repository is public: apt on every host fetches it without a token, and what it
# serves is signed. Everything else needs a token for the build service.
ACCESS: dict[str, kit.Access] = {
    "/api/builds": "builds.read",
    "POST /api/builds": "builds.write",
    "/api/builds/{build_id:int}": "builds.read",
    "/api/builds/{build_id:int}/log": "builds.read",
    "/api/builds/{build_id:int}/cancel": "builds.operate",
    "/openapi.json": kit.PUBLIC,
    "/apt": kit.PUBLIC,
    "/artifacts": "builds.read",
}

schemas.declare_access(ACCESS)
app = kit.instrument(Starlette(routes=routes, lifespan=lifespan, exception_handlers=API_EXCEPTION_HANDLERS),
                     service="builds", version=__version__, access=ACCESS)

__all__ = ["STATES", "app"]
