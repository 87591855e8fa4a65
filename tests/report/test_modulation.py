"""The report draws modulation: the band a mapping can take, and a beat LFO's curve."""

from __future__ import annotations

from pathlib import Path

import pytest

from showrunner.plan.compiler import compile_timeline
from showrunner.report.html import render_html
from showrunner.report.modulation import modulated_targets, overlays
from showrunner.show.load import load_text

SHOW = """
title: bands
bpm: 120
defaults: {pipeline: controller-viz}
inputs:
  kick: {}
  wave: {lfo: {shape: square, every: 2}}
scenes:
  - name: a
    prompts: one
    duration: 4
    modulate:
      noise_scale: {input: kick, range: [0.8, 0.2]}
  - name: b
    prompts: two
    duration: 4
    modulate:
      noise_scale: {input: wave, range: [0.1, 0.5]}
  - name: c
    prompts: three
    duration: 2
    modulate:
      noise_scale: off
"""


def test_overlays_follow_the_mappings_in_force() -> None:
    timeline = compile_timeline(load_text(SHOW).show)
    p = timeline.one_pass()
    assert modulated_targets(timeline, p) == ["noise_scale"]
    ends = [item.end if item.end is not None else item.start for item in p.items]
    a, b = overlays(timeline, p, "noise_scale", ends)
    assert (a.t0, a.t1, a.low, a.high, a.points) == (0.0, 4.0, 0.2, 0.8, ())
    assert "kick (OSC / MIDI)" in a.title
    assert (b.t0, b.t1, b.low, b.high) == (4.0, 8.0, 0.1, 0.5)
    # a square over 2 beats at 120 bpm: 1 s cycles, high for the first half
    first = [v for t, v in b.points if 4.0 <= t < 4.49]
    second = [v for t, v in b.points if 4.51 <= t < 4.99]
    assert first and second
    assert all(v == pytest.approx(0.5) for v in first) and all(v == pytest.approx(0.1) for v in second)
    assert "square LFO every 2 beats" in b.title


def test_the_html_report_draws_bands_and_the_lfo(tmp_path: Path) -> None:
    timeline = compile_timeline(load_text(SHOW).show)
    html = render_html(timeline)
    assert html.count('class="mod-band"') == 2
    assert html.count('class="mod-lfo"') == 1
