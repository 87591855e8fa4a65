"""What a tempo may be: 20 to 999 bpm (Ableton Link's range), checked in one place."""

from __future__ import annotations

import math

__all__ = ["MAX_BPM", "MIN_BPM", "check_bpm"]

MIN_BPM = 20.0
MAX_BPM = 999.0  # Ableton Link's range


def check_bpm(value: object) -> float:
    """`value` as a bpm; ValueError (one line) for anything but a number from 20 to 999."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a tempo is a number of bpm, not {type(value).__name__}")
    try:
        bpm = float(value)
    except ValueError:
        raise ValueError(f"a tempo is a number of bpm, not {str(value)[:40]!r}") from None
    if not math.isfinite(bpm) or not MIN_BPM <= bpm <= MAX_BPM:
        raise ValueError(f"a tempo is {MIN_BPM:g} to {MAX_BPM:g} bpm, not {bpm:g}")
    return bpm
