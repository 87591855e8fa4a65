"""What a MIDI control does: the show's `controls:` matched against incoming messages.

A note fires on press (note on with velocity above 0), a program change when it comes, a CC
mapped to a command when it rises through 64 (a button sending 127 then 0 presses once; a knob
turned up presses once, and again only after going back below 64). A CC mapped to an input sets
it to value / 127. The controls are read through a callable, so a hot reload (or learn mode)
takes effect with the next message. `last` is the last note, CC or program change seen, mapped
or not (what learn mode offers to map).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from showrunner.midi.ports import MidiKind, MidiMessage
from showrunner.show.model import Control

__all__ = ["Controls", "Press", "SetInput"]

_KINDS = {MidiKind.NOTE: "note", MidiKind.CC: "cc", MidiKind.PROGRAM: "program"}
_CC_ON = 64


@dataclass(frozen=True, slots=True)
class Press:
    """An operator command: `command` (go, back, hold, resume, panic, goto, cue) and its name."""

    command: str
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class SetInput:
    name: str
    value: float


Action = Press | SetInput


class Controls:
    """Turns MIDI messages into `Press`es and `SetInput`s by the show's controls."""

    def __init__(self, controls: Callable[[], Sequence[Control]]) -> None:
        self.controls = controls
        self.last: MidiMessage | None = None
        self._cc: dict[tuple[int, int], int] = {}  # (channel, cc) -> last value

    def __repr__(self) -> str:
        return f"Controls(last={self.last!r})"

    def action(self, message: MidiMessage) -> Action | None:
        """What `message` does (None: nothing, or a release)."""
        kind = _KINDS.get(message.kind)
        if kind is None or message.channel is None:
            return None
        self.last = message
        previous = None
        if message.kind is MidiKind.CC:
            previous = self._cc.get((message.channel, message.number))
            self._cc[(message.channel, message.number)] = message.value
        control = self._find(kind, message.number, message.channel)
        if control is None:
            return None
        if control.input is not None:
            return SetInput(control.input, message.value / 127.0)
        if message.kind is MidiKind.CC and (
            message.value < _CC_ON or (previous is not None and previous >= _CC_ON)
        ):
            return None  # a release, or still held above the middle
        if control.goto is not None:
            return Press("goto", control.goto)
        if control.cue is not None:
            return Press("cue", control.cue)
        return Press(control.do or "go")

    def _find(self, kind: str, number: int, channel: int) -> Control | None:
        for control in self.controls():
            k, n, c = control.key
            if k == kind and n == number and (c is None or c == channel):
                return control
        return None
