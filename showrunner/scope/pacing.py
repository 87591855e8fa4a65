"""Pacing parameter updates to the server's chunk rate: one message per chunk, what waits is merged.

Scope queues data-channel updates 8 deep, takes one per generated chunk and drops the newest
when the queue is full (docs/scope.md §3.2 step 5). So the session writes at most one message per
chunk interval, and nothing ever queues behind anything:

- a message that finds the line idle is written at once (no added latency on the show's
  timing path);
- otherwise it merges into the one message waiting for the next slot, the latest target of
  every key winning: a newer ``transition`` (or ``prompts``) replaces an older one that has not
  gone out, a one-shot key's newer copy replaces the older one (it was for a moment that has
  passed), LoRA scales merge per path. Every update therefore goes out at the next slot, at most
  one interval after it was handed over, and however fast updates come the line is never behind;
- entries take priority over timed updates (keyframe samples, travel stops): when an entry is
  expected (:meth:`Coalescer.expect`) less than one interval after a timed update would be
  written, writing it would take the entry's slot, so the update waits and is merged into the
  entry instead of going ahead of it, provided that keeps it within ``HOLD_LIMIT`` (0.5 s).

Kept apart from the Scope client because it is pure asyncio scheduling over a write callback
and a clock: it knows nothing of HTTP or WebRTC, and is tested on a fake clock.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from showrunner.scope.clock import SYSTEM_TIME, SessionClock

__all__ = ["EXPECT_GRACE", "HOLD_LIMIT", "ONE_SHOT_KEYS", "Coalescer", "Prepared", "Written", "merge"]

# The server drains one update per chunk from an 8-deep queue, so sending at exactly the chunk
# rate (the coalescer's interval) cannot overrun it; a send up to this much early (timer jitter)
# still counts as on time, so keyframes the timeline samples once per chunk go out when planned
# instead of being merged.
_SPACING_TOLERANCE = 0.003
# A timed update held back for an expected entry goes out on its own this long after the entry
# was due, should the entry not come (a hold, an edit): the entry normally arrives on time.
EXPECT_GRACE = 0.05
# ... and it is held at most this long in all: an update more than 0.5 s late is not sent late
# (docs/operating.md, "Timing"). Nearer the entry than that, it is written on time instead and
# the entry takes the next slot (at most one interval minus this later).
HOLD_LIMIT = 0.5

# Keys that apply for a single chunk (§8-L). A newer copy replaces an older one still waiting.
ONE_SHOT_KEYS = frozenset(
    {"reset_cache", "vace_ref_images", "first_frame_image", "last_frame_image", "images",
     "lora_scales"}
)
# Keys that together say which prompts to show: a newer one replaces both (§8-G).
_PROMPT_KEYS = ("transition", "prompts")


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


class Written(dict[str, Any]):
    """What one write put on the data channel: the message, its number among the session's
    writes (`write`, from 1) and how many submitted updates it carries (`carries`)."""

    __slots__ = ("carries", "write")

    def __init__(self, message: Mapping[str, Any], write: int, carries: int) -> None:
        super().__init__(message)
        self.write = write
        self.carries = carries

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError("a written message is read-only; copy it with dict() to change it")

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a written message is read-only; copy it with dict() to change it")


def _merge_scales(waiting: list[Any], incoming: list[Any]) -> list[Any]:
    """LoRA scales by path: the newer scale of a path wins, other paths stay."""
    merged: dict[Any, Any] = {}
    for entry in [*waiting, *incoming]:
        key = entry.get("path") if isinstance(entry, Mapping) else repr(entry)
        merged.pop(key, None)  # a changed path moves to the end, as it was sent last
        merged[key] = entry
    return list(merged.values())


def merge(waiting: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """One message that brings Scope where `waiting` then `incoming` would (latest target wins)."""
    merged = dict(waiting)
    if any(key in incoming for key in _PROMPT_KEYS):
        for key in _PROMPT_KEYS:
            merged.pop(key, None)
    for key, value in incoming.items():
        before = merged.get(key)
        if key == "lora_scales" and isinstance(before, list) and isinstance(value, list):
            merged[key] = _merge_scales(before, value)
        elif key == "output_sinks" and isinstance(before, Mapping) and isinstance(value, Mapping):
            merged[key] = {**before, **value}
        else:
            merged[key] = value
    return merged


@dataclass(eq=False)
class _Slot:
    """The one message waiting for a slot (per ``node_id``), and who waits for it."""

    message: dict[str, Any]
    node: Any
    entry: bool
    since: float  # when its first update was handed over (monotonic)
    carries: int = 1
    waiters: list[asyncio.Future[tuple[float, Written]]] = field(default_factory=list)


class Coalescer:
    """Writes at most one message per `interval`; what arrives in between is merged.

    ``write(message, number)`` puts one message on the wire and returns the unix time it was
    written; `number` counts the writes from 1. See the module docstring for the rules.
    """

    def __init__(
        self,
        write: Callable[[dict[str, Any], int], float],
        interval: float,
        *,
        clock: SessionClock = SYSTEM_TIME,
    ) -> None:
        self.interval = interval
        self.writes = 0  # messages written so far
        self._write = write
        self._clock = clock
        self._pending: list[_Slot] = []
        self._last_sent: float | None = None
        self._expected: float | None = None
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Coalescer(interval={self.interval!r}, pending={self.pending})"

    @property
    def pending(self) -> int:
        """Updates waiting for their slot (merged or not)."""
        return sum(slot.carries for slot in self._pending)

    @property
    def expected(self) -> float | None:
        """When the next entry is expected (monotonic), as `expect` was told."""
        return self._expected

    def expect(self, at: float | None) -> None:
        """The next entry is planned at `at` (monotonic, on this coalescer's clock); None: none is."""
        if at == self._expected:
            return
        self._expected = at
        if self._pending and self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()  # it may be holding an update for the entry that was expected
            self._flusher = asyncio.create_task(self._flush())

    async def submit(self, message: Mapping[str, Any], *, entry: bool = True) -> tuple[float, Written]:
        """Send `message` now or merged into the next slot; return (sent at, what went out).

        `entry` marks a message that takes priority (a scene entry, a jump, an operator's
        command); ``False`` marks a timed update (a keyframe sample, a travel stop) that may be
        held back and merged into an expected entry.
        """
        slot = self._take(message, entry)
        now = self._clock.monotonic()
        if self._pending[0] is slot and self._due(slot, now, early=_SPACING_TOLERANCE) <= now:
            self._pending.pop(0)
            return self._send(slot)
        future: asyncio.Future[tuple[float, Written]] = asyncio.get_running_loop().create_future()
        slot.waiters.append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # The message goes out even if this caller is cancelled.
        return await asyncio.shield(future)

    def _take(self, message: Mapping[str, Any], entry: bool) -> _Slot:
        node = message.get("node_id")
        for slot in self._pending:
            if slot.node == node:
                slot.message = merge(slot.message, message)
                slot.carries += 1
                slot.entry = slot.entry or entry
                return slot
        # Kept as it is (a Prepared keeps its wire text) until something merges into it.
        slot = _Slot(message if isinstance(message, Prepared) else dict(message), node, entry,
                     self._clock.monotonic())
        self._pending.append(slot)
        return slot

    def _due(self, slot: _Slot, now: float, *, early: float = 0.0) -> float:
        """When `slot` may be written: the next slot (up to `early` seconds sooner: timer
        jitter), or later when it would take the slot of an expected entry."""
        free = -math.inf if self._last_sent is None else self._last_sent + self.interval - early
        if slot.entry or self._pending[0] is not slot:
            return free
        expected = self._expected
        # Held for the entry, should it not come, never longer than this:
        latest = slot.since + min(self.interval, HOLD_LIMIT)
        if expected is None or not now - EXPECT_GRACE <= expected < latest - _SPACING_TOLERANCE:
            return free
        # Written at `start`, it would keep the line busy until `start + interval`.
        start = max(free, now)
        if expected < start + self.interval - _SPACING_TOLERANCE:
            return max(free, min(expected + EXPECT_GRACE, latest))
        return free

    def _send(self, slot: _Slot) -> tuple[float, Written]:
        number = self.writes + 1
        try:
            at = self._write(slot.message, number)
        except Exception as exc:
            for waiter in slot.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
                    waiter.exception()  # the caller may have gone; don't warn about it
            raise
        finally:
            self._last_sent = self._clock.monotonic()
        self.writes = number
        result = (at, Written(slot.message, number, slot.carries))
        for waiter in slot.waiters:
            if not waiter.done():
                waiter.set_result(result)
        return result

    async def _flush(self) -> None:
        while self._pending:
            slot = self._pending[0]
            now = self._clock.monotonic()
            due = self._due(slot, now)
            if due > now:
                await self._clock.doze(due)
                continue  # look again: something may have merged into it meanwhile
            self._pending.pop(0)
            try:
                self._send(slot)
            except Exception:  # handed to the waiters
                continue

    def cancel(self, reason: BaseException) -> None:
        """Fail every waiting message with `reason` and stop the flusher."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        pending, self._pending = self._pending, []
        for slot in pending:
            for waiter in slot.waiters:
                if not waiter.done():
                    waiter.set_exception(reason)
                    # Nobody may be awaiting it any more; don't let asyncio complain.
                    waiter.exception()
