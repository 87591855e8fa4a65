"""The operator's HOLD and PANIC: timed progression stops where it is; a panic also freezes
the picture (``paused``) until RESUME."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from showrunner.live.clock import Clock
from showrunner.live.events import EventLog
from showrunner.live.link import ScopeLink
from showrunner.live.position import Position

__all__ = ["HoldKind", "Holds"]

HoldKind = Literal["hold", "panic"]


class Holds:
    """The hold or panic in force (`kind`), and putting it on and off.

    `closed_pause` tells whether closed hours keep the position frozen anyway.
    """

    def __init__(
        self,
        position: Position,
        link: ScopeLink,
        log: EventLog,
        clock: Clock,
        *,
        closed_pause: Callable[[], bool],
    ) -> None:
        self.kind: HoldKind | None = None
        self.position = position
        self.link = link
        self.log = log
        self.clock = clock
        self._closed_pause = closed_pause

    def __repr__(self) -> str:
        return f"Holds({self.kind!r})"

    async def hold(self, kind: HoldKind) -> None:
        """Stop progression (and, for a panic, freeze the picture); panic -> hold unfreezes it."""
        if self.kind == kind:
            return
        first = self.kind is None
        self.kind = kind
        self.position.freeze(self.clock.monotonic())
        cur, nxt = self.position.current, self.position.next
        scene = cur.scene.name if cur else (nxt.scene.name if nxt else "")
        self.log.record("hold", label=kind, scene=scene,
                        text="PANIC: picture frozen" if kind == "panic" else "hold: progression stopped")
        if kind == "panic":
            await self.link.send({"paused": True}, planned=self.clock.monotonic(), label="panic",
                                 scene=scene)
        elif not first:  # panic -> hold: let the picture move again
            await self.link.send({"paused": False}, planned=self.clock.monotonic(), label="hold",
                                 scene=scene)

    async def resume(self) -> None:
        """RESUME: continue from where the show stopped (the held time does not count)."""
        if self.kind is None:
            self.log.record("operator", label="resume ignored", text="resume: nothing is held")
            return
        await self.release(shift=True)

    async def release(self, *, shift: bool) -> None:
        """End the hold or panic, if any; with `shift` the schedule moves by the time held
        (a jump starts afresh instead). Closed hours that pause keep the position frozen."""
        kind, self.kind = self.kind, None
        if kind is None:
            return
        cur = self.position.current
        scene = cur.scene.name if cur else ""
        if kind == "panic":
            paused = False
            if cur is not None:
                offset = self.position.offset(self.clock.monotonic())
                state = self.position.timeline.state_at_scene(cur.scene.index, offset)
                paused = bool(state.params.get("paused", False))
            await self.link.send({"paused": paused}, planned=self.clock.monotonic(), label="resume",
                                 scene=scene)
        if not self._closed_pause():
            self.position.unfreeze(self.clock.monotonic(), shift=shift)
        self.log.record("resume", label=kind, scene=scene, text="resumed")
