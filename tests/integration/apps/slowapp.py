"""A test app with a slow route, to watch a drain let in-flight requests finish."""

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sevenleague import kit


async def slow(request: Request) -> PlainTextResponse:
    await asyncio.sleep(float(request.query_params.get("seconds", "1")))
    return PlainTextResponse("slow done\n")


async def fast(request: Request) -> PlainTextResponse:
    return PlainTextResponse("fast\n")


app = kit.instrument(Starlette(routes=[Route("/slow", slow), Route("/", fast)]), service="slowapp")
