"""The operator page in a real headless Chromium, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe``: DevTools messages travel as
NUL-terminated JSON over file descriptors 3 and 4, so no WebSocket client is needed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import io
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from cue_show import SCENES, FakePlayer, playing, transitions_to
from PIL import Image

from showrunner.control.http import STATIC_DIR, ControlServer
from showrunner.sim import serve_sim
from showrunner.testing import MemoryJournal

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
        self._task = asyncio.get_running_loop().create_task(self._read())
        self.session: str | None = None

    async def _read(self) -> None:
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            message = json.loads(raw[:-1])
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._pending.values():
            future.set_exception(ConnectionError("Chromium closed its DevTools pipe"))

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if self.session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        with anyio.fail_after(15):
            answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})  # type: ignore[no-any-return]

    async def open(self, url: str) -> None:
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        await self.call("Page.enable")
        await self.call("Runtime.enable")
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

    async def screenshot(self) -> bytes:
        shot = await self.call("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(shot["data"])

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
async def chromium(tmp_path: Path) -> AsyncIterator[DevTools]:
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
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024, loop=loop)
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


def page_player() -> FakePlayer:
    """A countdown to show (1:15) and a reload error to list."""
    return FakePlayer(countdown=75.0,
                      reload_errors=["shows/demo.yaml:14:7: scenes[2].at: must be >= 0"])


class Frames:
    def __init__(self) -> None:
        out = io.BytesIO()
        Image.new("RGB", (64, 36), (200, 40, 160)).save(out, "JPEG")
        self.picture = out.getvalue()

    def latest_jpeg(self) -> bytes | None:
        return self.picture


def text_of(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).textContent"


@needs_chromium
@pytest.mark.anyio
async def test_go_from_the_page_advances_once(tmp_path: Path) -> None:
    player = page_player()
    journal = MemoryJournal()
    async with ControlServer(player, frames=Frames(), journal=journal) as server:
        async with chromium(tmp_path) as browser:
            await browser.open(server.page_url)
            await browser.wait_for(f"{text_of('now')} === 'intro'")
            assert await browser.evaluate(text_of("next")) == "storm"
            assert await browser.wait_for(f"{text_of('countdown')}.startsWith('1:1')")
            await browser.wait_for("document.getElementById('link').dataset.state === 'up'")
            assert await browser.evaluate(
                "[...document.querySelectorAll('#scenes li')].map(li => li.dataset.scene)"
            ) == SCENES
            assert "scenes[2].at" in await browser.evaluate(text_of("reload-errors"))
            # The MJPEG preview decodes in the browser.
            await browser.wait_for("document.getElementById('preview').naturalWidth === 64")

            await browser.click("#go")
            await browser.wait_for(f"{text_of('now')} === 'storm'")
            await browser.wait_for(f"{text_of('log')}.includes('GO from page: applied')")
            assert player.calls == ["go"]

            # A second click inside the debounce window does nothing.
            await browser.click("#go")
            await browser.wait_for(f"{text_of('answer')}.includes('too soon')")
            assert player.calls == ["go"]

            # A GOTO from the list is armed by the first click and fired by the second.
            await browser.click("#scenes li[data-scene='calm'] button")
            await browser.wait_for(f"{text_of('go')} === 'GO → calm'")
            assert player.calls == ["go"]
            await browser.click("#scenes li[data-scene='calm'] button")
            await browser.wait_for(f"{text_of('now')} === 'calm'")
            png = await browser.screenshot()
    assert player.calls == ["go", ("goto", "calm")]
    assert [(r["command"], r["source"], r["reason"]) for r in journal.records] == [
        ("go", "page", None),
        ("go", "page", "debounced"),
        ("goto", "page", None),
    ]
    assert png.startswith(b"\x89PNG")
    (tmp_path / "operator.png").write_bytes(png)


@needs_chromium
@pytest.mark.anyio
async def test_the_page_works_with_a_token(tmp_path: Path) -> None:
    player = page_player()
    async with ControlServer(player, require_token=True, announce=lambda line: None) as server:
        async with chromium(tmp_path) as browser:
            await browser.open(server.page_url)
            await browser.wait_for(f"{text_of('now')} === 'intro'")
            await browser.click("#go")
            await browser.wait_for(f"{text_of('now')} === 'storm'")
    assert player.calls == ["go"]


def test_the_page_loads_nothing_from_outside() -> None:
    files = sorted(STATIC_DIR.iterdir())
    assert {f.name for f in files} >= {"operator.html", "operator.css", "operator.js"}
    for path in files:
        text = path.read_text("utf-8")
        assert not re.search(r"(?:https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "@import" not in text, path.name


# -- with the real player on the simulator ---------------------------------------------------------




@needs_chromium
@pytest.mark.anyio
async def test_go_from_the_page_advances_the_real_show_once(tmp_path: Path) -> None:
    """A click on GO reaches Scope as one prompt transition (contract §3.3 `transition`);
    a second click inside the debounce window changes nothing."""
    journal = MemoryJournal()
    async with (
        serve_sim() as sim,
        ControlServer(None, journal=journal, min_go_interval=5) as server,
        playing(tmp_path, sim, server.attach),
    ):
        async with chromium(tmp_path) as browser:
            await browser.open(server.page_url)
            await browser.wait_for(f"{text_of('now')} === 'preshow'")
            await browser.wait_for(f"{text_of('waiting')} === 'waiting for GO'")
            await browser.wait_for(f"{text_of('connection-text')} === 'Scope: connected'")
            await browser.click("#go")
            await browser.wait_for(f"{text_of('now')} === 'first'")
            await browser.click("#go")
            await browser.wait_for(f"{text_of('answer')}.includes('too soon')")
            await asyncio.sleep(0.3)  # room for a wrong second advance to show
            assert await browser.evaluate(text_of("now")) == "first"
            assert await browser.evaluate(text_of("title")) == "· Cue test"
            # No preview source here: the page says so instead of a broken image.
            await browser.wait_for("!document.getElementById('preview-none').hidden")
            assert await browser.evaluate("document.getElementById('preview').hidden")
            (tmp_path / "live.png").write_bytes(await browser.screenshot())
    assert transitions_to(sim, "a neon wave rising out of the harbour") == 1
    assert transitions_to(sim, "a slow aurora over a frozen sea") == 0
    assert [(r["source"], r["applied"], r["reason"]) for r in journal.records] == [
        ("page", True, None),
        ("page", False, "debounced"),
    ]
