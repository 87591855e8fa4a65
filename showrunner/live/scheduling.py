"""Everything APScheduler (3.x) does for showrunner, in one place.

Two jobs:

- :class:`SchedulerClock`: a :class:`~showrunner.live.clock.Clock` whose waits are
  ``AsyncIOScheduler`` date jobs. A date job fires on the event loop 1-2 ms late (the loop
  rounds its timeout to whole milliseconds), so each job is set a little *early* and the
  last stretch is a precise hand-over (:func:`showrunner.live.clock.handover`).
- Cron arithmetic for opening hours: :func:`cron_at` builds a ``CronTrigger`` for "these
  weekdays at HH:MM" and :func:`next_fire` asks it for the next time after a given moment.
  Both are pure, so opening hours can be computed on a fake clock.

Keeping APScheduler behind these few names keeps the 3 -> 4 upgrade a one-module change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from types import TracebackType

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from tzlocal import get_localzone

from showrunner.live.clock import EARLY_WAKE, SystemClock

__all__ = ["SchedulerClock", "Trigger", "cron_at", "local_timezone", "next_fire"]

Trigger = CronTrigger
"""The trigger type :func:`cron_at` returns (opaque to callers)."""

log = logging.getLogger("showrunner.live.scheduling")

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


async def _wake(future: asyncio.Future[None]) -> None:
    # A coroutine, so AsyncIOExecutor runs it on the loop instead of in a worker thread.
    if not future.done():
        future.set_result(None)


class SchedulerClock(SystemClock):
    """The real clock, with waits scheduled as APScheduler date jobs (async context manager).

    Use inside ``async with``: the scheduler runs on the current event loop. A job fires
    ``early`` before the deadline; the inherited hand-over does the rest. Without a running
    scheduler it behaves like :class:`~showrunner.live.clock.SystemClock`.
    """

    def __init__(self, tz: tzinfo | None = None, *, early: float = EARLY_WAKE) -> None:
        super().__init__(tz, early=early)
        self._scheduler: AsyncIOScheduler | None = None

    def __repr__(self) -> str:
        state = "running" if self._scheduler is not None else "stopped"
        return f"SchedulerClock(tz={self.tz!r}, early={self.early!r}, {state})"

    async def __aenter__(self) -> SchedulerClock:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the scheduler on the running event loop."""
        if self._scheduler is None:
            scheduler = AsyncIOScheduler(timezone=UTC)
            scheduler.start()
            self._scheduler = scheduler

    def stop(self) -> None:
        """Stop the scheduler; pending waits fall back to plain loop timers."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    async def approach(self, deadline: float) -> None:
        scheduler = self._scheduler
        lead = deadline - self.monotonic() - self.early
        if scheduler is None or lead <= 0.001:
            await super().approach(deadline)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Date jobs run on the wall clock; convert at the last moment so a step in between
        # costs nothing. `misfire_grace_time=None`: a late wake-up still wakes.
        run_date = datetime.fromtimestamp(self.time() + lead, UTC)
        job = scheduler.add_job(
            _wake, "date", run_date=run_date, args=[future], misfire_grace_time=None
        )
        try:
            await future
        except asyncio.CancelledError:
            with contextlib.suppress(JobLookupError):
                job.remove()
            raise
        # If the wall clock stepped meanwhile, the job fired at the wrong moment.
        await super().approach(deadline)


def local_timezone() -> tzinfo:
    """The machine's IANA time zone (what opening hours use when the show names none)."""
    return get_localzone()


def cron_at(weekdays: Sequence[int], hour: int, minute: int, tz: tzinfo) -> CronTrigger:
    """A trigger firing at HH:MM on the given weekdays (Monday = 0) in `tz`."""
    if not weekdays:
        raise ValueError("a cron trigger needs at least one weekday")
    days = ",".join(_DAY_NAMES[d % 7] for d in sorted(set(weekdays)))
    return CronTrigger(day_of_week=days, hour=hour, minute=minute, second=0, timezone=tz)


def next_fire(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first time the trigger fires strictly after `after` (aware datetime)."""
    if after.tzinfo is None:
        raise ValueError("next_fire needs an aware datetime")
    # CronTrigger rounds its start up to the whole second and counts that second in.
    fire: datetime | None = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return fire
