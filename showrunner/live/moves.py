"""What the operator's commands do to the show, carried out by the player's main loop.

GO starts the next occurrence now: a cue scene after its ``pre_wait``, a timed one at once (its
part's clock moves with it). With `quantize` (live/beat.py) GO, a named cue and GOTO land on the
next boundary of the grid instead: GO and cues through the position's planned start, a GOTO
waits in the main loop (`Beat.defer`) while the scene on the air plays on. BACK returns to the
previous occurrence and GOTO jumps, both with the full state; HOLD/PANIC/RESUME go to `Holds`;
the opening hours' changes and edited plans come through here too. Each operator command is
answered with a `Result`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from showrunner.live.beat import REPLACED, Beat
from showrunner.live.clock import Clock
from showrunner.live.commands import (
    ALREADY_GOING,
    ALREADY_HELD,
    CLOSED,
    GONE,
    NOT_WAITING,
    NOTHING_BEFORE,
    NOTHING_HELD,
    NOTHING_TO_GO_TO,
    Back,
    Close,
    Command,
    Go,
    Goto,
    Hold,
    NewPlan,
    Open,
    Quit,
    Result,
    Resume,
    applied,
    ignored,
)
from showrunner.live.events import EventLog
from showrunner.live.holds import HoldKind, Holds
from showrunner.live.hotswap import HotSwap
from showrunner.live.opening import Opening
from showrunner.live.position import Position
from showrunner.live.stage import Stage
from showrunner.plan.chart import Chart, origin_of, static_start
from showrunner.plan.timeline import Timeline

__all__ = ["Moves"]


class Moves:
    """Carries out the main loop's commands on the show's position (`finish(code)` ends the run)."""

    def __init__(
        self,
        position: Position,
        stage: Stage,
        holds: Holds,
        opening: Opening,
        hotswap: HotSwap,
        log: EventLog,
        clock: Clock,
        finish: Callable[[int], None],
    ) -> None:
        self.position = position
        self.stage = stage
        self.holds = holds
        self.opening = opening
        self.hotswap = hotswap
        self.log = log
        self.clock = clock
        self._finish = finish
        self.aim: float | None = None  # the beat the next GOTO lands on (set by the main loop)

    def __repr__(self) -> str:
        return f"Moves({self.position!r})"

    @property
    def timeline(self) -> Timeline:
        return self.position.timeline

    def quantized(self, command: Command, future: asyncio.Future[Result] | None) -> bool:
        """A GOTO into a quantized scene waits for its boundary (True: it is kept in
        `Beat.deferred`; one that waits already is answered "replaced")."""
        if not isinstance(command, Goto) or self.opening.closed:
            return False
        scene = next((s for s in self.timeline.scenes if s.name == command.scene), None)
        grid = scene.quantize if scene is not None else None
        beat = self.position.timebase
        if grid is None or not isinstance(beat, Beat):
            return False
        before = beat.deferred
        if not beat.defer(command, future, self.clock.monotonic(), grid):
            return False
        if before is not None and before.future is not None and not before.future.done():
            before.future.set_result(ignored(REPLACED, command.scene))
        return True

    async def carry_out(self, command: Command) -> Result:
        """Do `command` (on the main loop) and say what became of it."""
        if isinstance(command, Goto | Back) and self.hotswap.pending is not None and (
            self.position.behind is None
        ):
            # Leaving the scene is its boundary: the waiting plan takes over first.
            await self.hotswap.swap(self.hotswap.take(), look=False)
        match command:
            case Go(cue=cue):
                return await self._go(cue)
            case Back():
                return await self._back()
            case Goto(scene=name):
                return await self._goto(name)
            case Hold(panic=panic):
                kind: HoldKind = "panic" if panic else "hold"
                if self.holds.kind == kind:
                    return ignored(ALREADY_HELD)
                await self.holds.hold(kind)
            case Resume():
                if self.holds.kind is None:
                    return ignored(NOTHING_HELD)
                await self.holds.resume()
            case Close():
                await self.opening.close()
            case Open():
                await self.opening.open()
            case NewPlan():
                if (update := self.hotswap.arrive(command)) is not None:
                    await self.hotswap.swap(update, look=True)
            case Quit():
                self._finish(0)
        return applied()

    async def _go(self, cue: str | None) -> Result:
        """GO (or the named `cue`): the next occurrence starts now (after its pre_wait, for a
        cue scene)."""
        position = self.position
        nxt = position.next
        if self.opening.closed:
            return ignored(CLOSED, "outside the opening hours")
        if nxt is None:
            return ignored(NOTHING_TO_GO_TO, "the show is at its end" if position.ended else None)
        if position.cue_fired is not None:
            return ignored(ALREADY_GOING, nxt.scene.name)
        waiting = position.cue_waiting()
        wanted = nxt.scene.cue or "go"
        if cue is not None and cue != "go" and (not waiting or cue != wanted):
            return ignored(NOT_WAITING, f"the show waits for {wanted!r}" if waiting
                           else f"{nxt.scene.name} is timed")
        await self.holds.release(shift=True)
        now = self.clock.monotonic()
        timebase = position.timebase
        landing = timebase.landing(now + (nxt.scene.pre_wait if waiting else 0.0), nxt.scene.quantize)
        beat: dict[str, Any] = {"beat": round(landing[0], 4)} if landing is not None else {}
        if waiting:
            start = position.fire(wanted, now, landing)
            self.log.record("cue", planned=now, label=wanted, scene=nxt.scene.name, **beat)
            if position.current is None:  # the pre-rolled first scene (already off the chart)
                if landing is not None:
                    await self.clock.sleep_until(start - timebase.lead())
                await self.stage.enter(nxt, start, start - nxt.scene.pre_wait, jump=True, label="cue",
                                       aimed=landing is not None)
        else:
            position.start_now(now, landing)
            self.log.record("cue", planned=now, label="go", scene=nxt.scene.name, timed=True, **beat)
        return applied(nxt.scene.name)

    async def _back(self) -> Result:
        history = self.position.history
        if not history:
            return ignored(NOTHING_BEFORE)
        # Back to that very occurrence, loop counters included.
        target = history.pop()
        await self._jump(Chart.following(self.timeline, target), label="back", remember=False)
        return applied(target.scene.name)

    async def _goto(self, name: str) -> Result:
        scene = next((s for s in self.timeline.scenes if s.name == name), None)
        if scene is None:
            return ignored(GONE, f"{name} is gone from the new plan")
        chart = Chart(self.timeline.schedule(scene.index, start_offset=static_start(scene)))
        await self._jump(chart, label="goto")
        return applied(name)

    async def _jump(self, chart: Chart, *, label: str, remember: bool = True) -> None:
        await self.holds.release(shift=False)
        occ = self.position.jump(chart)  # closed: the jump applies to the show behind the closed scene
        start, aim, self.aim = self.clock.monotonic(), self.aim, None
        if aim is not None:  # a quantized GOTO: it lands on its beat
            start = self.position.timebase.time_of_beat(aim)
        await self.stage.enter(occ, start, origin_of(occ, start), jump=True, label=label,
                               remember=remember, aimed=aim is not None)
