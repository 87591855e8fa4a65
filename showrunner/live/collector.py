"""Garbage collection timed around the show: the cyclic collector runs between planned
events instead of wherever an allocation happens to trigger it (possibly right on a cue).
Kept apart from the player because it manages process-wide interpreter state, not the show.
"""

from __future__ import annotations

import gc

__all__ = ["IdleCollector"]


class IdleCollector:
    """Runs Python's cyclic garbage collector between planned events, not just before one.

    A collection stops every thread for up to a few milliseconds; left to itself it can land
    right on a cue. The run freezes what exists at start (the timeline, modules: nothing to
    collect there), turns automatic collection off, and collects when the next event is far
    enough away (and at every watchdog tick, so a long hold does not pile up garbage).
    """

    _MIN_ROOM = (0.010, 0.020, 0.100)  # seconds of free time needed per generation

    def __init__(self) -> None:
        self._rounds = 0
        self._last_full = 0
        self._was_enabled = False
        self._threshold = max(1, gc.get_threshold()[0])

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()

    def stop(self) -> None:
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def collect(self, room: float) -> None:
        """Collect if garbage is due and `room` seconds are free before the next event."""
        if gc.get_count()[0] < self._threshold or room < self._MIN_ROOM[0]:
            return
        self._rounds += 1
        generation = 2 if self._rounds % 100 == 0 else 1 if self._rounds % 10 == 0 else 0
        overdue = self._rounds - self._last_full > 1000  # a long dense stretch: do it anyway
        while room < self._MIN_ROOM[generation] and not (generation == 2 and overdue):
            generation -= 1
        if generation == 2:
            self._last_full = self._rounds
        gc.collect(generation)

