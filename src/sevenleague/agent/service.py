"""The host agent: ships this machine's program logs to the logs service, and says which programs run.

One per machine, a platform service like the others: built with `kit`, run by supervisord
as program `agent` (`python -m sevenleague.kit.serve sevenleague.agent.service:app`). Its
lifespan reads the settings (a wrong one stops it at startup), loads the checkpoint and
starts the pipeline (read, buffer, ship, checkpoint); shutting down ships what it can for
a moment and writes the checkpoint. It follows supervisord's log files by default, or, with
`LEAGUE_AGENT_SOURCE=journal`, a systemd journal: the one of the host it runs on, or another
host's over ssh (`LEAGUE_AGENT_JOURNAL_COMMAND`, how `league up` follows each ssh host).

Its /metrics carries, besides the kit's, the agent's own counters and supervisord's view of
every program (`sevenleague_process_up`, `sevenleague_process_start_time_seconds`).
GET /api/status says per source how far it has read and how far the logs service
acknowledged, how much is buffered, and the last error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__, kit
from ..kit.api import API_EXCEPTION_HANDLERS, api_schemas, openapi_route, problem
from ._checkpoint import CheckpointFile, CheckpointUnreadable
from ._follow import followers
from ._journal import JOURNAL_KEY, JournalPosition, JournalSource
from ._metrics import AgentCollector, AgentReading
from ._pipeline import Answer, Deliver, Pipeline
from ._processes import ProgramState, SupervisorUnavailable, read_program_states
from ._settings import AgentError, AgentSettings
from ._sources import FileSource, Source, origin_of

SERVICE = "agent"
LOGS_SERVICE = "logs"
INGEST_PATH = "/api/records"
INGEST_SCOPES = ("logs.write",)
SHIP_TIMEOUT = 15.0  # seconds for one batch; a megabyte on loopback takes milliseconds
STOP_GRACE = 2.0  # seconds to ship what is buffered when stopping
SUPERVISOR_POLL_SECONDS = 2.0

schemas = api_schemas("sevenleague agent", __version__)
log = logging.getLogger("sevenleague.agent")


class _State:
    settings: AgentSettings | None = None
    pipeline: Pipeline | None = None
    processes: list[ProgramState] | None = None
    supervisor_error: str | None = None


state = _State()


def _reading() -> AgentReading | None:
    pipeline, settings = state.pipeline, state.settings
    if pipeline is None or settings is None:
        return None
    counters = pipeline.counters
    return AgentReading(host=settings.host, records_read=counters.records_read,
                        records_shipped=counters.records_shipped, records_buffered=len(pipeline.buffer),
                        ship_failures=counters.ship_failures, last_shipped=counters.last_shipped,
                        processes=state.processes)


REGISTRY.register(AgentCollector(_reading))


def shipper(calls: kit.ServiceClient) -> Deliver:
    """Batches to the logs service, with this service's own token (scope logs.write)."""

    async def deliver(body: bytes) -> Answer:
        answer = await calls.as_service().post(
            LOGS_SERVICE, INGEST_PATH, content=body, scopes=INGEST_SCOPES, timeout=SHIP_TIMEOUT,
            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
        return Answer(answer.status, answer.body)

    return deliver


def build_sources(settings: AgentSettings, checkpoint: Mapping[str, Any]) -> list[Source]:
    if settings.source == "journal":
        start = None
        if JOURNAL_KEY in checkpoint:
            try:
                start = JournalPosition.from_json(checkpoint[JOURNAL_KEY])
            except ValueError as error:
                log.error("the journal's checkpoint is unusable (%s): starting at this boot", error)
        return [JournalSource(settings.host, settings.programs, start,
                              command=settings.journal_command).start()]
    assert settings.log_dir is not None
    return [FileSource(origin_of(settings.host, program, settings.programs), follower)
            for program, follower in followers(settings.log_dir, settings.programs, checkpoint).items()]


def load_checkpoint(checkpoint: CheckpointFile) -> dict[str, Any]:
    """The checkpoint; an unreadable one is set aside and the agent starts over (logged as an error)."""
    try:
        return checkpoint.load()
    except CheckpointUnreadable as error:
        aside = checkpoint.set_aside()
        log.error("%s; it is moved to %s and the agent starts over at the start of each program's "
                  "current log: records shipped from there already are stored a second time", error, aside)
        return {}


async def _watch_supervisor(socket: Path) -> None:
    """Read supervisord's view every few seconds; while it does not answer, no process metrics."""
    while True:
        try:
            state.processes = await asyncio.to_thread(read_program_states, socket)
            if state.supervisor_error is not None:
                log.info("supervisord answers again")
            state.supervisor_error = None
        except Exception as error:  # the watcher must outlive any one reading
            why = str(error) if isinstance(error, SupervisorUnavailable) else \
                f"reading supervisord's state failed: {type(error).__name__}: {error}"
            if state.supervisor_error != why:
                log.warning("%s; process metrics are left out until it answers", why,
                            exc_info=not isinstance(error, SupervisorUnavailable))
            state.processes = None
            state.supervisor_error = why
        await asyncio.sleep(SUPERVISOR_POLL_SECONDS)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings = AgentSettings.from_environment()
    calls = kit.ServiceClient.from_environment(SERVICE)
    try:
        calls.url_of(LOGS_SERVICE)
    except kit.UnknownService as error:
        raise AgentError(f"{kit.SERVICE_URLS_ENV} names no {LOGS_SERVICE} service: the agent ships records "
                         "to it", hint=error.hint) from None
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = CheckpointFile(settings.checkpoint)
    loaded = load_checkpoint(checkpoint)
    pipeline = Pipeline(build_sources(settings, loaded), shipper(calls), checkpoint, acknowledged=loaded)
    state.settings, state.pipeline = settings, pipeline
    pipeline.start()
    watcher = asyncio.create_task(_watch_supervisor(settings.supervisor_socket)) \
        if settings.supervisor_socket is not None else None
    source = settings.source if settings.source == "supervisord" else " ".join(settings.journal_command)
    log.info("shipping the logs of %s to %s (%s; checkpoint %s)",
             ", ".join(sorted(settings.programs)) or "the journal", calls.url_of(LOGS_SERVICE),
             source, checkpoint.path)
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
        await pipeline.stop(STOP_GRACE)
        state.pipeline = None


async def agent_status(request: Request) -> Response:
    """
    summary: What the agent reads and ships.
    description: "Per source (a program, or the journal): the position read and the position up to which
      the logs service acknowledged every record, and how many records of it are buffered; the buffer as a
      whole; the counters; the last shipping error; supervisord's view of the programs."
    responses:
      200: {description: "{host, source, buffered, ..., last_error, sources: {name: {read, acknowledged,
        buffered, error}}, supervisor: {socket, error, programs}}"}
      503: {description: "the agent is starting or stopping", content: {application/json: {schema:
        {$ref: "#/components/schemas/Error"}}}}
    """
    pipeline, settings = state.pipeline, state.settings
    if pipeline is None or settings is None:
        return problem(503, "the agent is not running yet (or any more)")
    supervisor = None
    if settings.supervisor_socket is not None:
        supervisor = {
            "socket": str(settings.supervisor_socket),
            "error": state.supervisor_error,
            "programs": None if state.processes is None else {
                p.program: {"up": p.up, "started": p.started or None} for p in state.processes},
        }
    return JSONResponse({"host": settings.host, "source": settings.source, **pipeline.status(),
                         "supervisor": supervisor})


routes = [
    Route("/api/status", agent_status, methods=["GET"]),
    openapi_route(schemas),
]

ACCESS: dict[str, kit.Access] = {
    "/api/status": "agent.read",
    "/openapi.json": kit.PUBLIC,
}

schemas.declare_access(ACCESS)
app = kit.instrument(Starlette(routes=routes, lifespan=lifespan, exception_handlers=API_EXCEPTION_HANDLERS),
                     service=SERVICE, version=__version__, access=ACCESS)

__all__ = ["app"]
