"""Says hello. Everything else (probes, metrics, logs, request ids) comes from the kit."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sevenleague import kit

from . import __version__


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!\n")


routes = [Route("/", hello)]
app = kit.instrument(Starlette(routes=routes), service="hello", version=__version__)
