"""The timing pass: which times follow a live tempo (musical time)."""

from __future__ import annotations

from showrunner.plan.compiler import compile_timeline
from showrunner.show.load import load_text

SHOW = """
title: musical
bpm: 120
quantize: bar
defaults: {pipeline: controller-viz}
scenes:
  - {name: a, prompts: one, duration: 4 bars}
  - {name: b, prompts: two, duration: 6}
  - {name: c, prompts: three, at: 16 bars, quantize: beat}
  - {name: d, prompts: four, after: a}
  - {name: e, prompts: five, cue: true, keyframes: {noise_scale: [{at: 2 beats, value: 0.5}]}}
  - {name: f, prompts: six, cue: drop, quantize: "off", duration: 3}
  - {name: g, prompts: seven, after: {scene: f, offset: 2}}
"""


def test_what_follows_the_tempo_and_the_grids() -> None:
    timeline = compile_timeline(load_text(SHOW, path="musical.yaml").show)
    flags = {s.name: (s.follows_tempo, s.start_follows_tempo, s.quantize) for s in timeline.scenes}
    assert flags == {
        "a": (True, False, 4.0),  # its length is in bars; the show's start places it
        "b": (False, True, 4.0),  # starts when a's bars are over
        "c": (False, True, 1.0),  # `at` in bars; its own grid
        "d": (False, True, 4.0),  # after a, whose length is in bars
        "e": (True, False, 4.0),  # no duration, a keyframe in beats; a cue places it
        "f": (False, False, None),  # a cue places it; not quantized
        "g": (False, False, 4.0),  # after f (seconds) plus 2 seconds
    }
    # The nominal timing is the same as written in seconds at 120 bpm.
    assert [s.at for s in timeline.scenes[:3]] == [0.0, 8.0, 32.0]
