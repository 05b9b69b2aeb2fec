"""The deploy service: releases, rolling deployments, rollbacks, promotions, locks and audit over HTTP.

A platform service like the others: built with `kit`, run by `python -m
sevenleague.kit.serve sevenleague.deploy.service:app`, its SQLite database under
`$LEAGUE_HOME/deploy`. `league deploy`, `rollback`, `promote`, `releases` and `audit`
all go through this API. A deployment runs inside the service, so closing the terminal
that asked for it neither stops it nor leaves it half done; the CLI only follows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__, kit
from ..catalog._model import NAME_PATTERN
from ..errors import LeagueError
from ..kit.api import API_EXCEPTION_HANDLERS, api_schemas, openapi_route, problem
from ._certificates import LONGEST_INTERVAL, enrol_node_exporters, push_certificates, sync_interval
from ._deployer import Conflict, Deployer, GatesFailed, NotFound
from ._store import DeployStore, LockHeld

HOME_ENV = "LEAGUE_HOME"
VERSION_PATTERN = r"^[0-9][A-Za-z0-9.+~:-]{0,126}$"
SNAPSHOT_POLL = 2.0  # seconds between looks at the snapshot `league up` writes

schemas = api_schemas("sevenleague deploy", __version__)
log = logging.getLogger("sevenleague.deploy")


class _State:
    store: DeployStore
    deployer: Deployer
    calls: kit.ServiceClient


state = _State()


def _actor(request: Request) -> str:
    identity = getattr(request.state, "identity", None)
    if identity is None:
        return "anonymous"
    return str(identity.name or identity.subject)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body: Any = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as error:
        raise BadRequest(f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


class BadRequest(Exception):
    pass


def _name(body: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not re.fullmatch(NAME_PATTERN, value):
        raise BadRequest(f"{key} must be a name (lowercase letters, digits and '-'), got {value!r}")
    return value


def _version(body: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not re.fullmatch(VERSION_PATTERN, value):
        raise BadRequest(f"{key} must be a Debian version such as 0.1.0-12, got {value!r}")
    return value


def _filters(request: Request, *, service_required: bool) -> tuple[str | None, str | None]:
    """The `service` and `environment` query parameters, each a name when given."""
    return (_name(request.query_params, "service", optional=not service_required),
            _name(request.query_params, "environment", optional=True))


def _after(request: Request) -> int:
    raw = request.query_params.get("after", "0")
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"after must be a whole number, got {raw!r}")
    return int(raw)


def _answer_error(error: Exception) -> Response:
    if isinstance(error, BadRequest):
        return problem(400, str(error))
    if isinstance(error, LockHeld):
        lock = error.lock
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(lock.since))
        return JSONResponse({"error": f"{lock.service} in {lock.environment} is being deployed by "
                                      f"{lock.holder} (deployment {lock.deployment_id}) since {since}",
                             "hint": "wait for it (`--wait`), or follow it with `league releases`",
                             "lock": lock.to_json()}, status_code=409)
    if isinstance(error, GatesFailed):
        return JSONResponse({"error": str(error), "gates": [r.to_json() for r in error.results]},
                            status_code=412)
    if isinstance(error, NotFound):
        return problem(404, error.message, error.hint or "")
    if isinstance(error, Conflict):
        return problem(409, error.message, error.hint or "")
    if isinstance(error, LeagueError):
        return problem(503, error.message, error.hint or "")
    raise error


async def create_deployment(request: Request) -> Response:
    """
    summary: Roll a version of a service out to an environment.
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [service, environment, version]
            properties:
              service: {type: string}
              environment: {type: string}
              version: {type: string}
    responses:
      202: {description: the deployment, started}
      400: {description: the body is malformed}
      404: {description: no such service or environment, or no instance of it there}
      409: {description: another deployment holds the lock; the answer names who and since when}
    """
    try:
        body = await _body(request)
        service, environment = _name(body, "service"), _name(body, "environment")
        version = _version(body, "version")
        assert service and environment and version
        deployment = await state.deployer.deploy(service, environment, version, _actor(request))
    except Exception as error:
        return _answer_error(error)
    return JSONResponse(state.store.get(deployment), status_code=202)


async def create_rollback(request: Request) -> Response:
    """
    summary: Put the previous release (or a named one) back on every instance of an environment.
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [service, environment]
            properties:
              service: {type: string}
              environment: {type: string}
              to: {type: string, description: "version to return to (default: the one before)"}
    responses:
      202: {description: the rollback, started}
      400: {description: the body is malformed}
      404: {description: no such service or environment}
      409: {description: locked, or nothing to roll back to}
    """
    try:
        body = await _body(request)
        service, environment = _name(body, "service"), _name(body, "environment")
        to = _version(body, "to", optional=True)
        assert service and environment
        deployment = await state.deployer.rollback(service, environment, to, _actor(request))
    except Exception as error:
        return _answer_error(error)
    return JSONResponse(state.store.get(deployment), status_code=202)


async def create_promotion(request: Request) -> Response:
    """
    summary: Deploy to an environment exactly the release another runs, when every gate holds.
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [service, from, to]
            properties:
              service: {type: string}
              from: {type: string}
              to: {type: string}
    responses:
      202: {description: "the promotion, started, with the gates it passed"}
      400: {description: the body is malformed}
      404: {description: no such service or environment}
      409: {description: locked}
      412: {description: "a gate failed; the answer names it"}
    """
    try:
        body = await _body(request)
        service, source, target = _name(body, "service"), _name(body, "from"), _name(body, "to")
        assert service and source and target
        deployment, gates = await state.deployer.promote(service, source, target, _actor(request))
    except Exception as error:
        return _answer_error(error)
    return JSONResponse({**(state.store.get(deployment) or {}), "gates": [g.to_json() for g in gates]},
                        status_code=202)


async def list_deployments(request: Request) -> Response:
    """
    summary: Deployments of a service, newest first.
    parameters:
      - {name: service, in: query, required: true, schema: {type: string}}
      - {name: environment, in: query, required: false, schema: {type: string}}
    responses:
      200: {description: "{deployments: [...]}"}
      400: {description: no or a malformed service}
    """
    try:
        service, environment = _filters(request, service_required=True)
    except BadRequest as error:
        return problem(400, str(error))
    assert service
    return JSONResponse({"deployments": state.store.history(service, environment)})


async def show_deployment(request: Request) -> Response:
    """
    summary: One deployment and its steps (after a position, to follow it).
    parameters:
      - {name: after, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: the deployment with its steps}
      404: {description: no such deployment}
    """
    deployment = state.store.get(int(request.path_params["deployment_id"]))
    if deployment is None:
        return problem(404, f"no deployment {request.path_params['deployment_id']}")
    try:
        after = _after(request)
    except BadRequest as error:
        return problem(400, str(error))
    return JSONResponse({**deployment, "steps": state.store.steps(deployment["id"], after)})


async def list_releases(request: Request) -> Response:
    """
    summary: What each instance of a service runs, and the deployments that brought it.
    parameters:
      - {name: service, in: query, required: true, schema: {type: string}}
      - {name: environment, in: query, required: false, schema: {type: string}}
    responses:
      200: {description: "{service, instances: [...], deployments: [...]}"}
      400: {description: no or a malformed service}
    """
    try:
        service, environment = _filters(request, service_required=True)
    except BadRequest as error:
        return problem(400, str(error))
    assert service
    try:
        ctx = state.deployer.context()
    except LeagueError as error:
        return problem(503, error.message, error.hint or "")
    versions = state.store.versions(service)
    instances = [
        {"instance": i.name, "host": i.host, "environment": ctx.catalog.environment_of(i.host),
         "version": versions.get(i.name, {}).get("version", ""),
         "since": versions.get(i.name, {}).get("since")}
        for i in ctx.catalog.instances_of(service)
        if environment is None or ctx.catalog.environment_of(i.host) == environment]
    return JSONResponse({"service": service, "instances": instances,
                         "deployments": state.store.history(service, environment)})


async def audit_log(request: Request) -> Response:
    """
    summary: The append-only audit log, oldest first.
    parameters:
      - {name: service, in: query, required: false, schema: {type: string}}
      - {name: environment, in: query, required: false, schema: {type: string}}
      - {name: after, in: query, required: false, schema: {type: integer, minimum: 0}}
    responses:
      200: {description: "{entries: [...]}"}
      400: {description: a malformed filter}
    """
    try:
        service, environment = _filters(request, service_required=False)
        after = _after(request)
    except BadRequest as error:
        return problem(400, str(error))
    return JSONResponse({"entries": state.store.audit_log(service=service, environment=environment,
                                                          after=after)})


async def list_locks(request: Request) -> Response:
    """
    summary: The deploy locks held now.
    responses:
      200: {description: "{locks: [...]}"}
    """
    return JSONResponse({"locks": [lock.to_json() for lock in state.store.locks()]})


async def sync_certificates(request: Request) -> Response:
    """
    summary: Copy renewed certificates to the ssh hosts and enrol their node exporters now (a timer does too).
    responses:
      200: {description: "{copied: {host: [instance, ...]}, node_exporters: {host: [what was done, ...]}}"}
      503: {description: the eco-system's snapshot cannot be read}
    """
    try:
        copied, exporters = await _carry_to_hosts(state.deployer.context())
    except LeagueError as error:
        return problem(503, error.message, error.hint or "")
    return JSONResponse({"copied": copied, "node_exporters": exporters})


async def _carry_to_hosts(ctx: Any) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """One round: renewed leaves to the instances on ssh hosts, and each ssh host's node exporter."""
    versions = {row["instance"]: row for row in state.store.all_versions()}
    copied, exporters = await asyncio.gather(push_certificates(ctx, versions), enrol_node_exporters(ctx))
    return copied, exporters


def _snapshot_stamp() -> int | None:
    try:
        return state.deployer.layout.snapshot.stat().st_mtime_ns
    except FileNotFoundError:
        return None


async def _keep_certificates_fresh() -> None:
    """The timer behind `sync_certificates`: a round as soon as `league up` has written the
    snapshot (after it started this service, so not at once), again whenever `league up`
    changes it (a host added), and every `sync_interval` in between. A failed round is logged
    and the next one tries again."""
    seen: int | None = None
    due = 0.0
    while True:
        stamp = _snapshot_stamp()
        if stamp is not None and (stamp != seen or time.monotonic() >= due):
            seen, lifetime = stamp, LONGEST_INTERVAL * 6
            try:
                ctx = state.deployer.context()
                lifetime = ctx.catalog.spec.pki.leaf_lifetime
                await _carry_to_hosts(ctx)
            except LeagueError as error:
                log.warning("carrying certificates to the hosts failed: %s", " ".join(error.lines()))
            except Exception:  # the loop must outlive any one round
                log.exception("carrying certificates to the hosts failed")
            due = time.monotonic() + sync_interval(lifetime)
        await asyncio.sleep(SNAPSHOT_POLL)


async def _find_build(service: str, version: str) -> Mapping[str, Any] | None:
    """The build that published `version` of `service`, asked of the build service with our own account."""
    answer = await state.calls.as_service().get("builds", f"/api/builds?service={service}&limit=500",
                                                  scopes="builds.read")
    if not answer.ok:
        raise LeagueError(f"the build service answered {answer.status} when asked for {service}'s builds")
    for build in answer.json().get("builds", []):
        if (build.get("published") or {}).get("version") == version:
            return dict(build)
    return None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    home = os.environ.get(HOME_ENV)
    if not home:
        raise RuntimeError(f"{HOME_ENV} is not set: the deploy service keeps its data under it")
    root = Path(home).absolute()
    state.store = DeployStore(root / "deploy" / "deploy.db")
    state.store.recover()
    state.calls = kit.ServiceClient.from_environment("deploy")
    state.deployer = Deployer(root, state.store, _find_build)
    certificates = asyncio.create_task(_keep_certificates_fresh())
    try:
        yield
    finally:
        certificates.cancel()
        for task in list(state.deployer.tasks):
            task.cancel()
        state.store.close()


routes = [
    Route("/api/deployments", list_deployments, methods=["GET"]),
    Route("/api/deployments", create_deployment, methods=["POST"]),
    Route("/api/deployments/{deployment_id:int}", show_deployment, methods=["GET"]),
    Route("/api/rollbacks", create_rollback, methods=["POST"]),
    Route("/api/promotions", create_promotion, methods=["POST"]),
    Route("/api/releases", list_releases, methods=["GET"]),
    Route("/api/audit", audit_log, methods=["GET"]),
    Route("/api/locks", list_locks, methods=["GET"]),
    Route("/api/certificates", sync_certificates, methods=["POST"]),
    openapi_route(schemas),
]

# Reading is for anyone the identity service lets read deployments; changing what runs
# is `write` (a developer deploys and rolls back), moving a release towards production
# is `operate`.
ACCESS: dict[str, kit.Access] = {
    "/api/deployments": "deploy.read",
    "POST /api/deployments": "deploy.write",
    "/api/deployments/{deployment_id:int}": "deploy.read",
    "POST /api/rollbacks": "deploy.write",
    "POST /api/promotions": "deploy.operate",
    "/api/releases": "deploy.read",
    "/api/audit": "deploy.read",
    "/api/locks": "deploy.read",
    "POST /api/certificates": "deploy.operate",
    "/openapi.json": kit.PUBLIC,
}

schemas.declare_access(ACCESS)
app = kit.instrument(Starlette(routes=routes, lifespan=lifespan, exception_handlers=API_EXCEPTION_HANDLERS),
                     service="deploy", version=__version__, access=ACCESS)

__all__ = ["app"]
