"""Scope's tempo sync as a source, against the simulator over loopback (docs/scope.md §6, §10.1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from showrunner.errors import TempoSourceError
from showrunner.music.reading import TempoReading
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession
from showrunner.sim import Simulator, serve_sim
from showrunner.sync.scope import ScopeTempo
from showrunner.testing import until

pytestmark = [pytest.mark.anyio, pytest.mark.webrtc]

SMALL = {"height": 64, "width": 64}


@pytest.fixture
async def sim(anyio_backend: str) -> AsyncIterator[Simulator]:
    async with serve_sim(host="127.0.0.1", port=0, load_time=0.02) as simulator:
        yield simulator


@pytest.fixture
async def session(sim: Simulator) -> AsyncIterator[ScopeSession]:
    async with ScopeClient(sim.url, timeouts=ClientTimeouts(request=2.0, offer=5.0)) as client:
        async with ScopeSession(client) as opened:
            await opened.open(["controller-viz"], SMALL, {})
            yield opened


def _source(session: ScopeSession, follows: str = "link", bpm: float = 132.0) -> ScopeTempo:
    return ScopeTempo(session.client, session, bpm=bpm, beats_per_bar=4, follows=follows,
                      clock=time.monotonic)


async def test_readings_follow_scope_and_a_proposal_changes_its_tempo(
    sim: Simulator, session: ScopeSession
) -> None:
    readings: list[TempoReading] = []
    source = _source(session)
    task = asyncio.create_task(source.run(readings.append))
    try:
        await until(lambda: len(readings) >= 8, timeout=5.0)
        assert sim.tempo.enabled and sim.tempo.source == "link"
        assert {r.bpm for r in readings} == {132.0}
        assert all(r.source == "scope" and r.playing for r in readings)
        # The beat runs at the tempo: what the readings say matches their own clock.
        first, last = readings[0], readings[-1]
        expected = (last.at - first.at) * 132.0 / 60.0
        assert last.beat - first.beat == pytest.approx(expected, abs=0.15)
        rate = (len(readings) - 1) / (last.at - first.at)
        assert 8 < rate < 25  # about 15 a second (docs/scope.md §3.4)
        await source.propose(90.0)
        await until(lambda: readings[-1].bpm == 90.0, timeout=2.0)
        with pytest.raises(ValueError, match="Scope takes 20 to 300 bpm, not 400"):
            await source.propose(400.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not sim.tempo.enabled  # leaving turns Scope's tempo sync off again


async def test_a_source_scope_cannot_run_is_one_line(session: ScopeSession) -> None:
    """The simulator, like a Scope without mido, cannot follow a MIDI clock: HTTP 400."""
    with pytest.raises(TempoSourceError) as caught:
        await _source(session, follows="midi_clock").run(lambda reading: None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Scope cannot follow midi_clock: Scope tempo enable: POST ")
    assert message.endswith("answered HTTP 400: Failed to create midi_clock tempo source. "
                            "Install with: uv sync --extra midi")


async def test_silence_is_reported_as_stopped_and_a_lost_tempo_sync_is_turned_on_again(
    sim: Simulator, session: ScopeSession
) -> None:
    """A Scope restart forgets tempo sync; here it is turned off behind the source's back."""
    readings: list[TempoReading] = []
    source = _source(session)
    task = asyncio.create_task(source.run(readings.append))
    try:
        await until(lambda: len(readings) >= 2, timeout=5.0)
        sim.tempo.disable()  # Scope stops sending tempo_update
        stopped = await until(lambda: [r for r in readings if not r.playing], timeout=3.0)
        assert stopped[0].bpm == 132.0
        await until(lambda: sim.tempo.enabled, timeout=6.0)
        # The server turns it on before its answer reaches the source: wait for the answer.
        await until(lambda: source.enables >= 2, timeout=2.0)
        assert source.enables == 2
        await until(lambda: readings[-1].playing, timeout=2.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_without_a_data_channel_the_tempo_is_read_from_the_status(sim: Simulator) -> None:
    """The headless transport has no data channel, so no `tempo_update` (docs/scope.md §10.1):
    the source reads `beat_state` from `GET /api/v1/tempo/status` about 15 times a second
    instead, each reading timed at the middle of its request, and still leaves tempo sync off."""
    readings: list[TempoReading] = []
    async with ScopeClient(sim.url, timeouts=ClientTimeouts(request=2.0)) as client:
        source = ScopeTempo(client, None, bpm=132.0, beats_per_bar=4, clock=time.monotonic)
        task = asyncio.create_task(source.run(readings.append))
        try:
            await until(lambda: len(readings) >= 8, timeout=5.0)
            assert sim.tempo.enabled and all(r.playing and r.bpm == 132.0 for r in readings)
            first, last = readings[0], readings[-1]
            expected = (last.at - first.at) * 132.0 / 60.0
            assert last.beat - first.beat == pytest.approx(expected, abs=0.05)  # 23 ms at 132
            rate = (len(readings) - 1) / (last.at - first.at)
            assert 8 < rate < 25
            polls = [r for r in sim.records if r["kind"] == "http" and r["path"] == "/api/v1/tempo/status"]
            assert len(polls) >= len(readings)
            sim.tempo.disable()  # a restart forgets it: seen in the status, turned on again
            await until(lambda: sim.tempo.enabled, timeout=6.0)
            await until(lambda: source.enables >= 2, timeout=2.0)
            await until(lambda: readings[-1].playing, timeout=2.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert not sim.tempo.enabled
