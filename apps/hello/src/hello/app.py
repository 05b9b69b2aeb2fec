"""Says hello, and who is asking. Probes, metrics, logs, request ids and tokens come from the kit.

`access` is hello's half of access control: `/` is open to anyone, `/whoami` needs a
token with scope `hello.read`. Whether tokens are checked at all is the eco-system's
decision (`LEAGUE_OIDC_ISSUER`); while they are not, `/whoami` answers for nobody.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sevenleague import kit

from . import __version__


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!\n")


async def whoami(request: Request) -> JSONResponse:
    identity: kit.Identity | None = getattr(request.state, "identity", None)
    if identity is None:
        return JSONResponse({"subject": None, "client": None, "scopes": [], "actor": None})
    return JSONResponse({"subject": identity.subject, "client": identity.client_id,
                         "scopes": sorted(identity.scopes), "actor": identity.actor})


routes = [Route("/", hello), Route("/whoami", whoami)]
access: dict[str, kit.Access] = {"/": kit.PUBLIC, "/whoami": "hello.read"}
app = kit.instrument(Starlette(routes=routes), service="hello", version=__version__, access=access)
