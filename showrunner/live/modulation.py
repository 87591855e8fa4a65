"""Modulation on air: the mappings in force at the playing scene, fed by the live inputs.

Once per tick (the sink's chunk interval) the modulator reads each mapped input, maps it (curve,
range), smooths it (attack, release) and sends what changed since the last tick as one message
labelled ``modulate``. The session merges it with whatever else waits (at most one message per
chunk reaches Scope) and it gives way to scene entries like keyframes do. Where a mapping ends
(a scene switches it off), the tracked value of its target goes back on air. After a scene
entry, a reconnect or a reload every mapped value is sent again (the entry or the full state may
have overwritten it). Nothing is sent while Scope is not connected or the player paused the
picture itself (panic, closed hours).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from showrunner.live.clock import Clock
from showrunner.live.inputs import LiveInputs
from showrunner.live.link import LinkState
from showrunner.live.player import Player
from showrunner.music.modulation import Smoother, map_value
from showrunner.plan.modulate import in_force, tracked_values, update_message
from showrunner.plan.timeline import Timeline
from showrunner.show.model import Modulation

__all__ = ["LABEL", "Modulator"]

log = logging.getLogger(__name__)

LABEL = "modulate"
_DIGITS = 4  # values are rounded to this many decimals: smaller changes are not sent


class Modulator:
    """Drives the player's `modulate:` mappings from `inputs`, every `interval()` seconds."""

    def __init__(
        self,
        player: Player,
        inputs: LiveInputs,
        clock: Clock,
        *,
        interval: Callable[[], float],
    ) -> None:
        self.player = player
        self.inputs = inputs
        self.clock = clock
        self.interval = interval
        self.values: dict[str, float] = {}  # target -> the value last sent
        self.ticks = 0
        self._smoothers: dict[str, tuple[Modulation, Smoother]] = {}
        self._forces: tuple[Timeline, tuple[Mapping[str, Modulation], ...]] | None = None
        self._where: tuple[Any, ...] | None = None
        self._last: float | None = None

    def __repr__(self) -> str:
        return f"Modulator({len(self.values)} on air)"

    async def run(self) -> None:
        while True:
            await self.clock.sleep_until(self.clock.monotonic() + max(self.interval(), 0.005))
            try:
                await self.tick()
            except Exception:  # a bug here must not stop the show
                log.exception("modulation tick failed")

    def _mappings(self, timeline: Timeline, index: int) -> Mapping[str, Modulation]:
        if self._forces is None or self._forces[0] is not timeline:
            self._forces = (timeline, in_force(timeline.show))
        return self._forces[1][index]

    async def tick(self) -> None:
        """Send the mapped values that changed (and restore the ended ones)."""
        self.ticks += 1
        now = self.clock.monotonic()
        dt = 0.0 if self._last is None else now - self._last
        self._last = now
        player = self.player
        link = player.link
        if link.state is not LinkState.CONNECTED or link.paused_by_us:
            self._where = None  # resend everything once it is back
            return
        timeline = player.timeline
        target = player.stage.target()
        scene = timeline.scene(target.scene)
        mappings = self._mappings(timeline, scene.index)
        where = (timeline, player.position.current_start, link.generation)
        if where != self._where:
            self._where = where
            self.values = {t: v for t, v in self.values.items() if t not in mappings}
        values = {t: self._follow(t, m, dt) for t, m in mappings.items()}
        changed = {t: v for t, v in values.items() if self.values.get(t) != v}
        ended = [t for t in self.values if t not in mappings]
        restore = tracked_values(ended, target.state)
        for t in ended:
            del self.values[t]
            self._smoothers.pop(t, None)
        message = update_message({**restore, **changed}, target.state)
        if not message:
            return
        self.values.update(changed)
        await link.send(player.refs.resolve(message), planned=now, label=LABEL, scene=target.scene,
                        offset=target.offset)

    def _follow(self, target: str, mapping: Modulation, dt: float) -> float:
        held = self._smoothers.get(target)
        if held is None or held[0] != mapping:
            previous = held[1].value if held is not None else None
            held = (mapping, Smoother(mapping.attack, mapping.release, previous))
            self._smoothers[target] = held
        low, high = mapping.range
        mapped = map_value(self.inputs.value(mapping.input), low, high, mapping.curve)
        return round(held[1].step(mapped, dt), _DIGITS)
