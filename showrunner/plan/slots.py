"""Chunk slots: a scene's time cut into one message per chunk (docs/scope.md §3.2 step 5).

The compiler plans travel stops and keyframe samples per slot here; a compiled scene replays the
same rules for a seek (``CompiledScene.state_at``), so both use the slot helpers of timeline.py.
"""

from __future__ import annotations

from typing import Any

from showrunner.plan.state import State, WeightedPrompt, set_param, set_target, with_changes
from showrunner.plan.timeline import Curve, nearest_slot, sample
from showrunner.show.model import Scene

__all__ = ["Slot", "SlotPlan"]


class Slot:
    """What happens at one chunk slot of a scene: a travel stop, keyframe values."""

    __slots__ = ("travel", "values")

    def __init__(self) -> None:
        self.travel: tuple[int, Any] | None = None
        self.values: dict[str, float] = {}


class SlotPlan:
    """A scene's time cut into chunk slots: travel stops and keyframe samples per slot."""

    __slots__ = ("curves", "interval", "max_slot", "scene")

    def __init__(self, scene: Scene, curves: tuple[Curve, ...], interval: float, max_slot: int | None):
        self.scene = scene
        self.curves = curves
        self.interval = interval
        self.max_slot = max_slot

    @property
    def has_later(self) -> bool:
        return bool(self.curves) or any(self.slot(step.at) > 0 for step in self.scene.travel)

    def slot(self, offset: float) -> int:
        """The chunk slot nearest to `offset`, inside the scene."""
        n = nearest_slot(offset, self.interval)
        return min(n, self.max_slot) if self.max_slot is not None else n

    def last(self, curve: Curve) -> int:
        """The curve's last slot: its last keyframe's, or the scene's last if that comes first."""
        return self.slot(curve.end)

    def values(self, curve: Curve) -> list[float]:
        """What the curve sends at slots 0..its last (the rules of `sample`)."""
        last, interval = self.last(curve), self.interval
        values: list[float | None] = list(curve.samples(interval, last + 1))
        for frame in curve.keyframes:
            n = nearest_slot(frame.at, interval)
            if n <= last:
                values[n] = frame.value
        if nearest_slot(curve.end, interval) == last:
            values[last] = curve.keyframes[-1].value
        return [round(v, 4) for v in values if v is not None]

    def slots(self) -> dict[int, Slot]:
        """Travel stops and keyframe values by slot."""
        table: dict[int, Slot] = {}
        for k, step in enumerate(self.scene.travel, 1):
            table.setdefault(self.slot(step.at), Slot()).travel = (k, step)
        for curve in self.curves:
            target = curve.target
            for n, value in enumerate(self.values(curve)):
                entry = table.get(n)
                if entry is None:
                    entry = table[n] = Slot()
                entry.values[target] = value
        return table

    def zero(self) -> Slot | None:
        """Slot 0 alone (merged into the entry), by the same rules as `slots`."""
        travel = [(k, step) for k, step in enumerate(self.scene.travel, 1) if self.slot(step.at) == 0]
        if not travel and not self.curves:
            return None
        zero = Slot()
        if travel:
            zero.travel = travel[-1]
        for curve in self.curves:
            zero.values[curve.target] = sample(curve, 0, self.last(curve), self.interval)
        return zero

    def final_state(self, state_in: State, fade: tuple[int, int | None] | None) -> State:
        """The wire state once every later action has been sent (without making them)."""
        state = state_in
        if not self.curves and not self.scene.travel:
            return with_changes(state, transition=None) if state.transition is not None else state
        travel = [(self.slot(step.at), k, step) for k, step in enumerate(self.scene.travel, 1)]
        last_travel = max((n for n, _, _ in travel), default=0)
        if last_travel > 0:  # the last stop's prompts; weights keyframed up to it or later apply
            step = [step for n, _, step in travel if n == last_travel][-1]
            prompts = tuple(WeightedPrompt(p.text, p.weight) for p in step.prompts)
            state = with_changes(state, prompts=prompts)
        for curve in self.curves:
            last = self.last(curve)
            if curve.target.startswith("prompt.") and last < last_travel:
                continue
            state = set_target(state, curve.target, sample(curve, last, last, self.interval))
        if fade is not None:
            state = set_param(state, "manage_cache", fade[1] is not None)
        return with_changes(state, transition=None) if state.transition is not None else state
