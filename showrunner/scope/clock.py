"""The time a Scope session reads and waits on.

A protocol rather than ``time`` directly, so a whole live run (player and session) can go on
one clock: :class:`showrunner.live.clock.Clock` fits it, and so does the tests' fake clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["SYSTEM_TIME", "SessionClock", "SystemTime"]


class SessionClock(Protocol):
    """Monotonic seconds for intervals and deadlines, unix seconds for timestamps, and a wait."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def doze(self, deadline: float) -> None:
        """Return at about `deadline` (monotonic seconds); a plain timer, no precise hand-over."""
        ...


class SystemTime:
    """The real clock."""

    def __repr__(self) -> str:
        return "SystemTime()"

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def doze(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


SYSTEM_TIME = SystemTime()
