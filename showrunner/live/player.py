"""The live player: plays a compiled :class:`~showrunner.plan.timeline.Timeline` into a `Sink`.

One task (the *main loop*) owns the show position and does everything that changes it:
timed actions, scene changes, cues and operator commands, in order. Every planned time is
``part origin + offset`` read from the schedule, never the sum of earlier sleeps, so a long
show does not drift. Waits go through the injected :class:`~showrunner.live.clock.Clock`, which
wakes a little early and hands over at the exact moment; from the hand-over to the write it is
plain calls in this one task (no await, lock, queue or listener in between).

The player's parts, each in its own module:

- :class:`~showrunner.live.position.Position`: where the show is in its plan (pure);
- :class:`~showrunner.live.stage.Stage`: entering occurrences and sending their actions;
- :class:`~showrunner.live.link.ScopeLink`: the link to Scope (open, switch, send, close) and
  its watchdog, a side task that rebuilds a failed session;
- :class:`~showrunner.live.holds.Holds`: the operator's hold and panic;
- :class:`~showrunner.live.hotswap.HotSwap`: edited plans replacing the playing one;
- :class:`~showrunner.live.opening.Opening`: opening hours, with a side task that closes and
  opens the show at the window boundaries;
- :class:`~showrunner.live.events.EventLog`: the run journal, the listeners, recent errors.

Nothing here raises because Scope went away: failed sends and switches are journaled as
errors and the show goes on. The player knows Scope only through the `Sink` protocol (which
``ScopeSession`` satisfies).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from showrunner.errors import ShowErrors, UnknownSceneError
from showrunner.live.beat import Beat
from showrunner.live.board import Board
from showrunner.live.clock import Clock, SystemClock
from showrunner.live.collector import IdleCollector
from showrunner.live.commands import (
    CONNECTING,
    STOPPED,
    SWITCHING,
    Back,
    Command,
    Go,
    Goto,
    Hold,
    NewPlan,
    Operator,
    Quit,
    Result,
    Resume,
    ignored,
)
from showrunner.live.events import EventLog, Listener
from showrunner.live.holds import Holds
from showrunner.live.hotswap import HotSwap
from showrunner.live.hours import OpeningHours
from showrunner.live.inbox import Inbox
from showrunner.live.journal import RecordWriter
from showrunner.live.link import (
    BACKOFF_CAP,
    BACKOFF_START,
    HEALTH_PERIOD,
    WATCHDOG_PERIOD,
    LinkState,
    Refs,
    ScopeLink,
    Target,
)
from showrunner.live.moves import Moves
from showrunner.live.opening import Opening
from showrunner.live.position import EventKind, Position
from showrunner.live.resume import StateWriter
from showrunner.live.sink import Sink
from showrunner.live.stage import CATCH_UP, Stage
from showrunner.live.status import PlayerStatus, show_info
from showrunner.music.reading import TempoReading
from showrunner.music.tempo import TempoMap
from showrunner.plan.diff import PlanDiff, diff_timelines
from showrunner.plan.start import StartPoint, playable_scene, start_point
from showrunner.plan.timeline import Timeline

__all__ = ["Answer", "Player", "Sink", "StartPoint", "start_point"]

Answer = asyncio.Future[Result] | concurrent.futures.Future[Result] | Result
"""What an operator method returns: the command's `Result`, or a future of it. On the player's
loop an awaitable answered by the main loop when it carries the command out (at once while it
waits for the next event); from another thread a concurrent future. While the main loop is busy
opening or switching a session the answer is "queued" at once, and the command runs when the
session is up."""

log = logging.getLogger("showrunner.live.player")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Player:
    """Plays one timeline into one sink; operator commands are plain methods (README: "Run a show")."""

    def __init__(
        self,
        timeline: Timeline,
        sink: Sink,
        *,
        clock: Clock | None = None,
        journal: RecordWriter | None = None,
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
        scope_url: str | None = None,
        tempo: TempoMap | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.journal = journal
        self.start = start or StartPoint()
        self.reload_hook: Callable[[], Awaitable[object]] | None = None  # set by run_show
        self.log = EventLog(self.clock, journal)
        self.refs = Refs(self.log, assets, loras)
        self.position = Position(timeline)
        self.beat = Beat(self.position, tempo, sink)  # musical time (live/beat.py)
        self.link = ScopeLink(
            sink, self.clock, self.log, self.refs, target=self._target,
            pause_holds=self._pause_holds, watchdog_period=watchdog_period,
            health_period=health_period, backoff=backoff,
        )
        self.stage = Stage(
            self.position, self.link, self.refs, self.log, self.clock, catch_up=catch_up,
            states=StateWriter(state_path) if state_path is not None else None,
            show_path=show_path or str(timeline.source or ""), show_hash=show_hash,
        )
        self.hotswap = HotSwap(timeline, self.stage, self.refs, self.log, self.clock)
        self.holds = Holds(self.position, self.link, self.log, self.clock,
                           closed_pause=lambda: self.opening.pauses)
        self.opening = Opening(hours, self.stage, self.holds, self.hotswap)
        self._collector = IdleCollector() if manage_gc else None
        self._next_at: float | None = None  # monotonic time of the next planned event
        # Commands for the main loop, each with the future its answer goes to (None: answered).
        self.inbox = Inbox(self.position, self.log, busy=self._busy,
                           quitting=lambda: self._quitting, finish=self._finish, poke=self._poke)
        self.started = False  # the first scene is on the air (or pre-rolled, waiting for GO)
        self.notice: str | None = None  # what the show waits for before it starts (the status)
        self.gpu_notice: str | None = None  # "starting GPU" (installation.py), shown while set
        self.moves = Moves(self.position, self.stage, self.holds, self.opening, self.hotswap,
                           self.log, self.clock, self._finish)
        self.board = Board(self.position, self.link, self.holds, self.opening, self.hotswap,
                           self.log, self.clock, self.start)
        self.board.scope_url = scope_url
        self._wake = asyncio.Event()
        self._sleeper: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._quitting = False
        self._exit_code = 0
        self._clear_state = False  # the show ended: the next run starts from the top
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Future[Any]] = []

    def __repr__(self) -> str:
        cur = self.position.current
        scene = cur.scene.name if cur else None
        return f"Player({self.timeline.show.title!r}, scene={scene!r}, link={self.link.state.value!r})"

    @property
    def timeline(self) -> Timeline:
        """The plan playing now."""
        return self.position.timeline

    @property
    def sink(self) -> Sink:
        return self.link.sink

    @property
    def show_hash(self) -> str:
        """The show files' content hash the state file names (updated by a hot reload)."""
        return self.stage.show_hash

    @show_hash.setter
    def show_hash(self, value: str) -> None:
        self.stage.show_hash = value

    @property
    def quitting(self) -> bool:
        """`quit()` was called (also before `run()`)."""
        return self._quitting

    def set_refs(self, assets: Mapping[str, str], loras: Mapping[str, str]) -> None:
        """Asset and LoRA server paths found after the player was made (before `run()`)."""
        self.refs.assets = dict(assets)
        self.refs.loras = dict(loras)

    def show_info(self) -> dict[str, Any]:
        """The playing plan's scenes for the operator page (README: "GET /api/show")."""
        return show_info(self.timeline)

    @property
    def assets(self) -> dict[str, str]:
        """Asset names -> server paths (of the plan playing now)."""
        return self.refs.assets

    @property
    def loras(self) -> dict[str, str]:
        """LoRA names -> server paths (of the plan playing now)."""
        return self.refs.loras

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Play until the show stops or `quit()`; close the session; return the exit code (0)."""
        if self._loop is not None:
            raise RuntimeError("this player is already running; create a new Player per run")
        self._loop = asyncio.get_running_loop()
        self.log.start(self._loop)
        if self._collector is not None:
            self._collector.start()
        self._tasks = [
            asyncio.create_task(self._main(), name="showrunner-player"),
            asyncio.create_task(self.link.watch(self._room, self._collect), name="showrunner-watchdog"),
        ]
        # always: an edit may add `hours` to a show that had none
        self._tasks.append(asyncio.create_task(self.opening.watch(self.inbox.post), name="showrunner-hours"))
        try:
            await self._done.wait()
        finally:
            held = [(d.command, d.future)] if (d := self.beat.deferred) is not None else []
            for _, future in [*self.inbox, *held]:
                if future is not None and not future.done():
                    future.set_result(ignored(STOPPED))
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.shield(self._shutdown())
            if self._collector is not None:
                self._collector.stop()
        return self._exit_code

    async def _shutdown(self) -> None:
        await self.link.close()
        if self.stage.states is not None:
            await self.stage.states.close(clear=self._clear_state)
        self.log.record("quit", label="closed", text="session closed")

    def _finish(self, code: int) -> None:
        self._quitting = True
        self._exit_code = code
        self.link.stop()
        self._done.set()
        self._poke()

    async def _main(self) -> None:
        try:
            await self.stage.begin(self.start)
            await self.opening.close_if_closed()
        except Exception as exc:
            log.exception("could not start the show")
            self.log.error(f"start failed: {exc}")
        self.started = True
        self.log.status_changed()
        while not self._quitting:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not end the picture: log it and go on
                log.exception("player step failed")
                self.log.error(f"internal error: {exc}")
                await self.clock.doze(self.clock.monotonic() + 0.1)

    async def _step(self) -> None:
        if self.inbox:
            await self._apply(*self.inbox.pop())
            return
        event = self.position.next_event()
        if (held := self.beat.due(event[0] if event else None)) is not None:
            if await self._wait(held.due):
                self.beat.deferred = None
                await self._apply(held.command, held.future, landing=held.beat)
            return
        self._next_at = event[0] if event is not None else None
        if event is not None:
            self.stage.prepare(event[1])
        self.link.expect_scene(self.position.next, self.position.next_due() if event else None)
        self._collect()
        if event is None:
            self._wake.clear()
            if not self.inbox and not self._quitting:
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

    def _collect(self) -> None:
        if self._collector is not None:
            self._collector.collect(self._room())

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
        if self.inbox or self._quitting:
            return False
        await self.clock.sleep_until(deadline)
        return True

    def _poke(self) -> None:
        self._wake.set()
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.cancel()

    def _on_loop(self, fn: Callable[..., object], *args: Any) -> None:
        # Callable from any thread (a control surface may run elsewhere); the work happens on
        # the player's loop, in order.
        loop, running = self._loop, _running_loop()
        if loop is not None and running is not loop and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def _target(self) -> Target:
        return self.stage.target()

    def _pause_holds(self) -> bool:
        """A pause the player made (panic, closed hours without a closed scene) still holds."""
        return self.holds.kind == "panic" or self.opening.pauses

    # -- the main loop's events ------------------------------------------------------------------

    async def _fire(self, kind: EventKind, planned: float) -> None:
        match kind:
            case "scene":
                await self._advance()
            case "action":
                await self.stage.fire(planned)
            case "end":
                await self._end()

    async def _advance(self) -> None:
        """The next occurrence's start time has come (or passed)."""
        if self.hotswap.pending is not None:
            if await self.hotswap.at_boundary():
                await self._end()  # the new plan has nothing after the scene that ended
            return
        now = self.clock.monotonic()
        occ, start, origin, jump = self.position.advance(now, self.stage.catch_up)
        offset = max(0.0, now - start) if jump else 0.0
        await self.stage.enter(occ, start, origin, jump=jump, offset=offset,
                               label="catch up" if jump else "enter")

    async def _end(self) -> None:
        cur = self.position.current
        assert cur is not None
        self.position.ended = True
        mode = self.timeline.show.end
        self.log.record("end", label=mode, scene=cur.scene.name,
                        text=f"end of show ({'stop' if mode == 'stop' else 'holding the last look'})")
        if mode == "stop":
            self._clear_state = True
            self._finish(0)

    # -- commands (what each returns: see `Answer`) ----------------------------------------------

    def go(self) -> Answer:
        """GO: start the next scene now, whether it waits for a cue or is timed."""
        return self._operator(Go())

    def cue(self, name: str) -> Answer:
        """Fire the named cue if the show waits for it (GO fires any cue)."""
        return self._operator(Go(name))

    def back(self) -> Answer:
        """Return to the previous scene, with its full state; UnknownSceneError at the first one."""
        if not self.position.history:
            raise UnknownSceneError("there is no previous scene to go back to")
        return self._operator(Back())

    def goto(self, name: str) -> Answer:
        """Jump to scene `name` now, with its full state; UnknownSceneError for an unknown scene."""
        scene = playable_scene(self.timeline, name)
        return self._operator(Goto(scene.name))

    def hold(self) -> Answer:
        """Stop timed progression; the current look keeps playing. `resume()` continues."""
        return self._operator(Hold())

    def panic(self) -> Answer:
        """Freeze the picture (``paused``) and stop every scheduled update. `resume()` undoes it."""
        return self._operator(Hold(panic=True))

    def resume(self) -> Answer:
        """Continue after hold/panic from where the show stopped."""
        return self._operator(Resume())

    def quit(self) -> Answer:
        """End the run: close the Scope session cleanly; `run()` then returns 0."""
        return self._operator(Quit())

    def _operator(self, command: Operator) -> Answer:
        loop, running = self._loop, _running_loop()
        if loop is None or loop.is_closed():
            # Not running yet (Scope is being prepared): kept for when the show starts.
            return self.inbox.take(command, None)
        if running is loop:
            future: asyncio.Future[Result] = loop.create_future()
            self.inbox.take(command, future)
            return future
        answer: concurrent.futures.Future[Result] = concurrent.futures.Future()

        def take() -> None:
            inner: asyncio.Future[Result] = loop.create_future()
            inner.add_done_callback(lambda done: answer.set_result(done.result()))
            self.inbox.take(command, inner)

        loop.call_soon_threadsafe(take)
        return answer

    def _busy(self) -> str | None:
        """Why the main loop cannot carry a command out now (None: it can)."""
        if not self.started:
            return CONNECTING
        if self.link.state is LinkState.CONNECTING:
            return SWITCHING
        return None

    async def _apply(
        self, command: Command, future: asyncio.Future[Result] | None, landing: float | None = None
    ) -> None:
        if landing is None and self.moves.quantized(command, future):
            return  # a quantized GOTO waits for its boundary (`Beat.deferred`)
        self.moves.aim = landing
        result = await self.moves.carry_out(command)
        if isinstance(command, Go | Back | Goto | Hold | Resume | Quit):
            self.inbox.journal(command, result, later=future is None)
        if future is not None and not future.done():
            future.set_result(result)

    # -- hot reload ------------------------------------------------------------------------------

    @property
    def plan(self) -> Timeline:
        """The latest plan handed to `replace_timeline` (what the next diff is taken against)."""
        return self.hotswap.plan

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
        `apply` is "now" or "boundary" (see `showrunner.live.hotswap`). `assets`/`loras` map the
        new plan's references to server paths; `refreshed` names image assets uploaded again
        (their file changed). `diff` may be computed beforehand (off the event loop for a big
        show). Also clears the errors of an earlier bad edit.
        """
        if apply not in ("now", "boundary"):
            raise ValueError(f"apply must be 'now' or 'boundary', not {apply!r}")
        if diff is None:
            diff = diff_timelines(self.hotswap.plan, timeline)
        self.hotswap.plan = timeline
        update = NewPlan(timeline, "now" if apply == "now" else "boundary", assets, loras,
                         tuple(refreshed))
        self._on_loop(self._new_plan, update, diff)
        return diff

    def _new_plan(self, update: NewPlan, diff: PlanDiff) -> None:
        self.hotswap.arrived(update, diff)
        if not self._quitting:
            self.inbox.post(update)

    def working(self, what: str | None, progress: float | None = None) -> None:
        """Work in the background the status shows (a long reload, uploads); None when done."""
        self._on_loop(self.board.set_working, what, progress)

    def reload_failed(self, errors: ShowErrors | Sequence[str]) -> None:
        """A bad edit: the show plays on unchanged; the lines go to the status and journal."""
        self._on_loop(self.hotswap.failed, errors)

    def reload(self) -> None:
        """Read the show file again now (RELOAD); NotImplementedError without hot reload."""
        hook = self.reload_hook
        if hook is None:
            raise NotImplementedError("hot reload is not available in this run")

        def start() -> None:
            task: asyncio.Future[object] = asyncio.ensure_future(hook())
            self._tasks.append(task)  # cancelled with the player if still running
            task.add_done_callback(self._forget)

        self._on_loop(start)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    # -- status and listeners --------------------------------------------------------------------

    def status(self) -> PlayerStatus:
        """A snapshot: scene, next, countdown, connection, holds, recent errors."""
        notice = self.gpu_notice or (None if self.started else self.notice)
        return self.board.status(started=self.started, quitting=self._quitting,
                                 armed=self.inbox.armed(), notice=notice)

    def tempo_reading(self, reading: TempoReading) -> None:
        """A `TempoListener` (any thread): musical time and quantized changes follow it."""
        self._on_loop(self.beat.take, reading, self._poke)

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(event)` after every journaled event; returns an unsubscribe function."""
        return self.log.subscribe(callback)
