"""What the control-surface tests share: a show that waits on GO cues (played for real against
the simulator) and a stand-in player for the tests that check the surface on its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from showrunner.app import run_show
from showrunner.control.gate import Status
from showrunner.errors import CueError
from showrunner.live.link import LinkState
from showrunner.live.player import Player
from showrunner.live.status import PlayerStatus
from showrunner.sim import Simulator

SHOW = """\
title: Cue test
end: hold
scenes:
  - name: preshow
    prompts: an empty harbour at night
    transition: cut
  - name: first
    cue: true
    prompts: a neon wave rising out of the harbour
    transition: cut
  - name: second
    cue: true
    prompts: a slow aurora over a frozen sea
    transition: cut
"""
TIMED = """\
title: Timed test
end: hold
scenes:
  - {name: one, prompts: a lighthouse at dusk, duration: 60, transition: cut}
  - {name: two, prompts: a lighthouse in a storm, duration: 60, transition: cut}
  - {name: three, prompts: a lighthouse at dawn, duration: 60, transition: cut}
"""
"""Three timed 60 s scenes: GO starts the next one now."""

DROP = """\
title: Drop test
end: hold
scenes:
  - {name: build, prompts: a crowd waiting in the dark, transition: cut}
  - {name: drop, cue: drop, prompts: a burst of light over the crowd, transition: cut}
"""
"""The second scene waits for the named cue "drop" (or GO)."""

FIRST = "a neon wave rising out of the harbour"
SECOND = "a slow aurora over a frozen sea"


def transitions_to(sim: Simulator, text: str) -> int:
    """How many data-channel messages asked the simulator to move to the prompt `text`."""
    count = 0
    for record in sim.records:
        message = record.get("message") if record.get("kind") == "data" else None
        if isinstance(message, dict) and isinstance(message.get("transition"), dict):
            targets = message["transition"].get("target_prompts") or []
            count += any(p.get("text") == text for p in targets)
    return count


async def until_status(status: Callable[[], Awaitable[Status]], **wanted: Any) -> Status:
    """Poll a status source until every wanted field has the wanted value (10 s at most)."""
    with anyio.fail_after(10):
        while True:
            current = await status()
            if all(current.to_json()[k] == v for k, v in wanted.items()):
                return current
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def playing(
    tmp_path: Path,
    sim: Simulator,
    on_player: Callable[[Player], None],
    *,
    journal_path: Path | None = None,
    text: str = SHOW,
) -> AsyncIterator[None]:
    """`run_show` plays `text` (SHOW) against `sim` meanwhile; leaving stops it, which must exit 0."""
    show = tmp_path / "show.yaml"
    show.write_text(text, "utf-8")
    stop = asyncio.Event()
    run = asyncio.create_task(
        run_show(show, scope_url=sim.url, stdin_tty=False, stop_event=stop,
                 on_player=on_player, journal_path=journal_path, state_file=tmp_path / "s.json")
    )
    try:
        yield
    finally:
        stop.set()
        with anyio.fail_after(10):
            assert await run == 0

SCENES = ["intro", "storm", "calm"]


class FakePlayer:
    """Scenes in order, telling listeners of each change; records every command it receives.

    `countdown` is what status reports while a next scene exists (None: no countdown);
    `connection` and `countdown` may be changed by a test at any time. Without `reloadable`
    RELOAD raises NotImplementedError, as a player that cannot reload does.
    """

    journal = None

    def __init__(
        self,
        scenes: Sequence[str] = SCENES,
        *,
        countdown: float | None = None,
        reloadable: bool = False,
        reload_errors: Sequence[str] = (),
    ) -> None:
        self.scenes = list(scenes)
        self.index = 0
        self.calls: list[Any] = []
        self.held = False
        self.countdown = countdown
        self.connection = LinkState.CONNECTED
        self.reload_errors = tuple(reload_errors)
        self.reloadable = reloadable
        self.listeners: list[Callable[..., object]] = []

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener({"type": "scene", "scene": self.scenes[self.index]})

    async def go(self) -> None:
        self.calls.append("go")
        if self.index + 1 >= len(self.scenes):
            raise CueError("the show is at its last scene")
        self.index += 1
        self._changed()

    async def cue(self, name: str) -> None:
        self.calls.append(("cue", name))

    def back(self) -> None:
        self.calls.append("back")
        if self.index == 0:
            raise CueError("nothing to go back to")
        self.index -= 1
        self._changed()

    def goto(self, name: str) -> None:
        self.calls.append(("goto", name))
        self.index = self.scenes.index(name)
        self._changed()

    def hold(self) -> None:
        self.calls.append("hold")
        self.held = True

    def resume(self) -> None:
        self.calls.append("resume")
        self.held = False

    def panic(self) -> None:
        self.calls.append("panic")

    def quit(self) -> None:
        self.calls.append("quit")

    def reload(self) -> None:
        if not self.reloadable:
            raise NotImplementedError("this player cannot reload")
        self.calls.append("reload")

    def status(self) -> PlayerStatus:
        nxt = self.scenes[self.index + 1] if self.index + 1 < len(self.scenes) else None
        return PlayerStatus(
            scene=self.scenes[self.index],
            next=nxt,
            countdown=self.countdown if nxt else None,
            connection=self.connection,
            held=self.held,
            scenes=tuple(self.scenes),
            reload_errors=self.reload_errors,
        )

    def subscribe(self, callback: Callable[..., object]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)
