"""Ableton Link as a tempo source (aalink is used only here).

Link finds its peers by multicast on every network interface. `LinkTempo` joins the session
at the show's bpm (a session that already runs keeps its tempo), reports a reading four times
a beat and at every tempo change, and `propose` sets the session's tempo for every peer. The
beat is Link's shared beat, and the bar phase is shared too: the quantum is the show's
`beats_per_bar`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aalink

from showrunner.errors import TempoSourceError
from showrunner.music.reading import TempoListener, TempoReading
from showrunner.sync.bpm import check_bpm

__all__ = ["LinkTempo"]

READINGS_PER_BEAT = 4


class LinkTempo:
    """A Link peer; readings while it runs (`run` is cancelled to leave the session)."""

    name = "link"

    def __init__(self, bpm: float, beats_per_bar: int, clock: Callable[[], float]) -> None:
        self.bpm = check_bpm(bpm)
        self.beats_per_bar = beats_per_bar
        self._clock = clock
        self._link: Any = None
        self._listener: TempoListener | None = None

    @property
    def peers(self) -> int | None:
        """Other peers in the Link session (None while not joined)."""
        return None if self._link is None else int(self._link.num_peers)

    async def run(self, listener: TempoListener) -> None:
        loop = asyncio.get_running_loop()

        def tempo_changed(_bpm: float) -> None:
            loop.call_soon_threadsafe(self._report)

        try:
            link = aalink.Link(self.bpm)  # takes the running loop: its futures resolve there
            link.quantum = float(self.beats_per_bar)
            link.add_tempo_callback(tempo_changed)
            link.enabled = True
        except Exception as exc:  # whatever the native library raises: the show plays on
            raise TempoSourceError(f"Ableton Link cannot start: {exc}") from exc
        self._link, self._listener = link, listener
        try:
            self._report()
            while True:
                await link.sync(1.0 / READINGS_PER_BEAT)
                self._report()
        finally:
            link.remove_tempo_callback(tempo_changed)
            link.enabled = False
            self._link = self._listener = None

    def _report(self) -> None:
        link, listener = self._link, self._listener
        if link is None or listener is None:
            return
        listener(TempoReading(float(link.tempo), float(link.beat), self._clock(), True, self.name))

    async def propose(self, bpm: float) -> None:
        """Set the Link session's tempo (every peer follows)."""
        bpm = check_bpm(bpm)
        if self._link is None:
            self.bpm = bpm
            return
        self._link.tempo = bpm
