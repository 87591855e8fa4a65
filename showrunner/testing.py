"""Helpers for testing code built on showrunner (as ``starlette.testclient`` is for Starlette).

- :class:`FakeClock`: a :class:`~showrunner.live.clock.Clock` that moves only when the test says so;
- :class:`MemoryJournal`: keeps journal records in a list (the player's run journal and the
  operator commands write to anything with ``write(record)``);
- :func:`until`: wait for a condition that other tasks (or threads) make true.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

__all__ = ["FakeClock", "MemoryJournal", "until"]

_T = TypeVar("_T")


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


class MemoryJournal:
    """Keeps records in a list, in the order written."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))

    def __repr__(self) -> str:
        return f"MemoryJournal(records={len(self.records)})"


async def until(predicate: Callable[[], _T], timeout: float = 5.0, *, step: float = 0.01) -> _T:
    """Poll `predicate` every `step` seconds (real time) until it returns something true, and
    return that; TimeoutError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g} s")
        await asyncio.sleep(step)
