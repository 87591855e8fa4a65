"""MIDI in over a private JACK server: devices by name, messages on the loop, unplug and replug."""

from __future__ import annotations

import asyncio
from typing import Any

import mido
import pytest

from showrunner.midi.ports import MidiError, MidiInput, MidiKind, MidiMessage, input_names, match_port
from showrunner.testing import until


def _device(name: str) -> Any:
    """A virtual output port on the JACK server: what a controller plugged in looks like."""
    return mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output(name, virtual=True)


def test_ports_match_by_part_of_the_name_ignoring_case() -> None:
    names = ["Midi Through:0", "APC mini mk2:APC mini mk2 MIDI 1 24:0"]
    assert match_port(names, "apc MINI") == names[1]
    assert match_port(names, "launchpad") is None


def test_an_unknown_midi_system_is_a_clear_error() -> None:
    with pytest.raises(MidiError, match="unknown MIDI system 'dmx'"):
        input_names("dmx")


@pytest.mark.anyio
async def test_messages_from_a_device_reach_the_listener(jack: str) -> None:
    got: list[MidiMessage] = []
    device = _device("Test Pads ports1")
    port = MidiInput("pads PORTS1", got.append, api="jack", poll=0.05)
    task = asyncio.create_task(port.run())
    try:
        await until(lambda: port.port_name is not None, timeout=5)
        device.send(mido.Message("note_on", channel=9, note=36, velocity=100))
        device.send(mido.Message("note_on", channel=9, note=36, velocity=0))
        device.send(mido.Message("control_change", channel=0, control=7, value=64))
        device.send(mido.Message("program_change", channel=2, program=5))
        device.send(mido.Message("sysex", data=[1, 2, 3]))  # not read: ignored
        await until(lambda: len(got) >= 4, timeout=5)
    finally:
        task.cancel()
        device.close()
    kinds = [(m.kind, m.channel, m.number, m.value) for m in got]
    assert kinds == [
        (MidiKind.NOTE, 10, 36, 100),
        (MidiKind.NOTE_OFF, 10, 36, 0),
        (MidiKind.CC, 1, 7, 64),
        (MidiKind.PROGRAM, 3, 5, 0),
    ]


@pytest.mark.anyio
async def test_an_unplugged_device_is_journaled_and_read_again_when_it_returns(jack: str) -> None:
    got: list[MidiMessage] = []
    said: list[str] = []
    port = MidiInput("Test Fader ports2", got.append, api="jack", poll=0.05, on_state=said.append)
    task = asyncio.create_task(port.run())
    try:
        await until(lambda: any("no input named like" in s for s in said), timeout=5)
        device = _device("Test Fader ports2")
        await until(lambda: port.port_name is not None, timeout=5)
        device.send(mido.Message("control_change", control=1, value=10))
        await until(lambda: len(got) == 1, timeout=5)
        device.close()  # unplugged
        await until(lambda: port.port_name is None, timeout=5)
        device = _device("Test Fader ports2")  # plugged in again
        await until(lambda: port.port_name is not None, timeout=5)
        device.send(mido.Message("control_change", control=1, value=20))
        await until(lambda: len(got) == 2, timeout=5)
        device.close()
        assert not task.done()  # never stops
    finally:
        task.cancel()
    assert [m.value for m in got] == [10, 20]
    assert [s.split(":")[1].split("'")[0].strip() for s in said[1:]] == [
        "reading", "lost", "no input named like", "reading"
    ]


@pytest.mark.anyio
async def test_a_midi_system_that_cannot_open_is_reported_and_retried(tmp_path: Any) -> None:
    import os

    said: list[str] = []
    saved = os.environ.get("JACK_DEFAULT_SERVER"), os.environ.get("JACK_NO_START_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = "showrunner-no-such-server"
    os.environ["JACK_NO_START_SERVER"] = "1"
    port = MidiInput("anything", lambda m: None, api="jack", poll=0.05, on_state=said.append)
    task = asyncio.create_task(port.run())
    try:
        await until(lambda: bool(said), timeout=5)
        await asyncio.sleep(0.2)
        assert not task.done()
    finally:
        task.cancel()
        for key, value in zip(("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER"), saved, strict=True):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert len(said) == 1 and "cannot list MIDI inputs (jack)" in said[0], said


@pytest.mark.anyio
async def test_a_real_controller_by_name() -> None:
    """By hand, with a controller plugged in: MIDI_TEST_DEVICE=<part of its name>, then move any
    control within ten seconds."""
    import os

    device = os.environ.get("MIDI_TEST_DEVICE")
    if not device:
        pytest.skip("needs a real MIDI controller: set MIDI_TEST_DEVICE and move a control")
    got: list[MidiMessage] = []
    port = MidiInput(device, got.append)
    task = asyncio.create_task(port.run())
    try:
        await until(lambda: got, timeout=10)
    finally:
        task.cancel()
    assert port.received >= 1
