"""Liveness and readiness of a run, as ``GET /api/health`` answers them (docs/operating.md).

The run is *live* while the control server answers at all. It is *ready* when the Scope session
is connected and the picture is fresh: a video frame came in the last `FRESH_S` seconds (or the
picture is frozen on purpose, in panic). A load balancer or a monitoring probe reads the HTTP
status (200 ready, 503 not); people read the JSON.

`Monitor` reads the player's typed status and the session's frames (`PictureSource`); it keeps
the one thing neither knows, how long the picture has been missing across reconnections.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from showrunner.control.gate import Status

__all__ = ["FRESH_S", "Health", "Monitor", "PictureSource"]

FRESH_S = 5.0  # a frame older than this: the picture is not fresh


class PictureSource(Protocol):
    """What the session tells about the video coming back (``ScopeSession`` has both)."""

    @property
    def frames_received(self) -> int:
        """Video frames received over every connection so far."""
        ...

    def frame_age(self) -> float | None:
        """Seconds since the newest frame; None while no frame is expected (no connection, a
        paused picture, before the first frame)."""
        ...


@dataclass(frozen=True)
class Health:
    """One answer of ``GET /api/health``."""

    ready: bool
    connection: str  # the player's link state ("connected", "reconnecting", ...; "waiting": no show)
    frame_age: float | None  # seconds since the newest frame, None while none is expected
    without_picture: float  # seconds since the newest frame, across reconnections
    frames_received: int | None
    scene: str | None
    mode: str | None
    reload_errors: tuple[str, ...]
    uptime: float  # seconds since the control server started
    problems: tuple[str, ...]  # why it is not ready (empty when ready)

    @property
    def http_status(self) -> int:
        return 200 if self.ready else 503

    def to_json(self) -> dict[str, Any]:
        return {
            "live": True,
            "ready": self.ready,
            "connected": self.connection == "connected",
            "connection": self.connection,
            "frame_age": _rounded(self.frame_age),
            "seconds_without_picture": round(self.without_picture, 3),
            "frames_received": self.frames_received,
            "scene": self.scene,
            "mode": self.mode,
            "reload_errors": list(self.reload_errors),
            "uptime": round(self.uptime, 3),
            "problems": list(self.problems),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Monitor:
    """Judges the health of a run from its status and its picture; `monotonic` is the clock."""

    def __init__(
        self, *, monotonic: Callable[[], float] = time.monotonic, fresh_s: float = FRESH_S
    ) -> None:
        self._monotonic = monotonic
        self.fresh_s = fresh_s
        self.started = monotonic()
        self._picture_seen: float | None = None  # monotonic time of the newest frame known

    def __repr__(self) -> str:
        return f"Monitor(fresh_s={self.fresh_s})"

    def uptime(self) -> float:
        return self._monotonic() - self.started

    def without_picture(self, picture: PictureSource | None) -> float:
        """Seconds since the newest frame seen, across reconnections (since the start when
        none came yet)."""
        now = self._monotonic()
        age = picture.frame_age() if picture is not None else None
        if age is not None:
            self._picture_seen = now - age
        seen = self._picture_seen if self._picture_seen is not None else self.started
        return max(0.0, now - seen)

    def health(self, status: Status, picture: PictureSource | None) -> Health:
        """Ready when connected with a fresh picture (or one frozen on purpose, in panic)."""
        age = picture.frame_age() if picture is not None else None
        without = self.without_picture(picture)
        mode = str(status.mode) if status.mode is not None else None
        connection = str(status.connection)
        problems: list[str] = []
        if connection != "connected":
            problems.append(f"Scope is {connection}")
        elif mode == "panic":
            pass  # the picture is frozen on purpose
        elif age is None:
            problems.append("no picture yet")
        elif age > self.fresh_s:
            problems.append(f"no new frame for {age:.1f} s")
        if mode == "stopped":
            problems.append("the run is over")
        return Health(
            ready=not problems,
            connection=connection,
            frame_age=age,
            without_picture=without,
            frames_received=picture.frames_received if picture is not None else None,
            scene=status.scene,
            mode=mode,
            reload_errors=tuple(status.reload_errors),
            uptime=self.uptime(),
            problems=tuple(problems),
        )
