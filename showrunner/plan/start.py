"""Positions in a show: where a run starts (``--from``/``--at``) and what `report --at` shows.

One reading of ``--at`` text for both commands: a show time (seconds, ``mm:ss``, ``8 bars``;
every cue counts as fired at once), a scene name, or ``SCENE+OFFSET`` (the offset in any of
the time forms). Bars and beats use the show's ``bpm``. Pure given a timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from showrunner.errors import PositionError, ShowrunnerError, UnknownSceneError
from showrunner.plan.saved import ResumeState
from showrunner.plan.state import State
from showrunner.plan.timeline import CompiledScene, Timeline
from showrunner.show.model import parse_time

__all__ = ["StartPoint", "parse_position", "playable_scene", "start_point", "state_at_point"]


@dataclass(frozen=True)
class StartPoint:
    """Where a run begins: the top, a scene (+ offset), a show time, or a saved position."""

    scene: int | str | None = None
    offset: float = 0.0
    at: float | None = None
    resume: ResumeState | None = None


def parse_position(timeline: Timeline, text: str) -> StartPoint:
    """Read ``--at`` text: "1:30", "90", "8 bars", "intro", "intro+12", "intro+0:05", "intro+2 bars".

    The scene is any scene of the show (the closed-hours one too); raises PositionError for
    text that is none of these.
    """
    show = timeline.show
    raw = text.strip()
    name, plus, offset_text = raw.partition("+")
    if plus:
        index = _scene_index(timeline, name.strip(), text)
        try:
            offset = parse_time(offset_text.strip(), show.bpm, show.beats_per_bar)
        except ValueError as exc:
            raise PositionError(f"--at {text!r}: {exc}") from None
        return StartPoint(scene=index, offset=offset)
    try:
        return StartPoint(at=parse_time(raw, show.bpm, show.beats_per_bar))
    except ValueError as exc:
        if raw in {s.name for s in timeline.scenes}:
            return StartPoint(scene=timeline.scene(raw).index)
        raise PositionError(f"--at {text!r}: {exc}; or give SCENE+OFFSET, e.g. intro+0:12") from None


def _scene_index(timeline: Timeline, name: str, text: str) -> int:
    try:
        return timeline.scene(name).index
    except UnknownSceneError as exc:
        raise PositionError(f"--at {text!r}: {exc}") from None


def state_at_point(timeline: Timeline, point: StartPoint) -> State:
    """The resolved state at a show time or a scene offset (``report --at``)."""
    if point.scene is not None:
        return timeline.state_at_scene(point.scene, point.offset)
    return timeline.state_at(point.at or 0.0)


def start_point(
    timeline: Timeline, *, start_scene: str | None = None, at: str | None = None
) -> StartPoint:
    """Where ``run --from SCENE`` / ``--at TEXT`` (read by `parse_position`) starts.

    The scene must be one that plays while the show is open (UnknownSceneError otherwise).
    """
    if start_scene is not None and at is not None:
        raise PositionError("give either --from or --at, not both")
    if start_scene is not None:
        return StartPoint(scene=playable_scene(timeline, start_scene).index)
    if at is None:
        return StartPoint()
    point = parse_position(timeline, at)
    if point.scene is not None:
        playable_scene(timeline, timeline.scene(point.scene).name)
    return point


def playable_scene(timeline: Timeline, name: str) -> CompiledScene:
    try:
        scene = timeline.scene(name)
    except (KeyError, IndexError, ValueError, ShowrunnerError):
        names = ", ".join(s.name for s in timeline.scenes if not s.closed_only)
        raise UnknownSceneError(f"unknown scene {name!r} (scenes: {names})") from None
    if scene.closed_only:
        raise UnknownSceneError(f"scene {name!r} plays only while the show is closed")
    return scene
