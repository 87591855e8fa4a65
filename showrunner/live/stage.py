"""The stage: puts the show's occurrences on the air.

Entering an occurrence sends its entry (a natural scene change) or puts Scope into its full
state (a jump, seek, catch-up or reopening); a timed action goes out as the message made for it
before its moment; the state file follows every scene start. The player's main loop calls these
at the planned moments: from the hand-over to the sink's write they are plain calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from showrunner.errors import ShowrunnerError
from showrunner.live.clock import Clock
from showrunner.live.events import EventLog
from showrunner.live.link import LinkState, Refs, ScopeLink, Target
from showrunner.live.position import EventKind, Position
from showrunner.live.resume import StateWriter
from showrunner.plan.start import StartPoint
from showrunner.plan.timeline import CompiledScene, ScheduledScene

__all__ = ["CATCH_UP", "Stage"]

log = logging.getLogger("showrunner.live.stage")

# An action this late (after a long pipeline switch, a stall, an outage) is not sent as such: the scene is
# re-entered at the current offset with its full state instead of a burst of stale updates.
CATCH_UP = 0.5


class _Ready(NamedTuple):
    """An action's message, made (refs resolved, checked, serialised) before its moment."""

    occurrence: ScheduledScene
    action: int  # its index in the occurrence's actions
    message: dict[str, Any]


class Stage:
    """Enters occurrences and sends their actions through the link, keeping the position.

    An action more than `catch_up` seconds late is not sent as such (see `CATCH_UP`).
    """

    def __init__(
        self,
        position: Position,
        link: ScopeLink,
        refs: Refs,
        log: EventLog,
        clock: Clock,
        *,
        catch_up: float = CATCH_UP,
        states: StateWriter | None = None,
        show_path: str = "",
        show_hash: str = "",
    ) -> None:
        self.position = position
        self.link = link
        self.refs = refs
        self.log = log
        self.clock = clock
        self.catch_up = catch_up
        self.states = states
        self.show_path = show_path  # what the state file names
        self.show_hash = show_hash
        self._ready: _Ready | None = None

    def __repr__(self) -> str:
        return f"Stage({self.position!r}, {self.link!r})"

    # -- timed actions -----------------------------------------------------------------------

    def prepare(self, kind: EventKind) -> None:
        """Make the message of the event ahead (an action, or a natural entry) before the wait."""
        position = self.position
        if kind == "action":
            occ, index = position.current, position.action_index
        elif kind == "scene" and position.next is not None:
            occ, index = position.next, 0  # used if the entry is a natural one
        else:
            return
        assert occ is not None
        ready = self._ready
        if ready is not None and ready.occurrence is occ and ready.action == index:
            return
        actions = occ.scene.actions
        if not actions or (kind == "scene" and not (actions[0].offset <= 0 and actions[0].kind == "send")):
            return
        message = self.refs.resolve(actions[index].message)
        # A message the sink refuses goes as resolved: the send reports it, at its moment.
        with contextlib.suppress(ShowrunnerError):
            message = self.link.sink.prepare(message)
        self._ready = _Ready(occ, index, message)

    def forget_prepared(self) -> None:
        """The plan changed: the messages made ahead are stale."""
        self._ready = None

    async def fire(self, planned: float) -> None:
        """The current occurrence's next action, planned for `planned` (monotonic)."""
        position = self.position
        cur = position.current
        assert cur is not None
        index = position.action_index
        action = cur.scene.actions[index]
        position.action_index += 1
        if self.clock.monotonic() - planned > self.catch_up:
            await self._catch_up()
            return
        if action.kind == "session":
            state = cur.scene.state_in if action.offset <= 0 else position.timeline.state_at_scene(
                cur.scene.index, action.offset
            )
            await self.link.session(state, action.message, planned=planned, label=action.label,
                                    scene=cur.scene.name, offset=action.offset)
            return
        ready = self._ready
        stretched = self._stretched(cur.scene, action.message)
        if stretched is not None:
            message = self.refs.resolve(stretched)
        elif ready is not None and ready.occurrence is cur and ready.action == index:
            message = ready.message
        else:
            message = self.refs.resolve(action.message)
        await self.link.send(message, planned=planned, label=action.label, scene=cur.scene.name,
                             offset=action.offset)

    async def _catch_up(self) -> None:
        """Re-enter the current scene at the current offset with its full state."""
        position = self.position
        cur = position.current
        assert cur is not None
        offset = self.clock.monotonic() - position.current_start
        skipped = sum(1 for a in cur.scene.actions if a.offset <= offset) - (position.action_index - 1)
        log.warning("%s: %d update(s) overdue; sending the state at +%.2f s instead",
                    cur.scene.name, max(skipped, 1), offset)
        await self.apply_state(cur, offset, label="catch up")

    # -- occurrences -------------------------------------------------------------------------

    async def begin(self, point: StartPoint) -> None:
        """Open the session and enter the first occurrence of a run starting at `point` (or,
        when the first scene waits for GO, open the session with its look and wait)."""
        position, clock = self.position, self.clock
        now = clock.monotonic()
        occ, start, origin, label = position.begin(point, now, clock.time())
        if occ.start is None and label == "start":  # pre-roll: the first scene waits for GO
            position.next = occ
            self.log.record("start", label="waiting for GO", scene=occ.scene.name,
                            text=f"ready: {occ.scene.name} waits for {occ.scene.cue or 'go'}")
            await self.open(occ, None, planned=now, label="preroll")
            await self._until_connected(occ)
            return
        # Open the session first, in the state the show starts in. A fresh start or a seek
        # starts its clock once the picture is there; a resumed position is wall-clock
        # bound, so it is looked up again after the open.
        offset = max(0.0, now - start)
        self.log.record("start", label=label, scene=occ.scene.name, offset=round(offset, 6),
                        text=f"{label} at {occ.scene.name}" + (f" +{offset:.1f}s" if offset else ""))
        position.next = occ  # what a reconnection opens with while the first open is retried
        await self.open(occ, offset, planned=now, label="open")
        await self._until_connected(occ)
        position.next = None
        later = clock.monotonic()
        if label == "resume":
            occ, start, origin, label = position.begin(point, later, clock.time())
        else:
            start, origin = start + later - now, origin + later - now
            if position.show_origin_unix is not None:
                position.show_origin_unix += later - now
        await self.enter(occ, start, origin, jump=True, offset=max(0.0, later - start), label=label)

    async def _until_connected(self, occ: ScheduledScene) -> None:
        """The show's clock waits for Scope: a first open that failed is retried by the
        watchdog (with backoff) and the first scene stays pending until a session is up."""
        if self._link_up():
            return
        self.log.record("start", label="waiting for Scope", scene=occ.scene.name,
                        text=f"{occ.scene.name} waits for Scope", level="warning")
        while not self._link_up():
            await self.clock.doze(self.clock.monotonic() + 0.1)

    def _link_up(self) -> bool:
        return self.link.state is LinkState.CONNECTED

    async def open(
        self, occ: ScheduledScene, offset: float | None, *, planned: float, label: str
    ) -> None:
        """Open the session in `occ`'s state at `offset` (None: pre-rolled, at its start); at
        the start, a session entry's own message opens it."""
        scene = occ.scene
        at = offset or 0.0
        state = scene.state_in if at <= 0 else self.position.timeline.state_at_scene(scene.index, at)
        entry = scene.actions[0] if scene.actions else None
        if at <= 0 and entry is not None and entry.kind == "session" and (
            offset is None or entry.offset <= 0
        ):
            initial: Mapping[str, Any] = entry.message
        else:
            initial = state.initial_parameters()
        await self.link.session(state, initial, planned=planned, label=label, scene=scene.name,
                                offset=offset)
        self.link.prerolled = state

    async def enter(
        self,
        occ: ScheduledScene,
        start: float,
        origin: float,
        *,
        jump: bool,
        offset: float = 0.0,
        label: str = "enter",
        remember: bool = True,
        aimed: bool = False,
    ) -> None:
        """`occ` starts at `start` (its part at `origin`), entered `offset` seconds in.

        A natural scene change (not a `jump`, the previous occurrence played out, the session
        fits) sends the entry message; anything else puts Scope into the full state. An entry
        `aimed` at the beat (a quantized trigger; a start that follows the tempo) goes out the
        timebase's lead before `start`, and its journal line says how it landed.
        """
        position = self.position
        aimed = aimed or (position.next is occ and position.aimed() and not jump)
        ahead = position.timebase.lead() if aimed else 0.0
        sent = self.clock.monotonic()
        actions = occ.scene.actions
        entry_session = bool(actions) and actions[0].offset <= 0 and actions[0].kind == "session"
        natural = (
            not jump
            and not occ.jumped
            and position.played_out()
            and self.link.state is LinkState.CONNECTED
            and (entry_session or self.link.live_key == occ.scene.state_in.session_key)
        )
        position.enter(occ, start, origin, remember=remember,
                       restart_part=jump and label in ("goto", "back"))
        # The entry goes out first; bookkeeping (journal, state file, look-ahead) after it.
        if natural:
            if actions and actions[0].offset <= 0:
                await self.fire(start - ahead)
        else:
            await self.apply_state(occ, offset, label=label, at_start=offset <= 0, ahead=ahead)
        if position.current is not occ:
            return  # a command moved on meanwhile (a long pipeline switch)
        position.look_ahead()
        self.log.record(
            "scene", planned=start, label=label, scene=occ.scene.name, offset=round(offset, 6),
            iteration=occ.iteration, part=occ.part, path=[list(p) for p in occ.path], how=occ.how,
            text=f"scene {occ.scene.name}" + (f" (+{offset:.1f}s)" if offset > 0.05 else ""),
            **(position.timebase.judge(start, sent) if aimed else {}),
        )
        self.save_state()

    async def apply_state(
        self, occ: ScheduledScene, offset: float, *, label: str, at_start: bool = False,
        ahead: float = 0.0,
    ) -> None:
        """Put Scope into `occ`'s full state at `offset` (a jump, seek, catch-up or reopening),
        planned `ahead` of that moment (an entry aimed at the beat)."""
        scene = occ.scene
        timeline = self.position.timeline
        state = scene.state_in if at_start else timeline.state_at_scene(scene.index, offset)
        actions = scene.actions
        done = sum(1 for a in actions if a.offset <= (0 if at_start else offset))
        entry = actions[0] if at_start and actions and actions[0].offset <= 0 else None
        if entry is not None and entry.kind == "send" and "lora_scales" in entry.message:
            # The entry's own transition and one-shots go with the full state; its LoRA scales
            # (only those it changes) must not replace the full list the state sends.
            message = {k: v for k, v in entry.message.items() if k != "lora_scales"}
            entry = dataclasses.replace(entry, message=message)
        self.position.action_index = max(self.position.action_index, done)
        if entry is not None and (stretched := self._stretched(scene, entry.message)) is not None:
            entry = dataclasses.replace(entry, message=stretched)
        await self.link.put(state, entry, planned=self.position.current_start + offset - ahead,
                            label=label, scene=scene.name, offset=offset)

    def _stretched(self, scene: CompiledScene, message: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """`message` with its transition's chunk steps scaled to the live tempo, for a scene whose
        transitions are written in bars or beats (None: the message as it was made)."""
        transition = message.get("transition") if scene.transitions_follow_tempo else None
        if not isinstance(transition, Mapping) or not transition.get("num_steps"):
            return None
        ratio = self.position.timebase.stretch()
        steps = max(1, round(transition["num_steps"] * ratio))
        if ratio == 1.0 or steps == transition["num_steps"]:
            return None
        return {**message, "transition": {**transition, "num_steps": steps}}

    def target(self) -> Target:
        """Where the show is (for the link's reconnection)."""
        scene, offset = self.position.where(self.clock.monotonic())
        state = self.position.timeline.state_at_scene(scene.index, offset)
        return Target(state, scene.name, offset)

    def save_state(self) -> None:
        """Queue the position for the state file (when the run keeps one)."""
        if self.states is None:
            return
        saved = self.position.saved(self.show_path, self.show_hash, self.clock.monotonic(),
                                    self.clock.time())
        if saved is not None:
            self.states.write(saved)
