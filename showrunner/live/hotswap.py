"""Hot swap: an edited plan replaces the playing one while the show goes on.

A new plan arrives from any thread (``Player.replace_timeline``); its diff against the
previous plan is journaled (``kind: "reload"``) and it reaches the main loop as a `NewPlan`.
With ``apply="now"`` the playing scene's edit is on the air at once: new prompts through the
scene's transition, other values in one message, a pipeline or load change through a pipeline
switch. With ``"boundary"`` the playing scene finishes as it was and the new plan takes over at
the next scene change (and, while the closed-hours scene plays, at the reopening). Future
scenes are rescheduled; when the playing scene is gone, the show moves on to the one that
followed it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence

from showrunner.errors import ShowErrors
from showrunner.live.clock import Clock
from showrunner.live.commands import NewPlan
from showrunner.live.events import EventLog
from showrunner.live.link import LinkState, Refs
from showrunner.live.position import Carried, Gone
from showrunner.live.stage import Stage
from showrunner.plan.chart import origin_of
from showrunner.plan.diff import PlanDiff, carry_occurrence, scene_change, state_delta, transition_for
from showrunner.plan.timeline import CompiledScene, State, Timeline

__all__ = ["HotSwap"]


def _refs_refreshed(scene: CompiledScene, refreshed: Sequence[str]) -> bool:
    return bool(refreshed) and any(r in refreshed for r in scene.state_in.vace_refs)


class HotSwap:
    """Edited plans on their way in, and the errors of the last edit that failed."""

    def __init__(self, plan: Timeline, stage: Stage, refs: Refs, log: EventLog, clock: Clock) -> None:
        self.plan = plan  # the latest plan handed over (applied, or waiting for a boundary)
        self.pending: NewPlan | None = None  # waits for the next scene change
        self.errors: list[str] = []  # the problems of the last edit that failed
        self.stage = stage
        self.position = stage.position
        self.link = stage.link
        self.refs = refs
        self.log = log
        self.clock = clock

    def __repr__(self) -> str:
        return f"HotSwap(pending={self.pending is not None}, errors={len(self.errors)})"

    # -- reports (on the loop) ---------------------------------------------------------------

    def arrived(self, update: NewPlan, diff: PlanDiff) -> None:
        """Journal a new plan's diff; it clears the errors of an earlier bad edit."""
        self._clear_errors()
        cur = self.position.current
        summary = diff.summary().splitlines()
        self.log.record("reload", label=update.apply, scene=cur.scene.name if cur else None,
                        diff=diff.to_json(), refreshed=list(update.refreshed) or None,
                        text="reload: " + "; ".join(summary))

    def failed(self, errors: ShowErrors | Sequence[str]) -> None:
        """A bad edit: the show plays on unchanged; the lines go to the status and journal."""
        if isinstance(errors, ShowErrors):
            lines = [e.format() for e in errors.errors] or [str(errors)]
        else:
            lines = [str(e) for e in errors]
        self._clear_errors()
        self.errors = lines
        cur = self.position.current
        self.log.record("reload_error", label="invalid", scene=cur.scene.name if cur else None,
                        errors=lines,
                        text="reload failed, the show plays on: " + (lines[0] if lines else ""),
                        level="error")
        if lines:
            self.log.errors.append(lines[0])  # the status line shows the latest error
        self.log.status_changed()

    def _clear_errors(self) -> None:
        if self.errors:
            with contextlib.suppress(ValueError):
                self.log.errors.remove(self.errors[0])
            self.errors = []
            self.log.status_changed()

    # -- the main loop -----------------------------------------------------------------------

    def arrive(self, update: NewPlan) -> NewPlan | None:
        """The plan to swap in now, or None when `update` waits for the next scene change."""
        if self.pending is not None:  # a newer plan replaces the one waiting for its boundary
            refreshed = tuple(dict.fromkeys(self.pending.refreshed + update.refreshed))
            update = dataclasses.replace(update, refreshed=refreshed)
            self.pending = None
        position = self.position
        cur = position.current
        touched = cur is not None and (
            scene_change(position.timeline, update.timeline, cur.scene.name) is not None
            or carry_occurrence(cur, update.timeline) is None
            or _refs_refreshed(cur.scene, update.refreshed)
        )
        if position.behind is not None or (update.apply == "boundary" and touched):
            # Waits for the next scene change (or, while the closed-hours scene plays, for the
            # reopening: the show behind it is where the new plan applies).
            self.pending = update
            return None
        return update

    def take(self) -> NewPlan:
        """The plan waiting for its boundary (there must be one)."""
        pending, self.pending = self.pending, None
        assert pending is not None
        return pending

    async def swap(self, update: NewPlan, *, look: bool) -> bool:
        """Put `update`'s plan in place at the position; with `look`, change what is on the air
        as the playing scene's edit asks. True when the playing scene was gone from the new plan
        and the show moved on to the one that followed it."""
        if update.assets is not None:
            self.refs.assets = dict(update.assets)
        if update.loras is not None:
            self.refs.loras = dict(update.loras)
        self.stage.forget_prepared()
        now = self.clock.monotonic()
        match self.position.carry(update.timeline, now):
            case Gone(next=occ):
                await self.stage.enter(occ, now, origin_of(occ, now), jump=True, label="reload",
                                       remember=False)
                return True
            case Carried() as carried if look and (
                carried.changed
                or (not carried.first and _refs_refreshed(carried.scene, update.refreshed))
            ):
                scene, offset = carried.scene, carried.offset
                after = scene.state_in if carried.first else update.timeline.state_at_scene(
                    scene.index, offset
                )
                self.stage.save_state()
                await self._retouch(carried.before, after, scene, offset, update.refreshed, now)
                return False
        self.stage.save_state()
        return False

    async def at_boundary(self) -> bool:
        """The playing scene has ended: the waiting plan takes over with the scene after it.
        True when the new plan has no scene after it (the show ends)."""
        position = self.position
        start, fired = position.next_start, position.cue_fired
        if await self.swap(self.take(), look=False):
            return False
        nxt = position.next
        if nxt is None:
            return True
        if nxt.start is None and fired is None:
            position.next_start = position.next_origin = None  # the new plan waits for a cue here
            return False
        position.chart.pop()
        when = start if start is not None else self.clock.monotonic()
        await self.stage.enter(nxt, when, origin_of(nxt, when), jump=True, label="reload")
        return False

    async def _retouch(
        self,
        before: State | None,
        after: State,
        scene: CompiledScene,
        offset: float,
        refreshed: Sequence[str],
        now: float,
    ) -> None:
        """Bring what is on the air from `before` to `after` (the playing scene was edited)."""
        link = self.link
        if not link.opened or link.state is not LinkState.CONNECTED:
            return  # a reconnect opens with the new plan's state at the position anyway
        if before is None or after.session_key != link.live_key:
            await link.session(after, after.initial_parameters(), planned=now, label="reload",
                               scene=scene.name, offset=offset)
            return
        steps, method = transition_for(self.position.timeline, scene)
        refresh = any(r in refreshed for r in after.vace_refs)
        message = state_delta(before, after, steps=steps, method=method, refresh_refs=refresh)
        if message:
            await link.send(self.refs.resolve(message), planned=now, label="reload",
                            scene=scene.name, offset=offset)
