"""The player's timing on a FakeClock, against a recording Sink (no WebRTC).

`RecordingSink` is a test double of the `Sink` protocol: it writes nothing anywhere, it notes
the clock's time of every open, switch, prepare and write. With the clock moved by hand, each
message must be written exactly at its planned time: the schedule's ``part origin + offset``,
moved only by what the operator did (GO, hold, panic, GOTO). The Scope client itself is tested
against the real simulator (tests/scope/test_session.py, tests/live/test_player.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from sinks import RecordingSink, Wire

from showrunner.live.link import LinkState
from showrunner.live.player import Player, Sink
from showrunner.live.status import Mode
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, MemoryJournal, until

pytestmark = pytest.mark.anyio


def compile_show(text: str) -> Timeline:
    return compile_timeline(load_text(text, path="timing.yaml").show, source="timing.yaml")


@contextlib.asynccontextmanager
async def playing(player: Player) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(player.run())
    try:
        yield task
    finally:
        player.quit()
        assert await asyncio.wait_for(task, 5) == 0


def after(sink: RecordingSink, t: float) -> list[tuple[float, dict[str, Any]]]:
    return [(at, message) for at, message in sink.sent if at > t]


def prompts_of(message: Mapping[str, Any]) -> list[str]:
    targets = message["transition"]["target_prompts"] if "transition" in message else message["prompts"]
    return [p["text"] for p in targets]


def test_the_recording_sink_is_a_sink() -> None:
    assert isinstance(RecordingSink(FakeClock()), Sink)


TIMED = """
title: timed
defaults: {pipeline: controller-viz, noise_scale: 0.3}
end: stop
scenes:
  - name: intro
    prompts: a quiet harbour
    duration: 4
    keyframes:
      noise_scale: [{at: 0, value: 0.3}, {at: 2, value: 0.6}]
  - name: storm
    prompts: a storm over the harbour
    duration: 3
    travel: [{at: 1.5, prompts: lightning over the harbour}]
  - name: calm
    prompts: the harbour after the storm
    duration: 2
"""


async def test_every_message_is_written_at_its_planned_time() -> None:
    """part origin + offset, straight from the compiled schedule; the first scene's entry is
    the session's opening state, every later message is written at its moment."""
    timeline = compile_show(TIMED)
    clock = FakeClock()
    sink, journal = RecordingSink(clock), MemoryJournal()
    origin = clock.monotonic()
    expected = [
        (origin + occ.start + action.offset, dict(action.message))
        for occ in timeline.schedule()
        if occ.start is not None
        for action in occ.scene.actions
        if action.kind == "send" and (occ.scene.index > 0 or action.offset > 0)
    ]
    assert len(expected) > 10  # keyframe samples, the travel stop and two entries
    player = Player(timeline, sink, clock=clock, journal=journal, watchdog_period=3600)
    run = asyncio.create_task(player.run())
    await until(lambda: sink.opened)
    assert sink.opened[0][0] == origin
    assert prompts_of(sink.opened[0][2]) == ["a quiet harbour"]
    await clock.advance(9)
    assert await asyncio.wait_for(run, 5) == 0  # end: stop, 4 + 3 + 2 s after the start
    assert [at for at, _ in sink.sent] == [at for at, _ in expected]
    assert [dict(m) for _, m in sink.sent] == [m for _, m in expected]
    sends = [r for r in journal.records if r["kind"] == "send"]
    assert len(sends) == len(expected)
    assert all(r["sent_at"] == pytest.approx(r["planned_at"], abs=1e-9) for r in sends)
    assert sink.closed


async def test_each_timed_message_is_made_before_its_moment() -> None:
    """The message written at the hand-over is the one the sink prepared before the wait."""
    clock = FakeClock()
    sink = RecordingSink(clock)
    async with playing(Player(compile_show(TIMED), sink, clock=clock, watchdog_period=3600)):
        await until(lambda: sink.opened)
        await clock.advance(8.5)
    assert sink.sent
    prepared = {id(message): at for at, message in sink.prepared}
    for at, message in sink.sent:
        assert isinstance(message, Wire)
        assert prepared[id(message)] < at


CUES = """
title: cues
defaults: {pipeline: controller-viz}
scenes:
  - {name: preshow, prompts: an empty harbour, duration: 2}
  - name: drop
    prompts: a neon wave
    cue: true
    pre_wait: 1.5
    travel: [{at: 1, prompts: the wave breaking}]
"""


async def test_a_cue_scene_starts_pre_wait_after_go() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    player = Player(compile_show(CUES), sink, clock=clock, watchdog_period=3600)
    origin = clock.monotonic()
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(5)
        assert sink.sent == []  # the preshow holds; nothing goes out while the show waits
        assert player.status().mode == Mode.WAITING
        player.go()
        await clock.advance(3)
    drop = [(at - origin, prompts_of(m)) for at, m in sink.sent]
    assert drop == [(6.5, ["a neon wave"]), (7.5, ["the wave breaking"])]


PREROLL = """
title: preroll
defaults: {pipeline: controller-viz}
scenes:
  - name: doors
    prompts: a curtain
    cue: true
    travel: [{at: 2, prompts: the curtain rising}]
"""


async def test_a_first_cue_scene_opens_with_its_look_and_waits_for_go() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    player = Player(compile_show(PREROLL), sink, clock=clock, watchdog_period=3600)
    origin = clock.monotonic()
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(10)
        assert (player.status().scene, player.status().waiting_for) == (None, "go")
        player.go()
        await clock.advance(3)
        assert player.status().scene == "doors"
    assert [(at - origin, prompts_of(m)) for at, _, m in sink.opened] == [(0.0, ["a curtain"])]
    # The session shows the look already: GO sends nothing, the travel stop comes 2 s after it.
    assert [(at - origin, prompts_of(m)) for at, m in sink.sent] == [(12.0, ["the curtain rising"])]


TWO = """
title: two
defaults: {pipeline: controller-viz}
scenes:
  - {name: one, prompts: look one, duration: 4}
  - {name: two, prompts: look two, duration: 4}
  - {name: three, prompts: look three}
"""


async def test_a_hold_moves_the_rest_of_the_schedule_by_its_length() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    player = Player(compile_show(TWO), sink, clock=clock, watchdog_period=3600)
    origin = clock.monotonic()
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(1)
        player.hold()
        await until(lambda: player.status().mode == Mode.HOLD)
        await clock.advance(10)
        assert sink.sent == [] and player.status().position == pytest.approx(1.0)
        player.resume()
        await until(lambda: player.status().mode == Mode.PLAYING)
        await clock.advance(8)
    assert [(at - origin, prompts_of(m)) for at, m in sink.sent] == [
        (14.0, ["look two"]),
        (18.0, ["look three"]),
    ]


async def test_panic_freezes_at_once_and_resume_lets_go_where_it_stopped() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    player = Player(compile_show(TWO), sink, clock=clock, watchdog_period=3600)
    origin = clock.monotonic()
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(2)
        player.panic()
        await until(lambda: sink.sent)
        await clock.advance(3)
        player.resume()
        await until(lambda: len(sink.sent) == 2)
        await clock.advance(3)
    assert [(at - origin, m) for at, m in sink.sent[:2]] == [
        (2.0, {"paused": True}),
        (5.0, {"paused": False}),
    ]
    assert [(at - origin, prompts_of(m)) for at, m in sink.sent[2:]] == [(7.0, ["look two"])]


async def test_goto_sends_the_full_state_at_once_and_the_schedule_follows_from_there() -> None:
    clock = FakeClock()
    sink = RecordingSink(clock)
    player = Player(compile_show(TWO), sink, clock=clock, watchdog_period=3600)
    origin = clock.monotonic()
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(1.25)
        player.goto("two")
        await until(lambda: sink.sent)
        await clock.advance(5)
    (jump_at, jump), (next_at, nxt) = sink.sent
    assert jump_at - origin == 1.25
    assert prompts_of(jump) == ["look two"] and jump["transition"]["num_steps"] == 0
    assert (next_at - origin, prompts_of(nxt)) == (5.25, ["look three"])


async def test_the_watchdog_rebuilds_a_lost_session_at_the_shows_position() -> None:
    """A session that stops answering is switched anew, with the state where the show is."""
    clock = FakeClock()
    sink = RecordingSink(clock)
    player = Player(compile_show(TWO), sink, clock=clock, watchdog_period=0.5, health_period=2.0)
    origin = clock.monotonic()
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(5.2)  # in "two"
        sink.up, sink.problem = False, "data channel closed"
        await clock.advance(0.3)  # the next watchdog tick: 5.5 s
        await until(lambda: sink.switched)
        assert player.status().connection == LinkState.CONNECTED
    (at, chain, initial), = sink.switched
    assert at - origin == 5.5
    assert chain == ["controller-viz"] and prompts_of(initial) == ["look two"]
