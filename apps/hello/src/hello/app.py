"""Says hello, and who is asking. Probes, metrics, logs, request ids and tokens come from the kit.

`access` is hello's half of access control: `/` is open to anyone, `/whoami` and
`/whoami/{service}` need a token with scope `hello.read`. Whether tokens are checked at
all is the eco-system's decision (`LEAGUE_OIDC_ISSUER`); while they are not, `/whoami`
answers for nobody.

`/whoami/{service}` asks another service's `/whoami` on the caller's behalf, through the
kit's service client: the callee's answer shows the same user as subject and
`service:hello` as actor, which is the whole point of token exchange.
"""

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sevenleague import kit

from . import __version__

SERVICE = "hello"
# Where the other services are and this service's account at the issuer: from the environment
# `league up` gives it (LEAGUE_SERVICE_URLS, LEAGUE_CLIENT_SECRET_FILE...), read once at startup.
services = kit.ServiceClient.from_environment(SERVICE)
log = logging.getLogger("hello")


def _problem(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!\n")


async def whoami(request: Request) -> JSONResponse:
    identity: kit.Identity | None = getattr(request.state, "identity", None)
    if identity is None:
        return JSONResponse({"subject": None, "client": None, "scopes": [], "actor": None})
    return JSONResponse({"subject": identity.subject, "client": identity.client_id,
                         "scopes": sorted(identity.scopes), "actor": identity.actor})


async def whoami_at(request: Request) -> JSONResponse:
    """What `service` sees when hello calls its `/whoami` for the caller.

    Only `SERVICE.read` is asked for, so a caller without it is refused at the issuer:
    403 (the caller may not have this done on their behalf). An unknown service is 404;
    a callee that cannot be reached or answers anything but 200 is 502, whose details
    (addresses, the issuer's words) go to the log rather than to the caller.
    """
    service = request.path_params["service"]
    try:
        answer = await services.on_behalf_of(request).get(service, "/whoami", scopes=[f"{service}.read"])
        body = answer.json() if answer.status == 200 else None
    except kit.UnknownService as error:
        return _problem(404, "unknown_service", f"hello does not call a service named {error.service!r}")
    except kit.CallRefused as error:
        return _problem(403, "call_refused", error.reason)
    except kit.CallFailed as error:
        log.warning("%s", error)
        return _problem(502, "call_failed", f"{error.service} cannot be reached")
    if body is None:
        return _problem(502, "call_failed", f"{service} answered {answer.status}")
    return JSONResponse(body)


routes = [Route("/", hello), Route("/whoami", whoami), Route("/whoami/{service}", whoami_at)]
access: dict[str, kit.Access] = {"/": kit.PUBLIC, "/whoami": "hello.read", "/whoami/{service}": "hello.read"}
app = kit.instrument(Starlette(routes=routes), service=SERVICE, version=__version__, access=access)
