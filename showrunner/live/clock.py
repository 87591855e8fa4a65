"""Time as a parameter: the player reads and waits on a `Clock`, never on `time` directly.

`SystemClock` is the real thing; `FakeClock` is one tests move by hand. Deadlines are
monotonic seconds, so a wall-clock step (NTP, a DST change) never shifts a planned cue;
wall time (`time()`, `now()`) is read only to label the journal and for opening hours.

The event loop wakes timers up to about a millisecond late (epoll rounds its timeout up to
whole milliseconds), so waits end with :func:`handover`: wake a little early, then finish
the last stretch spinning on ``time.monotonic()``. :func:`prompt_thread_switches` keeps other
threads of the process (aiortc's decoder, an embedded simulator) from holding the GIL for
Python's default 5 ms when the hand-over wants it back.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import sys
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Protocol, runtime_checkable

__all__ = [
    "EARLY_WAKE",
    "SWITCH_INTERVAL",
    "Clock",
    "FakeClock",
    "SystemClock",
    "handover",
    "prompt_thread_switches",
]

# How long before a deadline the event-loop wait ends. It covers the loop's millisecond
# rounding and a callback or two running late; the rest is spent blocked in `handover`.
EARLY_WAKE = 0.004
# The last stretch of a hand-over spins instead of sleeping: `time.sleep` releases the GIL, and
# winning it back from a thread busy decoding video took up to the 5 ms switch interval (p90
# 2 ms late in bench/bench_cue_timing.py); a spinning thread keeps it. Only a wait longer than
# this (a caller that did not approach first) sleeps its first part. Costs ~3 ms of CPU per
# planned event, nothing while a scene holds.
_SPIN = 0.006
# How long another thread may keep the GIL once the hand-over asks for it (Python: 5 ms).
SWITCH_INTERVAL = 0.0005


@runtime_checkable
class Clock(Protocol):
    """What the player needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; every deadline is on this scale."""
        ...

    def time(self) -> float:
        """Unix time (for the journal, the state file and opening hours)."""
        ...

    def now(self) -> datetime:
        """The current time as an aware datetime."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at `deadline` (monotonic seconds); at once if it has passed."""
        ...


def handover(deadline: float) -> None:
    """Block until `deadline` (monotonic) with sub-millisecond precision.

    Meant for the last few milliseconds of a wait only: it holds the event loop (and a CPU)
    meanwhile.
    """
    remaining = deadline - _time.monotonic()
    if remaining > _SPIN:
        _time.sleep(remaining - _SPIN)
    while _time.monotonic() < deadline:
        pass


@contextmanager
def prompt_thread_switches(interval: float = SWITCH_INTERVAL) -> Iterator[None]:
    """Shorten the interpreter's thread switch interval for the duration (process-wide)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class SystemClock:
    """The real clock. `sleep_until` wakes `early` seconds ahead on the loop, then hands over."""

    def __init__(self, tz: tzinfo | None = None, *, early: float = EARLY_WAKE) -> None:
        self.tz = tz
        self.early = early

    def __repr__(self) -> str:
        return f"SystemClock(tz={self.tz!r}, early={self.early!r})"

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    def now(self) -> datetime:
        if self.tz is not None:
            return datetime.now(self.tz)
        return datetime.now().astimezone()

    async def sleep_until(self, deadline: float) -> None:
        await self.approach(deadline)
        handover(deadline)

    async def approach(self, deadline: float) -> None:
        """Wait on the event loop until shortly (``early``) before `deadline`, without blocking.

        ``approach`` then ``sleep_until`` is ``sleep_until`` split in two: a caller can make
        the long first part cancellable and keep the precise second part in its own task.
        """
        remaining = deadline - _time.monotonic()
        if remaining > self.early:
            await asyncio.sleep(remaining - self.early)

    async def doze(self, deadline: float) -> None:
        """A background wait: a plain event-loop timer, no scheduler job, no hand-over."""
        remaining = deadline - _time.monotonic()
        await asyncio.sleep(max(0.0, remaining))


class _Sleeper:
    __slots__ = ("deadline", "future", "order")

    def __init__(self, deadline: float, order: int, future: asyncio.Future[None]) -> None:
        self.deadline = deadline
        self.order = order
        self.future = future

    def __lt__(self, other: _Sleeper) -> bool:
        return (self.deadline, self.order) < (other.deadline, other.order)


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance` (or :meth:`jump_wall`).

    ``advance`` wakes sleepers one deadline at a time, in order, and lets the woken tasks
    run before moving on, so code that chains waits sees the times it asked for.
    """

    def __init__(
        self,
        start: datetime | float = 1_767_261_600.0,  # 2026-01-01 10:00 UTC
        *,
        tz: tzinfo | None = UTC,
        monotonic: float = 1000.0,
    ) -> None:
        wall = start.timestamp() if isinstance(start, datetime) else float(start)
        if isinstance(start, datetime) and tz is UTC and start.tzinfo is not None:
            tz = start.tzinfo
        self.tz = tz or UTC
        self._mono = float(monotonic)
        self._wall_offset = wall - self._mono
        self._sleepers: list[_Sleeper] = []
        self._order = itertools.count()

    def __repr__(self) -> str:
        return f"FakeClock(time={self.time()!r}, monotonic={self._mono!r}, sleepers={self.sleepers})"

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._mono + self._wall_offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), self.tz)

    @property
    def sleepers(self) -> int:
        """Tasks currently waiting on this clock."""
        return sum(1 for s in self._sleepers if not s.future.done())

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline anyone waits for."""
        live = [s.deadline for s in self._sleepers if not s.future.done()]
        return min(live) if live else None

    async def approach(self, deadline: float) -> None:
        """Same as `sleep_until` (a fake clock has no hand-over to prepare)."""
        await self.sleep_until(deadline)

    async def doze(self, deadline: float) -> None:
        """Same as `sleep_until`."""
        await self.sleep_until(deadline)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._mono:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, _Sleeper(deadline, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move monotonic and wall time forward by `seconds`, waking sleepers in order."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards; use jump_wall() for wall-clock steps")
        target = self._mono + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0].deadline <= target:
            sleeper = heapq.heappop(self._sleepers)
            if sleeper.future.done():
                continue
            self._mono = max(self._mono, sleeper.deadline)
            sleeper.future.set_result(None)
            await self.settle()
        self._mono = target
        await self.settle()

    async def advance_to(self, wall: datetime | float) -> None:
        """Advance until the wall clock reads `wall`."""
        target = wall.timestamp() if isinstance(wall, datetime) else float(wall)
        await self.advance(max(0.0, target - self.time()))

    def jump_wall(self, seconds: float) -> None:
        """Step the wall clock (not the monotonic one), as NTP or a reboot would."""
        self._wall_offset += seconds

    @staticmethod
    async def settle(rounds: int = 20) -> None:
        """Let every ready task run until it waits again."""
        for _ in range(rounds):
            await asyncio.sleep(0)
