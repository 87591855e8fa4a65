"""The operator's terminal: a live status line and single-key commands.

On a TTY the status is one line redrawn about four times a second (scene, next scene or
"waiting for GO", countdown, connection), and keys act at once without Enter:

    space / enter  GO        b  BACK        p  panic (freeze) / resume        q  quit

Keys go through the same gate as every other control surface (:class:`~showrunner.control.gate.
Commands`): a GO pressed twice within the debounce interval counts once, and each key is
journaled with source ``keyboard``.

The terminal is put in cbreak mode (no echo, no line buffering, Ctrl-C still interrupts)
and restored on exit, whatever happens. Without a TTY (a service, a pipe) it prints one
plain line per change instead and reads no keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, TextIO

from showrunner.control.gate import DEBOUNCED, Commands, Controllable, Status

__all__ = ["KEYS", "Terminal", "TerminalPlayer", "render_status"]

log = logging.getLogger("showrunner.control.terminal")

KEYS = {" ": "go", "\r": "go", "\n": "go", "b": "back", "p": "panic", "q": "quit"}
REFRESH = 0.25
# Event kinds worth a line of their own when there is no live status line.
_LINE_KINDS = frozenset(
    {"start", "scene", "cue", "session", "switch", "hold", "resume", "closed", "open",
     "watchdog", "reconnect", "error", "end", "quit", "operator"}
)
_MODE_MARK = {
    "playing": ">", "waiting": "||", "hold": "H", "panic": "!!", "closed": "z",
    "ended": "#", "stopped": "x",
}


class TerminalPlayer(Controllable, Protocol):
    """A player whose status the terminal can read at once (its commands go through `Commands`)."""

    def status(self) -> Status: ...


def render_status(status: Status, width: int = 100) -> str:
    """The one-line status: mark, scene, what comes next, connection, last error."""
    mode = str(status.mode or "playing")
    parts = [f"{_MODE_MARK.get(mode, '>')} {status.scene or '-'}"]
    if mode in ("hold", "panic", "closed"):
        parts.append({"hold": "HOLD", "panic": "PANIC (frozen)", "closed": "closed"}[mode])
    if status.waiting_for:
        cue = status.waiting_for
        parts.append(f"waiting for {'GO' if cue == 'go' else 'cue ' + cue}: {status.next}")
    elif status.next is not None:
        when = f" in {status.countdown:.1f}s" if status.countdown is not None else ""
        parts.append(f"next {status.next}{when}")
    elif mode == "ended":
        parts.append("end (holding)")
    parts.append(f"Scope {status.connection}")
    if status.errors:
        parts.append(f"! {status.errors[-1]}")
    line = " | ".join(parts)
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


class Terminal:
    """Status display and keyboard for one player (async context manager)."""

    def __init__(
        self,
        player: TerminalPlayer,
        *,
        commands: Commands | None = None,
        tty: bool | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        refresh: float = REFRESH,
    ) -> None:
        self.player = player
        self.commands = commands if commands is not None else Commands(player)
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        if tty is None:
            tty = _isatty(self.stdin) and _isatty(self.stdout)
        self.tty = tty
        self.refresh = refresh
        self.message: str | None = None  # a short note shown in the line (e.g. "no previous scene")
        self._saved: list[Any] | None = None
        self._fd: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._keys: asyncio.Queue[str] = asyncio.Queue()
        self._key_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"Terminal(tty={self.tty})"

    async def __aenter__(self) -> Terminal:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        """Take over the terminal (TTY) or start printing change lines (no TTY)."""
        self._loop = asyncio.get_running_loop()
        if not self.tty:
            self._unsubscribe = self.player.subscribe(self._on_event)
            return
        self._fd = self.stdin.fileno()
        self._saved = _cbreak(self._fd)
        try:
            self._loop.add_reader(self._fd, self._on_readable)
        except (NotImplementedError, ValueError, OSError):
            log.warning("cannot read keys from this terminal; use Ctrl-C to stop")
        self._task = asyncio.create_task(self._redraw(), name="showrunner-terminal")
        self._key_task = asyncio.create_task(self._take_keys(), name="showrunner-keys")

    async def stop(self) -> None:
        """Give the terminal back exactly as it was."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in (self._task, self._key_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._key_task = None
        if self._fd is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._fd)
            if self._saved is not None:
                _restore(self._fd, self._saved)
                self._saved = None
            self._write("\r\x1b[2K" + render_status(self.player.status(), self._width()) + "\n")
            self._fd = None

    # -- keys ------------------------------------------------------------------------------------

    async def press(self, key: str) -> str | None:
        """Act on one key; returns the command it ran (None for an unbound key)."""
        command = KEYS.get(key.lower() if key.isalpha() else key)
        if command is None:
            return None
        if command == "panic" and self.player.status().mode == "panic":
            command = "resume"
        outcome = await self.commands.run(command, source="keyboard")
        if outcome.applied:
            self.message = None
        elif outcome.reason == DEBOUNCED:
            self.message = f"{command.upper()} ignored: pressed again within " \
                f"{self.commands.min_go_interval:g} s"
        else:
            self.message = outcome.error or f"{command.upper()} not applied ({outcome.reason})"
        return command

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 64)
        except OSError:
            return
        for key in data.decode("utf-8", "replace"):
            self._keys.put_nowait(key)

    async def _take_keys(self) -> None:
        # One key at a time, in order: a second "p" must see the panic the first one caused.
        while True:
            key = await self._keys.get()
            try:
                await self.press(key)
            except Exception:  # a failing command must not take the keyboard away
                log.exception("key %r failed", key)
            self._draw()

    # -- output ----------------------------------------------------------------------------------

    async def _redraw(self) -> None:
        while True:
            self._draw()
            await asyncio.sleep(self.refresh)

    def _draw(self) -> None:
        line = render_status(self.player.status(), self._width())
        if self.message:
            line = (line + " | " + self.message)[: self._width()]
        self._write("\r\x1b[2K" + line)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") not in _LINE_KINDS or not event.get("text"):
            return
        at = event.get("at")
        stamp = time.strftime("%H:%M:%S", time.localtime(at if isinstance(at, int | float) else None))
        self._write(f"{stamp} {event['text']}\n")

    def _write(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except (OSError, ValueError):
            pass  # a closed pipe must not stop the show

    def _width(self) -> int:
        return max(20, shutil.get_terminal_size((100, 24)).columns - 1)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _cbreak(fd: int) -> list[Any] | None:
    """No echo, no line buffering; signals (Ctrl-C) stay on. Returns the settings to restore."""
    try:
        import termios
    except ImportError:  # not a POSIX terminal
        return None
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return None
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflags
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSAFLUSH, mode)
    return saved


def _restore(fd: int, saved: list[Any]) -> None:
    import termios

    with contextlib.suppress(termios.error):
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
