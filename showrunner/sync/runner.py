"""One run's tempo: the chosen source, running beside the show, and what the operator sees.

`TempoRunner` runs the source a show asks for; if it cannot run (`TempoSourceError`: Scope
without Link, a source not in this build) the reason is said in one line and the show plays
on the fixed bpm. Each reading goes to the listeners (musical time) and to `LatestReading`
(the status). Taps and set tempos from the operator surfaces come here: the tap source takes
taps itself (they set the beat), another source that can change tempo is proposed the tapped
or given bpm, and the fixed tempo refuses both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from showrunner.errors import TempoSourceError
from showrunner.music.reading import TempoListener, TempoReading
from showrunner.sync.bpm import check_bpm
from showrunner.sync.fixed import FixedTempo
from showrunner.sync.latest import LatestReading, TempoStatus
from showrunner.sync.sources import BuiltSource, SourceContext, SourceOptions, build_source
from showrunner.sync.tap import TapDetector

__all__ = ["TempoRunner"]

log = logging.getLogger(__name__)


class TempoRunner:
    """Runs one tempo source for a show (`run` until cancelled); `tap`, `set_bpm`, `status`."""

    def __init__(
        self,
        options: SourceOptions,
        context: SourceContext,
        *,
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        self.options = options
        self._clock = context.clock
        self._warn = warn
        self.error: str | None = None
        self.built: BuiltSource
        try:
            self.built = build_source(options, context)
        except TempoSourceError as exc:
            self._fall_back(exc)
        # Until the source's first reading: its name, the show's bpm, not playing yet.
        self.latest = LatestReading(
            TempoReading(options.bpm, 0.0, self._clock(), False, self.source_name),
            options.beats_per_bar,
        )
        self._detector = TapDetector(options.tap_reset)
        self._listeners: list[TempoListener] = []

    @property
    def source_name(self) -> str:
        return self.built.source.name

    def _fall_back(self, exc: TempoSourceError) -> None:
        self.error = f"tempo source {self.options.name}: {exc}"
        self._warn(f"{self.error}; playing on the fixed {self.options.bpm:g} bpm")
        self.built = BuiltSource(FixedTempo(self.options.bpm, self._clock))

    def listen(self, listener: TempoListener) -> Callable[[], None]:
        """Call `listener` with every reading; returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    async def run(self) -> None:
        """Run the source until cancelled; a source that cannot run gives way to the fixed bpm."""
        try:
            await self.built.source.run(self._on_reading)
        except TempoSourceError as exc:
            self._fall_back(exc)
            await self.built.source.run(self._on_reading)

    def _on_reading(self, reading: TempoReading) -> None:
        self.latest.update(reading)
        for listener in list(self._listeners):
            try:
                listener(reading)
            except Exception:
                log.exception("a tempo listener failed")

    # -- the operator surfaces (showrunner.control.tempo.TempoControl) -----------------------

    def tempo_status(self) -> dict[str, Any]:
        return self.status().to_json()

    def status(self) -> TempoStatus:
        peers = self.built.peers() if self.built.peers is not None else None
        return self.latest.status(self._clock(), peers=peers, error=self.error)

    async def tap(self) -> float | None:
        """A tap now; the bpm it sets (None: not enough taps yet). TempoSourceError when the
        source takes no tempo."""
        now = self._clock()
        if self.built.tap is not None:
            return self.built.tap(now)
        if self.built.propose is None:
            raise TempoSourceError(self._refusal())
        bpm = self._detector.tap(now)
        if bpm is not None:
            await self.set_bpm(bpm)
        return bpm

    async def set_bpm(self, value: object) -> float:
        """Set (or propose) the tempo; ValueError (one line) for a bad value, TempoSourceError
        when the source takes none or refused it."""
        bpm = check_bpm(value)
        if self.built.propose is None:
            raise TempoSourceError(self._refusal())
        await self.built.propose(bpm)
        return bpm

    def _refusal(self) -> str:
        return (f"the {self.source_name} tempo cannot be changed here "
                "(tempo source tap, osc, link or scope can)")
