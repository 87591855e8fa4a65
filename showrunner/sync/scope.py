"""Scope's own tempo sync as a tempo source (docs/scope.md §6, §3.4, §10.1).

`ScopeTempo` asks the server to follow Ableton Link or a MIDI clock (``POST
/api/v1/tempo/enable``) and reads the ``tempo_update`` messages it then sends about 15 times
a second over the session's data channel. Without a data channel (the headless transport: Scope
sends no tempo there) it reads ``beat_state`` from ``GET /api/v1/tempo/status`` as often
instead, each reading timed at the middle of its request. A server that cannot (its Link or MIDI support is
not installed: HTTP 400) is a `TempoSourceError`; one that does not answer yet is asked again.
While no message arrives for a second the source reports `playing=False`; after three
seconds it looks at Scope's tempo status and enables tempo sync again if it is off (a Scope
restart forgets it). Leaving turns Scope's tempo sync off again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from showrunner.errors import ScopeConnectError, ScopeError, ScopeTimeoutError, TempoSourceError
from showrunner.music.reading import TempoListener, TempoReading
from showrunner.sync.bpm import check_bpm

__all__ = ["ScopeTempo", "ScopeTempoApi", "ServerEvents"]

log = logging.getLogger(__name__)

SCOPE_MAX_BPM = 300.0  # Scope's own limit for enable and set_tempo
SILENCE = 1.0  # seconds without tempo_update before the source reports it stopped
RECHECK = 3.0  # seconds without tempo_update before Scope's tempo status is looked at
POLL = 1 / 15  # seconds between two reads of the tempo status without a data channel
_RETRY = 2.0


class ScopeTempoApi(Protocol):
    """The REST calls (`showrunner.scope.client.ScopeClient` has them)."""

    async def tempo_enable(self, source: str, bpm: float, beats_per_bar: int) -> dict[str, Any]: ...
    async def tempo_set(self, bpm: float) -> dict[str, Any]: ...
    async def tempo_status(self) -> dict[str, Any]: ...
    async def tempo_disable(self) -> None: ...


class ServerEvent(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


class ServerEvents(Protocol):
    """Where the data channel's messages come from (`showrunner.scope.client.ScopeSession`)."""

    def listen(self, callback: Callable[[ServerEvent], None]) -> Callable[[], None]: ...


class ScopeTempo:
    """Scope's tempo sync, following `follows` ("link" or "midi_clock")."""

    name = "scope"

    def __init__(
        self,
        api: ScopeTempoApi,
        events: ServerEvents | None,
        *,
        bpm: float,
        beats_per_bar: int,
        follows: str = "link",
        clock: Callable[[], float],
    ) -> None:
        self.api = api
        self.events = events
        self.bpm = min(check_bpm(bpm), SCOPE_MAX_BPM)
        self.beats_per_bar = beats_per_bar
        self.follows = follows
        self._clock = clock
        self._listener: TempoListener | None = None
        self._last: TempoReading | None = None
        self._heard_at = 0.0  # when the last tempo_update (or enable) was
        self.bad_messages = 0
        self.enables = 0

    async def run(self, listener: TempoListener) -> None:
        self._listener = listener
        stop = self.events.listen(self._on_event) if self.events is not None else (lambda: None)
        enabled = False
        try:
            await self._enable()
            enabled = True
            while True:
                status = None  # the tempo status read in this turn, if any
                if self.events is None:
                    await asyncio.sleep(POLL)
                    status = await self._poll()
                else:
                    await asyncio.sleep(SILENCE / 2)
                self._check_silence()
                if self._clock() - self._heard_at > RECHECK:
                    await self._recheck(status)
        finally:
            stop()
            self._listener = None
            if enabled:
                with contextlib.suppress(ScopeError, TimeoutError):
                    await asyncio.wait_for(self.api.tempo_disable(), 2.0)

    async def _enable(self) -> None:
        said = False
        while True:
            try:
                await self.api.tempo_enable(self.follows, self.bpm, self.beats_per_bar)
                log.info("Scope tempo sync on, following %s", self.follows)
                self.enables += 1
                self._heard_at = self._clock()
                return
            except (ScopeConnectError, ScopeTimeoutError) as exc:
                if not said:
                    log.warning("tempo: Scope does not answer yet (%s); asking again", exc)
                    said = True
            except ScopeError as exc:
                raise TempoSourceError(f"Scope cannot follow {self.follows}: {exc}") from exc
            await asyncio.sleep(_RETRY)

    async def _recheck(self, status: Mapping[str, Any] | None) -> None:
        """Silence: tempo sync on again if Scope lost it (a restart); else wait (no session).
        `status`: the tempo status just read, if any (else it is read here)."""
        self._heard_at = self._clock()
        if status is None and (status := await self._status()) is None:
            return
        if not status.get("enabled"):
            log.warning("tempo: Scope's tempo sync is off (a restart?); turning it on again")
            self.bpm = min(self._last.bpm, SCOPE_MAX_BPM) if self._last is not None else self.bpm
            await self._enable()

    async def _status(self) -> Mapping[str, Any] | None:
        """Scope's tempo status; None when it cannot be read."""
        try:
            return await self.api.tempo_status()
        except ScopeError as exc:
            log.debug("tempo: Scope's tempo status unreadable: %s", exc)
            return None

    async def _poll(self) -> Mapping[str, Any] | None:
        """One read of the tempo status (no data channel): its `beat_state`, if any, is taken
        as a reading. Returns the status (None: unreadable)."""
        sent = self._clock()
        status = await self._status()
        if status is not None and isinstance(state := status.get("beat_state"), Mapping):
            self._take(state, (sent + self._clock()) / 2)
        return status

    def _on_event(self, event: ServerEvent) -> None:
        if event.kind == "tempo_update":
            self._take(event.payload, self._clock())

    def _take(self, payload: Mapping[str, Any], at: float) -> None:
        try:
            bpm = check_bpm(payload.get("bpm"))
            beat = float(int(payload["beat_count"])) + float(payload["beat_phase"])
        except (KeyError, TypeError, ValueError) as exc:
            self.bad_messages += 1
            if self.bad_messages == 1:
                log.warning("tempo: ignored a tempo_update from Scope: %s", exc)
            return
        self._heard_at = self._clock()
        self._report(TempoReading(bpm, beat, at, True, self.name))

    def _check_silence(self) -> None:
        last = self._last
        now = self._clock()
        if last is not None and last.playing and now - last.at > SILENCE:
            beat = last.beat + (now - last.at) * last.bpm / 60.0
            self._report(TempoReading(last.bpm, beat, now, False, self.name))

    def _report(self, reading: TempoReading) -> None:
        self._last = reading
        if self._listener is not None:
            self._listener(reading)

    async def propose(self, bpm: float) -> None:
        """Set Scope's tempo (``POST /api/v1/tempo/set_tempo``; Scope takes 20 to 300 bpm)."""
        bpm = check_bpm(bpm)
        if bpm > SCOPE_MAX_BPM:
            raise ValueError(f"Scope takes 20 to {SCOPE_MAX_BPM:g} bpm, not {bpm:g}")
        try:
            await self.api.tempo_set(bpm)
        except ScopeError as exc:
            raise TempoSourceError(f"Scope did not take the tempo: {exc}") from exc
