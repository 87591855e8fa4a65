"""MIDI clock in: a `TempoSource` (music/reading.py) following a device's clock and transport.

A MIDI clock sends 24 ``clock`` messages per quarter note while it runs, ``start`` (from the top),
``stop``, ``continue`` (from where it stopped) and ``song position`` (in sixteenth notes, six
clocks each). `ClockFollower` turns them into `TempoReading`s without any I/O: the tempo is the
mean clock interval over the last beat (24 clocks); the beat counts clocks since the start or the
song position, and advances only while the transport plays (many devices send clocks while
stopped, which still give the tempo). By the MIDI specification the first clock after
``start`` is the downbeat (beat 0), and the first after ``continue`` or a song position is the
next clock of the position reached.

A reading is reported on every beat (each 24th clock), on every transport message and when
the tempo moves by more than `BPM_STEP`; it is dated at the clock that made it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from showrunner.midi.ports import POLL, MidiInput, MidiKind, MidiMessage
from showrunner.music.reading import TempoListener, TempoReading

__all__ = ["BPM_STEP", "PPQN", "ClockFollower", "MidiClock"]

PPQN = 24  # MIDI clocks per quarter note
BPM_STEP = 0.5  # a tempo change this large is reported at once, not at the next beat
_GAP = 1.0  # seconds without a clock after which the tempo is measured afresh


class ClockFollower:
    """MIDI clock and transport messages in, `TempoReading`s (source "midi") out."""

    def __init__(self) -> None:
        self.ticks = -1  # the clock count at the last clock (-1: the next clock is beat 0)
        self.playing = False
        self.bpm: float | None = None
        self._times: deque[float] = deque(maxlen=PPQN + 1)
        self._reported_bpm: float | None = None
        self._last_at: float | None = None

    def feed(self, message: MidiMessage) -> TempoReading | None:
        """The reading `message` makes, if it makes one."""
        kind = message.kind
        if kind is MidiKind.CLOCK:
            return self._clock(message.at)
        if kind is MidiKind.START:
            self.ticks, self.playing = -1, True
        elif kind is MidiKind.CONTINUE:
            self.playing = True
        elif kind is MidiKind.STOP:
            self.playing = False
        elif kind is MidiKind.SONG_POSITION:
            self.ticks = message.value * (PPQN // 4) - 1
        else:
            return None
        return self._reading(message.at)

    def _clock(self, at: float) -> TempoReading | None:
        if self._times and at - self._times[-1] > _GAP:
            self._times.clear()  # the clock stopped for a while: measure the tempo afresh
        self._times.append(at)
        self._last_at = at
        if len(self._times) >= 2:
            span = self._times[-1] - self._times[0]
            if span > 0:
                self.bpm = 60.0 * (len(self._times) - 1) / (span * PPQN)
        if self.playing:
            self.ticks += 1
        moved = (
            self.bpm is not None
            and self._reported_bpm is not None
            and abs(self.bpm - self._reported_bpm) > BPM_STEP
        )
        on_beat = self.playing and self.ticks % PPQN == 0
        if on_beat or moved or (self._reported_bpm is None and self.bpm is not None):
            return self._reading(at)
        return None

    @property
    def beat(self) -> float:
        """Quarter notes since the start at the last clock (the song position before any)."""
        return max(self.ticks, 0) / PPQN

    def _reading(self, at: float) -> TempoReading | None:
        if self.bpm is None:
            return None  # no tempo before two clocks
        self._reported_bpm = self.bpm
        return TempoReading(bpm=self.bpm, beat=self.beat, at=at, playing=self.playing, source="midi")


class MidiClock:
    """The `TempoSource` reading MIDI clock from the device named (in part) `device`."""

    name = "midi"

    def __init__(
        self,
        device: str,
        *,
        api: str | None = None,
        poll: float = POLL,
        on_state: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.api = api
        self.poll = poll
        self.on_state = on_state
        self.clock = clock
        self.follower = ClockFollower()
        self.port: MidiInput | None = None  # the device's input while `run` runs

    def __repr__(self) -> str:
        return f"MidiClock({self.device!r})"

    async def run(self, listener: TempoListener) -> None:
        def heard(message: MidiMessage) -> None:
            reading = self.follower.feed(message)
            if reading is not None:
                listener(reading)

        self.port = MidiInput(self.device, heard, api=self.api, poll=self.poll,
                              on_state=self.on_state, clock=self.clock)
        await self.port.run()
