"""What every platform service's HTTP API answers the same way: errors and its description.

An error is a JSON object naming what was wrong and, when there is one, how to fix it,
so the CLI can print it as its own one-line error. That holds for the answers Starlette
makes itself too (a path no route matches, a method a route does not take): with
`API_EXCEPTION_HANDLERS` they are the same JSON, not a line of plain text.

The API description is served as JSON at /openapi.json, built from the YAML in the
handlers' docstrings (Starlette's own response is YAML, which fewer tools read). The
shapes every service shares live here once, under `components`, for the docstrings
to `$ref`: the error body (`#/components/schemas/Error`), the usual error answers
(`#/components/responses/Unauthorized`...) and the bearer token scheme. The generator
also declares each path template's parameters from the route itself (`{id:int}` is an
integer) when a docstring leaves them out: OpenAPI requires them, and the route is
where they are defined.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from ._auth import Access, AccessPolicy, Public

_PATH_PARAMETER = re.compile(r"{(\w+)(?::(\w+))?}")
# Starlette's path convertors, as OpenAPI parameter schemas.
_CONVERTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _error_answer(description: str, *, challenge: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if challenge:
        answer["headers"] = {"WWW-Authenticate": {
            "description": "RFC 6750: the scheme, realm and why the token was refused",
            "required": True, "schema": {"type": "string"}}}
    return answer


COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Error": {
            "type": "object",
            "description": "What was wrong (`error`) and how to fix it (`hint`); token checks add an "
                           "RFC 6750 `error_description`. Never quotes a secret back.",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "minLength": 1},
                "hint": {"type": "string"},
                "error_description": {"type": "string"},
            },
            "additionalProperties": False,
        },
    },
    "responses": {
        "BadRequest": _error_answer("the request is malformed; `error` says what to change"),
        "Unauthorized": _error_answer("no bearer token, or one that cannot be trusted", challenge=True),
        "Forbidden": _error_answer("the token is trusted but lacks a scope the route needs", challenge=True),
        "NotFound": _error_answer("no such thing, or no route for this path"),
        "Conflict": _error_answer("it exists already, or its state does not allow this"),
        "UnsupportedMediaType": _error_answer("the body is not of a media type this operation reads"),
    },
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "an access token from the eco-system's identity service"},
    },
}


def problem(status: int, message: str, hint: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": message} | ({"hint": hint} if hint else {})
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (404, 405 with its Allow header) as the same JSON as every other error."""
    assert isinstance(error, HTTPException)
    return problem(error.status_code, str(error.detail), headers=dict(error.headers or {}))


# For Starlette(exception_handlers=...): only HTTPException; anything else is a bug and stays a 500.
API_EXCEPTION_HANDLERS: Mapping[Any, Any] = {HTTPException: _http_error}


def _described(template: str) -> str:
    """A route template as OpenAPI writes it: `/items/{id:int}` -> `/items/{id}`."""
    return _PATH_PARAMETER.sub(lambda match: "{" + match.group(1) + "}", template)


def _route_parameters(routes: list[BaseRoute]) -> dict[str, dict[str, dict[str, Any]]]:
    """{path as described: {parameter: schema}}, read from each route's template and convertors."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for route in routes:
        if isinstance(route, Route):
            described = _described(route.path)
            found[described] = {name: _CONVERTOR_SCHEMAS.get(convertor or "str", {"type": "string"})
                                for name, convertor in _PATH_PARAMETER.findall(route.path)}
    return found


def _described_templates(routes: list[BaseRoute]) -> dict[str, str]:
    """{path as described: route template}: `/items/{id}` -> `/items/{id:int}`, as access declares it."""
    return {_described(route.path): route.path
            for route in routes if isinstance(route, Route)}


def security_of(policy: AccessPolicy, template: str, method: str) -> list[dict[str, list[str]]]:
    """OpenAPI's `security` for one operation, from the same declaration the gate enforces."""
    need = policy.needs(template, method.upper())
    return [] if isinstance(need, Public) else [{"bearer": sorted(need)}]


class ApiSchemas(SchemaGenerator):
    """Starlette's generator, plus what the routes and the access declarations already say.

    Path parameters a docstring did not declare come from the route; each operation's
    `security` (and its 401 and 403 answers) comes from the service's access declarations
    once `declare_access` is called, so the description cannot promise a route is open
    that the gate closes, or the other way round.
    """

    policy: AccessPolicy | None = None

    def declare_access(self, access: Mapping[str, Access]) -> None:
        self.policy = AccessPolicy(access)

    def _secure(self, operation: dict[str, Any], template: str, method: str) -> None:
        if self.policy is None:
            return
        security = security_of(self.policy, template, method)
        if security or "security" not in operation:  # a public route may name its other schemes itself
            operation["security"] = security
        responses = operation.setdefault("responses", {})
        if security:
            responses.setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
            if security[0]["bearer"]:
                responses.setdefault("403", {"$ref": "#/components/responses/Forbidden"})

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        schema = super().get_schema(routes)
        parameters = _route_parameters(routes)
        templates = _described_templates(routes)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in _METHODS or not isinstance(operation, dict):
                    continue
                self._secure(operation, templates.get(path, path), method)
                declared = {(p.get("in"), p.get("name")) for p in operation.get("parameters", [])
                            if isinstance(p, dict)}
                missing = [{"name": name, "in": "path", "required": True, "schema": dict(param_schema)}
                           for name, param_schema in parameters.get(path, {}).items()
                           if ("path", name) not in declared]
                if missing:
                    operation["parameters"] = [*missing, *operation.get("parameters", [])]
        return schema


def api_schemas(title: str, version: str, components: Mapping[str, Any] | None = None) -> ApiSchemas:
    """OpenAPI 3 from the YAML in each handler's docstring, with the kit's shared components.

    `components` adds the service's own (schemas, responses...) next to the kit's.
    """
    merged = copy.deepcopy(COMPONENTS)
    for section, entries in (components or {}).items():
        merged.setdefault(section, {}).update(copy.deepcopy(dict(entries)))
    return ApiSchemas({"openapi": "3.0.3", "info": {"title": title, "version": version},
                       "components": merged})


def openapi_route(schemas: SchemaGenerator) -> Route:
    """GET /openapi.json: the description of every route of the app it is mounted in."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(schemas.get_schema(routes=request.app.routes))

    return Route("/openapi.json", openapi, include_in_schema=False)
