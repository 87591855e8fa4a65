"""The tempo map: where the beat is at any moment, fed by tempo readings (pure: no clock, no I/O).

A map is a list of straight segments, each ``beat = beat0 + (t - at) × bpm / 60`` from its
moment `at` on. Every reading (`TempoReading`) starts a new segment at its own moment:

- **A tempo change is continuous**: the new segment starts from the beat the map already has at
  that moment, so the beat position never jumps because the tempo changed; beats in the future
  (`time_of_beat`) are placed at the current tempo and move when it changes again.
- **A phase correction** (the source's beat differs from the map's) moves the grid
  **smoothly when it is small**: under `JUMP_BEATS` the difference is absorbed over the next beat
  (one segment a little faster or slower, then the source's tempo), so nothing planned on the
  grid is skipped or played twice. A larger difference (a transport restart, a new Link session)
  moves the grid **at once**. Such a **jump** also renumbers the beats (a transport restarts at
  beat 0): a musical time counted from before it keeps its beats to go, and what was on a line of
  the old count goes to the next line of the new one (`jumped`, `recount`), so a show counted in
  bars neither waits for a beat of the old numbering nor skips ahead.
- Readings older than the last one are ignored; one that agrees with the map (within
  `TOLERANCE_BEATS`) adds nothing.

A fixed `bpm` is a map with one reading. The live player converts musical time with
:meth:`TempoMap.warp` and quantizes with :meth:`TempoMap.next_boundary`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from showrunner.music.reading import TempoReading

__all__ = ["JUMP_BEATS", "TOLERANCE_BEATS", "Segment", "TempoMap"]

JUMP_BEATS = 0.25  # a phase difference at least this large moves the grid at once
TOLERANCE_BEATS = 1e-4  # a reading this close to the map (0.05 ms at 120 bpm) changes nothing
_HISTORY = 4096  # segments kept; older times extrapolate the oldest kept one


@dataclass(frozen=True, slots=True)
class Segment:
    """From `at` on: beat = `beat` + (t - at) × `bpm` / 60."""

    at: float
    beat: float
    bpm: float

    def beat_at(self, t: float) -> float:
        return self.beat + (t - self.at) * self.bpm / 60.0

    def time_of(self, beat: float) -> float:
        return self.at + (beat - self.beat) * 60.0 / self.bpm


class TempoMap:
    """Beat ↔ time on one monotonic clock, fed with readings (see the module text)."""

    def __init__(self, beats_per_bar: int = 4) -> None:
        if beats_per_bar < 1:
            raise ValueError("beats_per_bar must be at least 1")
        self.beats_per_bar = beats_per_bar
        self._segments: list[Segment] = []
        self._ats: list[float] = []
        self._last_reading: float | None = None
        self._jumps: list[tuple[float, float]] = []  # (moment, beats the count moved by)
        self.jump_count = 0  # jumps ever taken (the list above keeps the last _HISTORY)
        self.source = ""

    @classmethod
    def fixed(cls, bpm: float, at: float, beats_per_bar: int = 4, *, beat: float = 0.0) -> TempoMap:
        """A constant tempo with `beat` at moment `at` (a show's `bpm`: one reading)."""
        tempo = cls(beats_per_bar)
        tempo.feed(TempoReading(bpm, beat, at, source="fixed"))
        return tempo

    def __repr__(self) -> str:
        last = self._segments[-1] if self._segments else None
        return f"TempoMap(bpm={last.bpm if last else None!r}, segments={len(self._segments)})"

    @property
    def empty(self) -> bool:
        """No reading yet: nothing can be converted."""
        return not self._segments

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    @property
    def jumps(self) -> tuple[tuple[float, float], ...]:
        """(moment, beats the count moved by) of the last jumps of the grid, oldest first."""
        return tuple(self._jumps)

    def bpm(self) -> float:
        """The tempo of the last reading (the tempo future beats are placed at)."""
        return self._last().bpm

    # -- feeding -----------------------------------------------------------------------------

    def feed(self, reading: TempoReading) -> bool:
        """Take a reading; True when the map changed (future beats may have moved)."""
        bpm, at = float(reading.bpm), float(reading.at)
        if not (bpm > 0 and math.isfinite(bpm) and math.isfinite(reading.beat) and math.isfinite(at)):
            return False
        if self._last_reading is not None and at < self._last_reading:
            return False
        self._last_reading = at
        if reading.source:
            self.source = reading.source
        if not self._segments:
            self._append(Segment(at, float(reading.beat), bpm))
            return True
        current = self._segment_at(at)
        # While a correction runs, the source is where the correction is heading.
        aim = self._segments[-1] if self._segments[-1].at > at else current
        if abs(reading.beat - aim.beat_at(at)) < TOLERANCE_BEATS and abs(aim.bpm - bpm) < 1e-9:
            return False
        mine = current.beat_at(at)
        error = reading.beat - mine
        self._drop_after(at)
        if abs(error) < TOLERANCE_BEATS:
            self._append(Segment(at, mine, bpm))
        elif abs(error) >= JUMP_BEATS:
            self._append(Segment(at, float(reading.beat), bpm))
            self._jumps.append((at, error))
            del self._jumps[:-_HISTORY]
            self.jump_count += 1
        else:
            # Absorb the difference over the source's next beat, then run at its tempo.
            beat_len = 60.0 / bpm
            target = reading.beat + 1.0
            self._append(Segment(at, mine, (target - mine) * bpm))
            self._append(Segment(at + beat_len, target, bpm))
        return True

    def _append(self, segment: Segment) -> None:
        self._segments.append(segment)
        self._ats.append(segment.at)
        if len(self._segments) > _HISTORY:
            del self._segments[0]
            del self._ats[0]

    def _drop_after(self, at: float) -> None:
        """Segments planned after `at` (the second half of a correction) give way to a new reading."""
        keep = bisect.bisect_right(self._ats, at)
        keep = max(keep, 1)
        del self._segments[keep:]
        del self._ats[keep:]

    # -- reading -----------------------------------------------------------------------------

    def _last(self) -> Segment:
        if not self._segments:
            raise LookupError("the tempo map has no reading yet")
        return self._segments[-1]

    def _segment_at(self, t: float) -> Segment:
        self._last()
        i = bisect.bisect_right(self._ats, t) - 1
        return self._segments[max(i, 0)]

    def beat_at(self, t: float) -> float:
        """The beat position (quarter notes) at moment `t`."""
        return self._segment_at(t).beat_at(t)

    def bar_at(self, t: float) -> float:
        """The bar position at `t` (0 = the first beat of bar 0; bar lines every `beats_per_bar`)."""
        return self.beat_at(t) / self.beats_per_bar

    def bpm_at(self, t: float) -> float:
        return self._segment_at(t).bpm

    def time_of_beat(self, beat: float) -> float:
        """When `beat` is (was) reached: a future beat at the current tempo (the last segment)."""
        last = self._last()
        if beat >= last.beat:
            return last.time_of(beat)
        for segment in reversed(self._segments):
            if segment.beat <= beat:
                return segment.time_of(beat)
        return self._segments[0].time_of(beat)

    def next_boundary(self, t: float, every: float, *, slack: float = 1e-6) -> float:
        """The first beat at or after `t` that is a multiple of `every` beats (1: beats; a bar:
        `beats_per_bar`); a moment up to `slack` seconds after a boundary is on it."""
        beat = self.beat_at(t)
        return math.ceil((beat - slack * self.bpm_at(t) / 60.0) / every) * every

    def warp(self, t: float, seconds: float, bpm: float) -> float:
        """The moment `seconds` of nominal time after `t`, counted in beats (at the nominal
        `bpm`: ``seconds × bpm / 60`` beats). At the nominal tempo with no change it is `t + seconds`
        exactly. Across a jump of the grid after `t`, see `recount`."""
        if len(self._segments) == 1 and self._segments[0].bpm == bpm:
            return t + seconds
        beat = self.beat_at(t) + seconds * bpm / 60.0
        shift = self.jumped(t)
        return self.time_of_beat(self.recount(beat, shift) if shift else beat)

    def jumped(self, since: float) -> float:
        """How many beats the count moved by in the jumps after moment `since` (0: none)."""
        shift = 0.0
        for at, moved in reversed(self._jumps):
            if at <= since:
                break
            shift += moved
        return shift

    def recount(self, beat: float, shift: float) -> float:
        """`beat` of a count that has since moved by `shift` beats, in the new count: moved by
        `shift` (the beats to go stay), then, if it was on a bar line (else a beat line), on to
        the next such line of the new count."""
        moved = beat + shift
        for line in (float(self.beats_per_bar), 1.0):
            if abs(beat / line - round(beat / line)) < 1e-9 * max(1.0, abs(beat)):
                return math.ceil(moved / line - 1e-9) * line
        return moved
