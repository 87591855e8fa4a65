"""Pacing parameter updates to the server's chunk rate: merged while they wait, never overrun.

Kept apart from the Scope client because it is pure asyncio scheduling over a write
callback and a clock: it knows nothing of HTTP or WebRTC, and can be tested with a fake clock.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from showrunner.scope.clock import SYSTEM_TIME, SessionClock

__all__ = ["ONE_SHOT_KEYS", "Coalescer", "Prepared"]

# The server drains one update per chunk from an 8-deep queue, so sending at exactly the chunk
# rate (the coalescer's interval) cannot overrun it; a send up to this much early (timer jitter)
# still counts as on time, so keyframes the timeline samples once per chunk go out when planned
# instead of being merged.
_SPACING_TOLERANCE = 0.003

# Keys that apply for a single chunk (§8-L): two copies must never be merged into one.
ONE_SHOT_KEYS = frozenset(
    {"reset_cache", "vace_ref_images", "first_frame_image", "last_frame_image", "images",
     "lora_scales"}
)


@dataclass
class _Slot:
    message: dict[str, Any]
    done: asyncio.Future[tuple[float, dict[str, Any]]]


def _conflicts(waiting: Mapping[str, Any], incoming: Mapping[str, Any]) -> bool:
    """Whether merging would lose a transition or a one-shot value."""
    if "transition" in waiting and "transition" in incoming:
        return True
    return any(k in waiting for k in ONE_SHOT_KEYS.intersection(incoming))


class Prepared(dict[str, Any]):
    """A checked, canonical parameter update with its JSON text, made before it is due.

    A plain dict to everyone else (the journal, comparisons); the session writes `wire` as is.
    Merged with a later update while it waits, it is copied into a plain dict and re-serialised.
    """

    __slots__ = ("wire",)

    def __init__(self, message: Mapping[str, Any], wire: str) -> None:
        super().__init__(message)
        self.wire = wire

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError("a prepared update is read-only; copy it with dict() to change it")

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a prepared update is read-only; copy it with dict() to change it")


class Coalescer:
    """Sends at most one message per `interval`, merging what arrives in between.

    Scope queues data-channel updates 8 deep, takes one per chunk and drops the newest
    when full (§3.2 step 5). A message that arrives when the line is idle goes out at
    once; otherwise it merges into the last waiting message (later values win), unless
    that would swallow a second `transition` or a second copy of a one-shot key, in
    which case it waits for the next slot of its own.
    """

    def __init__(
        self,
        write: Callable[[dict[str, Any]], float],
        interval: float,
        *,
        clock: SessionClock = SYSTEM_TIME,
    ) -> None:
        self.interval = interval
        self._write = write
        self._clock = clock
        self._pending: collections.deque[_Slot] = collections.deque()
        self._last_sent: float | None = None
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Coalescer(interval={self.interval!r}, pending={len(self._pending)})"

    @property
    def pending(self) -> int:
        """Messages waiting for their slot."""
        return len(self._pending)

    async def submit(self, message: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Send `message` (now, or merged into a later one); return (sent at, what went out)."""
        if not self._pending and (
            self._last_sent is None
            or self._clock.monotonic() - self._last_sent >= self.interval - _SPACING_TOLERANCE
        ):
            at = self._write(message)
            self._last_sent = self._clock.monotonic()
            return at, message
        if self._pending and not _conflicts(self._pending[-1].message, message):
            slot = self._pending[-1]
            slot.message.update(message)
        else:
            slot = _Slot(dict(message), asyncio.get_running_loop().create_future())
            self._pending.append(slot)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # The message goes out even if this caller is cancelled.
        return await asyncio.shield(slot.done)

    async def _flush(self) -> None:
        while self._pending:
            now = self._clock.monotonic()
            due = (self._last_sent if self._last_sent is not None else now) + self.interval
            if due > now:
                await self._clock.doze(due)
            if not self._pending:
                return
            slot = self._pending.popleft()
            try:
                at = self._write(slot.message)
            except Exception as exc:
                if not slot.done.done():
                    slot.done.set_exception(exc)
                    slot.done.exception()  # the caller may have gone; don't warn about it
                continue
            finally:
                self._last_sent = self._clock.monotonic()
            if not slot.done.done():
                slot.done.set_result((at, slot.message))

    def cancel(self, reason: BaseException) -> None:
        """Fail every waiting message with `reason` and stop the flusher."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        while self._pending:
            slot = self._pending.popleft()
            if not slot.done.done():
                slot.done.set_exception(reason)
                # Nobody may be awaiting it any more; don't let asyncio complain.
                slot.done.exception()
