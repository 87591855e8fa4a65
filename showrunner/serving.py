"""Serving an ASGI app with uvicorn on a socket we bind, so restarts keep the port.

Both servers of the project use it: the Scope simulator and the control surface. It depends on
nothing else in showrunner, so the simulator stays independent of the client side.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    # Both servers run inside other programs (the simulator also in threads): Ctrl-C belongs to
    # them (the show), so uvicorn must not take over the signal handlers.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and accepted sockets inherit it. Without it a keep-alive request waits ~40 ms for
    # a delayed ACK (Nagle holding the body behind the headers).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a restart bind the same port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    """One uvicorn run of `app`; `start()` returns the bound port.

    `graceful` None: `stop()` drops open connections at once. A number: open requests get that
    many seconds to finish (a caller that holds long streams ends them first).
    """

    def __init__(
        self, app: ASGIApp, host: str, port: int, *, name: str = "HTTP server",
        graceful: int | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.graceful = graceful
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Between a successful `start()` and `stop()`."""
        return self._task is not None

    async def start(self) -> int:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            log_config=None,
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=self.graceful,
        )
        server = _Server(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                sock.close()
                self._server = None
                task, self._task = self._task, None
                task.result()  # raises what stopped the start
                raise OSError(f"{self.name} on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.005)
        return self.port

    async def stop(self) -> None:
        """Stop listening; drop open connections at once, or after `graceful` seconds."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = self.graceful is None
        await asyncio.gather(self._task, return_exceptions=True)
        self._server = None
        self._task = None
