"""Commands on their way to the player's main loop, and the journal lines of the operator's.

Each command waits in order with the future its answer goes to (None: answered already, or
posted by the player itself: the hours, a new plan). An operator command the loop cannot take
now is answered at once: ignored while the run ends, "queued" (armed) while the first session
opens or a pipeline switches, and a second GO while one is armed is refused, so a burst of
presses cannot skip a scene. Every operator command gets one ``operator`` journal line; one
answered "queued" gets a second when it is finally carried out.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator

from showrunner.live.commands import (
    ALREADY_ARMED,
    STOPPED,
    Back,
    Command,
    Go,
    Goto,
    Operator,
    Quit,
    Result,
    applied,
    describe,
    ignored,
)
from showrunner.live.events import EventLog
from showrunner.live.position import Position

__all__ = ["Inbox"]

Entry = tuple[Command, "asyncio.Future[Result] | None"]


class Inbox:
    """The main loop's queue of commands (see the module)."""

    def __init__(
        self,
        position: Position,
        log: EventLog,
        *,
        busy: Callable[[], str | None],
        quitting: Callable[[], bool],
        finish: Callable[[int], None],
        poke: Callable[[], None],
    ) -> None:
        self.position = position
        self.log = log
        self._busy = busy  # why the main loop cannot carry a command out now (None: it can)
        self._quitting = quitting
        self._finish = finish
        self._poke = poke
        self._queue: collections.deque[Entry] = collections.deque()

    def __repr__(self) -> str:
        return f"Inbox({len(self._queue)} waiting)"

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._queue)

    def pop(self) -> Entry:
        """The oldest command (there is one: check the inbox first)."""
        return self._queue.popleft()

    def post(self, command: Command) -> None:
        """A command of the player's own (no answer), carried out in turn."""
        self._queue.append((command, None))
        self._poke()

    def take(self, command: Operator, future: asyncio.Future[Result] | None) -> Result:
        """Queue an operator's `command`; answer it now when the loop cannot (busy, quitting)."""
        busy = self._busy()
        if self._quitting():
            result = ignored(STOPPED)
        elif isinstance(command, Quit):
            self._finish(0)
            result = applied()
        elif busy is not None and isinstance(command, Go) and (armed := self.armed()) is not None:
            result = ignored(ALREADY_ARMED, armed)
        elif busy is not None:
            self.post(command)
            result = Result("queued", busy)
            self.log.status_changed()
        else:
            self._queue.append((command, future))
            self._poke()
            return Result("queued", None)  # the main loop answers through `future`
        self.journal(command, result)
        if future is not None:
            future.set_result(result)
        return result

    def journal(self, command: Operator, result: Result, *, later: bool = False) -> None:
        """The journal's ``operator`` line for `command` and what became of it. A command
        answered "queued" gets a line of text when it is finally carried out (`later`)."""
        label, arg = describe(command)
        cur = self.position.current
        text = None
        if later:
            what = label.upper() + (f" {arg}" if arg else "")
            text = f"queued {what}: {result.text()}"
        self.log.record("operator", label=label if result.applied else f"{label} {result.outcome}",
                        arg=arg, scene=cur.scene.name if cur else None, result=result.outcome,
                        reason=result.reason, detail=result.detail, text=text,
                        level="info" if result.applied else "warning")

    def armed(self) -> str | None:
        """The operator command kept for when the session is up ("go", "goto verse"), if any."""
        for command, future in self._queue:
            if future is None and isinstance(command, Go | Back | Goto):
                label, arg = describe(command)
                return label + (f" {arg}" if arg else "")
        return None
