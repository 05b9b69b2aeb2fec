"""A callee for tests of calls between services: `/whoami` says who the kit let in.

Its answer is what the callee sees of a call made on a user's behalf: the user as the
subject, the calling service as the actor, and only the scopes the exchange gave.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from sevenleague import kit


async def whoami(request: Request) -> JSONResponse:
    identity: kit.Identity | None = getattr(request.state, "identity", None)
    if identity is None:
        return JSONResponse({"service": "echo", "subject": None, "client": None, "actor": None, "scopes": []})
    return JSONResponse({"service": "echo", "subject": identity.subject, "client": identity.client_id,
                         "actor": identity.actor, "scopes": sorted(identity.scopes)})


# Behind the edge echo is reached under its route, /echo, which HAProxy passes on as it is.
routes = [Route("/whoami", whoami), Mount("/echo", routes=[Route("/whoami", whoami)])]
app = kit.instrument(Starlette(routes=routes), service="echo",
                     access={"/whoami": "echo.read", "/echo/whoami": "echo.read"})
