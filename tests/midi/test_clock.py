"""MIDI clock in: the follower on exact message times, and the source over a JACK port."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import mido
import pytest

from showrunner.midi.clock import PPQN, ClockFollower, MidiClock
from showrunner.midi.ports import MidiKind, MidiMessage
from showrunner.music.reading import TempoReading, TempoSource
from showrunner.testing import until


def _clocks(follower: ClockFollower, start: float, bpm: float, count: int) -> list[TempoReading]:
    step = 60.0 / bpm / PPQN
    out = []
    for i in range(count):
        reading = follower.feed(MidiMessage(MidiKind.CLOCK, at=start + i * step))
        if reading is not None:
            out.append(reading)
    return out


def test_start_then_clocks_count_beats_from_the_downbeat_at_the_measured_tempo() -> None:
    follower = ClockFollower()
    assert follower.feed(MidiMessage(MidiKind.START, at=0.0)) is None  # no tempo yet
    readings = _clocks(follower, 0.0, 120.0, 3 * PPQN + 1)
    # the first clock is beat 0; the tempo is known from the second clock on, then every beat
    assert [r.beat for r in readings] == [1 / PPQN, 1.0, 2.0, 3.0]
    assert readings[-1].bpm == pytest.approx(120.0, rel=1e-9)
    assert readings[-1].at == pytest.approx(3 * 0.5)
    assert all(r.source == "midi" and r.playing for r in readings)


def test_stop_continue_and_song_position() -> None:
    follower = ClockFollower()
    follower.feed(MidiMessage(MidiKind.START, at=0.0))
    _clocks(follower, 0.0, 100.0, 2 * PPQN)  # beats 0 .. 2 - 1/24
    stopped = follower.feed(MidiMessage(MidiKind.STOP, at=1.3))
    assert stopped is not None and not stopped.playing
    assert stopped.beat == pytest.approx((2 * PPQN - 1) / PPQN)
    _clocks(follower, 1.4, 100.0, 10)  # clocks while stopped: the beat stays
    assert follower.beat == pytest.approx((2 * PPQN - 1) / PPQN)
    moved = follower.feed(MidiMessage(MidiKind.SONG_POSITION, value=16, at=2.0))  # bar 2 (16 16ths)
    assert moved is not None and moved.beat == pytest.approx(4.0 - 1 / PPQN)
    follower.feed(MidiMessage(MidiKind.CONTINUE, at=2.1))
    readings = _clocks(follower, 2.2, 100.0, 1)
    assert follower.beat == 4.0 and readings and readings[0].beat == 4.0 and readings[0].playing


def test_a_tempo_change_is_reported_before_the_next_beat() -> None:
    follower = ClockFollower()
    follower.feed(MidiMessage(MidiKind.START, at=0.0))
    _clocks(follower, 0.0, 120.0, PPQN + 1)
    faster = _clocks(follower, 0.5 + 60 / 140 / PPQN, 140.0, PPQN // 2)
    assert faster and faster[0].beat % 1 != 0 and faster[-1].bpm > 128


def test_the_midi_clock_is_a_tempo_source() -> None:
    source: TempoSource = MidiClock("any")
    assert source.name == "midi"


@pytest.mark.anyio
async def test_clock_from_a_jack_port_gives_readings(jack: str) -> None:
    device: Any = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output(
        "Test Clock clock1", virtual=True
    )
    readings: list[TempoReading] = []
    source = MidiClock("clock1", api="jack", poll=0.05)
    task = asyncio.create_task(source.run(readings.append))
    sent: list[float] = []
    try:
        await until(lambda: source.port is not None and source.port.port_name is not None, timeout=10)
        await asyncio.sleep(0.3)
        step = 60.0 / 150.0 / PPQN  # 150 bpm
        device.send(mido.Message("start"))
        t0 = time.monotonic()
        for i in range(2 * PPQN + 1):
            await asyncio.sleep(max(0.0, t0 + i * step - time.monotonic()))
            device.send(mido.Message("clock"))
            sent.append(time.monotonic())
        await until(lambda: any(r.beat == 2.0 for r in readings), timeout=10)
        device.send(mido.Message("stop"))
        await until(lambda: not readings[-1].playing, timeout=10)
    finally:
        task.cancel()
        device.close()
    playing = [r.beat for r in readings if r.playing]
    assert playing[0] == 1 / PPQN and [b for b in playing if b == int(b)] == [1.0, 2.0]
    # the tempo over the last beat, against the tempo the clocks were actually sent at (a
    # loaded machine delays the sender's sleeps, and the follower measures what arrived)
    last = next(r for r in readings if r.beat == 2.0)
    sent_bpm = 60.0 * PPQN / ((sent[-1] - sent[-1 - PPQN]) * PPQN)
    assert last.bpm == pytest.approx(sent_bpm, rel=0.2)
    assert all(r.source == "midi" for r in readings)
