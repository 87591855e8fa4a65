"""The operator's terminal: a live status line and single-key commands.

On a TTY the status is one line redrawn about four times a second (scene, next scene or
"waiting for GO", countdown as m:ss, connection); scene changes, the end of the show, errors
and log warnings are printed above it as whole lines (never glued to it, never cut), and keys
act at once without Enter:

    space / enter  GO     c  CUE (name, Enter)    b  BACK     g  GOTO (scene or number, Enter)
    s  HOLD               r  RESUME               p  PANIC (again: resume)    l  RELOAD
    t  TAP (the tempo)    h / ?  help           q  quit

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
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, TextIO

from showrunner.control.gate import DEBOUNCED, Commands, Controllable, Status
from showrunner.control.tempo import TempoControl
from showrunner.errors import ShowrunnerError

__all__ = ["HELP", "KEYS", "Terminal", "TerminalPlayer", "clock_text", "render_status"]

log = logging.getLogger("showrunner.control.terminal")

KEYS = {
    " ": "go", "\r": "go", "\n": "go", "b": "back", "s": "hold", "r": "resume", "p": "panic",
    "l": "reload", "q": "quit", "g": "goto", "c": "cue", "h": "help", "?": "help", "t": "tap",
}
HELP = (
    "keys: space/enter GO | c CUE (name, Enter) | b BACK | g GOTO (scene or number, Enter)",
    "      s HOLD | r RESUME | p PANIC (again: resume) | l RELOAD | t TAP | h/? help | q quit",
)
REFRESH = 0.25
# Event kinds worth a line of their own above (or, without a TTY, instead of) the status line.
_LINE_KINDS = frozenset(
    {"start", "scene", "cue", "session", "switch", "hold", "resume", "closed", "open",
     "watchdog", "reconnect", "error", "end", "quit", "operator"}
)  # not "reload"/"reload_error": the hot reload prints those lines itself, in full
_ESC = "\x1b"
_ERASE = ("\x7f", "\b")
_MODE_MARK = {
    "playing": ">", "waiting": "||", "hold": "H", "panic": "!!", "closed": "z",
    "ended": "#", "stopped": "x",
}


class TerminalPlayer(Controllable, Protocol):
    """A player whose status the terminal can read at once (its commands go through `Commands`)."""

    def status(self) -> Status: ...


def clock_text(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), counting whole seconds up."""
    whole = max(0, int(seconds + 0.999))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_status(status: Status, width: int = 100, tempo: Mapping[str, Any] | None = None) -> str:
    """The one-line status: mark, scene, what comes next, the tempo (when given: bpm and
    bar.beat), connection, how many errors."""
    mode = str(status.mode or "playing")
    json = status.to_json()
    on_air = status.scene or json.get("on_air")
    parts = [f"{_MODE_MARK.get(mode, '>')} {on_air or '-'}"]
    if mode in ("hold", "panic", "closed", "pending"):
        parts.append({"hold": "HOLD", "panic": "PANIC (frozen)", "closed": "closed",
                      "pending": "pending"}[mode])
    if json.get("notice"):
        parts.append(str(json["notice"]))
    remaining = json.get("remaining")
    if status.waiting_for:
        cue = status.waiting_for
        parts.append(f"waiting for {'GO' if cue == 'go' else 'cue ' + cue}: {status.next}")
    elif status.next is not None:
        seconds = status.countdown if status.countdown is not None else remaining
        when = f" in {clock_text(seconds)}" if isinstance(seconds, int | float) else ""
        parts.append(f"next {status.next}{when}")
    elif mode == "ended":
        parts.append("end (holding)")
    if json.get("armed"):
        parts.append(f"{str(json['armed']).upper()} armed")
    if tempo is not None:
        stopped = "" if tempo["playing"] else " stopped"
        parts.append(f"{tempo['bpm']:.1f} bpm {tempo['bar']}.{tempo['beat_in_bar']}{stopped}")
    parts.append(f"Scope {status.connection}")
    if status.errors:
        count = len(status.errors)
        parts.append(f"! {count} error{'s' if count > 1 else ''} (above)")
    line = " | ".join(parts)
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


class _LogLines(logging.Handler):
    """Warnings and errors of the program's loggers as whole lines through the terminal (the
    player's own events come as events: not twice)."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(logging.WARNING)
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "showrunner.live.events":
            return
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not take the terminal down
            text = str(record.msg)
        self.terminal.line(time.strftime("%H:%M:%S", time.localtime(record.created)) + " " + text)


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
        self.typing: tuple[str, str] | None = None  # (command, text so far) while a name is typed
        self._saved: list[Any] | None = None
        self._fd: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._keys: asyncio.Queue[str] = asyncio.Queue()
        self._key_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handler: _LogLines | None = None
        self._last_line: str | None = None
        self.tempo: TempoControl | None = None  # the run's tempo: `t` taps it

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
        self._unsubscribe = self.player.subscribe(self._on_event)
        root = logging.getLogger()
        if not _prints_logs(root):  # logging prints nowhere: its warnings come here, whole lines
            self._handler = _LogLines(self)
            root.addHandler(self._handler)
        if not self.tty:
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
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
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
        """Act on one key; returns the command it ran (None for an unbound key or while a
        name is being typed)."""
        if self.typing is not None:
            return await self._type(key)
        command = KEYS.get(key.lower() if key.isalpha() else key)
        if command is None:
            return None
        if command == "help":
            for text in HELP:
                self.line(text)
            return "help"
        if command == "tap":
            await self._tap()
            return "tap"
        if command in ("goto", "cue"):
            self.typing = (command, "")
            self.message = None
            return None
        if command == "panic" and self.player.status().mode == "panic":
            command = "resume"
        await self._run(command, None)
        return command

    async def _type(self, key: str) -> str | None:
        """A key while a scene (GOTO) or cue (CUE) name is typed: Enter fires, Esc cancels."""
        assert self.typing is not None
        command, text = self.typing
        if key in ("\r", "\n"):
            self.typing = None
            name = self._scene_by_number(text.strip()) if command == "goto" else text.strip()
            if name:
                await self._run(command, name)
                return command
            return None
        if key == _ESC:
            self.typing = None
        elif key in _ERASE:
            self.typing = (command, text[:-1])
        elif key.isprintable() and len(text) < 200:
            self.typing = (command, text + key)
        return None

    def _scene_by_number(self, text: str) -> str:
        """A GOTO target: a scene name, or its number in the show (1 is the first scene)."""
        if text.isdigit():
            scenes = list(self.player.status().scenes)
            if 1 <= int(text) <= len(scenes):
                return scenes[int(text) - 1]
        return text

    async def _tap(self) -> None:
        if self.tempo is None:
            self.message = "TAP: no tempo yet"
            return
        try:
            bpm = await self.tempo.tap()
        except (ValueError, ShowrunnerError) as exc:
            self.message = f"TAP ignored: {exc}"
            return
        self.message = "TAP ✓" + (f" → {bpm:.1f} bpm" if bpm is not None else "")

    async def _run(self, command: str, name: str | None) -> None:
        outcome = await self.commands.run(command, name, source="keyboard")
        what = command.upper() + (f" {name}" if name else "")
        if outcome.applied:
            self.message = f"{what} ✓" + (f" → {outcome.detail}" if outcome.detail else "")
        elif outcome.result == "queued":
            self.message = f"{what} armed ({outcome.reason})"
        elif outcome.reason == DEBOUNCED:
            self.message = f"{what} ignored: pressed again within " \
                f"{self.commands.min_go_interval:g} s"
        else:
            self.message = outcome.error or f"{what} ignored ({outcome.reason})" + (
                f": {outcome.detail}" if outcome.detail else "")

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
        width = self._width()
        if self.typing is not None:
            command, text = self.typing
            prompt = "GOTO scene (name or number)" if command == "goto" else "CUE name"
            line = f"{prompt}, Enter fires, Esc cancels: {text}"
            line = line if len(line) <= width else "…" + line[-(width - 1):]
        else:
            status = self.player.status()
            tempo = self.tempo.tempo_status() if self.tempo is not None else None
            line = render_status(status, width, tempo)
            if self.message:
                if len(line) + 3 + len(self.message) > width:  # the answer before the tempo
                    line = render_status(status, width)
                line = (line + " | " + self.message)[:width]
        self._write("\r\x1b[2K" + line)

    def line(self, text: str) -> None:
        """Print `text` as a whole line: above the status line on a TTY (which is drawn again)."""
        if self.tty:
            self._write("\r\x1b[2K" + text + "\n")
            if self._task is not None:
                self._draw()
        else:
            self._write(text + "\n")

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") not in _LINE_KINDS or not event.get("text"):
            return
        at = event.get("at")
        stamp = time.strftime("%H:%M:%S", time.localtime(at if isinstance(at, int | float) else None))
        text = str(event["text"])
        if text == self._last_line and event.get("kind") == "error":
            return  # the same error again: printed once
        self._last_line = text
        self.line(f"{stamp} {text}")

    def _write(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except (OSError, ValueError):
            pass  # a closed pipe must not stop the show

    def _width(self) -> int:
        return max(20, shutil.get_terminal_size((100, 24)).columns - 1)


def _prints_logs(root: logging.Logger) -> bool:
    """Whether a handler of the root logger already prints to the terminal."""
    streams = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return any(isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in streams
               for h in root.handlers)


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
