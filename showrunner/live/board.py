"""The player's status, read from its parts: where the show is, what comes next, the link to
Scope, holds, opening hours, what the operator armed. One `PlayerStatus` per call.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from showrunner.live.clock import Clock
from showrunner.live.events import EventLog
from showrunner.live.holds import Holds
from showrunner.live.hotswap import HotSwap
from showrunner.live.link import ScopeLink
from showrunner.live.opening import Opening
from showrunner.live.position import Position
from showrunner.live.status import Mode, PlayerStatus
from showrunner.plan.start import StartPoint
from showrunner.plan.timeline import ScheduledScene, Timeline

__all__ = ["Board"]


class Board:
    """Makes the player's `PlayerStatus` from its parts; the player passes its own flags
    (started, quitting, the armed command, the notice) to `status`."""

    def __init__(
        self,
        position: Position,
        link: ScopeLink,
        holds: Holds,
        opening: Opening,
        hotswap: HotSwap,
        log: EventLog,
        clock: Clock,
        start: StartPoint,
    ) -> None:
        self.position = position
        self.link = link
        self.holds = holds
        self.opening = opening
        self.hotswap = hotswap
        self.log = log
        self.clock = clock
        self.start = start
        self.scope_url: str | None = None
        self._hours_cache: tuple[str, datetime | None] | None = None
        self.working: tuple[str, float | None] | None = None  # see set_working
        # The scene names and named cues of the plan they were read from (one plan, many calls).
        self._names: tuple[Timeline, tuple[str, ...], tuple[str, ...]] | None = None

    def __repr__(self) -> str:
        return f"Board({self.position!r})"

    def set_working(self, what: str | None, progress: float | None = None) -> None:
        """Background work the status shows (a long reload, uploads); None when it is done."""
        self.working = (what, progress) if what is not None else None
        self.log.status_changed()

    def status(
        self, *, started: bool, quitting: bool, armed: str | None, notice: str | None
    ) -> PlayerStatus:
        """A snapshot: scene, next, countdown, connection, holds, recent errors."""
        position, now = self.position, self.clock.monotonic()
        timeline = position.timeline
        cur, nxt = position.current, position.next
        waiting = position.waiting_for()
        if not started and nxt is None:
            nxt = self._first()
        remaining = None
        if position.next_start is not None and nxt is not None:
            remaining = max(0.0, position.next_start - (position.frozen_at or now))
        origin = position.show_origin_unix
        opening = self.link.opening
        scenes, cues = self._scene_names(timeline)
        return PlayerStatus(
            title=timeline.show.title,
            scene=cur.scene.name if cur else None,
            scene_index=cur.scene.index if cur else None,
            iteration=cur.iteration if cur else None,
            next=nxt.scene.name if nxt else None,
            waiting_for=waiting,
            countdown=position.countdown(now),
            position=position.offset(now) if cur else None,
            mode=self._mode(waiting, started, quitting),
            held=self.holds.kind is not None or position.frozen_at is not None,
            closed=self.opening.closed,
            connection=self.link.state,
            scenes=scenes,
            errors=tuple(self.log.errors)[-5:],
            reload_errors=tuple(self.hotswap.errors),
            on_air=cur.scene.name if cur else (
                position.next.scene.name if position.next is not None and started else None
            ),
            armed=armed,
            remaining=remaining,
            show_clock=max(0.0, self.clock.time() - origin) if cur and origin is not None else None,
            notice=notice,
            switching="+".join(opening[0]) if opening is not None else None,
            switch_estimate=opening[1] if opening is not None else None,
            hours=self._hours_text(),
            scope_url=self.scope_url,
            cues=cues,
            plan=id(timeline) & 0xFFFFFFFF,
            working=self.working[0] if self.working is not None else None,
            work_progress=self.working[1] if self.working is not None else None,
        )

    def _scene_names(self, timeline: Timeline) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(scene names, named cues) of `timeline`, read once per plan."""
        if self._names is None or self._names[0] is not timeline:
            cues = dict.fromkeys(s.cue for s in timeline.scenes if s.cue is not None and s.cue != "go")
            self._names = (timeline, tuple(s.name for s in timeline.scenes), tuple(cues))
        return self._names[1], self._names[2]

    def _first(self) -> ScheduledScene | None:
        """The occurrence the show will start with (before it has)."""
        with contextlib.suppress(Exception):
            return Position(self.position.timeline).begin(self.start, 0.0, 0.0)[0]
        return None

    def _hours_text(self) -> str | None:
        """ "open until 18:00" or "closed, reopens Sat 11:00" (cached until the next change)."""
        hours = self.opening.hours
        if hours is None:
            return None
        now = self.clock.now()
        cached = self._hours_cache
        if cached is not None and (cached[1] is None or now < cached[1]):
            return cached[0]
        change = hours.next_change(now)
        is_open = hours.is_open(now)
        if change is None:
            text = "open" if is_open else "closed"
        else:
            local = change.astimezone(hours.tz)
            same_day = local.date() == now.astimezone(hours.tz).date()
            when = local.strftime("%H:%M" if same_day else "%a %H:%M")
            text = f"open until {when}" if is_open else f"closed, reopens {when}"
        self._hours_cache = (text, change)
        return text

    def _mode(self, waiting: str | None, started: bool, quitting: bool) -> Mode:
        if quitting:
            return Mode.STOPPED
        if not started:
            return Mode.PENDING
        if self.opening.closed:
            return Mode.CLOSED
        if self.holds.kind is not None:
            return Mode(self.holds.kind)
        if waiting is not None and self.position.actions_done():
            return Mode.WAITING
        return Mode.ENDED if self.position.ended else Mode.PLAYING
