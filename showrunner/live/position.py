"""Where the show is in its plan: the occurrence playing and when it started, what comes next
and when, the scenes played before it, and the position set aside while the closed-hours
scene plays.

Pure bookkeeping over times the caller passes in (monotonic seconds, or unix seconds where
named): no clock, tasks or sink, so the player's main loop is what moves it.

Musical time goes through a `Timebase` (the player's `Beat`): a start, length or action written
in bars or beats is counted on the tempo map, and whatever is aimed at the beat (those, and a
quantized trigger's `landing`) is due `lead` seconds ahead of its moment, so the audience sees
it on the beat. Without a live tempo every time is plain seconds, as planned.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from showrunner.errors import UnknownSceneError
from showrunner.plan.chart import Chart, end_of, follow, origin_of, static_start, walk_to
from showrunner.plan.diff import carry_occurrence, scene_change
from showrunner.plan.saved import ResumeState
from showrunner.plan.start import StartPoint
from showrunner.plan.timeline import CompiledScene, ScheduledScene, State, Timeline

__all__ = ["HISTORY", "Carried", "EventKind", "Gone", "Position", "Snapshot", "Steady", "Timebase"]

HISTORY = 100  # occurrences BACK can return to

EventKind = Literal["scene", "action", "end"]
"""The next planned event: the next occurrence starts, the current one's next action, its end."""


class Timebase(Protocol):
    """How musical time maps to the monotonic clock (`live/beat.py` has the real one)."""

    def later(self, t: float, seconds: float, musical: bool) -> float:
        """`seconds` of planned time after `t`; `musical`: counted in beats on the tempo map."""
        ...

    def lead(self) -> float:
        """Seconds a change aimed at the beat is sent ahead of its moment."""
        ...

    def time_of_beat(self, beat: float) -> float:
        """The moment of `beat` on the tempo map (at the current tempo, for a future beat)."""
        ...

    def landing(self, now: float, grid: float | None) -> tuple[float, float] | None:
        """(beat, moment) a change triggered at `now`, quantized to `grid` beats, lands on."""
        ...

    def judge(self, target: float, sent: float) -> dict[str, Any]:
        """Journal fields for an entry aimed at the beat at `target` that went out at `sent`."""
        ...

    def replan(self, now: float) -> None:
        """The plan changed at `now` (its `bpm` may be another), or the show starts there."""
        ...

    def stretch(self) -> float:
        """How much longer musical time is now than as planned (the show's bpm / the tempo)."""
        ...

    def snap(self, t: float, grid: float) -> float | None:
        """The first boundary of `grid` beats at or after `t` (None: no tempo map)."""
        ...


def _drift(occ: ScheduledScene, start: float, origin: float) -> float:
    """How far musical time moved `occ`'s start from its part's planned clock (0 without it):
    what follows it in seconds keeps its distance from it."""
    planned = origin + (occ.start if occ.start is not None else occ.scene.pre_wait)
    return 0.0 if start == planned else start - planned


class Steady:
    """No musical time: every time is plain seconds and nothing is sent ahead."""

    def later(self, t: float, seconds: float, musical: bool) -> float:
        return t + seconds

    def lead(self) -> float:
        return 0.0

    def time_of_beat(self, beat: float) -> float:
        raise LookupError("no tempo map")

    def landing(self, now: float, grid: float | None) -> tuple[float, float] | None:
        return None

    def judge(self, target: float, sent: float) -> dict[str, Any]:
        return {}

    def replan(self, now: float) -> None:
        pass

    def stretch(self) -> float:
        return 1.0

    def snap(self, t: float, grid: float) -> float | None:
        return None


@dataclass(frozen=True)
class Snapshot:
    """A position set aside (while the closed-hours scene plays) and brought back later."""

    chart: Chart
    current: ScheduledScene | None
    current_start: float
    origin: float
    action_index: int
    next: ScheduledScene | None
    next_start: float | None
    next_origin: float | None


@dataclass(frozen=True)
class Carried:
    """The scene on the air, carried over to a new plan (see `Position.carry`)."""

    scene: CompiledScene  # as the new plan has it
    offset: float
    before: State | None  # what is on the air (the old plan's state; None: a new scene)
    changed: bool  # its definition changed (pre-rolled: its opening look changed)
    first: bool  # it is the pre-rolled first scene, waiting for GO


@dataclass(frozen=True)
class Gone:
    """The scene on the air is gone from the new plan: `next` follows it, from now."""

    next: ScheduledScene


class Position:
    """The show's position in `timeline`."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.chart = Chart(iter(()))  # the schedule from `next` on
        self.current: ScheduledScene | None = None  # the occurrence playing
        self.current_start = 0.0  # its absolute start (monotonic)
        self.origin = 0.0  # its part's origin (monotonic)
        self.action_index = 0  # its next action
        self.cut_short = False  # a cue came before its last action: the next entry is a jump
        self.next: ScheduledScene | None = None  # the occurrence after it
        self.next_start: float | None = None  # its absolute start (None: it waits for a cue)
        self.next_origin: float | None = None
        self.cue_fired: str | None = None  # the cue fired for `next`
        self.part_cue: tuple[str, str] | None = None  # (cue, scene) that started this part
        self.history: collections.deque[ScheduledScene] = collections.deque(maxlen=HISTORY)
        self.show_origin_unix: float | None = None  # when the show (part 0) started
        self.ended = False  # the last scene has played out
        self.frozen_at: float | None = None  # held since then: the position stands still
        self.behind: Snapshot | None = None  # the show behind the closed-hours scene
        self.timebase: Timebase = Steady()
        self.landing: float | None = None  # the beat a quantized trigger aims `next` at
        self._planned = False  # next_start follows from the schedule (a tempo change moves it)

    def __repr__(self) -> str:
        scene = self.current.scene.name if self.current else None
        return f"Position(scene={scene!r}, next={self.next.scene.name if self.next else None!r})"

    # -- reading -----------------------------------------------------------------------------

    def offset(self, now: float) -> float:
        """Seconds into the current occurrence (frozen while held)."""
        at = self.frozen_at if self.frozen_at is not None else now
        return max(0.0, at - self.current_start)

    def where(self, now: float) -> tuple[CompiledScene, float]:
        """The scene to show and the offset into it (the first scene before anything plays)."""
        if self.current is None:
            first = self.next or next(iter(self.timeline.schedule()))
            return first.scene, 0.0
        return self.current.scene, self.offset(now)

    def actions_done(self) -> bool:
        """Nothing plays or the current occurrence has sent all its actions."""
        cur = self.current
        return cur is None or self.action_index >= len(cur.scene.actions)

    def played_out(self) -> bool:
        """An occurrence plays, it has sent all its actions and no cue cut it short."""
        return self.current is not None and not self.cut_short and self.actions_done()

    def waiting_for(self) -> str | None:
        """The cue the next occurrence waits for (None: it is timed, its cue fired, or none)."""
        nxt = self.next
        if nxt is None or nxt.start is not None or self.next_start is not None:
            return None
        return nxt.scene.cue or "go"

    def cue_waiting(self) -> bool:
        """A cue may fire now: the next occurrence (or the pre-rolled first one) waits for it."""
        if self.next is None or self.cue_fired is not None:
            return False
        return self.current is None or (self.next.start is None and self.next_start is None)

    def countdown(self, now: float) -> float | None:
        """Seconds until the next occurrence starts (None: no timed change ahead, or held)."""
        if self.next is None or self.next_start is None or self.frozen_at is not None:
            return None
        return max(0.0, self.next_start - now)

    def next_event(self) -> tuple[float, EventKind] | None:
        """When the next planned event is due, and what it is (None: nothing is planned)."""
        cur = self.current
        if cur is None or self.frozen_at is not None:
            return None
        actions = cur.scene.actions
        index = self.action_index
        at_action = self.action_due(index) if index < len(actions) else None
        due = self.next_due()
        if due is not None and (at_action is None or due <= at_action):
            return due, "scene"
        if at_action is not None:
            return at_action, "action"
        if self.next is None and not self.ended and self.behind is None:
            end = self.end_of(cur, self.current_start, self.origin)
            if end is not None:
                return end, "end"
        return None

    # -- musical time ------------------------------------------------------------------------

    def aimed(self) -> bool:
        """The next occurrence's start is aimed at the beat (sent `lead` ahead)."""
        nxt = self.next
        if nxt is None or self.next_start is None:
            return False
        placed = nxt.scene.start_follows_tempo or nxt.scene.quantize is not None
        return self.landing is not None or (self._planned and placed)

    def next_due(self) -> float | None:
        """When the next occurrence's entry goes out (its start, less the lead when aimed)."""
        if self.next_start is None:
            return None
        return self.next_start - (self.timebase.lead() if self.aimed() else 0.0)

    def action_due(self, index: int) -> float:
        """When the current occurrence's action `index` goes out."""
        cur = self.current
        assert cur is not None
        offset = cur.scene.actions[index].offset
        if not cur.scene.follows_tempo:
            return self.current_start + offset
        return self.timebase.later(self.current_start, offset, True) - self.timebase.lead()

    def end_of(self, occ: ScheduledScene, start: float, origin: float) -> float | None:
        """When `occ` (started at `start`, its part at `origin`) ends; None: it holds."""
        end = end_of(occ, start, origin)
        if end is None:
            return None
        if occ.scene.follows_tempo:
            return self.timebase.later(start, end - start, True)
        return end + _drift(occ, start, origin)

    def follow(
        self, prev: ScheduledScene, prev_start: float, origin: float, nxt: ScheduledScene
    ) -> tuple[float | None, float | None]:
        """`chart.follow` with musical time: a start that follows the tempo is counted in beats
        from the scene before it, and a quantized one waits for the next boundary of its grid."""
        start, next_origin = follow(prev, prev_start, origin, nxt)
        if start is None or next_origin is None or nxt.start is None:
            return start, next_origin
        if nxt.part != prev.part:
            end = self.end_of(prev, prev_start, origin)
            assert end is not None
            return end, end - nxt.start
        if nxt.scene.start_follows_tempo:
            gap = nxt.start - (prev.start if prev.start is not None else prev.scene.pre_wait)
            start = self.timebase.later(prev_start, gap, True)
        elif not nxt.scene.trigger.startswith("at "):  # `at` in seconds: from the part's origin
            start += _drift(prev, prev_start, origin)
        grid = nxt.scene.quantize
        snapped = self.timebase.snap(start, grid) if grid is not None else None
        return (start if snapped is None else snapped), next_origin

    def retime(self) -> None:
        """The tempo changed: place the next occurrence's start again (actions and the end are
        placed when they are due)."""
        cur, nxt = self.current, self.next
        if cur is None or nxt is None or self.frozen_at is not None:
            return
        if self.landing is not None:
            self.next_start = self.timebase.time_of_beat(self.landing)
        elif self._planned and self.cue_fired is None:
            self.next_start, self.next_origin = self.follow(cur, self.current_start, self.origin, nxt)

    # -- where to begin ----------------------------------------------------------------------

    def begin(
        self, point: StartPoint, now: float, now_unix: float
    ) -> tuple[ScheduledScene, float, float, str]:
        """(first occurrence, its absolute start, its part origin, how we got there) for a run
        starting at `point` now; the chart then holds the rest of the schedule."""
        if point.resume is not None:
            occ, start, origin = self._resume(point.resume, now, now_unix)
            self.show_origin_unix = point.resume.origin
            return occ, start, origin, "resume"
        if point.at is not None:
            item, into = self.timeline.pass_item_at(point.at)
            occ = item.occurrence
            self.chart = Chart.following(self.timeline, occ)
            self.chart.pop()
            self.show_origin_unix = now_unix - point.at
            return occ, now - into, origin_of(occ, now - into), "seek"
        if point.scene is not None:
            scene = self.timeline.scene(point.scene)
            self.chart = Chart(self.timeline.schedule(scene.index, start_offset=static_start(scene)))
            first = self.chart.pop()
            assert first is not None
            start = now - point.offset
            self.show_origin_unix = now_unix - point.offset
            return first, start, origin_of(first, start), "seek"
        self.chart = Chart(self.timeline.schedule())
        first = self.chart.pop()
        if first is None:
            raise UnknownSceneError("the show has no scene to play")
        self.show_origin_unix = now_unix
        return first, now, origin_of(first, now), "start"

    def wallclock_loop(self) -> bool:
        """A show that loops forever without cues: its position is a function of the wall clock."""
        timeline = self.timeline
        if timeline.total_duration is not None or not timeline.period:
            return False
        return all(s.cue is None for s in timeline.scenes if not s.closed_only)

    def locate_loop(self, now: float, now_unix: float) -> tuple[ScheduledScene, float, float]:
        """The occurrence the loop is at now, as if it had played all along since its origin."""
        origin_unix = self.show_origin_unix if self.show_origin_unix is not None else now_unix
        item, into = self.timeline.pass_item_at(max(0.0, now_unix - origin_unix))
        occ = item.occurrence
        self.chart = Chart.following(self.timeline, occ)
        self.chart.pop()
        start = now - into
        return occ, start, origin_of(occ, start)

    def _resume(
        self, saved: ResumeState, now: float, now_unix: float
    ) -> tuple[ScheduledScene, float, float]:
        if self.wallclock_loop():
            self.show_origin_unix = saved.origin
            return self.locate_loop(now, now_unix)
        if saved.cue is not None and saved.cue_scene is not None:
            # A cue part resumes at its last fired cue, as if it had just been fired.
            scene = self.timeline.scene(saved.cue_scene)
            self.chart = Chart(self.timeline.schedule(scene.index, start_offset=scene.pre_wait))
            occ = self.chart.pop()
            assert occ is not None
            return occ, now, origin_of(occ, now)
        start_offset = saved.part_start if saved.part_start is not None else 0.0
        self.chart = Chart(self.timeline.schedule(saved.index, start_offset=start_offset))
        origin = now - (now_unix - saved.part_origin)
        return walk_to(self.chart, origin, now, cues_fire=False)

    # -- moving ------------------------------------------------------------------------------

    def enter(
        self, occ: ScheduledScene, start: float, origin: float, *, remember: bool, restart_part: bool
    ) -> None:
        """`occ` plays from `start` (its part began at `origin`); the one before goes to the
        history when `remember`. `restart_part`: a jump that begins its part anew."""
        prev = self.current
        if prev is None:
            self.timebase.replan(origin)  # a first entry: the show's clock starts
        if prev is not None and remember and self.behind is None and prev.part >= 0:
            self.history.append(prev)
        if occ.start is None:
            self.part_cue = (self.cue_fired or occ.scene.cue or "go", occ.scene.name)
        elif prev is None or occ.part != prev.part or restart_part:
            self.part_cue = None
        self.current, self.current_start, self.origin = occ, start, origin
        self.action_index = 0
        self.cut_short = False
        self.cue_fired = None
        self.ended = False
        self.next = None
        self.next_start = self.next_origin = None
        self.landing = None
        self._planned = False

    def look_ahead(self) -> None:
        """Take the next occurrence and its start from the chart (after an entry)."""
        cur = self.current
        assert cur is not None
        self.next = self.chart.peek()
        if self.next is not None:
            self.next_start, self.next_origin = self.follow(cur, self.current_start, self.origin, self.next)
            self._planned = self.next_start is not None

    def advance(self, now: float, catch_up: float) -> tuple[ScheduledScene, float, float, bool]:
        """Take the next occurrence off the chart: (it, its start, its part origin, jump).

        Far behind (after a long pipeline switch, a stall or an outage) it skips to the
        wall-clock-correct occurrence; `jump` says the entry is not the planned one (more than
        `catch_up` seconds late).
        """
        nxt = self.chart.pop()
        assert nxt is not None and self.next_start is not None and self.next_origin is not None
        start, origin = self.next_start, self.next_origin
        jump = False
        while now - start > catch_up:
            ahead = self.chart.peek()
            if ahead is None:
                break
            astart, aorigin = self.follow(nxt, start, origin, ahead)
            if astart is None or astart > now or aorigin is None:
                break
            self.chart.pop()
            nxt, start, origin, jump = ahead, astart, aorigin, True
        return nxt, start, origin, jump or now - start > catch_up

    def wait_for_cue(self, occ: ScheduledScene) -> None:
        """Nothing of the plan plays (the playing scene is gone); `occ` waits for its cue, as
        a pre-rolled first scene does. What is on the air stays until GO."""
        self.current = None
        self.action_index = 0
        self.cut_short = False
        self.cue_fired = None
        self.ended = False
        self.next = occ
        self.next_start = self.next_origin = None
        self.landing = None
        self._planned = False

    def jump(self, chart: Chart) -> ScheduledScene:
        """Continue on `chart` (a GOTO or BACK), also for the show behind the closed scene;
        returns its first occurrence."""
        self.behind = None
        self.chart = chart
        occ = chart.pop()
        assert occ is not None
        return occ

    def fire(self, cue: str, now: float, landing: tuple[float, float] | None = None) -> float:
        """`cue` fired at `now` for the next occurrence; returns when that starts. A quantized
        cue gives its `landing` (beat, moment): the occurrence starts there."""
        nxt = self.next
        assert nxt is not None
        self.cue_fired = cue
        self._planned = False
        start = now + nxt.scene.pre_wait
        if landing is not None:
            self.landing, start = landing
        cur = self.current
        if cur is not None:
            self.next_start, self.next_origin = start, start - nxt.scene.pre_wait
            actions = cur.scene.actions
            if self.action_index < len(actions) and self.current_start + actions[-1].offset >= start:
                self.cut_short = True
        return start

    def start_now(self, now: float, landing: tuple[float, float] | None = None) -> None:
        """GO on a timed next occurrence: it starts at `now` (a quantized GO: at its `landing`,
        (beat, moment)) instead of its planned time (its part's clock moves with it, so the
        scenes after it keep their spacing)."""
        nxt, cur = self.next, self.current
        assert nxt is not None and cur is not None
        self.cue_fired = "go"
        self._planned = False
        if landing is not None:
            self.landing, now = landing
        self.next_start = now
        self.next_origin = now - (nxt.start if nxt.start is not None else nxt.scene.pre_wait)
        if self.action_index < len(cur.scene.actions):
            self.cut_short = True

    # -- holds -------------------------------------------------------------------------------

    def freeze(self, now: float) -> None:
        """Stand still from `now` (a hold, or closed hours that pause)."""
        if self.frozen_at is None:
            self.frozen_at = now

    def unfreeze(self, now: float, *, shift: bool) -> None:
        """Move on again; with `shift`, everything planned moves by the time stood still."""
        frozen, self.frozen_at = self.frozen_at, None
        if frozen is not None and shift:
            self._shift(now - frozen)

    def _shift(self, delta: float) -> None:
        self.current_start += delta
        self.origin += delta
        if self.next_start is not None:
            self.next_start += delta
        if self.next_origin is not None:
            self.next_origin += delta

    def set_aside(self) -> None:
        """Keep the position as `behind` (the closed scene is about to play) with an empty chart."""
        self.behind = Snapshot(
            self.chart, self.current, self.current_start, self.origin, self.action_index,
            self.next, self.next_start, self.next_origin,
        )
        self.chart = Chart(iter(()))

    def bring_back(self, delta: float) -> bool:
        """Return to the position set aside, `delta` seconds later; False when there is none."""
        behind, self.behind = self.behind, None
        if behind is None:
            return False
        self.chart = behind.chart
        self.current = behind.current
        self.current_start = behind.current_start
        self.origin = behind.origin
        self.action_index = behind.action_index
        self.next = behind.next
        self.next_start = behind.next_start
        self.next_origin = behind.next_origin
        self._shift(delta)
        return True

    # -- the saved position ------------------------------------------------------------------

    def saved(self, show: str, show_hash: str, now: float, now_unix: float) -> ResumeState | None:
        """What the state file keeps (None while nothing of the show's schedule plays)."""
        cur = self.current
        if cur is None or self.behind is not None or cur.part < 0:
            return None
        cue, cue_scene = self.part_cue if self.part_cue else (None, None)
        part_origin = self.origin + now_unix - now
        return ResumeState(
            show=show,
            show_hash=show_hash,
            origin=self.show_origin_unix if self.show_origin_unix is not None else now_unix,
            scene=cur.scene.name,
            index=cur.scene.index,
            iteration=cur.iteration,
            path=tuple(cur.path),
            part=cur.part,
            part_origin=part_origin,
            part_start=cur.start if cur.start is not None else cur.scene.pre_wait,
            cue=cue,
            cue_scene=cue_scene,
            written_at=now_unix,
            part_origins={str(cur.part): part_origin},
        )

    # -- a new plan --------------------------------------------------------------------------

    def carry(self, new: Timeline, now: float) -> Carried | Gone | None:
        """Move to the plan `new`, keeping the position (scene name + offset into it).

        Returns the scene on the air as carried over, `Gone` when the new plan does not have
        it, or None when nothing is on the air.
        """
        old, self.timeline = self.timeline, new
        self.timebase.replan(now)
        history = (carry_occurrence(h, new) for h in self.history)
        self.history = collections.deque((h for h in history if h is not None), maxlen=HISTORY)
        cur = self.current
        if cur is None:  # pre-rolled, waiting for GO on the first scene
            if self.next is None:
                return None
            first = carry_occurrence(self.next, new) or next(iter(new.schedule()))
            self.chart = Chart.following(new, first)
            self.next = self.chart.pop()
            known = any(s.name == first.scene.name for s in old.scenes)
            before = old.scene(first.scene.name).state_in if known else None
            return Carried(first.scene, 0.0, before, before != first.scene.state_in, first=True)
        carried = carry_occurrence(cur, new)
        if carried is None:
            return Gone(self._successor(cur, old, new))
        offset = self.offset(now)
        before = old.state_at_scene(cur.scene.index, offset)
        changed = scene_change(old, new, cur.scene.name) is not None
        self.current = carried
        self.origin = origin_of(carried, self.current_start)
        actions = carried.scene.actions
        if changed:
            self.action_index = sum(1 for a in actions if a.offset <= offset)
        self.action_index = min(self.action_index, len(actions))
        self.chart = Chart.following(new, carried)
        self.chart.pop()
        self._relink_next(now)
        return Carried(carried.scene, offset, before, changed, first=False)

    def _relink_next(self, now: float) -> None:
        """The next occurrence and its start, from the new chart (after a carry)."""
        cur = self.current
        assert cur is not None
        fired_at, fired_origin = self.next_start, self.next_origin
        self.next = self.chart.peek()
        self.next_start = self.next_origin = None
        if self.next is None:
            return
        if self.cue_fired is not None and self.next.start is None and fired_at is not None:
            self.next_start, self.next_origin = fired_at, fired_origin  # GO already came
            return
        self.next_start, self.next_origin = self.follow(cur, self.current_start, self.origin, self.next)
        self._planned = self.next_start is not None
        if self.frozen_at is not None:
            now = self.frozen_at
        if self.next_start is not None and self.next_origin is not None and self.next_start < now:
            self._planned = False
            # The edit made the playing scene end before where it is: the next one starts
            # now, not in the past (which would read as an outage and skip scenes).
            self.next_origin += now - self.next_start
            self.next_start = now

    def _successor(self, cur: ScheduledScene, old: Timeline, new: Timeline) -> ScheduledScene:
        """The scene that followed `cur` in the old order and is still in `new` (at the end of
        the show, the new plan's last scene), from its start; the chart continues after it."""
        names = [s.name for s in old.scenes[cur.scene.index + 1 :] if not s.closed_only]
        playable = [s for s in new.scenes if not s.closed_only]
        present = {s.name for s in playable}
        target = next((new.scene(n) for n in names if n in present), None)
        if target is None:
            target = playable[-1] if playable else new.scenes[0]
        if target.cue is not None and self.cue_fired is None:
            # It waits for its cue as it would have (`wait_for_cue`); no GO came for it yet.
            self.chart = Chart(new.schedule(target.index))
        else:
            self.chart = Chart(new.schedule(target.index, start_offset=static_start(target)))
        occ = self.chart.pop()
        assert occ is not None
        self.cue_fired = None
        return occ
