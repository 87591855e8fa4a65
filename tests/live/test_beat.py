"""Musical time in the live player (live/beat.py) on a FakeClock: times in bars and beats follow
a live tempo, seconds stay seconds, quantized GO / cue / GOTO land on the next boundary, sent
one chunk interval ahead, and the journal says how each landed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sinks import RecordingSink

from showrunner.live.beat import Beat, ChunkTimed
from showrunner.live.player import Player
from showrunner.music.reading import TempoReading
from showrunner.music.tempo import TempoMap
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, MemoryJournal, until

pytestmark = pytest.mark.anyio


class ChunkSink(RecordingSink):
    """A recording `Sink` that also says its chunk interval (the lead), as ScopeSession does."""

    def __init__(self, clock: FakeClock, chunk_interval: float = 0.0) -> None:
        super().__init__(clock)
        self._chunk_interval = chunk_interval

    @property
    def chunk_interval(self) -> float:
        return self._chunk_interval


def compile_show(text: str) -> Timeline:
    return compile_timeline(load_text(text, path="beat.yaml").show, source="beat.yaml")


def entries(sink: ChunkSink, origin: float) -> list[tuple[float, str]]:
    """(seconds after `origin`, first prompt) of every message that set prompts."""
    out = []
    for at, message in sink.sent:
        if "prompts" in message or "transition" in message:
            shown = message.get("transition", message)
            targets = shown.get("target_prompts", shown.get("prompts"))
            out.append((round(at - origin, 6), targets[0]["text"]))
    return out


BARS = """
title: bars
bpm: 120
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: a, prompts: one, duration: 2 bars}
  - {name: b, prompts: two, duration: 2 bars}
  - {name: c, prompts: three, duration: 2 bars}
  - {name: d, prompts: four, duration: 10}
"""


async def play(text: str, *, tempo: TempoMap | None = None, lead: float = 0.0,
               script: Any = None, seconds: float = 60.0,
               beat: float = 0.0) -> tuple[ChunkSink, MemoryJournal, float]:
    """Play `text` on a FakeClock for `seconds`; a `tempo` map gets 120 bpm at `beat` first."""
    clock = FakeClock()
    sink, journal = ChunkSink(clock, lead), MemoryJournal()
    origin = clock.monotonic()
    if tempo is not None:
        tempo.feed(TempoReading(120.0, beat, origin, source="test"))
    player = Player(compile_show(text), sink, clock=clock, journal=journal, watchdog_period=3600,
                    tempo=tempo)
    run = asyncio.create_task(player.run())
    await until(lambda: sink.opened)
    if script is not None:
        await script(player, clock, origin)
    await clock.advance(origin + seconds - clock.monotonic())
    player.quit()
    assert await asyncio.wait_for(run, 5) == 0
    return sink, journal, origin


def test_the_test_sink_has_a_chunk_interval() -> None:
    assert isinstance(ChunkSink(FakeClock()), ChunkTimed)


async def test_bars_at_the_show_bpm_play_as_the_same_show_in_seconds() -> None:
    sink, _, origin = await play(BARS)
    seconds = BARS.replace("2 bars", "4").replace("bpm: 120\n", "")
    sink_s, _, origin_s = await play(seconds)
    assert entries(sink, origin) == [(4.0, "two"), (8.0, "three"), (12.0, "four")]
    assert entries(sink, origin) == entries(sink_s, origin_s)


async def test_scene_starts_in_bars_follow_a_tempo_change_and_seconds_stay_seconds() -> None:
    async def speed_up(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(3.0)  # beat 6 of scene a (2 bars = 8 beats)
        player.tempo_reading(TempoReading(128.0, 6.0, origin + 3.0, source="test"))

    sink, journal, origin = await play(BARS, tempo=TempoMap(), script=speed_up)
    beat = 60.0 / 128.0
    b, c, d = 3.0 + 2 * beat, 3.0 + 10 * beat, 3.0 + 18 * beat
    assert entries(sink, origin) == [(pytest.approx(b), "two"), (pytest.approx(c), "three"),
                                     (pytest.approx(d), "four")]
    end = [r for r in journal.records if r["kind"] == "end"]
    assert end and end[0]["at"] == pytest.approx(journal.records[0]["at"] + d + 10.0, abs=1e-3)


async def test_starts_that_follow_the_tempo_go_out_one_chunk_ahead_and_say_they_were_on_time() -> None:
    sink, journal, origin = await play(BARS, lead=0.05)
    assert entries(sink, origin) == [(3.95, "two"), (7.95, "three"), (11.95, "four")]
    scenes = [r for r in journal.records if r["kind"] == "scene" and r["scene"] in ("b", "c", "d")]
    assert [(r["on_beat"], r["beat_ms"], r["beat"]) for r in scenes] == [
        ("on time", 0.0, 8.0), ("on time", 0.0, 16.0), ("on time", 0.0, 24.0)
    ]


KEYS = """
title: keys
bpm: 120
defaults: {pipeline: controller-viz, noise_scale: 0.2}
scenes:
  - name: a
    prompts: one
    duration: 4 bars
    keyframes:
      noise_scale: [{at: 0, value: 0.2}, {at: 8 beats, value: 0.8}]
  - name: b
    prompts: two
    duration: 8
    keyframes:
      noise_scale: [{at: 0, value: 0.2}, {at: 4, value: 0.8}]
"""


async def test_keyframes_in_beats_stretch_and_keyframes_in_seconds_do_not() -> None:
    async def half_time(player: Player, clock: FakeClock, origin: float) -> None:
        player.tempo_reading(TempoReading(60.0, 0.0, origin, source="test"))

    sink, _, origin = await play(KEYS, tempo=TempoMap(), script=half_time)
    peaks = [round(at - origin, 6) for at, m in sink.sent if m.get("noise_scale") == 0.8]
    # 8 beats at 60 bpm: 8 s (4 s as written at 120); scene b starts after 16 beats = 16 s,
    # and its keyframe in seconds peaks 4 s later.
    assert peaks == [pytest.approx(8.0), pytest.approx(20.0)]


QUANTIZED = """
title: quantized
bpm: 120
quantize: bar
defaults: {pipeline: controller-viz}
scenes:
  - {name: intro, prompts: one}
  - {name: drop, prompts: two, cue: true}
  - {name: breakdown, prompts: three, cue: drop2}
  - {name: outro, prompts: four, cue: true, quantize: 2 bars}
"""


async def test_quantized_go_and_cue_land_on_the_next_bar_one_chunk_ahead() -> None:
    async def press(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(5.3)  # bar 2 + 1.3 beats: the next bar line is at 6.0 s
        player.go()
        await clock.advance(1.5)  # 6.8 s
        player.cue("drop2")  # next bar line: 8.0 s

    sink, journal, origin = await play(QUANTIZED, lead=0.05, script=press, seconds=12)
    assert entries(sink, origin) == [(5.95, "two"), (7.95, "three")]
    scenes = [r for r in journal.records if r["kind"] == "scene" and r["scene"] != "intro"]
    assert [(r["scene"], r["beat"], r["on_beat"]) for r in scenes] == [
        ("drop", 12.0, "on time"), ("breakdown", 16.0, "on time")
    ]
    cues = [r for r in journal.records if r["kind"] == "cue"]
    assert [r["beat"] for r in cues] == [12.0, 16.0]


async def test_a_quantized_goto_waits_for_its_boundary_while_the_scene_plays_on() -> None:
    async def jump(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(1.0)
        player.goto("outro")  # 2 bars: the next line of two bars is beat 8, at 4.0 s
        await clock.advance(1.0)
        assert player.status().scene == "intro"

    sink, journal, origin = await play(QUANTIZED, lead=0.05, script=jump, seconds=6)
    assert entries(sink, origin)[-1] == (3.95, "four")
    goto = [r for r in journal.records if r["kind"] == "scene" and r["scene"] == "outro"]
    assert (goto[0]["beat"], goto[0]["on_beat"], goto[0]["label"]) == (8.0, "on time", "goto")
    send = [r for r in journal.records if r["kind"] == "send" and r["scene"] == "outro"]
    assert send[0]["sent_at"] == pytest.approx(send[0]["planned_at"], abs=1e-6)  # planned a lead early
    answers = [r for r in journal.records if r["kind"] == "operator" and r["label"] == "goto"]
    assert answers and answers[0]["at"] == pytest.approx(journal.records[0]["at"] + 3.95, abs=1e-3)


async def test_a_quantized_goto_follows_a_tempo_change_while_it_waits() -> None:
    async def jump(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(1.0)
        player.goto("outro")  # beat 8 at 120 bpm: 4.0 s
        await clock.advance(1.0)  # beat 4
        player.tempo_reading(TempoReading(60.0, 4.0, origin + 2.0, source="test"))  # beat 8: 6.0 s

    sink, _, origin = await play(QUANTIZED, tempo=TempoMap(), script=jump, seconds=8)
    assert entries(sink, origin)[-1] == (pytest.approx(6.0), "four")


def test_without_bpm_nothing_is_musical() -> None:
    timeline = compile_show("title: t\ndefaults: {pipeline: controller-viz}\n"
                            "scenes: [{name: a, duration: 2}]")
    player = Player(timeline, ChunkSink(FakeClock()), clock=FakeClock())
    beat = player.beat
    assert isinstance(beat, Beat) and beat.bpm is None
    assert beat.later(10.0, 2.0, True) == 12.0
    assert beat.landing(10.0, 4.0) is None


SECONDS = """
title: seconds
bpm: 120
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: a, prompts: one, duration: 4}
  - {name: b, prompts: two, duration: 4, keyframes: {noise_scale: [{at: 0, value: 0.1}, {at: 2, value: 0.9}]}}
  - {name: c, prompts: three, at: 10, duration: 2}
"""


async def test_a_show_in_seconds_ignores_the_tempo() -> None:
    async def tempo_changes(player: Player, clock: FakeClock, origin: float) -> None:
        for k, bpm in enumerate((90.0, 140.0, 60.0)):
            await clock.advance(1.5)
            now = clock.monotonic()
            player.tempo_reading(TempoReading(bpm, player.beat.tempo.beat_at(now) + 0.5 * k, now))

    sink, _, origin = await play(SECONDS, tempo=TempoMap(), lead=0.05, script=tempo_changes)
    assert entries(sink, origin) == [(4.0, "two"), (10.0, "three")]
    peaks = [round(at - origin, 6) for at, m in sink.sent if m.get("noise_scale") == 0.9]
    assert peaks == [6.0]


async def test_a_quantized_go_on_a_timed_scene_and_quantize_off() -> None:
    text = """
title: timed go
bpm: 120
quantize: 2 beats
defaults: {pipeline: controller-viz}
scenes:
  - {name: a, prompts: one, duration: 8}
  - {name: b, prompts: two, duration: 8}
  - {name: c, prompts: three, cue: true, quantize: "off"}
"""

    async def press(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(2.3)
        player.go()  # b is timed: it lands on the next 2-beat line, 3.0 s
        await clock.advance(1.0)
        player.go()  # c is not quantized: at once (3.3 s)

    sink, journal, origin = await play(text, lead=0.05, script=press, seconds=5)
    assert entries(sink, origin) == [(2.95, "two"), (3.3, "three")]
    scenes = {r["scene"]: r for r in journal.records if r["kind"] == "scene"}
    assert scenes["b"]["on_beat"] == "on time" and "on_beat" not in scenes["c"]


async def test_a_quantized_go_on_a_first_scene_that_waits_starts_the_grid() -> None:
    text = """
title: preroll
bpm: 120
quantize: bar
defaults: {pipeline: controller-viz}
scenes:
  - {name: a, prompts: one, cue: true, duration: 1 bar}
  - {name: b, prompts: two, duration: 1 bar}
"""

    async def press(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(3.3)
        player.go()

    sink, journal, origin = await play(text, lead=0.05, script=press, seconds=8)
    # GO at 3.3 s starts bar 1 one lead later (3.35 s); b enters one bar on, a lead early.
    assert entries(sink, origin)[-1] == (pytest.approx(3.35 + 2.0 - 0.05), "two")
    scenes = [r for r in journal.records if r["kind"] == "scene"]
    assert [(r["scene"], r.get("beat"), r.get("on_beat")) for r in scenes] == [
        ("a", 0.0, "on time"), ("b", 4.0, "on time")
    ]


async def test_an_edit_of_bpm_takes_over_from_the_moment_it_arrives() -> None:
    async def faster(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(3.0)  # beat 6 of a
        player.replace_timeline(compile_show(BARS.replace("bpm: 120", "bpm: 160")))
        await clock.advance(0)

    sink, _, origin = await play(BARS, script=faster, seconds=12)
    beat = 60.0 / 160.0
    assert entries(sink, origin)[:2] == [(pytest.approx(3.0 + 2 * beat), "two"),
                                         (pytest.approx(3.0 + 10 * beat), "three")]


TRANSITIONS = """
title: transitions
bpm: 120
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: a, prompts: one, duration: 1 bar}
  - {name: b, prompts: two, duration: 1 bar, transition: 1 bar}
  - {name: c, prompts: three, duration: 1 bar, transition: 1s}
"""


async def test_transitions_in_bars_take_more_chunks_at_a_slower_tempo() -> None:
    timeline = compile_show(TRANSITIONS)
    steps = {s.name: s.entry.message["transition"]["num_steps"] for s in timeline.scenes[1:] if s.entry}

    async def half_time(player: Player, clock: FakeClock, origin: float) -> None:
        player.tempo_reading(TempoReading(60.0, 0.0, origin, source="test"))

    sink, _, _ = await play(TRANSITIONS, tempo=TempoMap(), script=half_time, seconds=20)
    sent = {m["transition"]["target_prompts"][0]["text"]: m["transition"]["num_steps"]
            for _, m in sink.sent if "transition" in m}
    assert steps["b"] > 1 and sent["two"] == 2 * steps["b"]  # 1 bar at 60 bpm: twice as long
    assert sent["three"] == steps["c"]  # one second stays one second


async def test_a_waiting_goto_is_answered_when_replaced_or_when_the_run_ends() -> None:
    clock = FakeClock()
    sink = ChunkSink(clock)
    player = Player(compile_show(QUANTIZED), sink, clock=clock, watchdog_period=3600)
    run = asyncio.create_task(player.run())
    await until(lambda: sink.opened)
    await clock.advance(1.0)
    first = player.goto("outro")
    await clock.advance(0.5)
    second = player.goto("breakdown")  # a bar: lands at 2.0 s
    await clock.advance(0.2)
    assert isinstance(first, asyncio.Future) and isinstance(second, asyncio.Future)
    assert first.done() and (first.result().outcome, first.result().reason) == ("ignored", "replaced")
    assert not second.done()
    player.quit()
    assert await asyncio.wait_for(run, 5) == 0
    assert (second.result().outcome, second.result().reason) == ("ignored", "stopped")


async def test_quantized_timed_starts_in_seconds_wait_for_the_next_bar() -> None:
    text = """
title: snapped
bpm: 120
quantize: bar
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: a, prompts: one, duration: 3}
  - {name: b, prompts: two, duration: 3}
  - {name: c, prompts: three, duration: 1, quantize: "off"}
  - {name: d, prompts: four, at: 9.5, duration: 1}
"""
    sink, journal, origin = await play(text, lead=0.05, seconds=14)
    # b: 3 s -> bar line at 4 s; c: 3 s after b, not quantized (7 s); d: at 9.5 -> 10 s.
    assert entries(sink, origin) == [(3.95, "two"), (7.0, "three"), (9.95, "four")]
    scenes = {r["scene"]: r for r in journal.records if r["kind"] == "scene"}
    assert (scenes["b"]["beat"], scenes["d"]["beat"]) == (8.0, 20.0)
    assert "beat" not in scenes["c"]


async def test_starts_in_bars_under_a_quantize_stay_on_their_bar_through_a_ramp() -> None:
    """Readings that arrive between a start's send (a lead early) and its moment move the map a
    little under it; the next start must still take the next bar line, not the one after."""
    text = BARS.replace("bpm: 120\n", "bpm: 120\nquantize: bar\n")

    async def ramp(player: Player, clock: FakeClock, origin: float) -> None:
        beat, bpm, now = 0.0, 120.0, origin
        for _ in range(200):  # 120 -> 140 bpm, a reading every 50 ms
            await clock.advance(0.05)
            beat += bpm / 60.0 * 0.05
            now += 0.05
            bpm = min(140.0, bpm + 0.1)
            player.tempo_reading(TempoReading(bpm, beat, now, source="test"))

    _, journal, _ = await play(text, tempo=TempoMap(), lead=0.05, script=ramp, seconds=30)
    beats = [r["beat"] for r in journal.records if r["kind"] == "scene" and "beat" in r]
    assert beats == [8.0, 16.0, 24.0]


async def test_a_hold_moves_musical_time_by_the_time_held() -> None:
    async def hold(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(1.0)
        player.hold()
        await clock.advance(1.5)
        player.resume()

    sink, _, origin = await play(BARS, tempo=TempoMap(), script=hold, seconds=16)
    assert entries(sink, origin) == [(pytest.approx(5.5), "two"), (pytest.approx(9.5), "three"),
                                     (pytest.approx(13.5), "four")]


@pytest.mark.parametrize("restart_at", [0.0, 1612.0], ids=["back-to-0", "ahead"])
async def test_a_transport_restart_renumbers_the_beats_and_the_show_goes_on(restart_at: float) -> None:
    """A source whose beat count jumps while the show plays (MIDI start, a new Link session,
    Scope's transport restarted), here from beat 806 to 0 or ahead: starts counted in bars from
    before the jump keep going and land on the next bar line of the new count (the show used to
    wait for beat 808 of a count that had restarted at 0, or skip past it)."""
    async def restart(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(3.0)
        player.tempo_reading(TempoReading(120.0, restart_at, origin + 3.0, source="test"))

    # The source ran before the show: its count is at beat 800 when the show starts.
    sink, journal, origin = await play(BARS, tempo=TempoMap(), lead=0.05, script=restart,
                                       seconds=33, beat=800.0)
    # The restart makes 3.0 s a downbeat: the next bar lines are at 5.0, 7.0, 9.0 s...
    assert entries(sink, origin) == [(4.95, "two"), (8.95, "three"), (12.95, "four")]
    scenes = [r for r in journal.records if r["kind"] == "scene" and r["scene"] != "a"]
    assert [(r["beat"], r["on_beat"]) for r in scenes] == [
        (restart_at + 4.0, "on time"), (restart_at + 12.0, "on time"), (restart_at + 20.0, "on time")
    ]


async def test_a_waiting_quantized_goto_lands_on_the_new_grid_after_a_restart() -> None:
    async def jump(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(1.0)
        player.goto("outro")  # 2 bars: beat 8, at 4.0 s
        await clock.advance(1.0)  # beat 4: the source jumps to beat 101
        player.tempo_reading(TempoReading(120.0, 101.0, origin + 2.0, source="test"))

    sink, journal, origin = await play(QUANTIZED, tempo=TempoMap(), lead=0.05, script=jump, seconds=6)
    # As if pressed at the jump: the next two-bar line of the new count is beat 104, at 3.5 s.
    assert entries(sink, origin)[-1] == (pytest.approx(3.45), "four")
    goto = [r for r in journal.records if r["kind"] == "scene" and r["scene"] == "outro"]
    assert (goto[0]["beat"], goto[0]["on_beat"]) == (104.0, "on time")


async def test_a_quantized_go_pressed_before_a_restart_lands_on_the_new_bar() -> None:
    async def press(player: Player, clock: FakeClock, origin: float) -> None:
        await clock.advance(0.5)
        player.go()  # the drop waits for its cue: the next bar line, beat 4 at 2.0 s
        await clock.advance(0.5)  # beat 2: the source jumps to beat 51 (a bar line at beat 52)
        player.tempo_reading(TempoReading(120.0, 51.0, origin + 1.0, source="test"))

    sink, journal, origin = await play(QUANTIZED, tempo=TempoMap(), lead=0.05, script=press, seconds=4)
    assert entries(sink, origin)[-1] == (pytest.approx(1.45), "two")  # beat 52 at 1.5 s
    drop = [r for r in journal.records if r["kind"] == "scene" and r["scene"] == "drop"]
    assert (drop[0]["beat"], drop[0]["on_beat"]) == (52.0, "on time")
