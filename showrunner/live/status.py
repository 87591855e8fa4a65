"""What the player reports about itself: one typed snapshot with one JSON shape.

`PlayerStatus` is what ``Player.status()`` returns and what the control surfaces read (the
HTTP API and the event stream send its `to_json`; README: "Status").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from showrunner.live.link import LinkState
from showrunner.plan.timeline import Timeline

__all__ = ["Mode", "PlayerStatus", "show_info"]


class Mode(enum.StrEnum):
    """What the show is doing, as the operator sees it."""

    PENDING = "pending"  # the first scene waits for Scope (or for its first session)
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
    on_air: str | None = None  # the scene whose look is on air (the pre-rolled one before GO)
    armed: str | None = None  # an operator command kept for when the session is up ("go")
    remaining: float | None = None  # `countdown`, also while held (then frozen)
    show_clock: float | None = None  # seconds since the show started (None before)
    notice: str | None = None  # what the show waits for ("waiting for Scope at URL", "starting GPU")
    switching: str | None = None  # the pipelines a session is being opened with (no output)
    switch_estimate: float | None = None  # about how long that takes, seconds
    hours: str | None = None  # "open until 18:00", "closed, reopens Sat 11:00"
    scope_url: str | None = None
    cues: tuple[str, ...] = ()  # the named cues of the show (besides GO), in show order
    plan: int = 0  # counts plan changes (a hot reload): the page reloads the scene details
    working: str | None = None  # work that has taken over a second ("reloading the show")
    work_progress: float | None = None  # how far it is, 0..1 (None: not known)

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
            "on_air": self.on_air,
            "armed": self.armed,
            "remaining": self.remaining,
            "show_clock": self.show_clock,
            "notice": self.notice,
            "switching": self.switching,
            "switch_estimate": self.switch_estimate,
            "hours": self.hours,
            "scope_url": self.scope_url,
            "cues": list(self.cues),
            "plan": self.plan,
            "working": self.working,
            "work_progress": self.work_progress,
        }


def show_info(timeline: Timeline) -> dict[str, Any]:
    """What the operator page shows of each scene: how it starts, how long it lasts, its
    pipeline, its prompts with their weights and its notes (README: "GET /api/show")."""
    notes = {scene.name: scene.notes for scene in timeline.show.scenes}
    scenes = []
    for scene in timeline.scenes:
        state = scene.state_in
        scenes.append({
            "name": scene.name,
            "index": scene.index,
            "trigger": scene.trigger,
            "cue": scene.cue,
            "duration": scene.length,
            "pre_wait": scene.pre_wait,
            "pipeline": scene.main_pipeline,
            "prompts": [{"text": p.text, "weight": p.weight} for p in state.prompts],
            "notes": notes.get(scene.name),
            "closed_only": scene.closed_only,
            "switch_estimate": scene.switch_estimate,
        })
    return {"title": timeline.show.title, "scenes": scenes}
