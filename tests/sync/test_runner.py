"""TempoRunner: the chosen source, a one-line fallback to the fixed bpm, taps and set tempos."""

from __future__ import annotations

import asyncio
import time

import pytest

from showrunner.errors import TempoSourceError
from showrunner.music.reading import TempoReading
from showrunner.sync.runner import TempoRunner
from showrunner.sync.sources import SourceContext, SourceOptions
from showrunner.testing import FakeClock, until

pytestmark = pytest.mark.anyio


async def test_a_source_that_is_not_there_plays_the_fixed_bpm_and_says_so() -> None:
    said: list[str] = []
    runner = TempoRunner(SourceOptions("midi", bpm=126.0), SourceContext(time.monotonic),
                         warn=said.append)
    assert said == ["tempo source midi: source midi needs the device sending clock: "
                    "`tempo.midi_clock` or `midi.device` in the show; playing on the fixed 126 bpm"]
    task = asyncio.create_task(runner.run())
    await until(lambda: runner.status().source == "fixed")
    status = runner.status()
    assert (status.bpm, status.error) == (126.0, said[0].split(";")[0])
    with pytest.raises(TempoSourceError, match=r"^the fixed tempo cannot be changed here"):
        await runner.tap()
    with pytest.raises(TempoSourceError, match=r"^the fixed tempo cannot be changed here"):
        await runner.set_bpm(130)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_taps_reach_the_tap_source_and_listeners_get_every_reading() -> None:
    clock = FakeClock(monotonic=50.0)
    runner = TempoRunner(SourceOptions("tap", bpm=120.0), SourceContext(clock.monotonic))
    readings: list[TempoReading] = []
    runner.listen(readings.append)
    task = asyncio.create_task(runner.run())
    await until(lambda: readings)
    for _ in range(4):
        await clock.advance(0.6)
        await runner.tap()
    assert runner.status().bpm == pytest.approx(100.0)
    assert runner.status().beat == pytest.approx(4.0)  # 1.2 (->1) then one beat a tap
    with pytest.raises(ValueError, match="not 1000"):
        await runner.set_bpm("1000")
    assert await runner.set_bpm("140.5") == 140.5
    assert readings[-1].bpm == 140.5 and len(readings) == 6
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
