"""Live inputs: named values 0-1 set over OSC or by MIDI controls, or beat LFOs, read by the
modulation.

The show's `inputs:` are read through a callable, so a hot reload that adds or changes an input
takes effect at once. A value for a name the show does not define, or one that is not a finite
number, is refused (counted, never raised); values are clipped to 0-1. LFOs are evaluated at
the beat the injected beat clock gives (`fixed_beats`: the show's bpm from the run's start,
until a live tempo source drives it).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from showrunner.music.lfo import lfo_value
from showrunner.show.model import LiveInput

__all__ = ["DEFAULT_BPM", "BeatClock", "InputKind", "LiveInputs", "fixed_beats"]

DEFAULT_BPM = 120.0  # LFOs of a show without `bpm`

BeatClock = Callable[[], float]
"""The current beat (quarter notes since the tempo's origin), as a tempo source counts it."""


def fixed_beats(bpm: float | None, start: float, clock: Callable[[], float]) -> BeatClock:
    """The beat at `bpm` (DEFAULT_BPM when None) counted from `start` on `clock`."""
    per_second = (bpm or DEFAULT_BPM) / 60.0
    return lambda: (clock() - start) * per_second


class InputKind(enum.StrEnum):
    """Where an input's value came from last."""

    DEFAULT = "default"  # nothing has set it yet: the show's `value`
    OSC = "osc"
    MIDI = "midi"
    PAGE = "page"
    LFO = "lfo"


@dataclass
class _Held:
    value: float
    kind: InputKind
    at: float


class LiveInputs:
    """The current value of every input the show defines."""

    def __init__(
        self,
        defined: Callable[[], Mapping[str, LiveInput]],
        beat: BeatClock,
        clock: Callable[[], float],
    ) -> None:
        self.defined = defined
        self.beat = beat
        self.clock = clock
        self.refused = 0  # values for unknown inputs, LFOs, or not numbers
        self.received = 0
        self._held: dict[str, _Held] = {}

    def __repr__(self) -> str:
        return f"LiveInputs({len(self._held)} set, {self.refused} refused)"

    def set(self, name: str, value: float, kind: InputKind) -> bool:
        """Set input `name` to `value` (clipped to 0-1); False when refused."""
        spec = self.defined().get(name)
        if (
            spec is None or spec.lfo is not None or isinstance(value, bool)
            or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            self.refused += 1
            return False
        self.received += 1
        self._held[name] = _Held(min(1.0, max(0.0, float(value))), kind, self.clock())
        return True

    def value(self, name: str) -> float:
        """The input's value now (0 for a name the show does not define)."""
        spec = self.defined().get(name)
        if spec is None:
            return 0.0
        if spec.lfo is not None:
            return lfo_value(spec.lfo.shape, self.beat(), spec.lfo.every, spec.lfo.phase)
        held = self._held.get(name)
        return held.value if held is not None else spec.value

    def meters(self) -> list[dict[str, Any]]:
        """Every input as the page shows it: name, value, kind, seconds since it was last set."""
        now = self.clock()
        out = []
        for name, spec in self.defined().items():
            held = self._held.get(name)
            if spec.lfo is not None:
                kind, age = InputKind.LFO, None
            elif held is not None:
                kind, age = held.kind, round(now - held.at, 3)
            else:
                kind, age = InputKind.DEFAULT, None
            out.append({"name": name, "value": round(self.value(name), 4), "kind": kind.value,
                        "age": age})
        return out
