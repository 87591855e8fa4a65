"""The operator page in the states an operator must read at a glance, in headless Chromium.

Each state is put on a stand-in player, the page is read from the DOM (standby, banners,
opening hours, the frozen countdown, the GO button's target) and a screenshot goes to the
artifacts folder (``SHOWRUNNER_ARTIFACTS``, default ``tests/artifacts/``) for a person to look
at. The last tests drive the real player on the simulator: GO from the page (a click and the
space bar) starts the next scene of a timed show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from control.test_page import Frames, chromium, needs_chromium, text_of
from cue_show import TIMED, playing, transitions_to, until_status

from showrunner.control.http import ControlServer
from showrunner.live.link import LinkState
from showrunner.live.status import Mode, PlayerStatus
from showrunner.sim import serve_sim
from showrunner.testing import MemoryJournal, until

ROOT = Path(__file__).resolve().parents[2]
# Read at import: the test fixtures hide SHOWRUNNER_* variables from the tests themselves.
ARTIFACTS = Path(os.environ.get("SHOWRUNNER_ARTIFACTS") or ROOT / "tests" / "artifacts")

SCENES = ("doors", "storm", "calm")
SHOW_INFO = {
    "title": "Harbour",
    "scenes": [
        {"name": "doors", "index": 0, "trigger": "GO", "cue": "go", "duration": None,
         "pipeline": "longlive", "prompts": [{"text": "a curtain over the harbour", "weight": 1.0}],
         "notes": "house lights down first", "closed_only": False, "switch_estimate": 0.0},
        {"name": "storm", "index": 1, "trigger": "timed", "cue": None, "duration": 60.0,
         "pipeline": "longlive",
         "prompts": [{"text": "a storm over the harbour", "weight": 0.7},
                     {"text": "lightning", "weight": 0.3}],
         "notes": None, "closed_only": False, "switch_estimate": 0.0},
        {"name": "calm", "index": 2, "trigger": "timed", "cue": None, "duration": 45.0,
         "pipeline": "krea-realtime-video",
         "prompts": [{"text": "the harbour after the storm", "weight": 1.0}],
         "notes": None, "closed_only": False, "switch_estimate": 31.5},
    ],
}
BASE = PlayerStatus(title="Harbour", connection=LinkState.CONNECTED, scenes=SCENES, plan=1)


class StatePlayer:
    """A player whose status a test sets; records the commands it receives."""

    journal = None

    def __init__(self, status: PlayerStatus) -> None:
        self.current = status
        self.calls: list[Any] = []
        self.listeners: list[Callable[..., object]] = []

    def show(self, **changes: Any) -> None:
        self.current = dataclasses.replace(BASE, **changes)
        for listener in list(self.listeners):
            listener({"kind": "status"})

    def status(self) -> PlayerStatus:
        return self.current

    def show_info(self) -> dict[str, Any]:
        return SHOW_INFO

    def subscribe(self, callback: Callable[..., object]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def go(self) -> None:
        self.calls.append("go")

    def cue(self, name: str) -> None:
        self.calls.append(("cue", name))

    def goto(self, name: str) -> None:
        self.calls.append(("goto", name))

    def back(self) -> None:
        self.calls.append("back")

    def hold(self) -> None:
        self.calls.append("hold")

    def resume(self) -> None:
        self.calls.append("resume")

    def panic(self) -> None:
        self.calls.append("panic")

    def quit(self) -> None:
        self.calls.append("quit")

    def reload(self) -> None:
        raise NotImplementedError


async def shoot(browser: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"page-{name}.png"
    png = await browser.screenshot()
    assert png.startswith(b"\x89PNG")
    path.write_bytes(png)
    return path


def visible(element_id: str) -> str:
    return f"!document.getElementById({element_id!r}).hidden"


@needs_chromium
@pytest.mark.anyio
async def test_the_page_in_each_state(tmp_path: Path) -> None:
    player = StatePlayer(dataclasses.replace(
        BASE, next="doors", on_air="doors", waiting_for="go", mode=Mode.WAITING
    ))
    async with chromium(tmp_path) as browser:
        async with ControlServer(player, frames=Frames(), min_go_interval=0) as server:
            await browser.open(server.page_url)

            # Standby: before the first GO the look on air is the current scene.
            await browser.wait_for(f"{text_of('now')} === 'doors'")
            await browser.wait_for(visible("standby"))
            await browser.wait_for(f"{text_of('go')} === 'GO → doors'")
            assert await browser.evaluate(text_of("next-detail")) == (
                "on air, standing by: GO starts it"
            )
            await browser.wait_for(f"{text_of('scenes')}.includes('house lights down first')")
            prompts = await browser.evaluate(
                "document.querySelector('#scenes li[data-scene=storm] .prompts').textContent")
            assert prompts == "a storm over the harbour (0.7) | lightning (0.3)"
            meta = await browser.evaluate(
                "document.querySelector('#scenes li[data-scene=calm] .meta').textContent")
            assert meta == "timed · 0:45 · krea-realtime-video"
            await shoot(browser, "standby")

            # Space bar is GO.
            await browser.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": " ",
                                                          "code": "Space", "text": " "})
            await browser.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": " ",
                                                          "code": "Space"})
            await until(lambda: player.calls == ["go"])

            # Playing, with a show clock and a progress bar.
            player.show(scene="storm", on_air="storm", next="calm", countdown=42.0,
                        remaining=42.0, position=18.0, show_clock=3725.0)
            await browser.wait_for(f"{text_of('go')} === 'GO → calm'")
            await browser.wait_for(f"{text_of('show-clock')}.startsWith('1:02:0')")
            width = await browser.evaluate("document.getElementById('progress-bar').style.width")
            assert 25 < float(width.rstrip("%")) < 40

            # A GOTO from the list is armed first: the click does nothing on the show.
            await browser.click("#scenes li[data-scene='doors'] button")
            await browser.wait_for(f"{text_of('go')} === 'GO → doors'")
            assert player.calls == ["go"]
            await shoot(browser, "goto-armed")
            await browser.click("#go")
            await until(lambda: player.calls == ["go", ("goto", "doors")])
            await browser.wait_for(f"{text_of('go')} === 'GO → calm'")

            # HOLD: the countdown stands still at what was left.
            player.show(scene="storm", on_air="storm", next="calm", countdown=None,
                        remaining=42.0, position=18.0, held=True, mode=Mode.HOLD,
                        show_clock=3725.0)
            await browser.wait_for(f"{text_of('mode')} === 'HOLD'")
            await browser.wait_for(f"{text_of('countdown')} === '0:42'")
            await asyncio.sleep(1.2)
            assert await browser.evaluate(text_of("countdown")) == "0:42"
            await shoot(browser, "hold")

            # A pipeline loads: a banner says there is no output, and for about how long.
            player.show(scene="calm", on_air="calm", position=0.0,
                        connection=LinkState.CONNECTING, switching="krea-realtime-video",
                        switch_estimate=31.5)
            await browser.wait_for(visible("banner"))
            banner = await browser.evaluate(text_of("banner"))
            assert banner == "NO OUTPUT — switching to krea-realtime-video (about 32 s)"
            await shoot(browser, "pipeline-switch")

            # Opening hours: closed, and when it opens again.
            player.show(scene="calm", on_air="calm", mode=Mode.CLOSED, closed=True, held=True,
                        hours="closed, reopens Sat 11:00")
            await browser.wait_for(f"{text_of('hours-text')} === 'closed, reopens Sat 11:00'")
            assert await browser.evaluate(text_of("banner")) == "CLOSED — reopens Sat 11:00"
            await shoot(browser, "hours-closed")
            player.show(scene="calm", on_air="calm", hours="open until 18:00")
            await browser.wait_for(f"{text_of('hours-text')} === 'open until 18:00'")
            assert await browser.evaluate("document.getElementById('banner').hidden")

            # A long reload: what it does, and how far it is, while the show plays on.
            player.show(scene="calm", on_air="calm", working="uploading image 'ref'",
                        work_progress=0.4)
            await browser.wait_for(visible("banner"))
            assert await browser.evaluate(text_of("banner")) == "WORKING — uploading image 'ref' 40 %"
            await shoot(browser, "working")
            player.show(scene="calm", on_air="calm")
            await browser.wait_for("document.getElementById('banner').hidden")

            # Waiting for Scope: the first scene pending, said in so many words.
            player.show(next="doors", mode=Mode.PENDING, connection=LinkState.DOWN,
                        notice="waiting for Scope at http://127.0.0.1:8000", armed="go",
                        errors=("doors: session failed: connection refused",) * 2)
            await browser.wait_for(visible("banner"))
            assert await browser.evaluate(text_of("banner")) == (
                "NO OUTPUT — waiting for Scope at http://127.0.0.1:8000; "
                "the first scene starts when it answers"
            )
            assert await browser.evaluate(text_of("go")) == "GO armed"
            assert await browser.evaluate("document.querySelectorAll('#errors li').length") == 1
            await shoot(browser, "waiting-for-scope")
        # The control link is down: the buttons say so by being disabled.
        await browser.wait_for("document.getElementById('link').dataset.state === 'down'")
        assert await browser.evaluate("document.getElementById('go').disabled")
        assert (await browser.evaluate(text_of("banner"))).startswith("CONTROL LINK DOWN")
        assert await browser.evaluate(
            "[...document.querySelectorAll('#scenes button')].every(b => b.disabled)")
        await shoot(browser, "link-down")


@needs_chromium
@pytest.mark.anyio
async def test_named_cues_have_buttons_and_log_times_are_24_hours(tmp_path: Path) -> None:
    player = StatePlayer(dataclasses.replace(
        BASE, scene="storm", on_air="storm", next="calm", waiting_for="drop", mode=Mode.WAITING,
        cues=("drop",),
    ))
    async with chromium(tmp_path) as browser, ControlServer(player) as server:
        await browser.open(server.page_url)
        await browser.wait_for("document.querySelector('#cues button[data-cue=drop]') !== null")
        await browser.click("#cues button[data-cue='drop']")
        await until(lambda: player.calls == [("cue", "drop")])
        await browser.wait_for(f"{text_of('log')}.includes('CUE drop from page')")
        stamp = await browser.evaluate("document.querySelector('#log .time').textContent")
        assert len(stamp) == 8 and stamp[2] == ":" and stamp[5] == ":"
        assert "M" not in stamp  # no AM/PM


@needs_chromium
@pytest.mark.anyio
async def test_go_from_the_page_starts_the_next_timed_scene(tmp_path: Path) -> None:
    """Three timed 60 s scenes on the simulator: GO on the page starts the next one now."""
    journal = MemoryJournal()
    async with (
        serve_sim() as sim,
        ControlServer(None, journal=journal) as server,
        playing(tmp_path, sim, server.attach, text=TIMED),
    ):
        await until_status(server.commands.status, scene="one", connection="connected")
        async with chromium(tmp_path) as browser:
            await browser.open(server.page_url)
            await browser.wait_for(f"{text_of('go')} === 'GO → two'")
            await browser.click("#go")
            await browser.wait_for(f"{text_of('now')} === 'two'")
            await until(lambda: transitions_to(sim, "a lighthouse in a storm") == 1)
            await browser.wait_for(f"{text_of('answer')} === 'GO ✓ → two'")
            await shoot(browser, "timed-show")
    assert [(r["source"], r["detail"]) for r in journal.records] == [("page", "two")]
