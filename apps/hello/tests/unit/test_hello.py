"""hello in-process: the greeting, what the kit adds around it, and a call to another service."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import uvicorn

from hello import app as hello_app
from hello.app import app
from sevenleague import kit
from sevenleague.testing import free_port


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


# --- /whoami/{service}: another service asked on the caller's behalf ------------------------------


def get_with(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hello") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(fetch())


class Callee:
    """A real server on loopback standing in the place of another service: it answers /whoami."""

    def __init__(self) -> None:
        self.request_ids: list[str] = []
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off", interface="asgi3"))

    async def app(self, scope, receive, send) -> None:
        headers = dict(scope["headers"])
        self.request_ids.append(headers.get(b"x-request-id", b"").decode())
        status, body = (200, b'{"service": "echo", "subject": null}') if scope["path"] == "/whoami" else (
            404, b"{}")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    def __enter__(self) -> Callee:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def calling(monkeypatch, urls: dict[str, str]) -> None:
    monkeypatch.setattr(hello_app, "services", kit.ServiceClient("hello", urls=urls))


def test_whoami_at_needs_hello_read_like_whoami():
    assert hello_app.access["/whoami/{service}"] == hello_app.access["/whoami"] == "hello.read"
    assert hello_app.access["/"] is kit.PUBLIC


def test_whoami_at_an_unknown_service_is_404():
    response = get("/whoami/ledger")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_service",
                               "error_description": "hello does not call a service named 'ledger'"}


def test_whoami_at_a_service_passes_its_answer_on_with_the_request_id(monkeypatch):
    with Callee() as callee:
        calling(monkeypatch, {"echo": f"http://127.0.0.1:{callee.port}"})
        response = get_with("/whoami/echo", {"X-Request-ID": "hello-to-echo-1"})
    assert response.status_code == 200
    assert response.json() == {"service": "echo", "subject": None}
    assert callee.request_ids == ["hello-to-echo-1"]


def test_a_callee_that_answers_badly_or_not_at_all_is_502_without_its_address(monkeypatch):
    with Callee() as callee:
        calling(monkeypatch, {"echo": f"http://127.0.0.1:{callee.port}/elsewhere"})
        wrong = get("/whoami/echo")
    assert (wrong.status_code, wrong.json()) == (
        502, {"error": "call_failed", "error_description": "echo answered 404"})
    calling(monkeypatch, {"echo": f"http://127.0.0.1:{free_port()}"})
    gone = get("/whoami/echo")
    assert (gone.status_code, gone.json()) == (
        502, {"error": "call_failed", "error_description": "echo cannot be reached"})
