"""The uvicorn lifecycle both servers use: port 0, stop, start again on the same port."""

from __future__ import annotations

import http.client
import os
import socket

import anyio
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


def _server_side_nodelay(port: int, peer: tuple[str, int]) -> list[int]:
    """TCP_NODELAY of this process's accepted sockets on `port` whose peer is `peer`."""
    found: list[int] = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        with sock:
            if sock.family != socket.AF_INET:
                continue
            try:
                if sock.getsockname()[1] == port and sock.getpeername() == peer:
                    found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            except OSError:
                continue
    return found


async def test_accepted_connections_do_not_wait_for_delayed_acks() -> None:
    """Nagle off on accepted sockets: a keep-alive request's body is not held behind its headers."""
    app = Starlette(routes=[Route("/", hello)])
    server = HttpServer(app, "127.0.0.1", 0)
    port = await server.start()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    try:
        def request() -> str:
            conn.request("GET", "/")
            return conn.getresponse().read().decode()

        assert await anyio.to_thread.run_sync(request) == "hi"
        assert conn.sock is not None
        assert _server_side_nodelay(port, conn.sock.getsockname()) == [1]
    finally:
        conn.close()
        await server.stop()
