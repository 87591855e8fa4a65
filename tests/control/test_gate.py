"""Operator commands: debounce, idempotence, journaling, sync and async players."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from showrunner.control.gate import (
    Commands,
    JournalEntry,
    NoShow,
    Outcome,
    json_safe,
)
from showrunner.errors import CueError, ScopeConnectError, UnknownSceneError
from showrunner.live.journal import Journal, read_journal
from showrunner.live.link import LinkState
from showrunner.live.status import Mode, PlayerStatus
from showrunner.testing import MemoryJournal

SCENES = ["intro", "storm", "calm"]


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SyncPlayer:
    """A player with plain methods: scenes in order, GO moves to the next one; no reload."""

    journal = None

    def __init__(self) -> None:
        self.index = 0
        self.calls: list[Any] = []
        self.fail_next: BaseException | None = None

    def _call(self, *call: Any) -> None:
        self.calls.append(call[0] if len(call) == 1 else call)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def go(self) -> None:
        self._call("go")
        if self.index + 1 >= len(SCENES):
            raise CueError("the show is at its last scene")
        self.index += 1

    def back(self) -> None:
        self._call("back")
        self.index = max(0, self.index - 1)

    def goto(self, name: str) -> None:
        self._call("goto", name)
        self.index = SCENES.index(name)

    def hold(self) -> None:
        self._call("hold")

    def resume(self) -> None:
        self._call("resume")

    def panic(self) -> None:
        self._call("panic")

    def quit(self) -> None:
        self._call("quit")

    def reload(self) -> None:
        raise NotImplementedError("this player has no reload")

    def status(self) -> PlayerStatus:
        return PlayerStatus(scene=SCENES[self.index], scenes=tuple(SCENES),
                            connection=LinkState.CONNECTED)

    def subscribe(self, callback: Callable[..., object]) -> Callable[[], None]:
        return lambda: None


class AsyncPlayer(SyncPlayer):
    """The same player with coroutine methods that take a moment, and a reload."""

    async def go(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0.01)
        super().go()

    async def status(self) -> PlayerStatus:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().status()

    async def reload(self) -> None:  # type: ignore[override]
        self._call("reload")


def make(
    player: SyncPlayer | None = None, interval: float = 0.5
) -> tuple[Commands, SyncPlayer, ManualClock, MemoryJournal]:
    player = player or SyncPlayer()
    clock = ManualClock()
    journal = MemoryJournal()
    commands = Commands(
        player, min_go_interval=interval, journal=journal, clock=clock, wallclock=lambda: 1000.0
    )
    return commands, player, clock, journal


@pytest.mark.anyio
async def test_a_second_go_inside_the_interval_does_nothing() -> None:
    commands, player, clock, _ = make()
    assert await commands.go() == Outcome("go", True)
    clock.now += 0.3
    assert await commands.go() == Outcome("go", False, "debounced")
    assert player.calls == ["go"]
    clock.now += 0.25  # 0.55 s after the first GO
    assert (await commands.go()).applied
    assert player.calls == ["go", "go"]


@pytest.mark.anyio
async def test_debounce_counts_from_the_last_applied_go_not_the_last_press() -> None:
    commands, _player, clock, _ = make()
    await commands.go()
    clock.now += 0.4
    await commands.go()  # debounced: must not restart the window
    clock.now += 0.2
    assert (await commands.go()).applied


@pytest.mark.anyio
async def test_other_commands_are_not_debounced() -> None:
    commands, player, _, _ = make()
    await commands.go()
    assert (await commands.back()).applied
    assert (await commands.panic()).applied
    assert (await commands.panic()).applied
    assert player.calls == ["go", "back", "panic", "panic"]


@pytest.mark.anyio
async def test_concurrent_gos_advance_once() -> None:
    commands, player, _, _ = make(AsyncPlayer())
    outcomes = await asyncio.gather(*(commands.go(source="osc") for _ in range(5)))
    assert [o.applied for o in outcomes].count(True) == 1
    assert player.calls == ["go"]
    assert player.index == 1


def test_gos_from_threads_advance_once() -> None:
    commands, player, _, _ = make()
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(4)

    def press() -> None:
        barrier.wait()
        outcomes.append(asyncio.run(commands.go(source="keyboard")))

    threads = [threading.Thread(target=press) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.applied for o in outcomes) == [False, False, False, True]
    assert player.calls == ["go"]


@pytest.mark.anyio
async def test_a_go_with_an_applied_id_does_nothing() -> None:
    commands, player, clock, journal = make()
    assert (await commands.go(command_id="press-1")).applied
    clock.now += 5
    assert await commands.go(command_id="press-1") == Outcome("go", False, "duplicate")
    assert (await commands.go(command_id="press-2")).applied
    assert player.calls == ["go", "go"]
    assert [r["reason"] for r in journal.records] == [None, "duplicate", None]


@pytest.mark.anyio
async def test_a_failed_command_can_be_retried_with_the_same_id() -> None:
    commands, player, _, _ = make()
    player.fail_next = ScopeConnectError("Scope server at http://127.0.0.1:1 is unreachable")
    first = await commands.go(command_id="x")
    assert first == Outcome(
        "go", False, "failed", "Scope server at http://127.0.0.1:1 is unreachable"
    )
    # Neither the id nor the debounce window were used up by a GO that did not happen.
    assert (await commands.go(command_id="x")).applied
    assert player.index == 1


@pytest.mark.anyio
async def test_ids_are_forgotten_oldest_first() -> None:
    player = SyncPlayer()
    commands = Commands(player, min_go_interval=0, remember_ids=2)
    for cid in ("a", "b", "c"):
        await commands.hold(command_id=cid)
    assert (await commands.hold(command_id="a")).applied
    assert (await commands.hold(command_id="c")).reason == "duplicate"


@pytest.mark.anyio
async def test_every_action_is_journaled_with_its_source() -> None:
    commands, _, clock, journal = make()
    await commands.go(source="http")
    await commands.go(source="osc")
    clock.now += 1
    await commands.goto("calm", source="page")
    await commands.hold(source="keyboard")
    assert [(e.source, e.command, e.arg, e.applied, e.reason) for e in commands.recent] == [
        ("http", "go", None, True, None),
        ("osc", "go", None, False, "debounced"),
        ("page", "goto", "calm", True, None),
        ("keyboard", "hold", None, True, None),
    ]
    assert journal.records == [e.to_record() for e in commands.recent]


def test_journal_entry_text() -> None:
    entry = JournalEntry(1.0, "osc", "go", None, "id-1", False, "debounced")
    assert entry.text() == "GO from osc: ignored (debounced)"
    entry = JournalEntry(1.0, "page", "goto", "storm", None, True)
    assert entry.text() == "GOTO storm from page: applied"
    entry = JournalEntry(1.0, "http", "back", None, None, False, "refused", "nothing to go back to")
    assert entry.text() == "BACK from http: ignored (refused): nothing to go back to"


@pytest.mark.anyio
async def test_actions_go_into_the_run_journal(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path) as journal:
        commands = Commands(SyncPlayer(), journal=journal, wallclock=lambda: 1234.5)
        await commands.go(source="keyboard", command_id="k1")
        await commands.goto("nowhere", source="http")
    assert read_journal(path) == [
        {
            "kind": "operator",
            "sent_at": 1234.5,
            "source": "keyboard",
            "command": "go",
            "arg": None,
            "id": "k1",
            "applied": True,
            "reason": None,
            "error": None,
            "result": "applied",
            "detail": None,
            "label": "GO from keyboard: applied",
        },
        {
            "kind": "operator",
            "sent_at": 1234.5,
            "source": "http",
            "command": "goto",
            "arg": "nowhere",
            "id": None,
            "applied": False,
            "reason": "unknown scene",
            "error": "unknown scene 'nowhere'",
            "result": "ignored",
            "detail": None,
            "label": "GOTO nowhere from http: ignored (unknown scene): unknown scene 'nowhere'",
        },
    ]


@pytest.mark.anyio
async def test_unknown_scene_is_not_sent_to_the_player() -> None:
    commands, player, _, _ = make()
    outcome = await commands.goto("nowhere")
    assert outcome == Outcome("goto", False, "unknown scene", "unknown scene 'nowhere'")
    assert player.calls == []


@pytest.mark.anyio
async def test_a_refused_cue_is_reported_not_raised() -> None:
    commands, _player, _clock, _ = make()
    await commands.goto("calm")
    outcome = await commands.go()
    assert outcome == Outcome("go", False, "refused", "the show is at its last scene")


@pytest.mark.anyio
async def test_a_bug_in_the_player_is_journaled_and_raised() -> None:
    commands, player, _, journal = make()
    player.fail_next = ZeroDivisionError("oops")
    with pytest.raises(ZeroDivisionError):
        await commands.hold()
    assert journal.records[-1]["reason"] == "failed"
    assert journal.records[-1]["error"] == "ZeroDivisionError('oops')"


@pytest.mark.anyio
async def test_async_player_methods_are_awaited() -> None:
    commands, player, _, _ = make(AsyncPlayer())
    assert (await commands.go()).applied
    assert (await commands.reload()).applied
    assert player.calls == ["go", "reload"]
    assert (await commands.status()).scene == "storm"


@pytest.mark.anyio
async def test_reload_without_support_is_reported() -> None:
    commands, _, _, _ = make(SyncPlayer())
    assert await commands.reload() == Outcome(
        "reload", False, "not supported", "this player has no reload"
    )


@pytest.mark.anyio
async def test_not_implemented_counts_as_not_supported() -> None:
    commands, player, _, _ = make()
    player.fail_next = NotImplementedError("hot reload comes later")
    assert await commands.back() == Outcome("back", False, "not supported", "hot reload comes later")


@pytest.mark.anyio
async def test_without_a_player_commands_are_not_ready_until_attached() -> None:
    commands = Commands(None)
    assert await commands.go() == Outcome("go", False, "not ready", "no show running")
    assert (await commands.status()).connection == "waiting"
    player = SyncPlayer()
    commands.attach(player)
    assert (await commands.go()).applied


@pytest.mark.anyio
async def test_listeners_see_entries_until_stopped() -> None:
    commands, _, _, _ = make()
    seen: list[str] = []
    stop = commands.listen(lambda e: seen.append(e.command))
    await commands.hold()
    stop()
    await commands.resume()
    assert seen == ["hold"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("command", "arg", "source", "message"),
    [
        ("dance", None, "http", "unknown command 'dance'"),
        ("goto", None, "http", "goto needs argument"),
        ("go", "x", "http", "go takes no argument"),
        ("go", None, "radio", "unknown source 'radio'"),
    ],
    ids=["unknown-command", "goto-without-scene", "go-with-arg", "unknown-source"],
)
async def test_bad_calls_raise(command: str, arg: str | None, source: str, message: str) -> None:
    commands, _, _, _ = make()
    with pytest.raises(ValueError, match=message):
        await commands.run(command, arg, source=source)


def test_negative_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_go_interval"):
        Commands(None, min_go_interval=-1)


def test_status_without_a_player_has_the_players_shape() -> None:
    """The control surfaces read one shape: the player's status, or the same keys empty."""
    waiting = NoShow().to_json()
    playing = PlayerStatus(title="t", scene="storm", mode=Mode.HOLD, connection=LinkState.CONNECTED,
                           scenes=("intro", "storm"), errors=("boom",)).to_json()
    assert list(waiting) == list(playing)
    assert waiting["connection"] == "waiting" and waiting["scenes"] == [] and waiting["scene"] is None
    assert (playing["mode"], playing["connection"], playing["scenes"], playing["errors"]) == (
        "hold", "connected", ["intro", "storm"], ["boom"]
    )
    json.dumps(playing, allow_nan=False)
    json.dumps(waiting, allow_nan=False)


@pytest.mark.anyio
async def test_an_unknown_scene_from_the_player_is_reported_as_such() -> None:
    """The player's own check (a scene that cannot be played) answers "unknown scene"."""
    commands, player, _, _ = make()
    player.fail_next = UnknownSceneError("scene 'calm' plays only while the show is closed")
    outcome = await commands.goto("calm")
    assert outcome == Outcome(
        "goto", False, "unknown scene", "scene 'calm' plays only while the show is closed"
    )


def test_json_safe() -> None:
    assert json_safe({"a": float("nan"), 1: (1, "x"), "b": Path("p")}) == {
        "a": None,
        "1": [1, "x"],
        "b": "p",
    }


def test_repr() -> None:
    commands = Commands(SyncPlayer(), min_go_interval=0.25, journal=MemoryJournal())
    assert repr(commands) == (
        "Commands(player=SyncPlayer, min_go_interval=0.25, journal=MemoryJournal(records=0))"
    )
