"""What the player's operator commands do and answer, on a FakeClock against a recording Sink.

Every command returns what became of it (`Result`: applied, queued or ignored with a reason);
no timing asserts: the clock moves only when a test moves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from showrunner.live.commands import Result
from showrunner.live.player import Player
from showrunner.live.status import Mode
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, until

pytestmark = pytest.mark.anyio


class Sink:
    """Records what is sent; `gate` (when set) holds `open` until released; `fail` opens fail."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[dict[str, Any]] = []
        self.opened: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None
        self.fail = 0  # this many opens fail first
        self.up = False

    @property
    def connected(self) -> bool:
        return self.up

    async def open(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial: Mapping[str, Any]
    ) -> float:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("connection refused")
        self.opened.append(dict(initial))
        self.up = True
        return 0.0

    async def switch(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial: Mapping[str, Any]
    ) -> float:
        return await self.open(chain, load_params, initial)

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return dict(message)

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        self.sent.append(dict(message))
        return self.clock.time(), dict(message)

    async def close(self) -> None:
        self.up = False

    async def liveness(self) -> str | None:
        return None if self.up else "down"


def prompts(message: Mapping[str, Any]) -> list[str]:
    if "transition" in message:
        return [p["text"] for p in message["transition"]["target_prompts"]]
    return [p["text"] for p in message.get("prompts", [])]


def looks(sink: Sink) -> list[list[str]]:
    return [prompts(m) for m in sink.opened + sink.sent if prompts(m)]


def compile_show(text: str) -> Timeline:
    return compile_timeline(load_text(text, path="cmd.yaml").show, source="cmd.yaml")


@contextlib.asynccontextmanager
async def playing(player: Player) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(player.run())
    try:
        yield task
    finally:
        player.quit()
        assert await asyncio.wait_for(task, 5) == 0


async def answer(value: object) -> Result:
    if isinstance(value, Result):
        return value
    assert isinstance(value, asyncio.Future)
    result = await asyncio.wait_for(value, 5)
    assert isinstance(result, Result)
    return result


THREE = """
title: three timed
defaults: {pipeline: controller-viz}
scenes:
  - {name: one, prompts: look one, duration: 60}
  - {name: two, prompts: look two, duration: 60}
  - {name: three, prompts: look three, duration: 60}
"""


async def test_go_on_a_timed_scene_starts_the_next_scene_now() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    player = Player(compile_show(THREE), sink, clock=clock, watchdog_period=3600)
    async with playing(player):
        await until(lambda: player.status().scene == "one")
        assert player.status().waiting_for is None  # a timed scene: nothing waits for GO
        result = await answer(player.go())
        assert (result.outcome, result.detail) == ("applied", "two")
        await until(lambda: player.status().scene == "two")
        assert ["look two"] in looks(sink)
        # The next scene keeps its length from the moment GO started this one.
        assert player.status().countdown == pytest.approx(60.0)
        assert (await answer(player.go())).detail == "three"
        await until(lambda: player.status().scene == "three")
        ignored = await answer(player.go())
        assert (ignored.outcome, ignored.reason) == ("ignored", "nothing to go to")


async def test_a_go_while_the_first_session_opens_is_armed_once_and_applied_when_it_is_up() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    sink.gate = asyncio.Event()
    player = Player(compile_show(THREE), sink, clock=clock, watchdog_period=3600)
    async with playing(player):
        await until(lambda: player.status().mode == Mode.PENDING)
        first = await answer(player.go())
        assert (first.outcome, first.reason) == ("queued", "connecting")
        assert player.status().armed == "go"
        second = await answer(player.go())
        assert (second.outcome, second.reason) == ("ignored", "already armed")
        assert player.status().next == "one"  # pending: the first scene has not started
        sink.gate.set()
        await until(lambda: player.status().scene == "two")
        assert player.status().armed is None
    assert looks(sink)[:2] == [["look one"], ["look two"]]


async def test_the_show_clock_waits_for_scope_and_starts_from_the_first_scene() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    sink.fail = 3
    player = Player(compile_show(THREE), sink, clock=clock, watchdog_period=0.5,
                    backoff=(0.5, 1.0))
    player.notice = "waiting for Scope at http://127.0.0.1:9"
    async with playing(player):
        await until(lambda: player.status().connection == "down")
        pending = 0
        while player.status().scene is None:
            status = player.status()
            assert (status.mode, status.next) == (Mode.PENDING, "one")
            assert status.notice == "waiting for Scope at http://127.0.0.1:9"
            await clock.advance(0.25)
            pending += 1
        assert pending > 4  # three failed opens, with backoff between them
        status = player.status()
        assert status.scene == "one" and status.position is not None and status.position <= 0.25
        assert status.countdown is not None and status.countdown >= 59.75
        assert status.notice is None
    assert looks(sink)[0] == ["look one"]


NAMED = """
title: named
defaults: {pipeline: controller-viz}
scenes:
  - {name: calm, prompts: a calm sea, duration: 5}
  - {name: thunder, prompts: lightning over the sea, cue: drop}
"""


async def test_a_named_cue_is_answered_when_the_show_does_not_wait_for_it() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    player = Player(compile_show(NAMED), sink, clock=clock, watchdog_period=3600)
    async with playing(player):
        await until(lambda: player.status().waiting_for == "drop")
        assert player.status().cues == ("drop",)
        wrong = await answer(player.cue("rain"))
        assert (wrong.outcome, wrong.reason) == ("ignored", "not waiting for this cue")
        assert "'drop'" in (wrong.detail or "")
        right = await answer(player.cue("drop"))
        assert (right.outcome, right.detail) == ("applied", "thunder")
        await until(lambda: player.status().scene == "thunder")


async def test_hold_and_resume_say_when_they_change_nothing() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    player = Player(compile_show(THREE), sink, clock=clock, watchdog_period=3600)
    async with playing(player):
        await until(lambda: player.status().scene == "one")
        assert (await answer(player.resume())).reason == "nothing is held"
        assert (await answer(player.hold())).outcome == "applied"
        await clock.advance(10)
        status = player.status()
        assert status.countdown is None and status.remaining == pytest.approx(60.0)
        assert (await answer(player.hold())).reason == "already held"
        assert (await answer(player.resume())).outcome == "applied"
