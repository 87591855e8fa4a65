"""What plays is what the plan says: play a show and, after every scene entry, compare what
Scope holds with the compiled `state_at` for that moment.

Shared by tests/live/test_dry_equals_live.py. Scope's side is a simulator session
(`showrunner.sim.session.SimSession`): the real simulator over WebRTC or its headless session
for the example shows, or the same class in-process behind `SimSink` (no WebRTC) for the
generated ones. What it holds
is its *effective parameters*: the session's initial parameters, then every data-channel
message merged (`SimSession.received`), with LoRA scales as its pipeline applied them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from showrunner.live.player import Player, Sink
from showrunner.plan.state import ASSET_PREFIX, LORA_PREFIX, PARAM_KEYS, State, lora_now
from showrunner.plan.timeline import Timeline
from showrunner.plan.tracking import runtime_defaults
from showrunner.sim.loads import lora_adapters
from showrunner.sim.params import Parameters, dump_parameters
from showrunner.sim.session import SimSession, Stream
from showrunner.testing import FakeClock, MemoryJournal, until

ALL_KEYS = frozenset(PARAM_KEYS)


class SimSink:
    """A `Sink` whose sessions are the simulator's own `SimSession`, in-process: every message
    goes through the simulator's merge (`receive`) and is applied chunk by chunk (`step`)."""

    def __init__(self) -> None:
        self.session: SimSession | None = None
        self.sessions = 0
        self.up = False

    @property
    def connected(self) -> bool:
        return self.up

    def _new(self, chain: Sequence[str], load_params: Mapping[str, Any],
             initial: Mapping[str, Any]) -> float:
        self.sessions += 1
        params = dump_parameters(Parameters.model_validate(dict(initial)))
        stream = Stream(
            pipeline_ids=tuple(chain), pipeline_id=chain[0], height=64, width=64, fps=24.0,
            frames_per_chunk=1, vace=True,
            lora_adapters=tuple(lora_adapters(dict(load_params))),
        )
        self.session = SimSession(f"s{self.sessions}", params, stream=stream)
        self.session.step()
        self.up = True
        return 0.0

    async def open(self, chain: Sequence[str], load_params: Mapping[str, Any],
                   initial_parameters: Mapping[str, Any]) -> float:
        return self._new(chain, load_params, initial_parameters)

    async def switch(self, chain: Sequence[str], load_params: Mapping[str, Any],
                     initial_parameters: Mapping[str, Any]) -> float:
        return self._new(chain, load_params, initial_parameters)

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return dict(message)

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        assert self.session is not None
        self.session.receive(dict(message))
        while self.session.queued:
            self.session.step()
        return 0.0, dict(message)

    async def close(self) -> None:
        self.up = False

    async def liveness(self) -> str | None:
        return None


# -- the comparison ----------------------------------------------------------------------------


def _prompts(items: Any) -> list[tuple[str, float]]:
    return [(p["text"], float(p.get("weight", 1.0))) for p in items or ()]


def differences(
    state: State, session: SimSession, loras: Mapping[str, str], assets: Mapping[str, str]
) -> list[str]:
    """Where Scope's effective parameters differ from `state` ("key: plan X, scope Y")."""
    out: list[str] = []
    got = session.received
    defaults = runtime_defaults(ALL_KEYS, state.chain, state.input_mode)
    for key in PARAM_KEYS:
        want = state.params.get(key, defaults.get(key))
        have = got.get(key, defaults.get(key))
        if want != have:
            out.append(f"{key}: plan {want!r}, scope {have!r}")
    if state.prompts:
        have_prompts = _prompts(
            got["transition"]["target_prompts"] if "transition" in got else got.get("prompts")
        )
        want_prompts = [(p.text, p.weight) for p in state.prompts]
        if want_prompts != have_prompts:
            out.append(f"prompts: plan {want_prompts!r}, scope {have_prompts!r}")
    names = {path: name for name, path in loras.items()}
    stream = session.stream
    for adapter in stream.lora_adapters if stream is not None else ():
        if adapter["merge_mode"] != "runtime_peft":
            continue
        name = names.get(adapter["path"], adapter["path"].removeprefix(LORA_PREFIX))
        want_scale = lora_now(state, name)
        have_scale = session.lora_scales.get(adapter["path"])
        if want_scale is not None and want_scale != have_scale:
            out.append(f"lora {name}: plan {want_scale!r}, scope {have_scale!r}")
    if state.vace_refs:
        want_refs = [assets.get(r, ASSET_PREFIX + r) for r in state.vace_refs]
        if got.get("vace_ref_images") != want_refs:
            out.append(f"vace_ref_images: plan {want_refs!r}, scope {got.get('vace_ref_images')!r}")
    return out


# -- playing -----------------------------------------------------------------------------------


@dataclass
class Script:
    """Operator commands to give after given scene entries (counted from 1)."""

    # ("goto", name), ("back",) or ("reconnect",), by entry number
    commands: dict[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Checked:
    entries: list[tuple[str, str, float]] = field(default_factory=list)  # (scene, label, offset)
    problems: list[str] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)  # every record of the run

    def messages(self) -> list[tuple[str, Any, Any, Any, Any]]:
        """(kind, label, scene, offset, message) of each journal record that carries a message:
        what was sent, in order (two transports that play the same show agree on these)."""
        return [(r["kind"], r["label"], r["scene"], r.get("offset"), r["message"])
                for r in self.journal if r.get("message") is not None]


async def play_and_compare(
    timeline: Timeline,
    sink: Sink,
    session: Callable[[], SimSession | None],
    clock: FakeClock,
    *,
    loras: Mapping[str, str] | None = None,
    assets: Mapping[str, str] | None = None,
    script: Script | None = None,
    limit: int = 40,
    wait: float = 0.0,
    **player_args: Any,
) -> Checked:
    """Play `timeline` on `clock` (firing every cue when it is reached) and compare after each
    entry; `wait` > 0 polls that long for messages still on their way (a real simulator)."""
    journal = MemoryJournal()
    loras, assets = dict(loras or {}), dict(assets or {})
    player = Player(timeline, sink, clock=clock, journal=journal, assets=assets, loras=loras,
                    watchdog_period=1e6, health_period=1e6, **player_args)
    result = Checked()
    script = script or Script()
    done = 0
    async with _running(player):
        # Steps: an entry, or a keyframe the clock stops at on the way (enough for either).
        for _ in range(limit * 40):
            await _quiet(player, clock, wait)
            scenes = [r for r in journal.records if r["kind"] == "scene"]
            for record in scenes[done:]:
                done += 1
                await _check(player, record, session, loras, assets, wait, result)
                command = script.commands.get(done)
                if command == ("reconnect",):
                    await player.link.reconnect("test")  # what the watchdog does on a problem
                    target = player.stage.target()
                    await _check(player, {"scene": target.scene, "label": "reconnect",
                                          "offset": target.offset}, session, loras, assets, wait,
                                 result)
                elif command is not None:
                    await _command(player, command)
                    break
            else:
                if done >= limit or not await _move_on(player, clock):
                    break
    result.journal = list(journal.records)
    return result


async def _check(player: Player, record: dict[str, Any], session: Callable[[], SimSession | None],
                 loras: Mapping[str, str], assets: Mapping[str, str], wait: float,
                 result: Checked) -> None:
    name, label, offset = record["scene"], record["label"], float(record["offset"] or 0.0)
    result.entries.append((name, label, offset))
    state = player.timeline.state_at_scene(name, offset)

    def diff() -> list[str]:
        current = session()
        return ["no session"] if current is None else differences(state, current, loras, assets)

    found = diff()
    if found and wait > 0:
        with contextlib.suppress(TimeoutError):
            await until(lambda: not diff(), wait)
        found = diff()
    result.problems += [f"{name} ({label} +{offset:g}s): {line}" for line in found]


async def _command(player: Player, command: tuple[str, ...]) -> None:
    match command:
        case ("goto", name):
            player.goto(name)
        case ("back",):
            if player.position.history:
                player.back()


async def _move_on(player: Player, clock: FakeClock) -> bool:
    """Fire the waiting cue or move the clock to the next planned event; False at the end."""
    if player.status().waiting_for is not None and player.position.actions_done():
        player.go()
        return True
    position = player.position
    event = position.next_event()
    hours = player.opening.hours
    if event is None and player.opening.closed and hours is not None:
        change = hours.next_change(clock.now())  # closed: on to the next opening
        if change is None:
            return False
        await clock.advance_to(change.timestamp() + 0.001)
        return True
    if event is None:
        return False
    # Straight to the next scene change (the actions in between fire on the way), else to
    # the next event of the scene that plays.
    when = position.next_start if position.next_start is not None else event[0]
    await clock.advance(max(0.0, when - clock.monotonic()))
    return True


async def _quiet(player: Player, clock: FakeClock, wait: float) -> None:
    """Let the player finish what it does at this moment (real I/O included)."""
    await clock.settle()
    if wait > 0:
        await until(lambda: not player.link._lock.locked() and not player.link._inflight
                    and not player.inbox, max(wait, 5.0))
    await clock.settle()


@contextlib.asynccontextmanager
async def _running(player: Player) -> AsyncIterator[None]:
    task = asyncio.create_task(player.run())
    try:
        yield
    finally:
        player.quit()
        await asyncio.wait_for(task, 10)
