"""What the player's main loop is asked to do, as small typed values handled with ``match``:
operator commands, the opening hours' changes and edited plans.

The player's methods (``go()``, ``goto(name)``, ...) make these; any thread may call them, the
main loop carries the commands out one at a time, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from showrunner.plan.timeline import Timeline

__all__ = [
    "Back",
    "Close",
    "Command",
    "Go",
    "Goto",
    "Hold",
    "NewPlan",
    "Open",
    "Operator",
    "Quit",
    "Result",
    "Resume",
    "describe",
]

# Why an operator command was queued or ignored (`Result.reason`).
NOTHING_TO_GO_TO = "nothing to go to"
ALREADY_GOING = "already going"
NOT_WAITING = "not waiting for this cue"
CLOSED = "closed"
CONNECTING = "connecting"
SWITCHING = "switching pipelines"
ALREADY_ARMED = "already armed"
NOTHING_HELD = "nothing is held"
ALREADY_HELD = "already held"
NOTHING_BEFORE = "nothing to go back to"
STOPPED = "stopped"
GONE = "scene gone"


@dataclass(frozen=True)
class Result:
    """What became of one operator command.

    ``applied``: it happened (`detail` names the scene it started, where one did); ``queued``:
    it is kept and happens once the player is free (`reason`: ``connecting`` while the first
    session opens, ``switching pipelines`` during a reload); ``ignored``: nothing happened
    (`reason` says why, `detail` adds what the show is doing instead).
    """

    outcome: Literal["applied", "queued", "ignored"]
    reason: str | None = None
    detail: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"

    def text(self) -> str:
        """``applied: verse``, ``queued (connecting)``, ``ignored (nothing to go to)``."""
        words = self.outcome + (f" ({self.reason})" if self.reason else "")
        return words + (f": {self.detail}" if self.detail else "")


def applied(detail: str | None = None) -> Result:
    return Result("applied", None, detail)


def ignored(reason: str, detail: str | None = None) -> Result:
    return Result("ignored", reason, detail)



@dataclass(frozen=True)
class Go:
    """GO (`cue` None) or a named cue: fire the cue the show waits for (GO fires any cue)."""

    cue: str | None = None


@dataclass(frozen=True)
class Back:
    """Return to the previous scene (that very occurrence), with its full state."""


@dataclass(frozen=True)
class Goto:
    """Jump to the scene named `scene` now, with its full state."""

    scene: str


@dataclass(frozen=True)
class Hold:
    """Stop timed progression; with `panic`, also freeze the picture (``paused``)."""

    panic: bool = False


@dataclass(frozen=True)
class Resume:
    """Continue after a hold or a panic, from where the show stopped."""


@dataclass(frozen=True)
class Quit:
    """End the run."""


Operator = Go | Back | Goto | Hold | Resume | Quit
"""A command from the operator (journaled as ``kind: "operator"``)."""


@dataclass(frozen=True)
class Close:
    """Opening hours: closing time (pause, or play the closed scene)."""


@dataclass(frozen=True)
class Open:
    """Opening hours: open again."""


@dataclass(frozen=True)
class NewPlan:
    """An edited plan (hot reload): applied "now" or at the next scene "boundary".

    `assets`/`loras` map its references to server paths (None: unchanged); `refreshed` names
    image assets uploaded again because their file changed.
    """

    timeline: Timeline
    apply: Literal["now", "boundary"] = "now"
    assets: Mapping[str, str] | None = None
    loras: Mapping[str, str] | None = None
    refreshed: tuple[str, ...] = ()


Command = Operator | Close | Open | NewPlan


def describe(command: Operator) -> tuple[str, str | None]:
    """The journal's (label, argument) of an operator command."""
    match command:
        case Go(cue=None):
            return "go", None
        case Go(cue=cue):
            return "cue", cue
        case Back():
            return "back", None
        case Goto(scene=scene):
            return "goto", scene
        case Hold(panic=panic):
            return ("panic" if panic else "hold"), None
        case Resume():
            return "resume", None
        case Quit():
            return "quit", None
