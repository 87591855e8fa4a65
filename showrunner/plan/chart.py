"""Schedule arithmetic: walking a show's schedule to absolute (monotonic) start times of
occurrences. Pure given a timeline (no clock, tasks or sink), so it lives apart from the player's
live loop; where a run starts is read in position.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from showrunner.errors import CueError
from showrunner.plan.timeline import CompiledScene, ScheduledScene, Timeline

__all__ = [
    "Chart",
    "end_of",
    "follow",
    "origin_of",
    "static_start",
    "walk_to",
]

# Walking a schedule to a wall-clock position stops after this many occurrences.
_WALK_LIMIT = 1_000_000


# ---------------------------------------------------------------------------------------------
# Schedule arithmetic: absolute (monotonic) start times of occurrences
# ---------------------------------------------------------------------------------------------


class Chart:
    """A schedule iterator with one occurrence of look-ahead."""

    @classmethod
    def following(cls, timeline: Timeline, first: ScheduledScene) -> Chart:
        """The schedule from `first` on, with its loop counters (via ``Timeline.next_after``)."""

        def walk() -> Iterator[ScheduledScene]:
            occ: ScheduledScene | None = first
            while occ is not None:
                yield occ
                occ = timeline.next_after(occ)

        return cls(walk())

    def __init__(self, schedule: Iterator[ScheduledScene]) -> None:
        self._it = schedule
        self._ahead: ScheduledScene | None = None
        self._peeked = False

    def peek(self) -> ScheduledScene | None:
        if not self._peeked:
            self._ahead = next(self._it, None)
            self._peeked = True
        return self._ahead

    def pop(self) -> ScheduledScene | None:
        item = self.peek()
        self._peeked = False
        self._ahead = None
        return item


def origin_of(occ: ScheduledScene, start: float) -> float:
    """The part origin of `occ` when it starts at `start` (a cue scene starts pre_wait after it)."""
    return start - (occ.start if occ.start is not None else occ.scene.pre_wait)


def static_start(scene: CompiledScene) -> float:
    """Where `scene` starts on its part's clock as written (``schedule(start_offset=...)``)."""
    return scene.pre_wait if scene.cue is not None else (scene.at or 0.0)


def end_of(occ: ScheduledScene, start: float, origin: float) -> float | None:
    if occ.end is not None:
        return origin + occ.end
    if occ.scene.duration is not None:
        return start + occ.scene.duration
    return None


def follow(
    prev: ScheduledScene, prev_start: float, origin: float, nxt: ScheduledScene
) -> tuple[float | None, float | None]:
    """(absolute start, part origin) of `nxt` after `prev`; (None, None) while it waits for a cue."""
    if nxt.start is None:
        return None, None
    if nxt.part == prev.part:
        return origin + nxt.start, origin
    # A new timed part (the show looping): it begins where the previous part ended.
    end = end_of(prev, prev_start, origin)
    if end is None:
        return None, None
    return end, end - nxt.start


def walk_to(
    chart: Chart, origin: float, target: float, *, cues_fire: bool
) -> tuple[ScheduledScene, float, float]:
    """Walk `chart` (its first occurrence's part starts at `origin`) to the one live at `target`.

    Returns (occurrence, its absolute start, its part origin). With `cues_fire`, a cue scene
    counts as fired as soon as the scene before it ends; otherwise the walk stops before it.
    """
    occ = chart.pop()
    if occ is None:
        raise CueError("the schedule is empty")
    start = origin + (occ.start or 0.0)
    for _ in range(_WALK_LIMIT):
        nxt = chart.peek()
        if nxt is None:
            break
        nstart, norigin = follow(occ, start, origin, nxt)
        if nstart is None or norigin is None:
            if not cues_fire:
                break
            end = end_of(occ, start, origin)
            norigin = start if end is None else end  # the cue fires as the scene ends
            nstart = norigin + nxt.scene.pre_wait
        if nstart > target:
            break
        chart.pop()
        occ, start, origin = nxt, nstart, norigin
    return occ, start, origin
