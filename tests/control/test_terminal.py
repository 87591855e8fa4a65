"""The operator terminal: the status line, single keys in cbreak mode, plain lines otherwise."""

from __future__ import annotations

import asyncio
import io
import os
import termios
from collections.abc import Callable
from typing import Any

import pytest

from showrunner.control.gate import Commands
from showrunner.control.terminal import KEYS, Terminal, render_status
from showrunner.errors import CueError
from showrunner.live.link import LinkState
from showrunner.live.status import Mode, PlayerStatus
from showrunner.testing import MemoryJournal, until


class Controls:
    """Stands in for the player behind the keyboard: records the commands it receives."""

    journal = None

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.mode = Mode.PLAYING
        self.listeners: list[Callable[[dict[str, Any]], object]] = []

    def go(self) -> None:
        self.calls.append("go")

    def back(self) -> None:
        self.calls.append("back")
        raise CueError("there is no previous scene to go back to")

    def goto(self, name: str) -> None:
        self.calls.append(f"goto {name}")

    def hold(self) -> None:
        self.calls.append("hold")

    def panic(self) -> None:
        self.calls.append("panic")
        self.mode = Mode.PANIC

    def resume(self) -> None:
        self.calls.append("resume")
        self.mode = Mode.PLAYING

    def reload(self) -> None:
        self.calls.append("reload")

    def quit(self) -> None:
        self.calls.append("quit")

    def status(self) -> PlayerStatus:
        return PlayerStatus(scene="intro", next="storm", countdown=3.25, mode=self.mode,
                            connection=LinkState.CONNECTED)

    def subscribe(self, callback: Callable[[dict[str, Any]], object]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)


CONNECTED = LinkState.CONNECTED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PlayerStatus(scene="intro", next="storm", countdown=3.25, mode=Mode.PLAYING,
                      connection=CONNECTED), "> intro | next storm in 3.2s | Scope connected"),
        (PlayerStatus(scene="intro", next="storm", waiting_for="go", mode=Mode.WAITING,
                      connection=CONNECTED), "|| intro | waiting for GO: storm | Scope connected"),
        (PlayerStatus(scene="a", next="b", waiting_for="drop", mode=Mode.WAITING,
                      connection=LinkState.RECONNECTING),
         "|| a | waiting for cue drop: b | Scope reconnecting"),
        (PlayerStatus(scene="a", mode=Mode.PANIC, connection=CONNECTED, errors=("x", "boom")),
         "!! a | PANIC (frozen) | Scope connected | ! boom"),
        (PlayerStatus(scene="last", mode=Mode.ENDED, connection=CONNECTED),
         "# last | end (holding) | Scope connected"),
    ],
    ids=["countdown", "go", "named-cue", "panic-error", "ended"],
)
def test_render_status(status: PlayerStatus, expected: str) -> None:
    assert render_status(status) == expected


def test_render_status_fits_the_width() -> None:
    line = render_status(PlayerStatus(scene="x" * 200, connection=CONNECTED), 40)
    assert len(line) == 40 and line.endswith("…")


@pytest.mark.anyio
async def test_keys_go_through_the_command_gate() -> None:
    controls = Controls()
    journal = MemoryJournal()
    commands = Commands(controls, min_go_interval=0.0, journal=journal)  # type: ignore[arg-type]
    terminal = Terminal(controls, commands=commands, tty=False, stdout=io.StringIO())
    pressed = [await terminal.press(k) for k in (" ", "\r", "B", "p", "p", "q", "x")]
    assert pressed == ["go", "go", "back", "panic", "resume", "quit", None]
    assert controls.calls == ["go", "go", "back", "panic", "resume", "quit"]
    assert [(r["source"], r["command"], r["applied"]) for r in journal.records] == [
        ("keyboard", "go", True), ("keyboard", "go", True), ("keyboard", "back", False),
        ("keyboard", "panic", True), ("keyboard", "resume", True), ("keyboard", "quit", True),
    ]
    assert KEYS["b"] == "back"


@pytest.mark.anyio
async def test_a_second_go_within_the_debounce_interval_does_nothing() -> None:
    controls = Controls()
    commands = Commands(controls, min_go_interval=60.0)  # type: ignore[arg-type]
    terminal = Terminal(controls, commands=commands, tty=False, stdout=io.StringIO())
    await terminal.press(" ")
    await terminal.press(" ")
    assert controls.calls == ["go"]
    assert terminal.message is not None and "ignored" in terminal.message
    assert [e.reason for e in commands.recent] == [None, "debounced"]


@pytest.mark.anyio
async def test_a_refused_command_shows_why() -> None:
    terminal = Terminal(Controls(), tty=False, stdout=io.StringIO())
    await terminal.press("b")
    assert terminal.message == "there is no previous scene to go back to"
    await terminal.press(" ")
    assert terminal.message is None


@pytest.mark.anyio
async def test_without_a_tty_it_prints_one_line_per_change() -> None:
    controls = Controls()
    out = io.StringIO()
    async with Terminal(controls, tty=False, stdout=out) as terminal:
        assert repr(terminal) == "Terminal(tty=False)"
        for listener in controls.listeners:
            listener({"kind": "scene", "text": "scene storm", "at": 0.0})
            listener({"kind": "send", "text": "not shown"})
            listener({"kind": "status"})
    assert controls.listeners == []
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" scene storm")


@pytest.mark.anyio
async def test_on_a_tty_keys_act_at_once_and_the_terminal_is_restored() -> None:
    master, slave = os.openpty()
    stdin = os.fdopen(slave, "r")
    try:
        before = termios.tcgetattr(slave)
        controls = Controls()
        out = io.StringIO()
        async with Terminal(controls, tty=True, stdin=stdin, stdout=out, refresh=0.05):
            mode = termios.tcgetattr(slave)
            assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO
            assert mode[3] & termios.ISIG  # Ctrl-C still interrupts
            os.write(master, b" p")
            await until(lambda: len(controls.calls) == 2, 1)
            await asyncio.sleep(0.1)
        assert controls.calls == ["go", "panic"]
        assert termios.tcgetattr(slave) == before
        assert "\r\x1b[2K> intro | next storm in 3.2s" in out.getvalue()
        assert out.getvalue().endswith("\n")
    finally:
        stdin.close()
        os.close(master)
