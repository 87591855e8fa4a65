"""The live player against the real simulator over loopback (docs/scope.md §2.6, §3.2, §4.2-§4.4).

Each test drives a `ScopeSession` (the real client) through the `Sink` protocol and checks what
the simulator received. Where time itself is the subject (opening hours, resuming after a
restart) a FakeClock moves the show while the simulator stays real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from showrunner.errors import PositionError, UnknownSceneError
from showrunner.live.hours import OpeningHours
from showrunner.live.journal import Journal, read_journal
from showrunner.live.player import Player, Sink, StartPoint, start_point
from showrunner.live.resume import read_state
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.scope.client import ScopeClient, ScopeSession
from showrunner.show.load import load_text
from showrunner.sim import Simulator
from showrunner.testing import FakeClock, until

pytestmark = pytest.mark.webrtc


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "j.jsonl") as opened:
        yield opened


def compile_show(text: str) -> Timeline:
    result = load_text(text, path="test.yaml")
    return compile_timeline(result.show, source="test.yaml")


@contextlib.asynccontextmanager
async def session_for(sim: Simulator) -> AsyncIterator[ScopeSession]:
    async with ScopeClient(sim.url) as client, ScopeSession(client) as session:
        yield session


@contextlib.asynccontextmanager
async def playing(player: Player) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(player.run())
    try:
        yield task
    finally:
        player.quit()
        await asyncio.wait_for(task, 10)


def data(sim: Simulator) -> list[dict[str, Any]]:
    return [r["message"] for r in sim.records if r["kind"] == "data"]


def offers(sim: Simulator) -> list[dict[str, Any]]:
    return [
        r["json"]["initialParameters"]
        for r in sim.records
        if r["kind"] == "http" and r["path"] == "/api/v1/webrtc/offer" and r["method"] == "POST"
    ]


def prompts_of(message: dict[str, Any]) -> list[str]:
    if "transition" in message:
        return [p["text"] for p in message["transition"]["target_prompts"]]
    return [p["text"] for p in message.get("prompts", [])]


@pytest.mark.anyio
async def test_scope_session_is_a_sink() -> None:
    async with ScopeClient("http://127.0.0.1:9") as client:
        assert isinstance(ScopeSession(client), Sink)


CUES = """
title: cues
defaults: {pipeline: controller-viz, noise_scale: 0.3}
scenes:
  - {name: intro, prompts: a quiet harbour, duration: 0.3}
  - {name: storm, prompts: a storm over the harbour, cue: true, noise_scale: 0.6}
  - {name: calm, prompts: the harbour after the storm, cue: true}
"""


@pytest.mark.anyio
async def test_cue_waits_for_go_and_go_advances_once(
    sim_thread: Simulator, tmp_path: Path, journal: Journal
) -> None:
    """A cue scene waits for GO; one GO fires exactly one cue (docs/scope.md §3.2: one message)."""
    timeline = compile_show(CUES)
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, journal=journal)
        async with playing(player):
            await until(lambda: player.status().mode == "waiting", 5)
            status = player.status()
            assert (status.scene, status.next, status.waiting_for) == ("intro", "storm", "go")
            await asyncio.sleep(0.3)
            assert not any("storm" in " ".join(prompts_of(m)) for m in data(sim_thread))
            player.go()
            player.go()  # the second press finds no cue waiting: storm fired, calm not yet due
            await until(lambda: player.status().scene == "storm")
            await until(lambda: any(prompts_of(m) == ["a storm over the harbour"]
                                    for m in data(sim_thread)))
            await asyncio.sleep(0.2)
            assert player.status().scene == "storm"
            assert player.status().waiting_for == "go"
    journal = read_journal(tmp_path / "j.jsonl")
    assert [r["scene"] for r in journal if r["kind"] == "cue"] == ["storm"]
    assert [r["label"] for r in journal if r["kind"] == "operator"].count("go ignored") == 1


@pytest.mark.anyio
async def test_back_restores_the_previous_scene_state_and_goto_jumps(
    sim_thread: Simulator,
) -> None:
    """BACK and GOTO send the target's full tracked state, not a replay (§8-G: prompts as a
    0-step transition, plus every persistent parameter)."""
    timeline = compile_show(CUES)
    async with session_for(sim_thread) as session:
        player = Player(timeline, session)
        with pytest.raises(UnknownSceneError):
            player.goto("nowhere")
        async with playing(player):
            await until(lambda: player.status().mode == "waiting")
            player.go()
            await until(lambda: player.status().scene == "storm")
            await until(lambda: any(m.get("noise_scale") == 0.6 for m in data(sim_thread)))
            before = len(data(sim_thread))
            player.back()
            await until(lambda: len(data(sim_thread)) > before)
            restore = data(sim_thread)[before]
            assert prompts_of(restore) == ["a quiet harbour"]
            assert restore["transition"]["num_steps"] == 0
            assert restore["noise_scale"] == 0.3
            assert player.status().scene == "intro"
            before = len(data(sim_thread))
            player.goto("calm")
            await until(lambda: len(data(sim_thread)) > before)
            jump = data(sim_thread)[before]
            assert prompts_of(jump) == ["the harbour after the storm"]
            assert jump["noise_scale"] == 0.6  # tracked from storm, in file order
            assert player.status().scene == "calm"
            with pytest.raises(UnknownSceneError):
                Player(timeline, session).back()  # nothing played yet


SWITCH = """
title: switch
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: small, prompts: a lantern, duration: 0.4}
  - {name: large, prompts: a lighthouse, duration: 0.4, load: {height: 256, width: 256}}
"""


@pytest.mark.anyio
async def test_pipeline_switch_closes_loads_and_offers_again(
    sim_thread: Simulator, tmp_path: Path, journal: Journal
) -> None:
    """A changed load switches pipelines: close -> load -> new offer (§4.2), gap journaled."""
    timeline = compile_show(SWITCH)
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, journal=journal)
        assert await asyncio.wait_for(player.run(), 10) == 0
    calls = [
        (r["method"], r["path"].rsplit("/", 1)[0] if "offer/" in r["path"] else r["path"])
        for r in sim_thread.records
        if r["kind"] == "http" and r["method"] in ("POST", "DELETE")
    ]
    assert calls == [
        ("POST", "/api/v1/pipeline/load"),
        ("POST", "/api/v1/webrtc/offer"),
        ("DELETE", "/api/v1/webrtc/offer"),
        ("POST", "/api/v1/pipeline/load"),
        ("POST", "/api/v1/webrtc/offer"),
        ("DELETE", "/api/v1/webrtc/offer"),
    ]
    assert prompts_of(offers(sim_thread)[1]) == ["a lighthouse"]
    switch = [r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "switch"]
    assert len(switch) == 1 and switch[0]["scene"] == "large" and switch[0]["gap"] > 0


LOOP = """
title: installation
defaults: {pipeline: controller-viz}
loop: forever
hours:
  timezone: UTC
  open: [{start: "10:00", end: "18:00"}]
scenes:
  - {name: a, prompts: look a, duration: 10}
  - {name: b, prompts: look b, duration: 10}
  - {name: c, prompts: look c, duration: 10}
"""


@pytest.mark.anyio
async def test_closed_hours_pause_and_reopen_at_the_wall_clock_position(
    sim_thread: Simulator, tmp_path: Path, journal: Journal
) -> None:
    """Closing sends `paused: true` (§3.2 step 2); opening resumes where the loop would be had
    it played all along, with the full state and `paused: false`."""
    timeline = compile_show(LOOP)
    assert timeline.show.hours is not None
    clock = FakeClock(datetime(2026, 1, 5, 17, 59, 45, tzinfo=UTC))
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, hours=OpeningHours(timeline.show.hours),
                        journal=journal, watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "a")
            await clock.advance(12)  # 17:59:57, scene b
            await until(lambda: any(prompts_of(m) == ["look b"] for m in data(sim_thread)))
            await clock.advance(5)  # 18:00:02: closed
            await until(lambda: {"paused": True} in data(sim_thread))
            assert player.status().mode == "closed"
            before = len(data(sim_thread))
            await clock.advance(3)  # still closed: nothing moves on
            await asyncio.sleep(0.2)
            assert len(data(sim_thread)) == before
            # Next morning at 10:00:00 the loop has run 16 h 0 min 15 s since its origin:
            # 57615 s = 1920 loops of 30 s + 15 s -> scene b, 5 s in.
            await clock.advance_to(datetime(2026, 1, 6, 10, 0, 0, tzinfo=UTC))
            await until(lambda: len(data(sim_thread)) > before)
            reopen = data(sim_thread)[before]
            assert prompts_of(reopen) == ["look b"]
            assert reopen["paused"] is False
            status = player.status()
            assert (status.scene, status.mode) == ("b", "playing")
            assert status.position == pytest.approx(5.0)
    kinds = [r["kind"] for r in read_journal(tmp_path / "j.jsonl")]
    assert kinds.index("closed") < kinds.index("open")


CLOSED_SCENE = """
title: installation with a night look
defaults: {pipeline: controller-viz}
hours:
  timezone: UTC
  open: [{start: "10:00", end: "18:00"}]
  closed: night
scenes:
  - {name: day, prompts: daylight, duration: 100}
  - {name: dusk, prompts: dusk light, duration: 100}
  - {name: night, prompts: the museum at night}
"""


@pytest.mark.anyio
async def test_closed_scene_plays_while_closed_and_the_show_resumes_where_it_stopped(
    sim_thread: Simulator,
) -> None:
    timeline = compile_show(CLOSED_SCENE)
    assert timeline.show.hours is not None
    clock = FakeClock(datetime(2026, 1, 5, 17, 59, 0, tzinfo=UTC))
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, hours=OpeningHours(timeline.show.hours),
                        watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "day")
            await clock.advance(70)  # 18:00:10 -> closed, 70 s into "day"
            await until(lambda: any(prompts_of(m) == ["the museum at night"]
                                    for m in data(sim_thread)))
            assert player.status().scene == "night"
            before = len(data(sim_thread))
            await clock.advance_to(datetime(2026, 1, 6, 10, 0, tzinfo=UTC))
            await until(lambda: len(data(sim_thread)) > before)
            assert prompts_of(data(sim_thread)[before]) == ["daylight"]
            status = player.status()
            assert status.scene == "day"
            assert status.position == pytest.approx(60.0)  # not a show that loops: it waited


RESUME = """
title: resumable
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: one, prompts: look one, duration: 60}
  - {name: two, prompts: look two, duration: 60}
  - {name: three, prompts: look three, duration: 60}
  - {name: four, prompts: look four, cue: true}
"""


@pytest.mark.anyio
async def test_restart_resumes_at_the_wall_clock_position(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """The state file written at each scene start brings a restarted run to origin + elapsed."""
    timeline = compile_show(RESUME)
    state_path = tmp_path / "state.json"
    clock = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, state_path=state_path,
                        show_path="/shows/resumable.yaml", show_hash="h1", watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "one")
            await clock.advance(65)  # into "two"
            await until(lambda: player.status().scene == "two")
            await until(lambda: (s := read_state(state_path)) is not None and s.scene == "two")
    saved = read_state(state_path)
    assert saved is not None and saved.part_start == 60.0
    # The machine reboots: the new run starts 80 s later on the wall clock (145 s after the
    # origin, i.e. "three" at +25 s).
    clock.jump_wall(80)
    before = len(offers(sim_thread))
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, state_path=state_path,
                        start=StartPoint(resume=saved), watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "three")
            assert player.status().position == pytest.approx(25.0)
            await until(lambda: len(offers(sim_thread)) > before)
            assert prompts_of(offers(sim_thread)[before]) == ["look three"]


@pytest.mark.anyio
async def test_restart_in_a_cue_part_waits_at_its_last_fired_cue(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    timeline = compile_show(RESUME)
    state_path = tmp_path / "state.json"
    clock = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, state_path=state_path, watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "one")
            await clock.advance(181)
            await until(lambda: player.status().mode == "waiting")
            player.go()
            await until(lambda: (s := read_state(state_path)) is not None and s.scene == "four")
    saved = read_state(state_path)
    assert saved is not None and (saved.cue, saved.cue_scene) == ("go", "four")
    clock.jump_wall(3600)
    before = len(offers(sim_thread))
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, start=StartPoint(resume=saved),
                        watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "four")
            assert prompts_of(offers(sim_thread)[before]) == ["look four"]


@pytest.mark.anyio
async def test_hold_stops_progression_and_panic_freezes(sim_thread: Simulator) -> None:
    timeline = compile_show(RESUME)
    clock = FakeClock()
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, watchdog_period=3600)
        async with playing(player):
            await until(lambda: player.status().scene == "one")
            player.hold()
            await until(lambda: player.status().mode == "hold")
            await clock.advance(100)
            assert player.status().scene == "one"
            player.panic()
            await until(lambda: {"paused": True} in data(sim_thread))
            assert player.status().mode == "panic"
            player.resume()
            await until(lambda: {"paused": False} in data(sim_thread))
            status = player.status()
            assert (status.mode, status.scene) == ("playing", "one")
            assert status.position == pytest.approx(0.0)  # the hold did not count
            await clock.advance(59)
            assert player.status().scene == "one"
            await clock.advance(2)
            await until(lambda: player.status().scene == "two")


def test_start_point_parsing() -> None:
    timeline = compile_show(RESUME)
    assert start_point(timeline) == StartPoint()
    assert start_point(timeline, start_scene="two") == StartPoint(scene=1)
    assert start_point(timeline, at="1:30") == StartPoint(at=90.0)
    assert start_point(timeline, at="75") == StartPoint(at=75.0)
    assert start_point(timeline, at="two+12") == StartPoint(scene=1, offset=12.0)
    assert start_point(timeline, at="three") == StartPoint(scene=2)
    with pytest.raises(UnknownSceneError):
        start_point(timeline, start_scene="x")
    with pytest.raises(PositionError):
        start_point(timeline, start_scene="one", at="1:00")
    for at in ("nowhere", "two+soon"):
        with pytest.raises(PositionError):
            start_point(timeline, at=at)


@pytest.mark.anyio
async def test_seek_opens_with_the_full_state_at_that_point(sim_thread: Simulator) -> None:
    """`--at two+12` opens the session with the resolved state there (§2.6), no replay."""
    timeline = compile_show(RESUME)
    clock = FakeClock()
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, watchdog_period=3600,
                        start=start_point(timeline, at="two+12"))
        async with playing(player):
            await until(lambda: player.status().scene == "two")
            assert player.status().position == pytest.approx(12.0)
            assert prompts_of(offers(sim_thread)[0]) == ["look two"]
            assert data(sim_thread) == []
            await clock.advance(48)
            await until(lambda: player.status().scene == "three")


LOOPS = """
title: loops
defaults: {pipeline: controller-viz, noise_scale: 0.1}
loop: 2
end: stop
sections: [{name: chorus, start: b, end: c, repeat: 2}]
scenes:
  - {name: a, prompts: look a, duration: 10, noise_scale: 0.5}
  - {name: b, prompts: look b, duration: 10}
  - {name: c, prompts: look c, duration: 10}
  - {name: d, prompts: look d, duration: 10}
"""


@pytest.mark.anyio
async def test_sections_and_show_loops_follow_the_schedule_with_full_state(
    sim_thread: Simulator, tmp_path: Path, journal: Journal
) -> None:
    """Repeats and loop restarts come from `Timeline.schedule()`; each jump sends the target's
    tracked state (noise_scale 0.5 from scene a), not the file-order difference."""
    timeline = compile_show(LOOPS)
    clock = FakeClock()
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, clock=clock, journal=journal, watchdog_period=3600)
        run = asyncio.create_task(player.run())
        await until(lambda: player.status().scene == "a")
        for _ in range(12):
            await clock.advance(10)
            await asyncio.sleep(0.05)  # let each scene's message reach the simulator
        assert await asyncio.wait_for(run, 10) == 0
    records = read_journal(tmp_path / "j.jsonl")
    scenes = [r for r in records if r["kind"] == "scene"]
    assert [r["scene"] for r in scenes] == list("abcbcd" * 2)
    origin = scenes[0]["planned_at"]
    assert [round(r["planned_at"] - origin, 6) for r in scenes] == [10.0 * i for i in range(12)]
    assert [r["how"] for r in scenes][:7] == ["start", "next", "next", "section", "next", "next",
                                              "loop"]
    sent = data(sim_thread)
    repeat_b = [m for m in sent if prompts_of(m) == ["look b"]]
    assert repeat_b[0] == {"transition": repeat_b[0]["transition"]}  # the file-order entry
    assert repeat_b[1]["noise_scale"] == 0.5 and repeat_b[1]["transition"]["num_steps"] >= 0
    restart_a = [m for m in sent if prompts_of(m) == ["look a"]]
    assert restart_a and restart_a[0]["noise_scale"] == 0.5


@pytest.mark.anyio
async def test_watchdog_reconnects_a_dropped_data_channel(
    sim_thread: Simulator, journal: Journal, tmp_path: Path
) -> None:
    """A closed data channel (§3.1) is found by the watchdog and the session is rebuilt with
    the current state; nobody has to press anything."""
    timeline = compile_show(RESUME)
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, journal=journal, watchdog_period=0.2)
        async with playing(player):
            await until(lambda: player.status().connection == "connected")
            await sim_thread.drop_data_channel()
            await until(lambda: len(offers(sim_thread)) == 2, 10)
            await until(lambda: player.status().connection == "connected")
            assert prompts_of(offers(sim_thread)[1]) == ["look one"]
    records = read_journal(tmp_path / "j.jsonl")
    assert any(r["kind"] == "watchdog" and r["label"] == "data channel closed" for r in records)
    assert any(r["kind"] == "reconnect" and r["label"] == "ok" for r in records)


NAMED = """
title: named cue
defaults: {pipeline: controller-viz}
scenes:
  - {name: calm, prompts: a calm sea, duration: 0.2}
  - {name: thunder, prompts: lightning over the sea, cue: thunder}
"""


@pytest.mark.anyio
async def test_a_named_cue_fires_on_its_name_or_go(sim_thread: Simulator, journal: Journal,
                                                   tmp_path: Path) -> None:
    timeline = compile_show(NAMED)
    async with session_for(sim_thread) as session:
        player = Player(timeline, session, journal=journal)
        async with playing(player):
            await until(lambda: player.status().waiting_for == "thunder")
            player.cue("rain")
            await asyncio.sleep(0.1)
            assert player.status().scene == "calm"
            player.cue("thunder")
            await until(lambda: player.status().scene == "thunder")
    labels = [r["label"] for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "operator"]
    assert "cue ignored" in labels
