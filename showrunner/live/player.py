"""The live player: plays a compiled :class:`~showrunner.plan.timeline.Timeline` into a `Sink`.

One task (the *main loop*) owns the show position and does everything that changes it:
timed actions, scene changes, cues and operator commands, in order. Every planned time is
``part origin + offset`` read from the schedule, never the sum of earlier sleeps, so a long
show does not drift. Waits go through the injected :class:`~showrunner.live.clock.Clock`, which
wakes a little early and hands over at the exact moment.

Two side tasks watch the world and post to the main loop or repair the session:

- the *watchdog* checks ``sink.connected`` every half second and asks ``sink.liveness()``
  every two seconds (or at once when the quick check fails); on a problem it reconnects with
  exponential backoff (0.5 s doubling, capped at 10 s, forever), opening the new session
  with the full state of the wall-clock-correct position;
- the *hours* task (when the show has opening hours) closes and opens the show at the
  window boundaries.

Nothing here raises because Scope went away: failed sends and reloads are journaled as
errors and the show goes on.

The player knows Scope only through the `Sink` protocol (which ``ScopeSession`` satisfies).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import copy
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from showrunner.errors import CueError, ShowErrors, ShowrunnerError
from showrunner.live.clock import Clock, SystemClock
from showrunner.live.collector import IdleCollector
from showrunner.live.eager import start_eagerly
from showrunner.live.hours import OpeningHours
from showrunner.live.journal import Journal
from showrunner.live.link import LinkState
from showrunner.live.resume import ResumeState, clear_state, write_state
from showrunner.live.status import Mode, PlayerStatus
from showrunner.plan.chart import (
    Chart,
    StartPoint,
    end_of,
    follow,
    locate,
    origin_of,
    playable_scene,
    start_point,
    static_start,
)
from showrunner.plan.diff import (
    PlanDiff,
    carry_occurrence,
    diff_timelines,
    scene_change,
    state_delta,
    transition_for,
)
from showrunner.plan.timeline import (
    CompiledScene,
    ScheduledScene,
    State,
    Timeline,
    resolve_refs,
)

__all__ = ["Player", "Sink", "StartPoint", "start_point"]

log = logging.getLogger("showrunner.live.player")

WATCHDOG_PERIOD = 0.5
HEALTH_PERIOD = 2.0
BACKOFF_START = 0.5
BACKOFF_CAP = 10.0
# An action this late (after a reload, a stall, an outage) is not sent as such: the player
# re-enters the scene at the current offset with its full state instead of a burst of stale updates.
CATCH_UP = 0.5
_HISTORY = 100
_ERRORS = 20
# Background work (health checks, garbage collection) keeps this far from the next event.
_QUIET_BEFORE_EVENT = 0.05


@runtime_checkable
class Sink(Protocol):
    """Where the show goes: a Scope session (``ScopeSession``) or anything shaped like one.

    ``send`` returns (unix time the message was written, the exact dict written). The player
    runs its first step synchronously (see `start_eagerly`), so it must not rely on
    ``asyncio.current_task()`` before its first ``await``.
    """

    @property
    def connected(self) -> bool: ...

    async def open(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float: ...

    async def switch(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float: ...

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """`message` checked and made ready for the wire ahead of its moment (``send`` takes the
        result as it is); raises a ShowrunnerError for what ``send`` would refuse."""
        ...

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]: ...

    async def close(self) -> None: ...

    async def liveness(self) -> str | None: ...


@dataclass(frozen=True)
class _Reload:
    """A new plan on its way to the main loop (hot reload)."""

    timeline: Timeline
    apply: str  # "now" | "boundary"
    assets: Mapping[str, str] | None
    loras: Mapping[str, str] | None
    refreshed: tuple[str, ...]  # image assets uploaded again (their file changed)


# ---------------------------------------------------------------------------------------------
# The player
# ---------------------------------------------------------------------------------------------


class Player:
    """Plays one timeline into one sink; operator commands are plain methods (README: "Run a show")."""

    def __init__(
        self,
        timeline: Timeline,
        sink: Sink,
        *,
        clock: Clock | None = None,
        journal: Journal | None = None,
        assets: Mapping[str, str] | None = None,
        loras: Mapping[str, str] | None = None,
        start: StartPoint | None = None,
        hours: OpeningHours | None = None,
        state_path: Path | None = None,
        show_path: str | None = None,
        show_hash: str = "",
        watchdog_period: float = WATCHDOG_PERIOD,
        health_period: float = HEALTH_PERIOD,
        backoff: tuple[float, float] = (BACKOFF_START, BACKOFF_CAP),
        catch_up: float = CATCH_UP,
        manage_gc: bool = False,
    ) -> None:
        self.timeline = timeline
        self.sink = sink
        self.clock: Clock = clock or SystemClock()
        self.journal = journal
        self.assets = dict(assets or {})
        self.loras = dict(loras or {})
        self.start = start or StartPoint()
        self.hours = hours
        self.state_path = state_path
        self.show_path = show_path or str(timeline.source or "")
        self.show_hash = show_hash
        self.watchdog_period = watchdog_period
        self.health_period = health_period
        self._last_health = float("-inf")
        self.backoff = backoff
        self.catch_up = catch_up
        self._collector = IdleCollector() if manage_gc else None
        self._next_at: float | None = None  # monotonic time of the next planned event
        # position
        self._chart = Chart(iter(()))
        self._cur: ScheduledScene | None = None
        self._cur_start = 0.0
        self._origin = 0.0
        self._action_i = 0
        self._cut_short = False
        self._next: ScheduledScene | None = None
        self._next_abs: float | None = None
        self._next_origin: float | None = None
        self._cue_fired: str | None = None
        self._part_cue: tuple[str, str] | None = None  # (cue, scene) that started this part
        self._history: collections.deque[ScheduledScene] = collections.deque(maxlen=_HISTORY)
        self._show_origin_unix: float | None = None
        self._ended = False
        self._prepared: tuple[ScheduledScene, int, dict[str, Any]] | None = None
        self._paused_by_us = False  # Scope is paused by a panic or closed hours, not by the show
        # holds: operator hold/panic and closed hours
        self._held: str | None = None
        self._closed = False
        self._frozen_at: float | None = None
        self._stash: dict[str, Any] | None = None
        # the link to Scope
        self._opened = False
        self._live_key: tuple[Any, ...] | None = None
        self._link = "starting"
        self._missed = 0
        self._generation = 0  # counts session (re)opens: a liveness answer from before one is stale
        self._sink_lock = asyncio.Lock()
        # running
        self._commands: collections.deque[tuple[str, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._sleeper: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._quitting = False
        self._exit_code = 0
        self._running = False
        self._errors: collections.deque[str] = collections.deque(maxlen=_ERRORS)
        self._listeners: list[Callable[[dict[str, Any]], object]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Future[tuple[float, dict[str, Any]]]] = set()
        # State-file writes (an fsync each) run in order on one worker, off the send path.
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._last_write: asyncio.Future[None] | None = None
        self._clear_state = False
        self._prerolled: State | None = None  # what the session was just opened with
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed_at = 0.0
        # hot reload
        self._plan = timeline  # the latest plan handed over (applied or waiting for a boundary)
        self._pending: _Reload | None = None
        self._reload_errors: list[str] = []
        self.reload_hook: Callable[[], Awaitable[object]] | None = None  # set by run_show

    def __repr__(self) -> str:
        scene = self._cur.scene.name if self._cur else None
        return f"Player({self.timeline.show.title!r}, scene={scene!r}, link={self._link!r})"

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Play until the show stops or `quit()`; close the session; return the exit code (0)."""
        if self._running:
            raise RuntimeError("this player is already running; create a new Player per run")
        self._running = True
        self._loop = asyncio.get_running_loop()
        if self._collector is not None:
            self._collector.start()
        main = asyncio.create_task(self._main(), name="showrunner-player")
        self._tasks = [main, asyncio.create_task(self._watchdog(), name="showrunner-watchdog")]
        if self.hours is not None:
            self._tasks.append(asyncio.create_task(self._hours_loop(), name="showrunner-hours"))
        try:
            await self._done.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.shield(self._shutdown())
            if self._collector is not None:
                self._collector.stop()
        return self._exit_code

    async def _shutdown(self) -> None:
        self._link = "closed"
        try:
            await self.sink.close()
        except Exception as exc:  # closing must never hide the real outcome
            log.error("closing the Scope session failed: %s", exc)
        if self._inflight:  # the close failed whatever was still waiting; journal it
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await asyncio.sleep(0)
        if self._last_write is not None:
            await asyncio.gather(self._last_write, return_exceptions=True)
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._clear_state and self.state_path is not None:
            clear_state(self.state_path)  # a finished show starts from the top next time
        self._record("quit", label="closed", text="session closed")

    def _finish(self, code: int) -> None:
        self._quitting = True
        self._exit_code = code
        self._done.set()
        self._poke()

    async def _main(self) -> None:
        try:
            await self._begin()
        except Exception as exc:
            log.exception("could not start the show")
            self._error(f"start failed: {exc}")
        while not self._quitting:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not end the picture: log it and go on
                log.exception("player step failed")
                self._error(f"internal error: {exc}")
                await self._doze(0.1)

    async def _step(self) -> None:
        if self._commands:
            name, arg = self._commands.popleft()
            await self._apply(name, arg)
            return
        event = self._next_event()
        self._next_at = event[0] if event is not None else None
        if self._collector is not None:
            self._collector.collect(self._room())
        if event is None:
            self._wake.clear()
            if not self._commands and not self._quitting:
                await self._wake.wait()
            return
        when, kind = event
        if when > self.clock.monotonic() and not await self._wait(when):
            return
        await self._fire(kind, when)

    def _room(self) -> float:
        """Seconds until the next planned event (a long time when nothing is planned)."""
        if self._next_at is None:
            return 3600.0
        return self._next_at - self.clock.monotonic()

    async def _wait(self, deadline: float) -> bool:
        """Sleep until `deadline`; False when a command (or quit) interrupted the wait.

        The long part of the wait is a task a command can cancel; the last few milliseconds
        (the clock's precise hand-over) run in this task, so the action follows without
        another trip through the event loop.
        """
        task = asyncio.ensure_future(self.clock.approach(deadline))
        self._sleeper = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return False
        finally:
            self._sleeper = None
        if self._commands or self._quitting:
            return False
        await self.clock.sleep_until(deadline)
        return True

    async def _doze(self, seconds: float) -> None:
        """A background wait (watchdog, backoff, hours): never the precise hand-over, which
        blocks the loop for its last milliseconds and could delay a cue due at that moment."""
        await self.clock.doze(self.clock.monotonic() + seconds)

    def _poke(self) -> None:
        self._wake.set()
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.cancel()

    def _post(self, name: str, arg: Any = None) -> None:
        self._commands.append((name, arg))
        self._poke()

    # -- where to begin --------------------------------------------------------------------------

    async def _begin(self) -> None:
        now = self.clock.monotonic()
        occ, start, origin, label = self._start_position(now)
        if occ.start is None and label == "start":
            await self._preroll(occ)
            return
        # Open the session first, in the state the show starts in. A fresh start or a seek
        # starts its clock once the picture is there; a resumed position is wall-clock
        # bound, so it is looked up again after the open.
        offset = max(0.0, now - start)
        state = occ.scene.state_in if offset <= 0 else self.timeline.state_at_scene(
            occ.scene.index, offset
        )
        actions = occ.scene.actions
        if offset <= 0 and actions and actions[0].offset <= 0 and actions[0].kind == "session":
            initial: Mapping[str, Any] = actions[0].message
        else:
            initial = state.initial_parameters()
        self._record("start", label=label, scene=occ.scene.name, offset=round(offset, 6),
                     text=f"{label} at {occ.scene.name}" + (f" +{offset:.1f}s" if offset else ""))
        await self._session(state, initial, planned=now, label="open", scene=occ.scene.name,
                            offset=offset)
        self._prerolled = state
        later = self.clock.monotonic()
        if label == "resume":
            occ, start, origin, label = self._start_position(later)
        else:
            start += later - now
            origin += later - now
            if self._show_origin_unix is not None:
                self._show_origin_unix += later - now
        await self._enter(occ, start, origin, jump=True, offset=max(0.0, later - start),
                          label=label)
        await self._check_hours_at_start()

    def _start_position(self, now: float) -> tuple[ScheduledScene, float, float, str]:
        """(first occurrence, its absolute start, its part origin, how we got there)."""
        now_unix = self.clock.time()
        point = self.start
        if point.resume is not None:
            occ, start, origin = self._resume_position(point.resume, now, now_unix)
            self._show_origin_unix = point.resume.origin
            return occ, start, origin, "resume"
        if point.at is not None:
            item, into = self.timeline.locate(point.at)
            occ = item.occurrence
            self._chart = Chart.following(self.timeline, occ)
            self._chart.pop()
            self._show_origin_unix = now_unix - point.at
            return occ, now - into, origin_of(occ, now - into), "seek"
        if point.scene is not None:
            scene = self.timeline.scene(point.scene)
            self._chart = Chart(
                self.timeline.schedule(scene.index, start_offset=static_start(scene))
            )
            first = self._chart.pop()
            assert first is not None
            start = now - point.offset
            self._show_origin_unix = now_unix - point.offset
            return first, start, origin_of(first, start), "seek"
        self._chart = Chart(self.timeline.schedule())
        first = self._chart.pop()
        if first is None:
            raise CueError("the show has no scene to play")
        self._show_origin_unix = now_unix
        return first, now, origin_of(first, now), "start"

    async def _preroll(self, first: ScheduledScene) -> None:
        """The first scene waits for GO: open the session with its look, start nothing yet."""
        self._next = first
        self._record("start", label="waiting for GO", scene=first.scene.name,
                     text=f"ready: {first.scene.name} waits for {first.scene.cue or 'go'}")
        state = first.scene.state_in
        actions = first.scene.actions
        initial = actions[0].message if actions and actions[0].kind == "session" else (
            state.initial_parameters()
        )
        await self._session(state, initial, planned=self.clock.monotonic(), label="preroll",
                            scene=first.scene.name)
        self._prerolled = state
        await self._check_hours_at_start()

    async def _check_hours_at_start(self) -> None:
        if self.hours is not None and not self.hours.is_open(self.clock.now()):
            await self._close_hours()

    def _wallclock_loop(self) -> bool:
        """A show that loops forever without cues: its position is a function of the wall clock."""
        if self.timeline.total_duration is not None or not self.timeline.period:
            return False
        return all(s.cue is None for s in self.timeline.scenes if not s.closed_only)

    def _locate_loop(self, now: float, now_unix: float) -> tuple[ScheduledScene, float, float]:
        """The occurrence the loop is at now, as if it had played all along since its origin."""
        origin_unix = self._show_origin_unix if self._show_origin_unix is not None else now_unix
        item, into = self.timeline.locate(max(0.0, now_unix - origin_unix))
        occ = item.occurrence
        self._chart = Chart.following(self.timeline, occ)
        self._chart.pop()
        start = now - into
        return occ, start, origin_of(occ, start)

    def _resume_position(
        self, saved: ResumeState, now: float, now_unix: float
    ) -> tuple[ScheduledScene, float, float]:
        if self._wallclock_loop():
            self._show_origin_unix = saved.origin
            return self._locate_loop(now, now_unix)
        if saved.cue is not None and saved.cue_scene is not None:
            # A cue part resumes at its last fired cue, as if it had just been fired.
            scene = self.timeline.scene(saved.cue_scene)
            self._chart = Chart(self.timeline.schedule(scene.index, start_offset=scene.pre_wait))
            occ = self._chart.pop()
            assert occ is not None
            return occ, now, origin_of(occ, now)
        start_offset = saved.part_start if saved.part_start is not None else 0.0
        self._chart = Chart(self.timeline.schedule(saved.index, start_offset=start_offset))
        origin = now - (now_unix - saved.part_origin)
        return locate(self._chart, origin, now, cues_fire=False)

    # -- the main loop's events ------------------------------------------------------------------

    def _next_event(self) -> tuple[float, str] | None:
        cur = self._cur
        if cur is None or self._frozen_at is not None:
            return None
        actions = cur.scene.actions
        at_action = (
            self._cur_start + actions[self._action_i].offset if self._action_i < len(actions) else None
        )
        if self._next_abs is not None and (at_action is None or self._next_abs <= at_action):
            self._prepare_entry()
            return self._next_abs, "scene"
        if at_action is not None:
            self._prepare(self._action_i)
            return at_action, "action"
        if self._next is None and not self._ended and self._stash is None:
            end = end_of(cur, self._cur_start, self._origin)
            if end is not None:
                return end, "end"
        return None

    def _prepare(self, index: int) -> None:
        """Make the next action's message before the wait, not after it."""
        cur = self._cur
        assert cur is not None
        prepared = self._prepared
        if prepared is not None and prepared[0] is cur and prepared[1] == index:
            return
        self._prepared = (cur, index, self._ready(cur.scene.actions[index].message))

    def _prepare_entry(self) -> None:
        """Make the next scene's entry message ahead too (used if the entry is a natural one)."""
        nxt = self._next
        if nxt is None or not nxt.scene.actions:
            return
        prepared = self._prepared
        if prepared is not None and prepared[0] is nxt and prepared[1] == 0:
            return
        entry = nxt.scene.actions[0]
        if entry.offset <= 0 and entry.kind == "send":
            self._prepared = (nxt, 0, self._ready(entry.message))

    def _ready(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Refs resolved, checked and serialised for the wire by the sink."""
        resolved = self._resolve(message)
        try:
            return self.sink.prepare(resolved)
        except ShowrunnerError:
            return resolved  # the send reports it, at its moment, like any other refusal

    async def _fire(self, kind: str, planned: float) -> None:
        if kind == "scene":
            await self._advance()
        elif kind == "action":
            await self._fire_action(planned)
        elif kind == "end":
            await self._end()

    async def _fire_action(self, planned: float) -> None:
        cur = self._cur
        assert cur is not None
        index = self._action_i
        action = cur.scene.actions[index]
        self._action_i += 1
        if self.clock.monotonic() - planned > self.catch_up:
            await self._catch_up()
            return
        if action.kind == "session":
            state = cur.scene.state_in if action.offset <= 0 else self.timeline.state_at_scene(
                cur.scene.index, action.offset
            )
            await self._session(state, action.message, planned=planned, label=action.label,
                                scene=cur.scene.name, offset=action.offset)
            return
        prepared = self._prepared
        if prepared is not None and prepared[0] is cur and prepared[1] == index:
            message = prepared[2]
        else:
            message = self._resolve(action.message)
        await self._send(message, planned=planned, label=action.label, scene=cur.scene.name,
                         offset=action.offset, resolved=True)

    async def _catch_up(self) -> None:
        """Re-enter the current scene at the current offset with its full state."""
        cur = self._cur
        assert cur is not None
        offset = self.clock.monotonic() - self._cur_start
        skipped = sum(1 for a in cur.scene.actions if a.offset <= offset) - (self._action_i - 1)
        log.warning("%s: %d update(s) overdue; sending the state at +%.2f s instead",
                    cur.scene.name, max(skipped, 1), offset)
        await self._apply_state(cur, offset, label="catch up")

    async def _advance(self) -> None:
        """The next occurrence's start time has come (or passed)."""
        if self._pending is not None:
            await self._reload_at_boundary()
            return
        nxt = self._chart.pop()
        assert nxt is not None and self._next_abs is not None and self._next_origin is not None
        start, origin = self._next_abs, self._next_origin
        now = self.clock.monotonic()
        jump = False
        # Far behind (after a reload or an outage): skip to the wall-clock-correct occurrence.
        while now - start > self.catch_up:
            ahead = self._chart.peek()
            if ahead is None:
                break
            astart, aorigin = follow(nxt, start, origin, ahead)
            if astart is None or astart > now or aorigin is None:
                break
            self._chart.pop()
            nxt, start, origin, jump = ahead, astart, aorigin, True
        if now - start > self.catch_up:
            jump = True
        offset = max(0.0, now - start) if jump else 0.0
        await self._enter(nxt, start, origin, jump=jump, offset=offset,
                          label="catch up" if jump else "enter")

    async def _end(self) -> None:
        cur = self._cur
        assert cur is not None
        self._ended = True
        mode = self.timeline.show.end
        self._record("end", label=mode, scene=cur.scene.name,
                     text=f"end of show ({'stop' if mode == 'stop' else 'holding the last look'})")
        if mode == "stop":
            self._clear_state = True
            self._finish(0)

    # -- entering occurrences --------------------------------------------------------------------

    async def _enter(
        self,
        occ: ScheduledScene,
        start: float,
        origin: float,
        *,
        jump: bool,
        offset: float = 0.0,
        label: str = "enter",
        remember: bool = True,
    ) -> None:
        prev = self._cur
        actions = occ.scene.actions
        entry_session = bool(actions) and actions[0].offset <= 0 and actions[0].kind == "session"
        natural = (
            not jump
            and not occ.jumped
            and prev is not None
            and not self._cut_short
            and self._action_i >= len(prev.scene.actions)
            and self._link == "connected"
            and (entry_session or self._live_key == occ.scene.state_in.session_key)
        )
        if prev is not None and remember and self._stash is None and prev.part >= 0:
            self._history.append(prev)
        if occ.start is None:
            self._part_cue = (self._cue_fired or occ.scene.cue or "go", occ.scene.name)
        elif prev is None or occ.part != prev.part or (jump and label in ("goto", "back")):
            self._part_cue = None
        self._cur, self._cur_start, self._origin = occ, start, origin
        self._action_i = 0
        self._cut_short = False
        self._cue_fired = None
        self._ended = False
        self._next = None
        self._next_abs = self._next_origin = None
        # The entry goes out first; bookkeeping (journal, state file, look-ahead) after it.
        if natural:
            if actions and actions[0].offset <= 0:
                await self._fire_action(start)
        else:
            await self._apply_state(occ, offset, label=label, at_start=offset <= 0)
        if self._cur is not occ:
            return  # a command moved on meanwhile (a long reload)
        self._next = self._chart.peek()
        if self._next is not None:
            self._next_abs, self._next_origin = follow(occ, start, origin, self._next)
        self._record(
            "scene", planned=start, label=label, scene=occ.scene.name, offset=round(offset, 6),
            iteration=occ.iteration, part=occ.part, path=[list(p) for p in occ.path], how=occ.how,
            text=f"scene {occ.scene.name}" + (f" (+{offset:.1f}s)" if offset > 0.05 else ""),
        )
        self._save_state()

    async def _apply_state(
        self, occ: ScheduledScene, offset: float, *, label: str, at_start: bool = False
    ) -> None:
        """Put Scope into `occ`'s full state at `offset` (a jump, seek, catch-up or reopening)."""
        scene = occ.scene
        state = scene.state_in if at_start else self.timeline.state_at_scene(scene.index, offset)
        actions = scene.actions
        done = sum(1 for a in actions if a.offset <= offset) if not at_start else sum(
            1 for a in actions if a.offset <= 0
        )
        entry = actions[0] if at_start and actions and actions[0].offset <= 0 else None
        self._action_i = max(self._action_i, done)
        planned = self._cur_start + offset
        prerolled, self._prerolled = self._prerolled, None
        if prerolled is not None and prerolled == state and self._live_key == state.session_key:
            return  # the session was opened in exactly this state a moment ago
        if not self._opened or state.session_key != self._live_key:
            message = entry.message if entry is not None and entry.kind == "session" else (
                state.initial_parameters()
            )
            await self._session(state, message, planned=planned, label=label, scene=scene.name,
                                offset=offset)
            return
        message = dict(state.resync_message())
        if entry is not None and entry.kind == "send":
            message.update(entry.message)  # keep the scene's own transition and one-shots
        self._unpause(message)
        await self._send(self._resolve(message), planned=planned, label=label, scene=scene.name,
                         offset=offset, resolved=True)

    # -- talking to the sink ---------------------------------------------------------------------

    def _unpause(self, message: dict[str, Any]) -> None:
        """Lift our own pause (panic, closed hours) in a full-state message, unless it still holds."""
        closed_pause = self._closed and self.hours is not None and self.hours.closed_scene is None
        if self._paused_by_us and "paused" not in message and self._held != "panic" and (
            not closed_pause
        ):
            message["paused"] = False

    def _resolve(self, message: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return resolve_refs(message, self.assets, self.loras)
        except ShowrunnerError as exc:  # sent as written: Scope drops a bad path (contract §8-L)
            self._error(f"cannot resolve a reference: {exc}")
            return copy.deepcopy(dict(message))

    async def _send(
        self,
        message: Mapping[str, Any],
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float | None = None,
        resolved: bool = False,
    ) -> None:
        """Hand one message to the sink now; journaled when it has gone out.

        The sink may hold a message back to respect the server's one-update-per-chunk intake
        (merging later ones into it), so the send runs as its own task: the main loop never
        waits for a slot and keeps to the schedule.
        """
        body = message if resolved else self._resolve(message)
        if "paused" in body:
            self._paused_by_us = bool(body["paused"]) and label in ("panic", "closed")
        if self._link != "connected":
            self._missed += 1
            self._record("error", planned=planned, label=label, scene=scene, message=body,
                         offset=offset, error=f"not sent: Scope is {self._link}")
            return
        task = start_eagerly(self.sink.send(body))
        if task.done():
            # One turn of the loop first: the transport's flush, queued by the write, puts the
            # message on the wire before the journal and the look-ahead for the next event run.
            await asyncio.sleep(0)
            self._sent(task, body, planned=planned, label=label, scene=scene, offset=offset)
            return
        self._inflight.add(task)
        task.add_done_callback(
            lambda t: self._sent(t, body, planned=planned, label=label, scene=scene, offset=offset)
        )

    def _sent(
        self,
        task: asyncio.Future[tuple[float, dict[str, Any]]],
        body: Mapping[str, Any],
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float | None,
    ) -> None:
        self._inflight.discard(task)
        if task.cancelled():
            self._missed += 1
            self._record("error", planned=planned, label=label, scene=scene, message=body,
                         offset=offset, error="not sent: cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self._missed += 1
            self._error(f"{scene}: {label} not sent: {exc}", planned=planned, label=label,
                        scene=scene, message=body, offset=offset)
            return
        sent_at, sent = task.result()
        self._record("send", planned=planned, sent_at=sent_at, label=label, scene=scene,
                     message=sent, offset=offset)

    async def _session(
        self,
        state: State,
        initial: Mapping[str, Any],
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float | None = None,
    ) -> None:
        """Open (first time) or switch (reload + reconnect) the session for `state`."""
        chain = list(state.chain)
        load_params = self._resolve(state.load_params)
        initial = self._resolve(initial)
        if self._link in ("down", "reconnecting"):
            self._missed += 1
            self._record("error", planned=planned, label=label, scene=scene, message=initial,
                         offset=offset, error=f"not switched: Scope is {self._link}")
            return
        async with self._sink_lock:
            kind = "switch" if self._opened else "session"
            started = self.clock.time()
            self._link = "connecting"
            self._notify_status()
            try:
                if self._opened:
                    gap = await self.sink.switch(chain, load_params, initial)
                else:
                    gap = await self.sink.open(chain, load_params, initial)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._opened = True  # a later attempt must close what may be half open
                self._live_key = None
                self._link = "down"
                self._error(f"{scene}: {kind} failed: {exc}", planned=planned, label=label,
                            scene=scene, message=initial, offset=offset)
                return
            self._opened = True
            self._live_key = state.session_key
            self._link = "connected"
            self._generation += 1
        self._record(kind, planned=planned, sent_at=started, label=label, scene=scene,
                     message=initial, offset=offset, gap=round(gap, 4), chain=chain,
                     load_params=load_params,
                     text=f"{'opened' if kind == 'session' else 'switched'} "
                     f"{'+'.join(chain)} in {gap:.2f} s")

    # -- commands ---------------------------------------------------------------------------------

    def go(self) -> None:
        """GO: fire the cue the show is waiting for (does nothing when none is waiting)."""
        self._command("go", "go")

    def cue(self, name: str) -> None:
        """Fire the named cue if the show waits for it (GO fires any cue)."""
        self._command("cue", "go", name)

    def back(self) -> None:
        """Return to the previous scene, with its full state; raises CueError at the first one."""
        if not self._history:
            raise CueError("there is no previous scene to go back to")
        self._command("back", "back")

    def goto(self, name: str) -> None:
        """Jump to scene `name` now, with its full state; raises CueError for an unknown scene."""
        scene = playable_scene(self.timeline, name)
        self._command("goto", "goto", scene.index, shown=scene.name)

    def hold(self) -> None:
        """Stop timed progression; the current look keeps playing. `resume()` continues."""
        self._command("hold", "hold", "hold")

    def panic(self) -> None:
        """Freeze the picture (``paused``) and stop every scheduled update. `resume()` undoes it."""
        self._command("panic", "hold", "panic")

    def resume(self) -> None:
        """Continue after hold/panic from where the show stopped."""
        self._command("resume", "resume")

    def quit(self) -> None:
        """End the run: close the Scope session cleanly; `run()` then returns 0."""
        self._command("quit", "quit")

    def _command(self, label: str, name: str, arg: Any = None, *, shown: str | None = None) -> None:
        # Callable from any thread (a control surface may run elsewhere); the work happens
        # on the player's loop, in order.
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop and not loop.is_closed():
            loop.call_soon_threadsafe(self._command_here, label, name, arg, shown)
        else:
            self._command_here(label, name, arg, shown)

    def _command_here(self, label: str, name: str, arg: Any, shown: str | None) -> None:
        if self._quitting:
            return
        text_arg = shown if shown is not None else (arg if isinstance(arg, str) and arg != label else None)
        self._record("operator", label=label, arg=text_arg,
                     scene=self._cur.scene.name if self._cur else None,
                     text=f"operator: {label}" + (f" {text_arg}" if text_arg else ""))
        if name == "quit":
            self._finish(0)
        else:
            self._post(name, arg)

    async def _apply(self, name: str, arg: Any) -> None:
        if name == "reload":
            await self._reload(arg)
            return
        if name in ("goto", "back") and self._pending is not None and self._stash is None:
            # Leaving the scene is its boundary: the waiting plan takes over first.
            old = self.timeline
            await self._swap(self._take_pending(), look=False)
            if name == "goto":
                try:
                    arg = self.timeline.scene(old.scene(arg).name).index
                except CueError:
                    self._record("operator", label="goto ignored",
                                 text="goto: the scene is gone from the new plan")
                    return
        if name == "go":
            await self._go(arg)
        elif name == "back":
            await self._back()
        elif name == "goto":
            await self._jump_to(arg, label="goto")
        elif name == "hold":
            await self._hold(arg)
        elif name == "resume":
            await self._resume()
        elif name == "close":
            await self._close_hours()
        elif name == "open":
            await self._open_hours()

    async def _go(self, name: str | None) -> None:
        nxt = self._next
        waiting = nxt is not None and nxt.start is None and self._cue_fired is None and (
            self._next_abs is None
        )
        if self._cur is None and nxt is not None:
            waiting = self._cue_fired is None
        if not waiting or nxt is None:
            self._record("operator", label="go ignored", text="GO: no cue is waiting")
            return
        wanted = nxt.scene.cue or "go"
        if name is not None and name != wanted and name != "go":
            self._record("operator", label="cue ignored", arg=name,
                         text=f"cue {name!r}: the show waits for {wanted!r}")
            return
        await self._release_hold(shift=True)
        now = self.clock.monotonic()
        self._cue_fired = wanted
        start = now + nxt.scene.pre_wait
        self._record("cue", planned=now, label=wanted, scene=nxt.scene.name,
                     text=f"cue {wanted}: {nxt.scene.name}")
        if self._cur is None:  # the pre-rolled first scene (already taken off the chart)
            await self._enter(nxt, start, now, jump=True, label="cue")
            return
        self._next_abs, self._next_origin = start, now
        cur = self._cur
        if self._action_i < len(cur.scene.actions) and (
            self._cur_start + cur.scene.actions[-1].offset >= start
        ):
            self._cut_short = True

    async def _back(self) -> None:
        if not self._history:
            self._record("operator", label="back ignored", text="BACK: nothing to go back to")
            return
        target = self._history.pop()
        # Back to that very occurrence, loop counters included.
        await self._jump(Chart.following(self.timeline, target), label="back", remember=False)

    async def _jump_to(self, index: int, *, label: str) -> None:
        scene = self.timeline.scene(index)
        chart = Chart(self.timeline.schedule(index, start_offset=static_start(scene)))
        await self._jump(chart, label=label)

    async def _jump(self, chart: Chart, *, label: str, remember: bool = True) -> None:
        await self._release_hold(shift=False)
        self._stash = None  # closed: the jump applies to the show behind the closed scene
        self._chart = chart
        occ = chart.pop()
        assert occ is not None
        now = self.clock.monotonic()
        await self._enter(occ, now, origin_of(occ, now), jump=True, label=label,
                          remember=remember)

    async def _hold(self, kind: str) -> None:
        if self._held == kind:
            return
        first = self._held is None
        self._held = kind
        if self._frozen_at is None:
            self._frozen_at = self.clock.monotonic()
        scene = self._cur.scene.name if self._cur else (self._next.scene.name if self._next else "")
        self._record("hold", label=kind, scene=scene,
                     text="PANIC: picture frozen" if kind == "panic" else "hold: progression stopped")
        if kind == "panic":
            await self._send({"paused": True}, planned=self.clock.monotonic(), label="panic",
                             scene=scene)
        elif not first:  # panic -> hold: let the picture move again
            await self._send({"paused": False}, planned=self.clock.monotonic(), label="hold",
                             scene=scene)

    async def _resume(self) -> None:
        if self._held is None:
            self._record("operator", label="resume ignored", text="resume: nothing is held")
            return
        await self._release_hold(shift=True)

    async def _release_hold(self, *, shift: bool) -> None:
        kind, self._held = self._held, None
        if kind is None:
            return
        scene = self._cur.scene.name if self._cur else ""
        if kind == "panic":
            paused = False
            if self._cur is not None:
                offset = self._position()
                paused = bool(self.timeline.state_at_scene(self._cur.scene.index, offset)
                              .params.get("paused", False))
            await self._send({"paused": paused}, planned=self.clock.monotonic(), label="resume",
                             scene=scene)
        if not (self._closed and self.hours and self.hours.closed_scene is None):
            self._unfreeze(shift=shift)
        self._record("resume", label=kind, scene=scene, text="resumed")

    def _unfreeze(self, *, shift: bool) -> None:
        frozen, self._frozen_at = self._frozen_at, None
        if frozen is None or not shift:
            return
        delta = self.clock.monotonic() - frozen
        self._cur_start += delta
        self._origin += delta
        if self._next_abs is not None:
            self._next_abs += delta
        if self._next_origin is not None:
            self._next_origin += delta

    def _position(self) -> float:
        """Seconds into the current occurrence (frozen while held)."""
        now = self._frozen_at if self._frozen_at is not None else self.clock.monotonic()
        return max(0.0, now - self._cur_start)

    # -- hot reload ------------------------------------------------------------------------------

    @property
    def plan(self) -> Timeline:
        """The latest plan handed to `replace_timeline` (what the next diff is taken against)."""
        return self._plan

    def replace_timeline(
        self,
        timeline: Timeline,
        *,
        apply: str = "now",
        assets: Mapping[str, str] | None = None,
        loras: Mapping[str, str] | None = None,
        refreshed: Sequence[str] = (),
        diff: PlanDiff | None = None,
    ) -> PlanDiff:
        """Play `timeline` from now on, keeping the position (scene name + offset into it).

        The diff against the previous plan is journaled (``kind: "reload"``) and returned.
        With ``apply="now"`` a change to the playing scene is on the air at once: new prompts
        through the scene's transition, other values in one message, a pipeline or load change
        through a reload + reconnect. With ``"boundary"`` the playing scene finishes as it was
        and the new plan takes over at the next scene change. Future scenes are rescheduled;
        if the playing scene was deleted, the show moves on to the one that followed it.
        `assets`/`loras` map the new plan's references to server paths; `refreshed` names
        image assets uploaded again (their file changed). `diff` may be computed beforehand
        (off the event loop for a big show). Also clears the errors of an earlier bad edit.
        """
        if apply not in ("now", "boundary"):
            raise ValueError(f"apply must be 'now' or 'boundary', not {apply!r}")
        if diff is None:
            diff = diff_timelines(self._plan, timeline)
        self._plan = timeline
        request = _Reload(timeline, apply, assets, loras, tuple(refreshed))
        self._on_loop(self._reload_here, request, diff)
        return diff

    def reload_failed(self, errors: ShowErrors | Sequence[str]) -> None:
        """A bad edit: the show plays on unchanged; the lines go to the status and journal."""
        if isinstance(errors, ShowErrors):
            lines = [e.format() for e in errors.errors] or [str(errors)]
        else:
            lines = [str(e) for e in errors]
        self._on_loop(self._reload_failed_here, lines)

    def reload(self) -> None:
        """Read the show file again now (the control surface's RELOAD)."""
        hook = self.reload_hook
        if hook is None:
            raise NotImplementedError("hot reload is not available in this run")

        def start() -> None:
            task: asyncio.Future[object] = asyncio.ensure_future(hook())
            tasks: list[Any] = self._tasks  # cancelled with the player if still running
            tasks.append(task)
            task.add_done_callback(lambda t: t in tasks and tasks.remove(t))

        self._on_loop(start)

    def _on_loop(self, fn: Callable[..., object], *args: Any) -> None:
        # Callable from any thread, like the operator commands.
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def _reload_here(self, request: _Reload, diff: PlanDiff) -> None:
        self._clear_reload_errors()
        scene = self._cur.scene.name if self._cur else None
        summary = diff.summary().splitlines()
        self._record("reload", label=request.apply, scene=scene, diff=diff.to_json(),
                     refreshed=list(request.refreshed) or None,
                     text="reload: " + "; ".join(summary))
        if not self._quitting:
            self._post("reload", request)

    def _reload_failed_here(self, lines: list[str]) -> None:
        self._clear_reload_errors()
        self._reload_errors = lines
        scene = self._cur.scene.name if self._cur else None
        self._record("reload_error", label="invalid", scene=scene, errors=lines,
                     text="reload failed, the show plays on: " + (lines[0] if lines else ""),
                     level="error")
        if lines:
            self._errors.append(lines[0])  # the status line shows the latest error
        self._notify_status()

    def _clear_reload_errors(self) -> None:
        if self._reload_errors:
            with contextlib.suppress(ValueError):
                self._errors.remove(self._reload_errors[0])
            self._reload_errors = []
            self._notify_status()

    def _take_pending(self) -> _Reload:
        pending, self._pending = self._pending, None
        assert pending is not None
        return pending

    async def _reload(self, request: _Reload) -> None:
        """Main loop: a new plan arrives."""
        if self._pending is not None:  # a newer plan replaces the one waiting for its boundary
            refreshed = tuple(dict.fromkeys(self._pending.refreshed + request.refreshed))
            request = dataclasses.replace(request, refreshed=refreshed)
            self._pending = None
        cur = self._cur
        touched = cur is not None and (
            scene_change(self.timeline, request.timeline, cur.scene.name) is not None
            or carry_occurrence(cur, request.timeline) is None
            or self._refs_refreshed(cur.scene, request.refreshed)
        )
        if self._stash is not None or (request.apply == "boundary" and touched):
            # Waits for the next scene change (or, while the closed-hours scene plays, for the
            # reopening: the show behind it is where the new plan applies).
            self._pending = request
            return
        await self._swap(request, look=True)

    def _refs_refreshed(self, scene: CompiledScene, refreshed: Sequence[str]) -> bool:
        return bool(refreshed) and any(r in refreshed for r in scene.state_in.vace_refs)

    async def _swap(self, request: _Reload, *, look: bool) -> bool:
        """Put the new plan in place at the current position; with `look`, change what is on
        the air as the playing scene's edit asks. True when the playing scene was gone and
        the show moved on to another one."""
        old, new = self.timeline, request.timeline
        if request.assets is not None:
            self.assets = dict(request.assets)
        if request.loras is not None:
            self.loras = dict(request.loras)
        self.timeline = new
        self._prepared = None
        history = (carry_occurrence(h, new) for h in self._history)
        self._history = collections.deque((h for h in history if h is not None), maxlen=_HISTORY)
        cur = self._cur
        if cur is None:  # pre-rolled, waiting for GO on the first scene
            if self._next is not None:
                first = carry_occurrence(self._next, new) or next(iter(new.schedule()))
                self._chart = Chart.following(new, first)
                self._next = self._chart.pop()
                before = (
                    old.scene(first.scene.name).state_in
                    if self._scene_in(old, first.scene.name) else None
                )
                if look and before != first.scene.state_in:
                    await self._retouch(before, first.scene.state_in, first.scene, 0.0,
                                        request.refreshed)
            return False
        carried = carry_occurrence(cur, new)
        if carried is None:
            await self._leave_deleted(cur, old, new)
            return True
        offset = self._position()
        before = old.state_at_scene(cur.scene.index, offset)
        changed = scene_change(old, new, cur.scene.name) is not None
        self._cur = carried
        self._origin = origin_of(carried, self._cur_start)
        actions = carried.scene.actions
        if changed:
            self._action_i = sum(1 for a in actions if a.offset <= offset)
        self._action_i = min(self._action_i, len(actions))
        self._chart = Chart.following(new, carried)
        self._chart.pop()
        self._relink_next()
        self._save_state()
        if look and (changed or self._refs_refreshed(carried.scene, request.refreshed)):
            after = new.state_at_scene(carried.scene.index, offset)
            await self._retouch(before, after, carried.scene, offset, request.refreshed)
        return False

    @staticmethod
    def _scene_in(timeline: Timeline, name: str) -> bool:
        return any(s.name == name for s in timeline.scenes)

    def _relink_next(self) -> None:
        """The next occurrence and its start, from the new chart (after a swap)."""
        cur = self._cur
        assert cur is not None
        fired_at, fired_origin = self._next_abs, self._next_origin
        self._next = self._chart.peek()
        self._next_abs = self._next_origin = None
        if self._next is None:
            return
        if self._cue_fired is not None and self._next.start is None and fired_at is not None:
            self._next_abs, self._next_origin = fired_at, fired_origin  # GO already came
            return
        self._next_abs, self._next_origin = follow(cur, self._cur_start, self._origin, self._next)
        now = self._frozen_at if self._frozen_at is not None else self.clock.monotonic()
        if self._next_abs is not None and self._next_origin is not None and self._next_abs < now:
            # The edit made the playing scene end before where it is: the next one starts
            # now, not in the past (which would read as an outage and skip scenes).
            self._next_origin += now - self._next_abs
            self._next_abs = now

    async def _retouch(
        self,
        before: State | None,
        after: State,
        scene: CompiledScene,
        offset: float,
        refreshed: Sequence[str],
    ) -> None:
        """Bring what is on the air from `before` to `after` (the playing scene was edited)."""
        planned = self.clock.monotonic()
        if not self._opened or self._link != "connected":
            return  # a reconnect opens with the new plan's state at the position anyway
        if before is None or after.session_key != self._live_key:
            await self._session(after, after.initial_parameters(), planned=planned,
                                label="reload", scene=scene.name, offset=offset)
            return
        steps, method = transition_for(self.timeline, scene)
        refresh = any(r in refreshed for r in after.vace_refs)
        message = state_delta(before, after, steps=steps, method=method, refresh_refs=refresh)
        if message:
            await self._send(self._resolve(message), planned=planned, label="reload",
                             scene=scene.name, offset=offset, resolved=True)

    async def _leave_deleted(self, cur: ScheduledScene, old: Timeline, new: Timeline) -> None:
        """The playing scene is gone from the new plan: go on with the scene that followed it
        in the old order (or, at the end of the show, the new plan's last scene)."""
        names = [s.name for s in old.scenes[cur.scene.index + 1 :] if not s.closed_only]
        playable = [s for s in new.scenes if not s.closed_only]
        present = {s.name for s in playable}
        target = next((new.scene(n) for n in names if n in present), None)
        if target is None:
            target = playable[-1] if playable else new.scenes[0]
        self._chart = Chart(new.schedule(target.index, start_offset=static_start(target)))
        occ = self._chart.pop()
        assert occ is not None
        now = self.clock.monotonic()
        self._cue_fired = None
        await self._enter(occ, now, origin_of(occ, now), jump=True, label="reload",
                          remember=False)

    async def _reload_at_boundary(self) -> None:
        """The playing scene has ended: the waiting plan takes over with the scene after it."""
        start, fired = self._next_abs, self._cue_fired
        if await self._swap(self._take_pending(), look=False):
            return
        nxt = self._next
        if nxt is None:
            await self._end()
            return
        if nxt.start is None and fired is None:
            self._next_abs = self._next_origin = None  # the new plan waits for a cue here
            return
        self._chart.pop()
        when = start if start is not None else self.clock.monotonic()
        await self._enter(nxt, when, origin_of(nxt, when), jump=True, label="reload")

    # -- opening hours ---------------------------------------------------------------------------

    async def _hours_loop(self) -> None:
        hours = self.hours
        assert hours is not None
        while True:
            now = self.clock.now()
            change = hours.next_change(now)
            if change is None:
                return
            # Exactly to the boundary (twice a day; the check below must see the new state).
            await self.clock.sleep_until(
                self.clock.monotonic() + change.timestamp() - self.clock.time()
            )
            self._post("open" if hours.is_open(self.clock.now()) else "close")

    async def _close_hours(self) -> None:
        if self._closed or self.hours is None:
            return
        self._closed = True
        self._closed_at = self.clock.monotonic()
        closed_scene = self.hours.closed_scene
        self._record("closed", label=closed_scene or "pause",
                     text=f"closed: {'playing ' + closed_scene if closed_scene else 'paused'}")
        if closed_scene is None:
            if self._frozen_at is None:
                self._frozen_at = self.clock.monotonic()
            scene = self._cur.scene.name if self._cur else ""
            await self._send({"paused": True}, planned=self.clock.monotonic(), label="closed",
                             scene=scene)
            return
        self._stash = {
            "chart": self._chart, "cur": self._cur, "cur_start": self._cur_start,
            "origin": self._origin, "action_i": self._action_i, "next": self._next,
            "next_abs": self._next_abs, "next_origin": self._next_origin,
        }
        scene = self.timeline.scene(closed_scene)
        occ = ScheduledScene(scene=scene, part=-1, start=0.0, end=None, iteration=0, path=())
        self._chart = Chart(iter(()))
        now = self.clock.monotonic()
        await self._enter(occ, now, now, jump=True, label="closed", remember=False)

    async def _open_hours(self) -> None:
        if not self._closed:
            return
        self._closed = False
        now = self.clock.monotonic()
        self._record("open", label="open", text="open again")
        stash, self._stash = self._stash, None
        if self._wallclock_loop():
            self._frozen_at = None if self._held is None else self._frozen_at
            occ, start, origin = self._locate_loop(now, self.clock.time())
            await self._enter(occ, start, origin, jump=True, offset=max(0.0, now - start),
                              label="open", remember=False)
            return
        if stash is not None:
            delta = now - self._closed_at
            self._chart = stash["chart"]
            self._cur = stash["cur"]
            self._cur_start = stash["cur_start"] + delta
            self._origin = stash["origin"] + delta
            self._action_i = stash["action_i"]
            self._next = stash["next"]
            self._next_abs = stash["next_abs"] + delta if stash["next_abs"] is not None else None
            self._next_origin = (
                stash["next_origin"] + delta if stash["next_origin"] is not None else None
            )
        elif self._held is None:
            self._unfreeze(shift=True)
        if self._pending is not None and self._cur is not None:
            if await self._swap(self._take_pending(), look=False):
                return  # the scene it was playing is gone: the next one has been entered
        if self._cur is not None:
            await self._apply_state(self._cur, self._position(), label="open")

    # -- the watchdog ----------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        while True:
            await self._doze(self.watchdog_period)
            if (room := self._room()) < _QUIET_BEFORE_EVENT:
                # A health check answered just before a cue would share the loop with it.
                await self._doze(room + 0.005)
            if self._collector is not None:
                self._collector.collect(self._room())
            if self._sink_lock.locked() or self._link in ("starting", "closed"):
                continue
            # A closed peer connection or channel shows locally at once; the full check (an
            # HTTP round trip, ~3 ms of CPU) runs every `health_period`, or when that fails.
            now = self.clock.monotonic()
            if self._link == "connected" and self._sink_connected() and (
                now - self._last_health < self.health_period
            ):
                continue
            self._last_health = now
            generation = self._generation
            try:
                reason = await self.sink.liveness()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"liveness check failed: {exc}"
            if reason is None and self._link == "down":
                reason = "the session is down"
            if reason is None or self._sink_lock.locked() or generation != self._generation:
                continue
            log.warning("Scope session problem: %s", reason)
            self._record("watchdog", label=reason, text=f"Scope: {reason}", level="warning")
            await self._reconnect(reason)

    def _sink_connected(self) -> bool:
        try:
            return bool(self.sink.connected)
        except Exception:  # a sink that cannot tell gets the full check
            return False

    async def _reconnect(self, reason: str) -> None:
        delay, cap = self.backoff
        attempt = 0
        self._link = "reconnecting"
        self._notify_status()
        while not self._quitting:
            attempt += 1
            missed = self._missed
            scene, offset = self._where()
            state = self.timeline.state_at_scene(scene.index, offset)
            initial = self._resolve(state.initial_parameters())
            if self._paused_by_us:
                initial["paused"] = True  # still frozen (panic) or closed: stay so
            started = self.clock.time()
            try:
                async with self._sink_lock:
                    gap = await self.sink.switch(
                        list(state.chain), self._resolve(state.load_params), initial
                    )
                    self._opened = True
                    self._live_key = state.session_key
                    self._link = "connected"
                    self._generation += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._record("reconnect", sent_at=started, label="failed", scene=scene.name,
                             attempt=attempt, reason=reason, error=str(exc), retry_in=delay,
                             text=f"reconnect {attempt} failed: {exc}; retry in {delay:g} s",
                             level="warning")
                self._errors.append(f"reconnect {attempt}: {exc}")
                await self._doze(delay)
                delay = min(delay * 2, cap)
                continue
            self._record("reconnect", sent_at=started, label="ok", scene=scene.name,
                         attempt=attempt, reason=reason, offset=round(offset, 6),
                         gap=round(gap, 4), message=initial,
                         text=f"reconnected after {attempt} attempt(s): {scene.name} "
                         f"+{offset:.1f}s")
            if self._missed != missed:
                # The show moved on while reconnecting: bring Scope to where it is now.
                await self._resync_after_reconnect()
            return

    async def _resync_after_reconnect(self) -> None:
        scene, offset = self._where()
        state = self.timeline.state_at_scene(scene.index, offset)
        if state.session_key != self._live_key:
            await self._reconnect("the show changed pipelines during the reconnection")
            return
        message = dict(state.resync_message())
        self._unpause(message)
        await self._send(self._resolve(message), planned=self.clock.monotonic(),
                         label="resync", scene=scene.name, offset=offset, resolved=True)

    def _where(self) -> tuple[CompiledScene, float]:
        if self._cur is None:
            first = self._next or next(iter(self.timeline.schedule()))
            return first.scene, 0.0
        return self._cur.scene, self._position()

    # -- state file --------------------------------------------------------------------------------

    def _save_state(self) -> None:
        if self.state_path is None or self._cur is None or self._stash is not None:
            return
        if self._cur.part < 0:
            return
        now_unix = self.clock.time()
        offset_unix = now_unix - self.clock.monotonic()
        cue, cue_scene = self._part_cue if self._part_cue else (None, None)
        part_origin = self._origin + offset_unix
        self._write_state(
            ResumeState(
                show=self.show_path,
                show_hash=self.show_hash,
                origin=self._show_origin_unix if self._show_origin_unix is not None else now_unix,
                scene=self._cur.scene.name,
                index=self._cur.scene.index,
                iteration=self._cur.iteration,
                path=tuple(self._cur.path),
                part=self._cur.part,
                part_origin=part_origin,
                part_start=self._cur.start if self._cur.start is not None else self._cur.scene.pre_wait,
                cue=cue,
                cue_scene=cue_scene,
                written_at=now_unix,
                part_origins={str(self._cur.part): part_origin},
            ),
        )

    def _write_state(self, state: ResumeState) -> None:
        assert self.state_path is not None
        if self._loop is None:
            write_state(self.state_path, state)
            return
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, "showrunner-state")
        self._last_write = self._loop.run_in_executor(
            self._writer, write_state, self.state_path, state
        )

    # -- status, journal, listeners ----------------------------------------------------------------

    def status(self) -> PlayerStatus:
        """A snapshot: scene, next, countdown, connection, holds, recent errors."""
        now = self.clock.monotonic()
        cur, nxt = self._cur, self._next
        waiting = None
        countdown = None
        if nxt is not None:
            if self._next_abs is not None and self._frozen_at is None:
                countdown = max(0.0, self._next_abs - now)
            elif self._next_abs is None and nxt.start is None:
                waiting = nxt.scene.cue or "go"
        if self._quitting:
            mode = Mode.STOPPED
        elif self._closed:
            mode = Mode.CLOSED
        elif self._held is not None:
            mode = Mode(self._held)
        elif waiting is not None and (cur is None or self._action_i >= len(cur.scene.actions)):
            mode = Mode.WAITING
        elif self._ended:
            mode = Mode.ENDED
        else:
            mode = Mode.PLAYING
        return PlayerStatus(
            title=self.timeline.show.title,
            scene=cur.scene.name if cur else None,
            scene_index=cur.scene.index if cur else None,
            iteration=cur.iteration if cur else None,
            next=nxt.scene.name if nxt else None,
            waiting_for=waiting,
            countdown=countdown,
            position=self._position() if cur else None,
            mode=mode,
            held=self._held is not None or self._frozen_at is not None,
            closed=self._closed,
            connection=LinkState(self._link),
            scenes=tuple(s.name for s in self.timeline.scenes),
            errors=tuple(self._errors)[-5:],
            reload_errors=tuple(self._reload_errors),
        )

    def subscribe(self, callback: Callable[[dict[str, Any]], object]) -> Callable[[], None]:
        """Call `callback(event)` after every journaled event; returns an unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def _error(self, text: str, **fields: Any) -> None:
        log.error("%s", text)
        self._errors.append(text)
        self._record("error", error=text, text=text, level="error", **fields)

    def _record(
        self,
        kind: str,
        *,
        planned: float | None = None,
        sent_at: float | None = None,
        label: str | None = None,
        scene: str | None = None,
        message: Mapping[str, Any] | None = None,
        text: str | None = None,
        level: str | None = None,
        **extra: Any,
    ) -> None:
        wall = self.clock.time() - self.clock.monotonic()
        record: dict[str, Any] = {
            "planned_at": None if planned is None else planned + wall,
            "sent_at": sent_at,
            "scene": scene,
            "kind": kind,
            "label": label,
            "message": None if message is None else dict(message),
        }
        record.update((k, v) for k, v in extra.items() if v is not None)
        if self.journal is not None:
            self.journal.write(record)
        if text is not None and kind not in ("send",):
            log.info("%s", text)
        if self._listeners:
            event = dict(record)
            if text is not None:
                event["text"] = text
                event["level"] = level or ("error" if kind == "error" else "info")
            event["at"] = sent_at if sent_at is not None else self.clock.time()
            self._soon(event)

    def _notify_status(self) -> None:
        if self._listeners:
            self._soon({"kind": "status"})

    def _soon(self, event: dict[str, Any]) -> None:
        # Listeners run after the current step, never inside the send path.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(self._notify, event)
        else:
            self._notify(event)

    def _notify(self, event: dict[str, Any]) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # a broken listener must not break the show
                log.exception("a player listener failed")
