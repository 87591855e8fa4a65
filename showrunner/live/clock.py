"""Time as a parameter: the player reads and waits on a `Clock`, never on `time` directly.

`SystemClock` is the real thing; tests move :class:`showrunner.testing.FakeClock` by hand. Deadlines are
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
import sys
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from typing import Protocol, runtime_checkable

__all__ = [
    "EARLY_WAKE",
    "SWITCH_INTERVAL",
    "Clock",
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

    async def approach(self, deadline: float) -> None:
        """Wait until shortly before `deadline` without blocking the loop; ``sleep_until``
        then finishes the wait precisely (the split lets a caller cancel the long part only)."""
        ...

    async def doze(self, deadline: float) -> None:
        """A background wait until about `deadline`: a plain timer, never the precise hand-over."""
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
