"""Tap tempo: the median of recent intervals, a new count after a pause; the beat lands on taps."""

from __future__ import annotations

import asyncio

import pytest

from showrunner.music.reading import TempoReading
from showrunner.sync.tap import ManualTempo, TapDetector
from showrunner.testing import FakeClock


def test_two_taps_make_a_tempo_and_the_median_ignores_one_stray_tap() -> None:
    taps = TapDetector(reset_after=2.0)
    assert taps.tap(10.0) is None
    assert taps.tap(10.5) == pytest.approx(120.0)
    assert taps.tap(11.0) == pytest.approx(120.0)
    assert taps.tap(11.8) == pytest.approx(120.0)  # one late tap: intervals .5 .5 .8, median .5
    assert taps.tap(12.3) == pytest.approx(120.0)


def test_a_pause_starts_a_new_count() -> None:
    taps = TapDetector(reset_after=2.0)
    for at in (0.0, 0.5, 1.0):
        taps.tap(at)
    assert taps.tap(3.5) is None  # 2.5 s later: a new count
    assert taps.tap(3.9) == pytest.approx(150.0)  # only the new interval counts


def test_the_tempo_stays_in_range() -> None:
    taps = TapDetector(reset_after=10.0)
    taps.tap(0.0)
    assert taps.tap(5.0) == 20.0  # 12 bpm would be below the range
    taps.tap(5.2)
    assert taps.tap(5.4) == pytest.approx(300.0)  # intervals 5.0, 0.2, 0.2: median 0.2


@pytest.mark.anyio
async def test_manual_tempo_taps_set_tempo_and_beat_and_proposals_keep_the_beat() -> None:
    clock = FakeClock(monotonic=100.0)
    source = ManualTempo(120.0, clock.monotonic, name="tap", reset_after=2.0)
    readings: list[TempoReading] = []
    task = asyncio.create_task(source.run(readings.append))
    await asyncio.sleep(0)
    assert readings == [TempoReading(120.0, 0.0, 100.0, True, "tap")]
    await clock.advance(0.9)  # beat 1.8 at 120 bpm: a tap moves it to 2
    source.tap()
    assert (readings[-1].bpm, readings[-1].beat, readings[-1].at) == (120.0, 2.0, pytest.approx(100.9))
    await clock.advance(0.4)  # a second tap 0.4 s later: 150 bpm, beat 2.8 -> 3
    assert source.tap() == pytest.approx(150.0)
    last = readings[-1]
    assert (last.bpm, last.beat, last.at) == (pytest.approx(150.0), 3.0, pytest.approx(101.3))
    await clock.advance(1.0)  # 2.5 beats at 150 bpm
    await source.propose(100.0)
    assert (readings[-1].bpm, readings[-1].beat) == (100.0, pytest.approx(5.5))
    with pytest.raises(ValueError, match="20 to 999 bpm, not 5"):
        await source.propose(5)
    assert readings[-1].bpm == 100.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
