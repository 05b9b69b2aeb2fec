"""The apps bench_kit_instructions.py compares, each served by the same uvicorn settings.

- bare: hello's routes on Starlette, nothing else;
- wrapped: bare behind a pass-through ASGI `send` wrapper (the least any middleware costs);
- headers: the wrapper adding the two response headers the kit adds;
- kit: hello as it ships, `kit.instrument` around the same routes.
"""

from typing import Any

from starlette.applications import Starlette

from hello.app import routes
from sevenleague import kit

bare = Starlette(routes=routes)
kit_app = kit.instrument(Starlette(routes=routes), service="hello")
_EXTRA = ((b"x-request-id", b"0123456789abcdef"), (b"x-served-by", b"hello/hello-1"))


async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await bare(scope, receive, send)
        return

    async def passing(message: dict[str, Any]) -> None:
        await send(message)

    await bare(scope, receive, passing)


async def headers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await bare(scope, receive, send)
        return

    async def adding(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *_EXTRA]
        await send(message)

    await bare(scope, receive, adding)
