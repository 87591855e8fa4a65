"""An installation's day in a run: the lifecycle hooks at the hours' boundaries, the GPU
starting, outages and their alerts.

`Installation` sits beside the player (app.py starts it with the player and stops it before the
journal closes). Two side tasks on the run's clock:

- the *schedule*: `before_open` its `lead` before each opening (and at once when the run starts
  while open or within the lead), `after_close` at each closing; a closed break no longer than
  the lead keeps the GPU on (neither runs). After `after_close` the link to Scope rests (no
  checks, no reconnection attempts) until the next `before_open`, which says "starting GPU"
  in the status until the link to Scope is up (the player waits for the server's health and
  the pipeline load as after any outage); no outage is counted before the opening (or the
  lead, for a run started while open);
- the *tick* (every second): the outage detector (outage.py) with what the player shows; an
  outage runs `on_outage` and posts an alert, a recovery `on_recover` and a message.

Hooks and alerts run in the background (hooks.py): nothing here waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from showrunner.live.clock import Clock
from showrunner.live.hooks import HookRunner
from showrunner.live.hours import OpeningHours
from showrunner.live.link import LinkState
from showrunner.live.outage import OUTAGE_AFTER, Outage, OutageWatch
from showrunner.live.player import Player
from showrunner.show.model import Hooks

__all__ = ["STARTING_GPU", "TICK", "Installation"]

STARTING_GPU = "starting GPU"
TICK = 1.0
_DRAIN = 5.0  # seconds hooks still running at the end of the run are given
_PICTURE = (LinkState.CONNECTED, LinkState.CONNECTING)  # connecting: a planned switch


class Installation:
    """Hooks, the GPU's start and outages for one run of `player`."""

    def __init__(
        self,
        player: Player,
        runner: HookRunner,
        *,
        alert_webhook: str | None = None,
        alert_after: float | None = None,
        tick: float = TICK,
    ) -> None:
        self.player = player
        self.clock: Clock = player.clock
        self.runner = runner
        self.tick = tick
        self._webhook = alert_webhook
        show = player.timeline.show
        self.outage = OutageWatch(
            self.clock, player.log, after=alert_after or show.alerts.after or OUTAGE_AFTER,
            picture=self._picture, expected=self._expected, reason=self._reason,
            on_outage=self._on_outage, on_recover=self._on_recover,
        )
        self.starting_until: float | None = None  # monotonic: the GPU is being started until then
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"Installation({self.outage!r}, starting={self.starting})"

    @property
    def hooks(self) -> Hooks:
        """The hooks of the plan playing now (an edit applies to the next run of each)."""
        return self.player.timeline.show.hooks

    @property
    def webhook(self) -> str | None:
        return self._webhook or self.player.timeline.show.alerts.webhook

    @property
    def starting(self) -> bool:
        return self.player.gpu_notice == STARTING_GPU

    def start(self) -> None:
        """Start the schedule and the tick (on the running loop)."""
        self._tasks = [
            asyncio.create_task(self._schedule(), name="showrunner-hooks"),
            asyncio.create_task(self._ticks(), name="showrunner-outages"),
        ]

    async def stop(self) -> None:
        """Stop both tasks; hooks still running get a few seconds, then are cancelled."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.runner.drain(_DRAIN)

    # -- the schedule ------------------------------------------------------------------------

    def _hours(self) -> OpeningHours | None:
        return self.player.opening.hours

    def _lead(self) -> float:
        before = self.hooks.before_open
        return before.lead if before is not None else 0.0

    async def _schedule(self) -> None:
        hours, now = self._hours(), self.clock.now()
        if hours is None or hours.is_open(now):
            self._before_open(self.clock.monotonic() + self._lead())
        else:
            opening = hours.next_change(now)
            if opening is not None and (opening - now).total_seconds() <= self._lead():
                self._before_open(self._monotonic(opening))
                await self._sleep_until(opening)
        while True:
            hours, now = self._hours(), self.clock.now()
            change = hours.next_change(now) if hours is not None else None
            if hours is None or change is None:
                await self.clock.doze(self.clock.monotonic() + 3600)  # an edit may add hours
                continue
            if hours.is_open(now):
                await self._sleep_until(change)
                reopening = hours.next_change(change)
                if reopening is not None and (reopening - change).total_seconds() <= self._lead():
                    await self._sleep_until(reopening)  # a short break: the GPU stays on
                    continue
                if self.hooks.after_close is not None:
                    self.player.link.rest()  # no reconnection attempts all night
                self.runner.fire("after_close", self.hooks.after_close)
            else:
                at = change.timestamp() - self._lead()
                if at > self.clock.time():
                    await self._sleep_until(datetime.fromtimestamp(at, change.tzinfo))
                self._before_open(self._monotonic(change))
                await self._sleep_until(change)

    def _before_open(self, grace_until: float) -> None:
        self.player.link.wake()
        if self.hooks.before_open is None:
            return
        self.starting_until = grace_until
        self.player.gpu_notice = STARTING_GPU
        self.player.log.status_changed()
        self.runner.fire("before_open", self.hooks.before_open)

    def _monotonic(self, moment: datetime) -> float:
        return self.clock.monotonic() + moment.timestamp() - self.clock.time()

    async def _sleep_until(self, moment: datetime) -> None:
        await self.clock.sleep_until(self._monotonic(moment))

    # -- the tick ----------------------------------------------------------------------------

    async def _ticks(self) -> None:
        while True:
            if self.starting and self._picture():
                self.player.gpu_notice = None
                self.starting_until = None
                self.player.log.status_changed()
            with contextlib.suppress(Exception):  # a bug here must not end the run
                self.outage.observe()
            await self.clock.doze(self.clock.monotonic() + self.tick)

    def _picture(self) -> bool:
        return self.player.link.state in _PICTURE

    def _reason(self) -> str:
        return f"Scope {self.player.link.state.value}"

    def _expected(self) -> bool:
        player = self.player
        if player.quitting or (player.position.ended and player.timeline.show.end == "stop"):
            return False
        if self.starting_until is not None and self.clock.monotonic() < self.starting_until:
            return False
        hours = self._hours()
        if hours is None:
            return True
        closed = player.opening.closed if player.started else not hours.is_open(self.clock.now())
        if not closed:
            return True
        return hours.closed_scene is not None and self.hooks.after_close is None

    def _on_outage(self, outage: Outage) -> None:
        self.runner.fire("on_outage", self.hooks.on_outage)
        since = datetime.fromtimestamp(outage.since, self.clock.now().tzinfo)
        title = self.player.timeline.show.title
        self.runner.alert(self.webhook, f"{title}: no picture since {since:%Y-%m-%d %H:%M:%S %Z} "
                          f"({outage.reason}); showrunner keeps reconnecting", name="outage")

    def _on_recover(self, outage: Outage) -> None:
        self.runner.fire("on_recover", self.hooks.on_recover)
        title = self.player.timeline.show.title
        self.runner.alert(self.webhook, f"{title}: picture back after {outage.seconds:.0f} s "
                          f"without ({outage.reason})", name="recovered")
