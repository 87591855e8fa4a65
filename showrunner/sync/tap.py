"""Tap tempo and a tempo set from outside (OSC ``/showrunner/bpm``, the HTTP API).

`TapDetector` turns taps into a bpm: the median of the recent intervals, so one late or
doubled tap does not move it; a pause longer than `reset_after` starts a new count.
`ManualTempo` is the source whose tempo is only what it is told: taps (each also puts the
beat on the tap) and set values.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import deque
from collections.abc import Callable

from showrunner.music.reading import TempoListener, TempoReading
from showrunner.sync.bpm import MAX_BPM, MIN_BPM, check_bpm

__all__ = ["ManualTempo", "TapDetector"]

_KEEP = 8  # intervals the median is taken over


class TapDetector:
    """Taps in, bpm out: the median of up to eight recent intervals."""

    def __init__(self, reset_after: float = 2.0) -> None:
        self.reset_after = reset_after
        self._last: float | None = None
        self._intervals: deque[float] = deque(maxlen=_KEEP)

    def tap(self, at: float) -> float | None:
        """Count a tap at monotonic time `at`; the bpm once two taps are close enough, else None."""
        last, self._last = self._last, at
        if last is None or at - last > self.reset_after or at <= last:
            self._intervals.clear()
            return None
        self._intervals.append(at - last)
        bpm = 60.0 / statistics.median(self._intervals)
        return min(max(bpm, MIN_BPM), MAX_BPM)


class ManualTempo:
    """A source whose tempo is what it is told: `tap` (the beat lands on each tap) and
    `propose` (the beat runs on without a jump). `name` is "tap" or "osc"."""

    def __init__(
        self, bpm: float, clock: Callable[[], float], *, name: str = "tap", reset_after: float = 2.0
    ) -> None:
        self.name = name
        self._clock = clock
        self.detector = TapDetector(reset_after)
        self._reading = TempoReading(check_bpm(bpm), 0.0, clock(), True, name)
        self._listener: TempoListener | None = None

    @property
    def reading(self) -> TempoReading:
        return self._reading

    async def run(self, listener: TempoListener) -> None:
        self._reading = TempoReading(self._reading.bpm, 0.0, self._clock(), True, self.name)
        self._listener = listener
        listener(self._reading)
        try:
            await asyncio.Event().wait()  # readings come from taps and proposals
        finally:
            self._listener = None

    def _beat(self, at: float) -> float:
        r = self._reading
        return r.beat + (at - r.at) * r.bpm / 60.0

    def tap(self, at: float | None = None) -> float | None:
        """A tap: the beat moves to the nearest whole beat; from the second tap of a count on,
        the tempo follows the taps. Returns the bpm it set (None: only the beat moved)."""
        at = self._clock() if at is None else at
        bpm = self.detector.tap(at)
        beat = float(round(self._beat(at)))
        self._set(TempoReading(bpm or self._reading.bpm, beat, at, True, self.name))
        return bpm

    async def propose(self, bpm: float) -> None:
        """Set the tempo; the beat runs on from where it is."""
        at = self._clock()
        self._set(TempoReading(check_bpm(bpm), self._beat(at), at, True, self.name))

    def _set(self, reading: TempoReading) -> None:
        self._reading = reading
        if self._listener is not None:
            self._listener(reading)
