"""MIDI in: one device, found by (part of) its name, kept open across unplugging and replugging.

mido and python-rtmidi are used only here: rtmidi reads the device on a thread of its own, each
message is turned into a `MidiMessage` and handed to the listener on the event loop. The port
list is polled: a device that disappears is journaled as lost, the same name is looked for
again every `poll` seconds and the port reopened when it comes back; nothing here ever ends the
show. A MIDI system that cannot be opened at all (Linux without ``/dev/snd``, no JACK server) is
reported once and retried, less and less often (every `SYSTEM_RETRY_CAP` seconds at most).

`api` chooses the MIDI system: ``"alsa"``, ``"jack"``, ``"coremidi"``, ``"winmm"``, or None for
rtmidi's default on the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mido
import rtmidi

from showrunner.errors import ShowrunnerError

__all__ = ["APIS", "MidiError", "MidiInput", "MidiKind", "MidiMessage", "input_names", "match_port"]

log = logging.getLogger(__name__)

#: Our names of the MIDI systems -> mido's rtmidi backend names.
APIS: dict[str, str] = {
    "alsa": "LINUX_ALSA",
    "jack": "UNIX_JACK",
    "coremidi": "MACOSX_CORE",
    "winmm": "WINDOWS_MM",
}
POLL = 1.0  # seconds between two looks at the port list
SYSTEM_RETRY_CAP = 30.0  # a MIDI system that cannot be opened is tried again, doubling up to this


class MidiError(ShowrunnerError):
    """The MIDI system cannot be opened or listed (no ALSA sequencer, no JACK server)."""


class MidiKind(enum.StrEnum):
    """The messages showrunner reads; everything else a device sends is ignored."""

    NOTE = "note"  # note on with velocity > 0 (a pad or key pressed)
    NOTE_OFF = "note_off"  # note off, or note on with velocity 0
    CC = "cc"
    PROGRAM = "program"
    CLOCK = "clock"  # 24 per quarter note
    START = "start"
    STOP = "stop"
    CONTINUE = "continue"
    SONG_POSITION = "song_position"  # `value`: sixteenth notes since the start of the song


@dataclass(frozen=True, slots=True)
class MidiMessage:
    """One message from a device: `channel` 1-16 (None for clock and transport), `number` the
    note, controller or program, `value` the velocity or controller value (0-127), `at` the
    monotonic time it arrived."""

    kind: MidiKind
    channel: int | None = None
    number: int = 0
    value: int = 0
    at: float = 0.0


def translate(message: Any, at: float) -> MidiMessage | None:
    """Our `MidiMessage` for one mido message; None for what showrunner does not read."""
    kind = message.type
    if kind == "note_on":
        on = message.velocity > 0
        return MidiMessage(MidiKind.NOTE if on else MidiKind.NOTE_OFF, message.channel + 1,
                           message.note, message.velocity, at)
    if kind == "note_off":
        return MidiMessage(MidiKind.NOTE_OFF, message.channel + 1, message.note, 0, at)
    if kind == "control_change":
        return MidiMessage(MidiKind.CC, message.channel + 1, message.control, message.value, at)
    if kind == "program_change":
        return MidiMessage(MidiKind.PROGRAM, message.channel + 1, message.program, 0, at)
    if kind == "songpos":
        return MidiMessage(MidiKind.SONG_POSITION, None, 0, message.pos, at)
    if kind in ("clock", "start", "stop", "continue"):
        return MidiMessage(MidiKind(kind), None, 0, 0, at)
    return None


def _rtapi(api: str | None) -> int:
    if api is None:
        return int(rtmidi.API_UNSPECIFIED)
    if api not in APIS:
        raise MidiError(f"unknown MIDI system {api!r}; expected one of {', '.join(APIS)}")
    return int(getattr(rtmidi, "API_" + APIS[api]))


class PortList:
    """One client of the MIDI system, kept for the whole run: it lists the inputs and opens the
    one wanted. Opening a client is slow on some systems (JACK: about half a second, holding the
    interpreter); listing and opening a port on an open client are not."""

    def __init__(self, api: str | None = None) -> None:
        self.api = api
        self._rt: Any = None

    def _client(self) -> Any:
        if self._rt is None:
            self._rt = rtmidi.MidiIn(rtapi=_rtapi(self.api), name="showrunner")
            self._rt.ignore_types(sysex=True, timing=False, active_sense=True)
        return self._rt

    def names(self) -> list[str]:
        """The input names now; MidiError when the MIDI system cannot be asked."""
        try:
            return list(self._client().get_ports())
        except (rtmidi.SystemError, rtmidi.RtMidiError, OSError, ValueError) as exc:
            self.close()
            reason = str(exc).rstrip(". ")
            raise MidiError(f"cannot list MIDI inputs ({self.api or 'default'}): {reason}") from None

    def open(self, name: str, received: Callable[[Any], None]) -> None:
        """Read the input `name`, calling `received` with each mido message (on rtmidi's thread)."""
        rt = self._client()
        names = list(rt.get_ports())
        if name not in names:
            raise MidiError(f"{name!r} went away")
        parser = mido.Parser()

        def on_bytes(event: tuple[list[int], float], _data: object = None) -> None:
            parser.feed(event[0])
            for message in parser:
                received(message)

        try:
            rt.open_port(names.index(name), name="in")
            rt.set_callback(on_bytes)
        except (rtmidi.SystemError, rtmidi.RtMidiError, OSError, ValueError) as exc:
            raise MidiError(f"cannot open {name!r}: {exc}") from None

    def close_port(self) -> None:
        if self._rt is not None:
            with contextlib.suppress(Exception):
                self._rt.cancel_callback()
            with contextlib.suppress(Exception):
                self._rt.close_port()

    def close(self) -> None:
        self.close_port()
        rt, self._rt = self._rt, None
        if rt is not None:
            with contextlib.suppress(Exception):
                rt.delete()


def input_names(api: str | None = None) -> list[str]:
    """The names of the MIDI inputs the system offers now; MidiError when it cannot be asked."""
    ports = PortList(api)
    try:
        return ports.names()
    finally:
        ports.close()


def match_port(names: list[str], device: str) -> str | None:
    """The first port whose name contains `device` (case-insensitive)."""
    wanted = device.casefold()
    return next((n for n in names if wanted in n.casefold()), None)


class MidiInput:
    """Reads the device named (in part) `device` and calls `listener` with each message on the
    event loop, until cancelled. `on_state` is called with one line each time the device is
    found, lost or cannot be opened (for the journal)."""

    def __init__(
        self,
        device: str,
        listener: Callable[[MidiMessage], None],
        *,
        api: str | None = None,
        poll: float = POLL,
        on_state: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not device.strip():
            raise ValueError("a MIDI device name is needed")
        self.device = device
        self.listener = listener
        self.api = api
        self.poll = poll
        self.on_state = on_state
        self.clock = clock
        self.port_name: str | None = None  # the port open now
        self.received = 0
        self._ports = PortList(api)
        self._said: str | None = None

    def __repr__(self) -> str:
        return f"MidiInput({self.device!r}, open={self.port_name!r})"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.poll
        try:
            while True:
                up = await self._look(loop)
                # The system itself failing (no ALSA sequencer, no JACK server) is retried less
                # and less often: each try may print the library's own complaint to stderr.
                wait = self.poll if up else min(wait * 2, max(SYSTEM_RETRY_CAP, self.poll))
                await asyncio.sleep(wait)
        finally:
            self._close()
            self._ports.close()

    async def _look(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Open, keep or drop the device's port; False when the MIDI system cannot be asked."""
        try:
            names = await asyncio.to_thread(self._ports.names)
        except MidiError as exc:
            self._close()
            self._say(f"MIDI: {exc}; trying again (every {SYSTEM_RETRY_CAP:g} s at most)")
            return False
        found = match_port(names, self.device)
        if self.port_name is not None and found == self.port_name:
            return True
        if self.port_name is not None:
            self._close()
            self._say(f"MIDI: lost {self.device!r}; waiting for it to come back")
        if found is None:
            self._say(f"MIDI: no input named like {self.device!r} (have: {', '.join(names) or 'none'})")
            return True
        try:
            await asyncio.to_thread(self._ports.open, found, self._receiver(loop))
        except MidiError as exc:
            self._say(f"MIDI: {exc}")
            return True
        self.port_name = found
        self._say(f"MIDI: reading {found!r}")
        return True

    def _receiver(self, loop: asyncio.AbstractEventLoop) -> Callable[[Any], None]:
        def received(message: Any) -> None:  # on rtmidi's thread
            ours = translate(message, self.clock())
            if ours is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed while a message came
                    loop.call_soon_threadsafe(self._deliver, ours)

        return received

    def _deliver(self, message: MidiMessage) -> None:
        self.received += 1
        try:
            self.listener(message)
        except Exception:  # a listener's bug must not stop the device
            log.exception("MIDI listener failed on %s", message)

    def _close(self) -> None:
        self.port_name = None
        self._ports.close_port()

    def _say(self, text: str) -> None:
        if text == self._said:
            return  # said once until something changes
        self._said = text
        log.info("%s", text)
        if self.on_state is not None:
            self.on_state(text)
