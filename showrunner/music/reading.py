"""What a tempo source reports: one reading of tempo and beat position at a moment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TempoListener", "TempoReading"]


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
