from __future__ import annotations

from typing import Any

from showrunner.midi.controls import Controls, Press, SetInput
from showrunner.midi.ports import MidiKind, MidiMessage
from showrunner.show.model import Control


def _controls(*items: dict[str, Any]) -> Controls:
    parsed = [Control.model_validate(i) for i in items]
    return Controls(lambda: parsed)


def test_notes_programs_and_cc_buttons_press_once() -> None:
    c = _controls({"note": 36, "do": "go"}, {"note": 37, "channel": 10, "goto": "drop"},
                  {"program": 4, "cue": "chorus"}, {"cc": 64, "do": "hold"})
    assert c.action(MidiMessage(MidiKind.NOTE, 1, 36, 100)) == Press("go")
    assert c.action(MidiMessage(MidiKind.NOTE_OFF, 1, 36, 0)) is None
    assert c.action(MidiMessage(MidiKind.NOTE, 10, 37, 90)) == Press("goto", "drop")
    assert c.action(MidiMessage(MidiKind.NOTE, 9, 37, 90)) is None  # another channel
    assert c.action(MidiMessage(MidiKind.PROGRAM, 3, 4)) == Press("cue", "chorus")
    presses = [c.action(MidiMessage(MidiKind.CC, 1, 64, v)) for v in (0, 127, 127, 100, 0, 90)]
    assert presses == [None, Press("hold"), None, None, None, Press("hold")]


def test_a_cc_sets_its_input_and_unmapped_controls_are_remembered_for_learning() -> None:
    c = _controls({"cc": 21, "input": "fader"})
    assert c.action(MidiMessage(MidiKind.CC, 1, 21, 127)) == SetInput("fader", 1.0)
    assert c.action(MidiMessage(MidiKind.CC, 1, 22, 5)) is None
    assert c.last == MidiMessage(MidiKind.CC, 1, 22, 5)
    assert c.action(MidiMessage(MidiKind.CLOCK)) is None and c.last.number == 22
