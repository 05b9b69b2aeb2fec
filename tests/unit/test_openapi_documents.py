"""The platform services' /openapi.json documents are valid OpenAPI 3.

Clients are written against these documents, and the API fuzzer generates its requests
from them (tests/integration/test_identity_fuzz.py): a document that is not valid
OpenAPI misleads both. Each is fetched from the app itself, in-process and without
starting its lifespan (describing the API needs no state), then checked against the
OpenAPI 3.0 meta-schema (schemathesis' loader) and for what the meta-schema cannot
say: every path template's parameters declared, every `$ref` resolvable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from .asgi import get

SERVICES = {
    "identity": "sevenleague.identity.service",
    "builds": "sevenleague.build.service",
    "logs": "sevenleague.logs.service",
    "agent": "sevenleague.agent.service",
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def served_document(module_name: str) -> dict[str, Any]:
    module = __import__(module_name, fromlist=["app"])
    answer = get(module.app, "/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    document: dict[str, Any] = json.loads(answer.body)
    return document


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), f"{reference}: only references inside the document are served"
    node: Any = document
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{reference} does not resolve"
        node = node[part]
    return node


@pytest.fixture(scope="module", params=sorted(SERVICES))
def document(request) -> dict[str, Any]:
    return served_document(SERVICES[request.param])


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.0.")
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.0 meta-schema


def test_every_path_parameter_is_declared_in_every_operation(document):
    for path, operations in document["paths"].items():
        in_template = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
            assert declared == in_template, f"{method.upper()} {path}"


def test_every_reference_resolves(document):
    for reference in set(references(document)):
        resolve(document, reference)


def test_every_operation_describes_its_success(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                assert any(str(code).startswith("2") for code in operation["responses"]), f"{method} {path}"


def test_identity_describes_every_body_it_reads_and_every_json_answer():
    """The fuzzer can only aim at what is described: form and JSON bodies, and what comes back."""
    document = served_document(SERVICES["identity"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "post" and not path.endswith(("/rotate", "/disable", "/enable", "/unlock")):
                body = operation["requestBody"]
                assert body["required"] is True, f"POST {path}"
                assert set(body["content"]) <= {"application/json", "application/x-www-form-urlencoded"}
            for code, answer in operation["responses"].items():
                answer = resolve(document, answer["$ref"]) if "$ref" in answer else answer
                assert answer.get("content"), f"{method.upper()} {path} {code} has no described body"
                for media in answer["content"].values():
                    assert "schema" in media, f"{method.upper()} {path} {code}"
