"""Simulated tempo sync: an Ableton Link session without peers, and beat-quantized updates.

docs/scope.md §6, §3.4 and §10.1 (Scope tempo_sync.py, tempo_sources/link.py, tempo_router.py,
parameter_scheduler.py): `link` is available, `midi_clock` is not (mido missing); the beat
runs from the moment tempo is enabled; `is_playing` is always false with Link; `tempo_update`
goes to every WebRTC data channel at about 15 Hz while enabled; a `_quantized` data-channel
update waits for the next boundary of `quantize_mode` when tempo is enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NOTIFY_INTERVAL = 1.0 / 15.0  # tempo_update rate (tempo_sync.py)
# How long a set_tempo takes to show in the status: Scope answers with the new bpm at once,
# but its status reads the Link poll cache, observed stale for up to ~100 ms (docs/scope.md §10.1).
TEMPO_LAG = 0.05
QUANTIZE_MODES = ("none", "beat", "bar", "2_bar", "4_bar")
SOURCES = {
    "link": {"available": True, "name": "Ableton Link"},
    "midi_clock": {"available": False, "name": "MIDI Clock", "install_hint": "uv sync --extra midi"},
}


class TempoUnavailable(RuntimeError):
    """Enabling a source whose dependency is missing (Scope answers 400 with this text)."""


@dataclass(frozen=True)
class _Line:
    """From `start` on, beat = beat0 + (t - start) × bpm / 60."""

    start: float
    beat0: float
    bpm: float

    def beat(self, now: float) -> float:
        return self.beat0 + (now - self.start) * self.bpm / 60.0


class TempoSync:
    """The server's tempo clock (one per simulator), plus the `tempo_update` broadcaster."""

    def __init__(
        self,
        notify: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notify = notify
        self._clock = clock
        self.enabled = False
        self.source: str | None = None
        self.beats_per_bar = 4
        self._lines: list[_Line] = []
        self._polled = False
        self._task: asyncio.Task[None] | None = None

    # -- control -------------------------------------------------------------------------

    def enable(self, source: str, bpm: float, beats_per_bar: int) -> None:
        """Start a fresh beat (beat_count from 0); TempoUnavailable for `midi_clock`."""
        self.disable()
        self.beats_per_bar = beats_per_bar
        if not SOURCES.get(source, {}).get("available"):
            hint = SOURCES.get(source, {}).get("install_hint", "")
            raise TempoUnavailable(f"Failed to create {source} tempo source. Install with: {hint}")
        now = self._clock()
        self._lines = [_Line(now, 0.0, float(bpm))]
        self.enabled, self.source = True, source
        # The source's poll has not run when the enable answer is built: `beat_state` null.
        self._polled = False
        loop = asyncio.get_running_loop()
        loop.call_soon(self._first_poll)
        self._task = loop.create_task(self._broadcast())
        log.info("Tempo sync enabled: source=%s, bpm=%s", source, bpm)

    def _first_poll(self) -> None:
        self._polled = True

    def disable(self) -> None:
        """Stop the beat; `beats_per_bar` stays (docs/scope.md §10.1)."""
        self.enabled, self.source = False, None
        self._lines = []
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def set_tempo(self, bpm: float) -> None:
        """Change the tempo without a jump in the beat; the status sees it `TEMPO_LAG` later."""
        if not self.enabled or not self._lines:
            raise RuntimeError("No active tempo source")
        at = self._clock() + TEMPO_LAG
        line = self._line(at)
        self._lines = [*(x for x in self._lines if x.start <= at), _Line(at, line.beat(at), float(bpm))]

    # -- reading -------------------------------------------------------------------------

    def _line(self, now: float) -> _Line:
        current = self._lines[0]
        for line in self._lines:
            if line.start <= now:
                current = line
        return current

    def beat_state(self) -> dict[str, Any] | None:
        """`bpm, beat_phase, bar_position, beat_count, is_playing, source`, or None when off."""
        if not self.enabled or not self._lines or not self._polled:
            return None
        now = self._clock()
        line = self._line(now)
        beat = max(line.beat(now), 0.0)
        return {
            "bpm": line.bpm,
            "beat_phase": beat % 1.0,
            "bar_position": beat % self.beats_per_bar,
            "beat_count": int(beat),
            "is_playing": False,  # always false with Link (docs/scope.md §10.1)
            "source": self.source,
        }

    def status(self) -> dict[str, Any]:
        """The body of `GET /api/v1/tempo/status` (and of enable/disable/set_tempo)."""
        return {
            "enabled": self.enabled,
            "source": {"type": self.source, "num_peers": 0} if self.source else None,
            "beats_per_bar": self.beats_per_bar,
            "beat_state": self.beat_state(),
        }

    async def _broadcast(self) -> None:
        """`tempo_update` to the WebRTC sessions at about 15 Hz (docs/scope.md §3.4)."""
        while True:
            state = self.beat_state()
            if state is not None:
                message = {
                    "type": "tempo_update",
                    "bpm": round(state["bpm"], 2),
                    "beat_phase": round(state["beat_phase"], 4),
                    "bar_position": round(state["bar_position"], 4),
                    "beat_count": state["beat_count"],
                    "is_playing": state["is_playing"],
                }
                try:
                    self._notify(message)
                except Exception:
                    log.exception("tempo_update broadcast failed")
            await asyncio.sleep(NOTIFY_INTERVAL)


class QuantizedScheduler:
    """One session's ParameterScheduler (docs/scope.md §6): `_quantized` updates land on the beat.

    With tempo off or `quantize_mode` "none" an update applies at once. Otherwise it waits for
    the next boundary minus `lookahead_ms` (`change_scheduled {delay_ms}`, then
    `change_applied`); later quantized updates merge into the pending one; setting the mode or
    the lookahead cancels it.
    """

    def __init__(
        self,
        tempo: TempoSync | None,
        apply: Callable[[dict[str, Any]], None],
        notify: Callable[[dict[str, Any]], Any],
    ) -> None:
        self.tempo = tempo
        self._apply = apply
        self._notify = notify
        self.mode = "none"
        self.lookahead_ms = 0.0
        self._pending: dict[str, Any] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def set_mode(self, mode: Any) -> None:
        if mode not in QUANTIZE_MODES:
            log.warning("invalid quantize mode %r ignored", mode)
            return
        self.cancel()
        self.mode = mode

    def set_lookahead(self, ms: Any) -> None:
        self.cancel()
        with contextlib.suppress(TypeError, ValueError):
            self.lookahead_ms = max(0.0, float(ms))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._pending = None, None

    def schedule(self, params: dict[str, Any]) -> None:
        state = self.tempo.beat_state() if self.tempo is not None else None
        if self.mode == "none" or state is None:
            self._apply(params)
            return
        if self._timer is not None and self._pending is not None:
            self._pending.update(params)
            return
        delay = self._delay(state)
        if delay <= 0:
            self._apply(params)
            return
        self._pending = dict(params)
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)
        self._notify({"type": "change_scheduled", "delay_ms": int(delay * 1000)})

    def _fire(self) -> None:
        params, self._pending, self._timer = self._pending, None, None
        if params is not None:
            self._apply(params)
            self._notify({"type": "change_applied"})

    def _delay(self, state: dict[str, Any]) -> float:
        """Seconds to the next boundary of the mode, minus the lookahead (never negative)."""
        bpm = float(state["bpm"])
        if bpm <= 0:
            return 0.0
        per_bar = self.tempo.beats_per_bar if self.tempo is not None else 4
        cycle = {"beat": 1, "bar": per_bar, "2_bar": 2 * per_bar, "4_bar": 4 * per_bar}.get(self.mode)
        if cycle is None:
            return 0.0
        phase = min(max(float(state["beat_phase"]), 0.0), 1.0)
        position = (int(state["beat_count"]) % cycle) + phase
        beats = cycle - position
        if beats < 0.01:  # on a boundary: aim at the next one
            beats += cycle
        seconds_per_beat = 60.0 / bpm
        delay = beats * seconds_per_beat - self.lookahead_ms / 1000.0
        while delay < 0:
            delay += cycle * seconds_per_beat
        return delay
