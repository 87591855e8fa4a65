"""What the operator surfaces need from a run's tempo (`showrunner.sync.runner.TempoRunner`).

The HTTP API, the page, OSC and the keys read the tempo block of the status and send taps
and set tempos through this protocol; a bad value is a ValueError, a source that takes no
tempo (or refused it) a `showrunner.errors.TempoSourceError`; their text is the one-line answer.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["TempoControl"]


class TempoControl(Protocol):
    def tempo_status(self) -> dict[str, Any]:
        """source, bpm, beat, bar, beat_in_bar, beats_per_bar, playing, peers, error."""
        ...

    async def tap(self) -> float | None:
        """A tap now; the bpm it set (None: the first tap of a count)."""
        ...

    async def set_bpm(self, value: object) -> float:
        """Set or propose the tempo; the bpm taken."""
        ...
