"""Beat LFOs: waves from 0 to 1 locked to the beat, one cycle every `every` beats.

Pure: the value is a function of the beat position alone (no clock), so two runs at the same
beat agree, the report can draw the curve, and an LFO follows any tempo the beat clock follows.
``random`` holds one value per cycle, the same for a cycle number on every run (a hash, not a
generator with state).
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Literal

__all__ = ["SHAPES", "Shape", "lfo_value"]

Shape = Literal["sine", "triangle", "saw", "ramp-down", "square", "random"]
SHAPES: tuple[Shape, ...] = ("sine", "triangle", "saw", "ramp-down", "square", "random")


def lfo_value(shape: Shape, beat: float, every: float, phase: float = 0.0) -> float:
    """The LFO's value (0-1) at `beat` (quarter notes since the origin)."""
    if every <= 0:
        raise ValueError("an LFO cycle must be longer than 0 beats")
    position = beat / every + phase
    cycle = math.floor(position)
    x = position - cycle  # 0 <= x < 1 through the cycle
    if shape == "sine":
        return 0.5 - 0.5 * math.cos(2 * math.pi * x)  # starts at 0, 1 at mid-cycle
    if shape == "triangle":
        return 1 - abs(2 * x - 1) if x else 0.0
    if shape == "saw":
        return x
    if shape == "ramp-down":
        return 1.0 - x
    if shape == "square":
        return 1.0 if x < 0.5 else 0.0
    if shape == "random":
        return _held(cycle)
    raise ValueError(f"unknown LFO shape {shape!r}")


def _held(cycle: int) -> float:
    digest = hashlib.blake2b(struct.pack("<q", cycle), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64
