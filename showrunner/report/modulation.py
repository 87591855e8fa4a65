"""The report's picture of modulation: where a mapping is in force, the band of values it can
take, and, for a beat LFO, the curve it draws (at the show's bpm from the start: 120 without)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from showrunner.music.lfo import lfo_value
from showrunner.music.modulation import map_value
from showrunner.plan.modulate import in_force
from showrunner.plan.timeline import Pass, Timeline

__all__ = ["Overlay", "modulated_targets", "overlays"]

_SAMPLES_PER_CYCLE = 24
_MAX_POINTS = 2000  # per overlay: a long scene's LFO is drawn coarser, not heavier
DEFAULT_BPM = 120.0


@dataclass(frozen=True)
class Overlay:
    """A mapping of `target` from `t0` to `t1` (pass time): `low`-`high` is what it can take;
    `points` (time, value) draw a beat LFO through the mapping, empty for other inputs."""

    t0: float
    t1: float
    low: float
    high: float
    title: str
    points: tuple[tuple[float, float], ...] = ()


def modulated_targets(timeline: Timeline, p: Pass) -> list[str]:
    """The targets some scene of the pass modulates, in the order they first appear."""
    force = in_force(timeline.show)
    found: dict[str, None] = {}
    for item in p.items:
        found.update(dict.fromkeys(force[item.occurrence.scene.index]))
    return list(found)


def overlays(timeline: Timeline, p: Pass, target: str, ends: Sequence[float]) -> list[Overlay]:
    """The overlays of `target` over the pass; `ends` are the items' drawn ends."""
    show = timeline.show
    force = in_force(show)
    per_beat = (show.bpm or DEFAULT_BPM) / 60.0
    out: list[Overlay] = []
    for item, end in zip(p.items, ends, strict=True):
        mapping = force[item.occurrence.scene.index].get(target)
        if mapping is None or end <= item.start:
            continue
        low, high = mapping.range
        spec = show.inputs.get(mapping.input)
        points: tuple[tuple[float, float], ...] = ()
        source = "OSC / MIDI"
        if spec is not None and spec.lfo is not None:
            lfo = spec.lfo
            source = f"{lfo.shape} LFO every {lfo.every:g} beats"
            seconds = lfo.every / per_beat
            step = max(seconds / _SAMPLES_PER_CYCLE, (end - item.start) / _MAX_POINTS)
            count = int((end - item.start) / step) + 1
            times = [item.start + k * step for k in range(count)] + [end]
            points = tuple(
                (t, map_value(lfo_value(lfo.shape, t * per_beat, lfo.every, lfo.phase), low, high,
                              mapping.curve))
                for t in times
            )
        title = (f"{item.occurrence.scene.name}: {target} ← {mapping.input} ({source}), "
                 f"{low:g}–{high:g} {mapping.curve}")
        out.append(Overlay(item.start, end, min(low, high), max(low, high), title, points))
    return out
