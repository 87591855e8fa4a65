"""Musical time for the live player: the tempo map, quantized triggers and how they landed.

`Beat` is the player's `Timebase` (see position.py): a time written in bars or beats is counted
on the tempo map (`TempoMap.warp`), so it stretches and shrinks with a live tempo; seconds stay
seconds; a transition written in bars or beats gets its chunk steps scaled (`stretch`). Without a
live tempo source the map holds the show's `bpm` from the first scene's start (one reading), and
every time comes out as planned.

A quantized scene's timed start waits for the next boundary of its grid (`snap`). A quantized
trigger (GO, a named cue, GOTO, with `quantize` on the show or the scene) lands on the next
boundary that is at least `lead` away. Whatever is aimed at the beat goes out `lead` seconds early:
`lead` is the session's chunk interval (a parameter shows in the output of the next chunk), so
the audience sees the change on the beat. The journal's ``scene`` line then says how the entry
went out against the beat: ``on_beat`` ("early", "on time", "late") and ``beat_ms``.
A GOTO waits for its boundary in the main loop (`Deferred`), while the current scene plays on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from showrunner.live.commands import Command, Result
from showrunner.live.position import Position
from showrunner.music.reading import TempoReading
from showrunner.music.tempo import TempoMap

__all__ = ["ON_TIME_MS", "REPLACED", "Beat", "ChunkTimed", "Deferred"]

ON_TIME_MS = 5.0  # an entry this close to its beat (ms, once the lead is counted) is on time
REPLACED = "replaced"  # `Result.reason` of a quantized GOTO a later one replaced while it waited


@runtime_checkable
class ChunkTimed(Protocol):
    """A sink that knows its chunk interval (``ScopeSession``): how long a change takes to show."""

    @property
    def chunk_interval(self) -> float: ...


@dataclass(frozen=True)
class Deferred:
    """A quantized command waiting in the main loop for its boundary (`due` is when it goes out)."""

    command: Command
    future: asyncio.Future[Result] | None
    beat: float
    due: float
    grid: float  # the quantize grid `beat` is a line of (beats)


class Beat:
    """The tempo map, the show's nominal `bpm` and the lead, for the player (see the module)."""

    def __init__(self, position: Position, tempo: TempoMap | None = None, sink: object = None) -> None:
        self.position = position
        position.timebase = self
        self.tempo = tempo if tempo is not None else TempoMap(position.timeline.show.beats_per_bar)
        self.live = tempo is not None  # a tempo source feeds the map
        self._sink = sink if isinstance(sink, ChunkTimed) else None
        self.deferred: Deferred | None = None

    def __repr__(self) -> str:
        return f"Beat({self.tempo!r}, bpm={self.bpm!r}, live={self.live!r})"

    @property
    def bpm(self) -> float | None:
        """The show's `bpm`: the nominal tempo its musical times were written at."""
        return self.position.timeline.show.bpm

    def anchor(self, at: float) -> None:
        """The show starts at `at`: without a live source, the show's bpm runs from there (a
        live source's map waits for its first reading: until then times are as planned)."""
        bpm = self.bpm
        if self.tempo.empty and bpm and not self.live:
            self.tempo.beats_per_bar = self.position.timeline.show.beats_per_bar
            self.tempo.feed(TempoReading(bpm, 0.0, at, source="fixed"))

    def replan(self, now: float) -> None:
        """A new plan from `now` on (the first one: the show's clock starts there): without a
        live source, its `bpm` and bar length take over there (the beat stays continuous)."""
        show = self.position.timeline.show
        self.tempo.beats_per_bar = show.beats_per_bar
        self.anchor(now)
        if not self.live and not self.tempo.empty and show.bpm and show.bpm != self.tempo.bpm():
            self.tempo.feed(TempoReading(show.bpm, self.tempo.beat_at(now), now, source="fixed"))

    def take(self, reading: TempoReading, moved: Callable[[], None]) -> None:
        """A live reading: when it changes the map, the next start is placed again and `moved()`
        (the main loop waits for the new moment). When the source's count jumped (a transport
        restart), a quantized trigger waiting for its line lands again: on the first line of the
        new count at least the lead ahead, as if it were pressed now."""
        jumps = self.tempo.jump_count
        if not self.tempo.feed(reading):
            return
        if self.tempo.jump_count != jumps:
            self._land_again(reading.at)
        self.position.retime()
        moved()

    def _land_again(self, now: float) -> None:
        held, position = self.deferred, self.position
        if held is not None:
            beat = self.tempo.next_boundary(now + self.lead(), held.grid)
            self.deferred = replace(held, beat=beat, due=self.tempo.time_of_beat(beat) - self.lead())
        grid = position.next.scene.quantize if position.next is not None else None
        if position.landing is not None and grid is not None:
            position.landing = self.tempo.next_boundary(now + self.lead(), grid)

    # -- Timebase ------------------------------------------------------------------------------

    def later(self, t: float, seconds: float, musical: bool) -> float:
        if not musical or not self.bpm or self.tempo.empty:
            return t + seconds
        return self.tempo.warp(t, seconds, self.bpm)

    def lead(self) -> float:
        return self._sink.chunk_interval if self._sink is not None else 0.0

    def time_of_beat(self, beat: float) -> float:
        return self.tempo.time_of_beat(beat)

    def snap(self, t: float, grid: float) -> float | None:
        # A start up to ON_TIME_MS past a line belongs to it: a start counted in bars is on a
        # line, give or take what the readings since its scene began moved the map.
        if self.tempo.empty:
            return None
        return self.tempo.time_of_beat(self.tempo.next_boundary(t, grid, slack=ON_TIME_MS / 1000))

    def stretch(self) -> float:
        bpm = self.bpm
        if not bpm or self.tempo.empty:
            return 1.0
        return bpm / self.tempo.bpm()

    # -- quantize ------------------------------------------------------------------------------

    def landing(self, now: float, grid: float | None) -> tuple[float, float] | None:
        """(beat, moment) a change quantized to `grid` beats lands on when triggered at `now`:
        the first boundary at least `lead` ahead; None when nothing quantizes. Before the show's
        clock runs (a pre-rolled first scene), the trigger starts it: bar 1 is where it lands."""
        if grid is None:
            return None
        self.anchor(now + self.lead())
        if self.tempo.empty:
            return None
        beat = self.tempo.next_boundary(now + self.lead(), grid)
        return beat, self.tempo.time_of_beat(beat)

    def judge(self, target: float, sent: float) -> dict[str, Any]:
        """Journal fields for an entry aimed at the beat at `target` that went out at `sent`:
        ``beat`` (its position), ``beat_ms`` (sent + lead - target: > 0 is late), ``on_beat``."""
        if self.tempo.empty:
            return {}
        error = (sent + self.lead() - target) * 1000.0
        verdict = "on time" if abs(error) <= ON_TIME_MS else ("late" if error > 0 else "early")
        return {"beat": round(self.tempo.beat_at(target), 4), "beat_ms": round(error, 3),
                "on_beat": verdict, "lead_ms": round(self.lead() * 1000.0, 3)}

    def defer(
        self, command: Command, future: asyncio.Future[Result] | None, now: float, grid: float | None
    ) -> bool:
        """Keep `command` for its boundary (True), or let it go at once (False: not quantized)."""
        landing = self.landing(now, grid)
        if landing is None:
            return False
        beat, moment = landing
        assert grid is not None
        self.deferred = Deferred(command, future, beat, moment - self.lead(), grid)
        return True

    def due(self, before: float | None) -> Deferred | None:
        """The deferred command, if it goes out before `before` (the next planned event)."""
        held = self.deferred
        if held is None:
            return None
        due = self.tempo.time_of_beat(held.beat) - self.lead()
        if due != held.due:
            held = self.deferred = replace(held, due=due)
        return held if before is None or held.due <= before else None
