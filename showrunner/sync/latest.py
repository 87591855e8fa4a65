"""The latest tempo reading, extrapolated to now: what the operator sees (bpm, beat, bar).

`LatestReading` keeps only the newest `TempoReading` and runs its beat on at its bpm; musical
time for the plan is music's tempo map, which takes the same readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from showrunner.music.reading import TempoReading

__all__ = ["LatestReading", "TempoStatus"]


@dataclass(frozen=True, slots=True)
class TempoStatus:
    """The tempo block of the status (README: "Status"): `bar` and `beat_in_bar` count from 1."""

    source: str
    bpm: float
    beat: float
    bar: int
    beat_in_bar: int
    beats_per_bar: int
    playing: bool
    peers: int | None = None  # other Link peers (Link only)
    error: str | None = None  # why the chosen source is not the one playing

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "bpm": round(self.bpm, 3),
            "beat": round(self.beat, 4),
            "bar": self.bar,
            "beat_in_bar": self.beat_in_bar,
            "beats_per_bar": self.beats_per_bar,
            "playing": self.playing,
            "peers": self.peers,
            "error": self.error,
        }


class LatestReading:
    """The newest reading of one source; `beat_at(now)` runs it on while it plays."""

    def __init__(self, first: TempoReading, beats_per_bar: int = 4) -> None:
        self.reading = first
        self.beats_per_bar = beats_per_bar

    def update(self, reading: TempoReading) -> None:
        self.reading = reading

    def beat_at(self, now: float) -> float:
        r = self.reading
        if not r.playing:
            return r.beat
        return r.beat + (now - r.at) * r.bpm / 60.0

    def status(self, now: float, *, peers: int | None = None, error: str | None = None) -> TempoStatus:
        beat = self.beat_at(now)
        whole = math.floor(max(beat, 0.0))
        return TempoStatus(
            source=self.reading.source,
            bpm=self.reading.bpm,
            beat=beat,
            bar=whole // self.beats_per_bar + 1,
            beat_in_bar=whole % self.beats_per_bar + 1,
            beats_per_bar=self.beats_per_bar,
            playing=self.reading.playing,
            peers=peers,
            error=error,
        )
