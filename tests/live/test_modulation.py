"""The modulator on a FakeClock: mapped values on air once per tick, restored where a mapping ends,
resent after a scene entry, and the labels keyframes have."""

from __future__ import annotations

import asyncio

import pytest
from sinks import RecordingSink

from showrunner.live.inputs import InputKind, LiveInputs, fixed_beats
from showrunner.live.link import timed_update
from showrunner.live.modulation import LABEL, Modulator
from showrunner.live.player import Player
from showrunner.plan.compiler import compile_timeline
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, MemoryJournal, until

pytestmark = pytest.mark.anyio

SHOW = """
title: mod
bpm: 120
defaults: {pipeline: controller-viz, noise_scale: 0.4}
inputs:
  x: {value: 0.5}
  wave: {lfo: {shape: saw, every: 4}}
end: stop
scenes:
  - name: a
    prompts: one
    duration: 2
    modulate:
      noise_scale: {input: x, range: [0, 1]}
  - name: b
    prompts: two
    duration: 2
    modulate:
      noise_scale: off
      vace_context_scale: {input: wave, range: [0, 2]}
"""


def test_modulation_gives_way_to_entries_like_keyframes() -> None:
    assert timed_update(LABEL) and timed_update(f"keyframe + {LABEL}")


async def test_mapped_values_go_on_air_and_come_back_where_the_mapping_ends() -> None:
    clock = FakeClock()
    sink, journal = RecordingSink(clock), MemoryJournal()
    timeline = compile_timeline(load_text(SHOW, path="mod.yaml").show)
    player = Player(timeline, sink, clock=clock, journal=journal, watchdog_period=3600)
    origin = clock.monotonic()
    inputs = LiveInputs(lambda: player.timeline.show.inputs, fixed_beats(120, origin, clock.monotonic),
                        clock.monotonic)
    modulator = Modulator(player, inputs, clock, interval=lambda: 0.5)
    run = asyncio.create_task(player.run())
    ticking = asyncio.create_task(modulator.run())
    await until(lambda: sink.up)
    await clock.advance(0.5)
    assert inputs.set("x", 0.8, InputKind.OSC) and not inputs.set("wave", 0.1, InputKind.OSC)
    assert not inputs.set("nope", 0.1, InputKind.OSC) and not inputs.set("x", float("nan"), InputKind.OSC)
    await clock.advance(1.0)
    await clock.advance(1.0)  # into b at 2.0
    await clock.advance(1.5)
    ticking.cancel()
    await clock.advance(1.0)
    assert await asyncio.wait_for(run, 5) == 0
    mods = [(round(at - origin, 3), m) for at, m in sink.sent
            if "noise_scale" in m or "vace_context_scale" in m]
    noise = [(t, m["noise_scale"]) for t, m in mods if "noise_scale" in m]
    assert noise[:2] == [(0.5, 0.5), (1.0, 0.8)]  # the default value, then the OSC one
    assert (2.0, 0.4) in noise or (2.5, 0.4) in noise  # b switched it off: the tracked 0.4 again
    assert all(v == 0.4 for t, v in noise if t >= 2.5)
    vace = [(t, m["vace_context_scale"]) for t, m in mods if "vace_context_scale" in m]
    # a saw over 4 beats at 120 bpm (2 s): 2 * (t % 2) / 2
    assert vace and all(v == pytest.approx(2 * ((t % 2.0) / 2.0), abs=1e-3) for t, v in vace)
    labels = {r["label"] for r in journal.records if r["kind"] == "send"}
    assert LABEL in labels
    assert inputs.refused == 3 and inputs.meters()[0] == {"name": "x", "value": 0.8, "kind": "osc",
                                                           "age": inputs.meters()[0]["age"]}
