"""hello in-process: the greeting, and what the kit adds around it."""

from __future__ import annotations

import asyncio

import httpx

from hello.app import app


def get(path: str) -> httpx.Response:
    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hello") as client:
            return await client.get(path)

    return asyncio.run(fetch())


def test_root_says_hello():
    response = get("/")
    assert response.status_code == 200
    assert response.text == "Hello, world!\n"


def test_response_names_the_service_and_a_request_id():
    response = get("/")
    assert response.headers["x-served-by"].startswith("hello/")
    assert len(response.headers["x-request-id"]) == 16


def test_probes_come_with_the_kit():
    assert get("/healthz").status_code == 200
    assert get("/readyz").text == "ready\n"
    assert "service_build_info" in get("/metrics").text
