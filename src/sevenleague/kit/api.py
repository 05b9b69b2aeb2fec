"""What every platform service's HTTP API answers the same way: errors and its description.

An error is a JSON object naming what was wrong and, when there is one, how to fix it,
so the CLI can print it as its own one-line error. The API description is served as
JSON at /openapi.json, built from the handlers' docstrings (Starlette's own response
is YAML, which fewer tools read).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator


def problem(status: int, message: str, hint: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": message} | ({"hint": hint} if hint else {})
    return JSONResponse(body, status_code=status, headers=headers)


def api_schemas(title: str, version: str) -> SchemaGenerator:
    """OpenAPI 3 from the YAML in each handler's docstring."""
    return SchemaGenerator({"openapi": "3.0.0", "info": {"title": title, "version": version}})


def openapi_route(schemas: SchemaGenerator) -> Route:
    """GET /openapi.json: the description of every route of the app it is mounted in."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(schemas.get_schema(routes=request.app.routes))

    return Route("/openapi.json", openapi, include_in_schema=False)
