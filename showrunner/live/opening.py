"""Opening hours in a running show: closing and opening at the boundaries of the hours.

`OpeningHours` (hours.py) answers the calendar questions; this is the run's side. Closing
pauses the picture (``paused: true``) and stops the position, or plays the closed scene with
the show's position set aside. Opening brings the show back where it belongs: a show that loops
forever without cues where the wall clock says it would be had it played all along, any other
one where it stopped, with its full state. A side task of the run asks the player's main loop
to close or open at each boundary.
"""

from __future__ import annotations

from collections.abc import Callable

from showrunner.live.commands import Close, Open
from showrunner.live.holds import Holds
from showrunner.live.hotswap import HotSwap
from showrunner.live.hours import OpeningHours
from showrunner.live.stage import Stage
from showrunner.plan.timeline import ScheduledScene

__all__ = ["Opening"]


class Opening:
    """The run's side of a show's opening hours (a show without hours is always open)."""

    def __init__(self, hours: OpeningHours | None, stage: Stage, holds: Holds, hotswap: HotSwap) -> None:
        self.hours = hours
        self.closed = False
        self.closed_at = 0.0  # monotonic time of the last closing
        self.stage = stage
        self.holds = holds
        self.hotswap = hotswap
        self.clock = stage.clock

    def __repr__(self) -> str:
        return f"Opening({self.hours!r}, closed={self.closed})"

    @property
    def pauses(self) -> bool:
        """Closed with the picture paused (no closed scene): the position stands still."""
        return self.closed and self.hours is not None and self.hours.closed_scene is None

    async def watch(self, post: Callable[[Close | Open], None]) -> None:
        """Post `Close` or `Open` at every boundary of the hours (runs until cancelled)."""
        hours = self.hours
        if hours is None:
            return
        while True:
            change = hours.next_change(self.clock.now())
            if change is None:
                return
            # Exactly to the boundary (twice a day; the check below must see the new state).
            await self.clock.sleep_until(
                self.clock.monotonic() + change.timestamp() - self.clock.time()
            )
            post(Open() if hours.is_open(self.clock.now()) else Close())

    async def close_if_closed(self) -> None:
        """At the start of a run: close when the hours say closed now."""
        if self.hours is not None and not self.hours.is_open(self.clock.now()):
            await self.close()

    async def close(self) -> None:
        """Closing time: pause the picture, or play the closed scene (the show's position is
        set aside meanwhile)."""
        if self.closed or self.hours is None:
            return
        self.closed = True
        self.closed_at = self.clock.monotonic()
        stage, position, closed_scene = self.stage, self.stage.position, self.hours.closed_scene
        stage.log.record("closed", label=closed_scene or "pause",
                         text=f"closed: {'playing ' + closed_scene if closed_scene else 'paused'}")
        now = self.clock.monotonic()
        if closed_scene is None:
            position.freeze(now)
            cur = position.current
            await stage.link.send({"paused": True}, planned=now, label="closed",
                                  scene=cur.scene.name if cur else "")
            return
        scene = position.timeline.scene(closed_scene)
        occ = ScheduledScene(scene=scene, part=-1, start=0.0, end=None, iteration=0, path=())
        position.set_aside()
        await stage.enter(occ, now, now, jump=True, label="closed", remember=False)

    async def open(self) -> None:
        """Open again, where the show belongs now, with its full state (and a plan edited
        meanwhile)."""
        if not self.closed:
            return
        self.closed = False
        stage, position = self.stage, self.stage.position
        now = self.clock.monotonic()
        stage.log.record("open", label="open", text="open again")
        if position.wallclock_loop():
            position.behind = None
            if self.holds.kind is None:
                position.frozen_at = None
            occ, start, origin = position.locate_loop(now, self.clock.time())
            await stage.enter(occ, start, origin, jump=True, offset=max(0.0, now - start),
                              label="open", remember=False)
            return
        if not position.bring_back(now - self.closed_at) and self.holds.kind is None:
            position.unfreeze(now, shift=True)
        if self.hotswap.pending is not None and position.current is not None:
            if await self.hotswap.swap(self.hotswap.take(), look=False):
                return  # the scene it was playing is gone: the next one has been entered
        if position.current is not None:
            offset = position.offset(self.clock.monotonic())
            await stage.apply_state(position.current, offset, label="open")
