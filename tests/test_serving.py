"""The uvicorn lifecycle both servers use: port 0, stop, start again on the same port."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from showrunner.serving import HttpServer, bind

pytestmark = pytest.mark.anyio


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi")


async def test_port_zero_then_same_port_again() -> None:
    app = Starlette(routes=[Route("/", hello)])
    server = HttpServer(app, "127.0.0.1", 0)
    port = await server.start()
    assert port > 0
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hi"
        await server.stop()
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
        assert await server.start() == port
        assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hi"
    await server.stop()
    await server.stop()  # idempotent


def test_bind_reports_a_busy_port() -> None:
    first = bind("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            bind("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
