"""The operator terminal: the status line, single keys in cbreak mode, plain lines otherwise."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import termios
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cue_show import TIMED, playing, transitions_to, until_status

from showrunner.control.gate import Commands
from showrunner.control.terminal import KEYS, Terminal, render_status
from showrunner.errors import CueError
from showrunner.live.link import LinkState
from showrunner.live.status import Mode, PlayerStatus
from showrunner.sim import serve_sim
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

    def cue(self, name: str) -> None:
        self.calls.append(f"cue {name}")

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
                            connection=LinkState.CONNECTED, scenes=("intro", "storm", "calm"))

    def subscribe(self, callback: Callable[[dict[str, Any]], object]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)


CONNECTED = LinkState.CONNECTED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PlayerStatus(scene="intro", next="storm", countdown=3.25, mode=Mode.PLAYING,
                      connection=CONNECTED), "> intro | next storm in 0:04 | Scope connected"),
        (PlayerStatus(scene="intro", next="storm", waiting_for="go", mode=Mode.WAITING,
                      connection=CONNECTED), "|| intro | waiting for GO: storm | Scope connected"),
        (PlayerStatus(scene="a", next="b", waiting_for="drop", mode=Mode.WAITING,
                      connection=LinkState.RECONNECTING),
         "|| a | waiting for cue drop: b | Scope reconnecting"),
        (PlayerStatus(scene="a", mode=Mode.PANIC, connection=CONNECTED, errors=("x", "boom")),
         "!! a | PANIC (frozen) | Scope connected | ! 2 errors (above)"),
        (PlayerStatus(scene="last", mode=Mode.ENDED, connection=CONNECTED),
         "# last | end (holding) | Scope connected"),
        (PlayerStatus(scene="night", mode=Mode.CLOSED, notice="starting GPU",
                      connection=LinkState.RECONNECTING),
         "z night | closed | starting GPU | Scope reconnecting"),
    ],
    ids=["countdown", "go", "named-cue", "panic-error", "ended", "starting-gpu"],
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
    pressed = [await terminal.press(k) for k in (" ", "\r", "B", "p", "p", "s", "r", "q", "x")]
    assert pressed == ["go", "go", "back", "panic", "resume", "hold", "resume", "quit", None]
    assert controls.calls == ["go", "go", "back", "panic", "resume", "hold", "resume", "quit"]
    assert [(r["source"], r["command"], r["applied"]) for r in journal.records] == [
        ("keyboard", "go", True), ("keyboard", "go", True), ("keyboard", "back", False),
        ("keyboard", "panic", True), ("keyboard", "resume", True), ("keyboard", "hold", True),
        ("keyboard", "resume", True), ("keyboard", "quit", True),
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
    assert terminal.message == "GO ✓"


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
        assert "\r\x1b[2K> intro | next storm in 0:04" in out.getvalue()
        assert out.getvalue().endswith("\n")
    finally:
        stdin.close()
        os.close(master)


@pytest.mark.anyio
async def test_goto_and_cue_are_typed_then_fired_with_enter() -> None:
    controls = Controls()
    commands = Commands(controls, min_go_interval=0.0)  # type: ignore[arg-type]
    out = io.StringIO()
    terminal = Terminal(controls, commands=commands, tty=False, stdout=out)
    for key in "gcalx\x7fm\r":  # "calx", one erased: "calm"
        await terminal.press(key)
    for key in "g3\r":  # by its number in the show
        await terminal.press(key)
    for key in "cdrop\r":
        await terminal.press(key)
    for key in "gstorm\x1b":  # Esc: nothing
        await terminal.press(key)
    assert terminal.typing is None
    assert controls.calls == ["goto calm", "goto calm", "cue drop"]
    assert await terminal.press("h") == "help"
    assert "space/enter GO" in out.getvalue() and "s HOLD" in out.getvalue()


def test_the_countdown_reads_minutes_and_seconds() -> None:
    status = PlayerStatus(scene="a", next="b", countdown=125.2, connection=CONNECTED)
    assert "next b in 2:06" in render_status(status)
    held = PlayerStatus(scene="a", next="b", countdown=None, remaining=61.0, mode=Mode.HOLD,
                        held=True, connection=CONNECTED)
    assert render_status(held) == "H a | HOLD | next b in 1:01 | Scope connected"
    pending = PlayerStatus(next="a", mode=Mode.PENDING, notice="waiting for Scope at http://x",
                           armed="go", connection=LinkState.STARTING)
    assert render_status(pending) == (
        "> - | pending | waiting for Scope at http://x | next a | GO armed | Scope starting"
    )


@pytest.mark.anyio
async def test_on_a_tty_lines_go_above_the_status_line_whole() -> None:
    """An event or a warning is its own line (the status line is erased first and drawn
    again after it), and an error is never cut to the width."""
    master, slave = os.openpty()
    stdin = os.fdopen(slave, "r")
    try:
        controls = Controls()
        out = io.StringIO()
        long_error = "shows/very/long/path/" + "x" * 150 + ".yaml:14:7: scenes[2].at: must be >= 0"
        async with Terminal(controls, tty=True, stdin=stdin, stdout=out, refresh=0.05):
            await asyncio.sleep(0.1)
            for listener in controls.listeners:
                listener({"kind": "error", "text": long_error, "at": 0.0})
                listener({"kind": "error", "text": long_error, "at": 0.0})  # once
                listener({"kind": "end", "text": "end of show (stop)", "at": 0.0})
            logging.getLogger("showrunner.scope.client").warning("peer went away")
            await asyncio.sleep(0.1)
    finally:
        stdin.close()
        os.close(master)
    text = out.getvalue()
    assert text.count(long_error) == 1
    assert f"\r\x1b[2K00:00:00 {long_error}\n".replace("00:00:00", _stamp(0.0)) in text
    assert "end of show (stop)\n" in text
    assert "peer went away\n" in text
    # Every line printed starts on an erased line: nothing is glued to a status line.
    for segment in text.split("\r\x1b[2K"):
        assert "\n" not in segment[:-1], segment


def _stamp(at: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(at))


@pytest.mark.anyio
async def test_space_starts_the_next_timed_scene_of_the_real_show(tmp_path: Path) -> None:
    """The keyboard's GO on a show of timed 60 s scenes: Scope gets the next scene's look."""
    journal = MemoryJournal()
    commands = Commands(None, journal=journal)
    players: list[Any] = []

    def attach(player: Any) -> None:
        players.append(player)
        commands.attach(player)

    async with serve_sim() as sim, playing(tmp_path, sim, attach, text=TIMED):
        await until_status(commands.status, scene="one", connection="connected")
        terminal = Terminal(players[0], commands=commands, tty=False, stdout=io.StringIO())
        assert await terminal.press(" ") == "go"
        assert terminal.message == "GO ✓ → two"
        await until_status(commands.status, scene="two")
        await until(lambda: transitions_to(sim, "a lighthouse in a storm") == 1)
    assert [(r["source"], r["detail"]) for r in journal.records] == [("keyboard", "two")]


@pytest.mark.anyio
async def test_t_taps_the_tempo() -> None:
    """`t` taps the run's tempo: the first tap of a count moves only the beat; a fixed tempo
    says why it takes no taps."""
    from showrunner.sync.runner import TempoRunner
    from showrunner.sync.sources import SourceContext, SourceOptions
    from showrunner.testing import FakeClock

    controls = Controls()
    terminal = Terminal(controls, tty=False, stdout=io.StringIO())
    assert await terminal.press("t") == "tap"
    assert terminal.message == "TAP: no tempo yet"
    clock = FakeClock()
    tap = TempoRunner(SourceOptions("tap", bpm=120.0), SourceContext(clock.monotonic))
    task = asyncio.create_task(tap.run())
    terminal.tempo = tap
    await terminal.press("T")
    assert terminal.message == "TAP ✓"
    await clock.advance(0.5)
    await terminal.press("t")
    assert terminal.message == "TAP ✓ → 120.0 bpm"
    # The status line carries the tempo: bpm and bar.beat (one beat after the first tap: 1.2).
    line = render_status(PlayerStatus(scene="a", connection=CONNECTED), 100, tap.tempo_status())
    assert line == "> a | 120.0 bpm 1.2 | Scope connected"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    terminal.tempo = TempoRunner(SourceOptions("fixed"), SourceContext(clock.monotonic))
    await terminal.press("t")
    assert terminal.message is not None
    assert terminal.message.startswith("TAP ignored: the fixed tempo cannot be changed here")
    assert controls.calls == []
