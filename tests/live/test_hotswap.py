"""Hot edits that change meaning: a deleted playing scene, edited opening hours.

The player runs on a FakeClock into `SimSink` (the simulator's session merge, in-process), and
after each change Scope must hold what the new plan says.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from dry_live import SimSink, differences

from showrunner.live.hours import OpeningHours
from showrunner.live.player import Player
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, MemoryJournal

pytestmark = pytest.mark.anyio


def compile_text(text: str) -> Timeline:
    return compile_timeline(load_text(text, path="t.yaml").show, source="t.yaml")


async def started(timeline: Timeline, clock: FakeClock, **args: Any) -> tuple[Player, SimSink,
                                                                               MemoryJournal]:
    sink, journal = SimSink(), MemoryJournal()
    player = Player(timeline, sink, clock=clock, journal=journal, watchdog_period=1e6,
                    health_period=1e6, **args)
    player._task = asyncio.create_task(player.run())  # type: ignore[attr-defined]
    await clock.settle()
    return player, sink, journal


async def stopped(player: Player) -> None:
    player.quit()
    await asyncio.wait_for(player._task, 5)  # type: ignore[attr-defined]


CUED = """
title: cued
scenes:
  - {name: a, prompts: one, duration: 10, manage_cache: false}
  - {name: b, prompts: two, duration: 5, cue: true}
  - {name: c, prompts: three, duration: 5}
"""


async def test_deleting_the_playing_scene_waits_for_the_next_scenes_cue() -> None:
    clock = FakeClock()
    player, sink, journal = await started(compile_text(CUED), clock)
    await clock.advance(2)
    assert (player.status().scene, player.status().scenes) == ("a", ("a", "b", "c"))
    player.replace_timeline(compile_text(CUED.replace(
        "  - {name: a, prompts: one, duration: 10, manage_cache: false}\n", "")))
    await clock.advance(1)
    status = player.status()
    assert (status.waiting_for, status.next, status.mode) == ("go", "b", "waiting")
    assert status.scenes == ("b", "c")  # the list follows the new plan
    assert not any(r["kind"] == "scene" and r["scene"] == "b" for r in journal.records)
    player.go()
    await clock.advance(0.1)
    assert player.status().scene == "b"
    assert sink.session is not None
    assert differences(player.timeline.state_at_scene("b", 0.0), sink.session, {}, {}) == []
    await clock.advance(5)
    assert player.status().scene == "c"
    await stopped(player)


OPEN_ALL_DAY = """
title: hours
loop: forever
hours:
  timezone: UTC
  open: [{days: daily, start: "00:00", end: "23:59"}]
scenes:
  - {name: a, prompts: one, duration: 10}
  - {name: b, prompts: two, duration: 10}
"""


async def test_edited_hours_apply_while_playing() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    timeline = compile_text(OPEN_ALL_DAY)
    assert timeline.show.hours is not None
    player, sink, journal = await started(timeline, clock, hours=OpeningHours(timeline.show.hours))
    await clock.advance(1)
    assert player.status().mode == "playing"
    # closed from 10:00 on: the edit closes the show at once
    player.replace_timeline(compile_text(OPEN_ALL_DAY.replace('"00:00", end: "23:59"',
                                                              '"08:00", end: "10:00"')))
    await clock.advance(0.5)
    assert player.status().mode == "closed"
    assert [r["kind"] for r in journal.records].count("closed") == 1
    assert sink.session is not None and sink.session.paused
    # and the new hours' next opening (08:00 tomorrow) opens it again
    await clock.advance_to(datetime(2026, 1, 2, 8, 0, 1, tzinfo=UTC))
    assert player.status().mode == "playing"
    assert not sink.session.paused
    await stopped(player)
