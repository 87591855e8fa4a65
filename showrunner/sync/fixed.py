"""The fixed tempo: the show's bpm, unchanged (the default source)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from showrunner.music.reading import TempoListener, TempoReading

__all__ = ["FixedTempo"]


class FixedTempo:
    """One reading when it starts (beat 0 then), then nothing: the tempo never changes."""

    name = "fixed"

    def __init__(self, bpm: float, clock: Callable[[], float]) -> None:
        self.bpm = bpm
        self._clock = clock

    async def run(self, listener: TempoListener) -> None:
        listener(TempoReading(self.bpm, 0.0, self._clock(), True, self.name))
        await asyncio.Event().wait()  # until cancelled
