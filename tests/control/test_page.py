"""The operator page in a real headless Chromium, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe``: DevTools messages travel as
NUL-terminated JSON over file descriptors 3 and 4, so no WebSocket client is needed.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pytest
from browser import chromium, needs_chromium
from cue_show import SCENES, FakePlayer, playing, transitions_to
from PIL import Image

from showrunner.control.http import STATIC_DIR, ControlServer
from showrunner.sim import serve_sim
from showrunner.testing import MemoryJournal


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
    """A click on GO reaches Scope as one prompt transition (docs/scope.md §3.3 `transition`);
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


@needs_chromium
@pytest.mark.anyio
async def test_the_tempo_counts_on_the_page_and_taps_set_it(tmp_path: Path) -> None:
    """The header shows bpm, bar.beat (counting between status events) and the source; the TAP
    button taps the tempo through the API; without a tempo the display is hidden."""
    import time

    from showrunner.sync.runner import TempoRunner
    from showrunner.sync.sources import SourceContext, SourceOptions

    runner = TempoRunner(SourceOptions("tap", bpm=120.0), SourceContext(time.monotonic))
    task = asyncio.create_task(runner.run())
    async with ControlServer(page_player(), frames=Frames()) as server:
        async with chromium(tmp_path) as browser:
            await browser.open(server.page_url)
            await browser.wait_for(f"{text_of('now')} === 'intro'")
            assert await browser.evaluate("document.getElementById('tempo').hidden")
            server.attach_tempo(runner)
            await browser.wait_for("!document.getElementById('tempo').hidden")
            assert await browser.evaluate(text_of("tempo-bpm")) == "120.0"
            assert await browser.evaluate(text_of("tempo-source")) == "tap"
            # 120 bpm: two beats a second; the page counts them without new status events.
            seen = set()
            for _ in range(12):
                seen.add(await browser.evaluate(text_of("tempo-beat")))
                await asyncio.sleep(0.1)
            assert len(seen) >= 2 and all(re.fullmatch(r"\d+\.[1-4]", b) for b in seen)
            for _ in range(4):
                await browser.click("#tap")
                await asyncio.sleep(0.3)
            await browser.wait_for(f"{text_of('answer')}.startsWith('TAP ✓ →')")
            tapped = runner.status().bpm
            assert 150 < tapped < 260  # taps 0.3 s apart (plus the browser's own delay)
            await browser.wait_for(f"{text_of('tempo-bpm')} === {json.dumps(f'{tapped:.1f}')}")
            (tmp_path / "tempo.png").write_bytes(await browser.screenshot())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
