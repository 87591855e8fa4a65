"""What the player reports about itself: one typed snapshot with one JSON shape.

`PlayerStatus` is what ``Player.status()`` returns and what the control surfaces read (the
HTTP API and the event stream send its `to_json`; README: "Status").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from showrunner.live.link import LinkState

__all__ = ["Mode", "PlayerStatus"]


class Mode(enum.StrEnum):
    """What the show is doing, as the operator sees it."""

    PLAYING = "playing"
    WAITING = "waiting"  # for a cue (GO or a named one), the current scene played out
    HOLD = "hold"  # the operator stopped timed progression; the picture moves on
    PANIC = "panic"  # the picture is frozen and nothing scheduled goes out
    CLOSED = "closed"  # outside the opening hours
    ENDED = "ended"  # the show ended and holds its last look
    STOPPED = "stopped"  # the run is over


@dataclass(frozen=True)
class PlayerStatus:
    """A snapshot of the player: where the show is, what comes next, how Scope is."""

    title: str = ""
    scene: str | None = None  # the scene playing (None before the first one starts)
    scene_index: int | None = None  # its index in the show file
    iteration: int | None = None  # its show-loop iteration, 0-based
    next: str | None = None  # the scene after it (None: nothing follows)
    waiting_for: str | None = None  # the cue `next` waits for ("go" for a plain GO)
    countdown: float | None = None  # seconds until `next` starts (None: no timed change ahead)
    position: float | None = None  # seconds into `scene` (frozen while held)
    mode: Mode = Mode.PLAYING
    held: bool = False  # timed progression is stopped (hold, panic, paused closed hours)
    closed: bool = False  # outside the opening hours
    connection: LinkState = LinkState.STARTING
    scenes: tuple[str, ...] = ()  # every scene name, in show order
    errors: tuple[str, ...] = ()  # the most recent errors, oldest first
    reload_errors: tuple[str, ...] = ()  # the problems of the last show-file edit that failed

    def to_json(self) -> dict[str, Any]:
        """The status as JSON (README: "Status"); the same keys whatever the state."""
        return {
            "title": self.title,
            "scene": self.scene,
            "scene_index": self.scene_index,
            "iteration": self.iteration,
            "next": self.next,
            "waiting_for": self.waiting_for,
            "countdown": self.countdown,
            "position": self.position,
            "mode": self.mode.value,
            "held": self.held,
            "closed": self.closed,
            "connection": self.connection.value,
            "scenes": list(self.scenes),
            "errors": list(self.errors),
            "reload_errors": list(self.reload_errors),
        }
