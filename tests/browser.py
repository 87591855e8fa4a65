"""A small Chromium DevTools driver for browser tests (headless, no network).

Chromium is started with ``--remote-debugging-pipe``: DevTools messages travel as
NUL-terminated JSON over file descriptors 3 and 4, so no WebSocket client is needed.
Each browser gets a fresh profile (``--user-data-dir`` under the test's tmp_path) and the
flags that keep it from reaching out (no background networking, updates or sync).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
)


class DevTools:
    """A minimal DevTools client over Chromium's debugging pipe."""

    def __init__(self, proc: asyncio.subprocess.Process, write_fd: int, reader: Any) -> None:
        self.proc = proc
        self._write_fd = write_fd
        self._reader: asyncio.StreamReader = reader
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._task = asyncio.get_running_loop().create_task(self._read())
        self.session: str | None = None

    async def _read(self) -> None:
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            message = json.loads(raw[:-1])
            if "method" in message and "id" not in message:
                for listener in self._listeners:
                    listener(message["method"], message.get("params", {}))
                continue
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._pending.values():
            future.set_exception(ConnectionError("Chromium closed its DevTools pipe"))

    def on_event(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call `listener(method, params)` for every DevTools event (Network.*, Page.*, ...)."""
        self._listeners.append(listener)

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 15
    ) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if self.session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        data = json.dumps(message).encode() + b"\0"
        view = memoryview(data)
        while view:  # a large message (a whole page) takes several writes
            written = os.write(self._write_fd, view)
            view = view[written:]
        with anyio.fail_after(timeout):
            answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})  # type: ignore[no-any-return]

    async def attach(self) -> None:
        """Open a blank tab and talk to it (Page and Runtime domains on)."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        await self.call("Page.enable")
        await self.call("Runtime.enable")

    async def open(self, url: str) -> None:
        await self.attach()
        await self.call("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10) -> Any:
        with anyio.fail_after(timeout):
            while True:
                with contextlib.suppress(RuntimeError):
                    value = await self.evaluate(expression)
                    if value:
                        return value
                await asyncio.sleep(0.05)

    async def click(self, selector: str) -> None:
        """A real mouse click (trusted input events) in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        await self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    async def screenshot(self, *, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = await self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        shot = await self.call("Page.captureScreenshot", params, timeout=60)
        return base64.b64decode(shot["data"])

    async def print_pdf(self, **params: Any) -> bytes:
        """Page.printToPDF (A4 portrait unless `params` say otherwise)."""
        options: dict[str, Any] = {"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": True}
        options.update(params)
        result = await self.call("Page.printToPDF", options, timeout=60)
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("Browser.close"), 3)
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        os.close(self._write_fd)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _high_fd(fd: int) -> int:
    # Above 3 and 4, so bash's `3<&N 4>&M` cannot overwrite one with the other.
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path, *flags: str) -> AsyncIterator[DevTools]:
    """A headless Chromium with a fresh profile under `tmp_path` (extra `flags` appended)."""
    assert CHROMIUM is not None
    to_r, to_w = map(_high_fd, os.pipe())
    from_r, from_w = map(_high_fd, os.pipe())
    log = open(tmp_path / "chromium.log", "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        f'exec "$0" "$@" 3<&{to_r} 4>&{from_w}',
        CHROMIUM,
        *FLAGS,
        *flags,
        f"--user-data-dir={tmp_path / 'profile'}",
        "about:blank",
        pass_fds=(to_r, from_w),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    os.close(to_r)
    os.close(from_w)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=256 * 1024 * 1024, loop=loop)
    read_file = os.fdopen(from_r, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), read_file
    )
    devtools = DevTools(proc, to_w, reader)
    try:
        yield devtools
    finally:
        await devtools.close()
        transport.close()
        log.close()
