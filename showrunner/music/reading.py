"""What a tempo source reports: one reading of tempo and beat position at a moment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["TempoListener", "TempoReading", "TempoSource"]


@dataclass(frozen=True, slots=True)
class TempoReading:
    """A tempo source's view at monotonic time `at`: `bpm`, and `beat`, the position in quarter
    notes since the source's origin; `playing` is False while the source's transport is stopped.
    `source` names where it came from ("fixed", "link", "scope", "midi", "tap", "osc")."""

    bpm: float
    beat: float
    at: float
    playing: bool = True
    source: str = ""


TempoListener = Callable[[TempoReading], None]
"""Called with each new reading, on the runner's event loop."""


class TempoSource(Protocol):
    """Where tempo comes from (Ableton Link, Scope's tempo sync, MIDI clock, taps, OSC): `run`
    reports readings to `listener` until it is cancelled; it never raises for a lost peer or
    device, it reports `playing=False` or stays quiet and keeps trying."""

    name: str

    async def run(self, listener: TempoListener) -> None: ...
