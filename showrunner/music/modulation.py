"""From an input (0-1) to a runtime value: a curve, a range, and attack/release smoothing.

Pure: `Smoother` is stepped with the time that passed, not a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["CURVES", "Curve", "Smoother", "apply_curve", "map_value"]

Curve = Literal["linear", "ease-in", "ease-out", "ease-in-out"]
CURVES: tuple[Curve, ...] = ("linear", "ease-in", "ease-out", "ease-in-out")


def apply_curve(curve: Curve, x: float) -> float:
    """`x` (clipped to 0-1) through `curve`, 0 -> 0 and 1 -> 1."""
    x = min(1.0, max(0.0, x)) if math.isfinite(x) else 0.0
    if curve == "linear":
        return x
    if curve == "ease-in":
        return x * x
    if curve == "ease-out":
        return 1 - (1 - x) * (1 - x)
    if curve == "ease-in-out":
        return x * x * (3 - 2 * x)
    raise ValueError(f"unknown curve {curve!r}")


def map_value(x: float, low: float, high: float, curve: Curve = "linear") -> float:
    """The input `x` (0-1) mapped onto [low, high] (high may be below low: the range inverts)."""
    return low + apply_curve(curve, x) * (high - low)


@dataclass
class Smoother:
    """Follows a target with a one-pole filter: `attack` seconds (time constant) while the
    target is above the value, `release` while below; 0 follows at once. The first target is
    taken as it is."""

    attack: float = 0.0
    release: float = 0.0
    value: float | None = None

    def step(self, target: float, dt: float) -> float:
        """The value after `dt` seconds towards `target`."""
        if self.value is None:
            self.value = target
            return target
        tau = self.attack if target > self.value else self.release
        if tau <= 0:
            self.value = target
        elif dt > 0:
            self.value += (target - self.value) * (1 - math.exp(-dt / tau))
        return self.value
