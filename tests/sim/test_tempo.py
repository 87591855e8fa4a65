"""Tempo endpoints and tempo messages, as a real server answers them (docs/scope.md §6, §3.4, §10.1;
Scope tempo_router.py, tempo_sync.py, parameter_scheduler.py). The simulated Link session
has no peers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from showrunner.sim import Simulator

pytestmark = pytest.mark.anyio

Connect = Callable[..., Awaitable[Any]]
TEMPO = "/api/v1/tempo"
OFF = {"enabled": False, "source": None, "beats_per_bar": 4, "beat_state": None}
BEAT_KEYS = {"bpm", "beat_phase", "bar_position", "beat_count", "is_playing", "source"}


async def test_status_and_sources_before_enabling(sim: Simulator) -> None:
    """docs/scope.md §10.1: status before enabling; sources `link` (available) and `midi_clock`
    (needs mido, with an install hint); `set_tempo` before enabling → 400."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        status = (await client.get(f"{TEMPO}/status")).json()
        sources = (await client.get(f"{TEMPO}/sources")).json()
        early = await client.post(f"{TEMPO}/set_tempo", json={"bpm": 128})
    assert status == OFF
    assert sources == {
        "sources": {
            "link": {"available": True, "name": "Ableton Link"},
            "midi_clock": {"available": False, "name": "MIDI Clock", "install_hint": "uv sync --extra midi"},
        }
    }
    assert (early.status_code, early.json()) == (400, {"detail": "Tempo sync is not enabled"})


async def test_enable_midi_clock_without_mido_is_400(sim: Simulator) -> None:
    """docs/scope.md §6 / §10.1: enabling a source whose dependency is missing → 400 with a hint."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post(f"{TEMPO}/enable", json={"source": "midi_clock"})
        status = (await client.get(f"{TEMPO}/status")).json()
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Failed to create midi_clock tempo source. Install with: uv sync --extra midi"
    }
    assert status == OFF


async def test_enable_link_then_the_beat_runs(sim: Simulator) -> None:
    """docs/scope.md §10.1: enable → 200 with `beat_state: null`; a status read just after has the
    beat: bpm, beat_phase 0–1, bar_position = beat mod bar, beat_count, is_playing false."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        enabled = await client.post(
            f"{TEMPO}/enable", json={"source": "link", "bpm": 240, "beats_per_bar": 3}
        )
        await asyncio.sleep(0.01)
        first = (await client.get(f"{TEMPO}/status")).json()
        await asyncio.sleep(0.6)
        later = (await client.get(f"{TEMPO}/status")).json()
    assert enabled.status_code == 200
    assert enabled.json() == {
        "enabled": True, "source": {"type": "link", "num_peers": 0}, "beats_per_bar": 3, "beat_state": None
    }
    beat = first["beat_state"]
    assert set(beat) == BEAT_KEYS
    assert beat["bpm"] == 240.0 and beat["is_playing"] is False and beat["source"] == "link"
    assert 0 <= beat["beat_phase"] < 1 and beat["beat_count"] == 0
    after = later["beat_state"]
    assert after["beat_count"] >= 2  # 4 beats per second
    assert after["bar_position"] == pytest.approx(
        (after["beat_count"] + after["beat_phase"]) % 3, abs=1e-6)


@pytest.mark.parametrize(
    "body",
    [{"source": "link", "bpm": 10}, {"source": "link", "bpm": 301}, {"source": "ableton"},
     {"source": "link", "beats_per_bar": 17}, {"source": "link", "beats_per_bar": 0}, {}],
    ids=["bpm-low", "bpm-high", "bad-source", "bar-17", "bar-0", "empty"],
)
async def test_enable_validation_is_422(sim: Simulator, body: dict[str, Any]) -> None:
    """docs/scope.md §6 / §10.1: bpm 20–300, beats_per_bar 1–16, source link|midi_clock → else 422."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post(f"{TEMPO}/enable", json=body)
    assert response.status_code == 422


async def test_set_tempo_answers_at_once_and_the_status_follows(sim: Simulator) -> None:
    """docs/scope.md §10.1: set_tempo → 200 with the new bpm; the status may read the old bpm for
    up to ~100 ms; out of range → 422."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(f"{TEMPO}/enable", json={"source": "link", "bpm": 120})
        answer = await client.post(f"{TEMPO}/set_tempo", json={"bpm": 128})
        bad = await client.post(f"{TEMPO}/set_tempo", json={"bpm": 19})
        immediately = (await client.get(f"{TEMPO}/status")).json()["beat_state"]["bpm"]
        await asyncio.sleep(0.15)
        settled = (await client.get(f"{TEMPO}/status")).json()["beat_state"]["bpm"]
    assert answer.status_code == 200 and answer.json()["beat_state"]["bpm"] == 128
    assert bad.status_code == 422
    assert immediately in (120.0, 128.0)
    assert settled == 128.0


async def test_disable_keeps_beats_per_bar_and_reenable_restarts_the_count(sim: Simulator) -> None:
    """docs/scope.md §10.1: `beats_per_bar` survives disable; re-enabling restarts `beat_count`."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(f"{TEMPO}/enable", json={"source": "link", "bpm": 300, "beats_per_bar": 7})
        await asyncio.sleep(0.5)
        running = (await client.get(f"{TEMPO}/status")).json()["beat_state"]["beat_count"]
        disabled = await client.post(f"{TEMPO}/disable")
        status = (await client.get(f"{TEMPO}/status")).json()
        await client.post(f"{TEMPO}/enable", json={"source": "link", "bpm": 300, "beats_per_bar": 7})
        await asyncio.sleep(0.01)
        again = (await client.get(f"{TEMPO}/status")).json()["beat_state"]["beat_count"]
    assert running >= 2
    assert disabled.json() == {**OFF, "beats_per_bar": 7}
    assert status == {**OFF, "beats_per_bar": 7}
    assert again == 0


async def _viz_peer(sim: Simulator, sim_peer: Connect) -> Any:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(
            "/api/v1/pipeline/load",
            json={"pipeline_ids": ["controller-viz"], "load_params": {"height": 16, "width": 16}},
        )
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await asyncio.wait_for(peer.opened.wait(), 5)
    return peer


@pytest.mark.webrtc
async def test_tempo_update_reaches_webrtc_sessions_at_15_hz(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §3.4 / §10.1: while tempo is enabled, each WebRTC data channel gets
    `tempo_update` at about 15 Hz; none before enabling or after disabling."""
    peer = await _viz_peer(sim, sim_peer)
    await asyncio.sleep(0.2)
    assert not [m for m in peer.messages if m.get("type") == "tempo_update"]
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(f"{TEMPO}/enable", json={"source": "link", "bpm": 120})
        await asyncio.sleep(1.0)
        await client.post(f"{TEMPO}/disable")
    updates = [m for m in peer.messages if m.get("type") == "tempo_update"]
    assert 10 <= len(updates) <= 20, len(updates)
    assert set(updates[0]) == {"type", "bpm", "beat_phase", "bar_position", "beat_count", "is_playing"}
    assert updates[-1]["bpm"] == 120.0 and updates[-1]["is_playing"] is False
    count = len(updates)
    await asyncio.sleep(0.3)
    assert len([m for m in peer.messages if m.get("type") == "tempo_update"]) <= count + 1


@pytest.mark.webrtc
async def test_quantized_update_lands_on_the_beat(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §6 / §3.4: with tempo on and `quantize_mode` set, a `_quantized` message waits
    for the next boundary (`change_scheduled` with `delay_ms`, then `change_applied`);
    without tempo it applies at once."""
    peer = await _viz_peer(sim, sim_peer)
    session = sim.sessions[peer.session_id]
    await peer.send({"_quantized": True, "ctrl_input": {"button": ["KeyA"]}})
    await sim.wait_for(lambda s: session.ctrl["button"] == ["KeyA"], timeout=1.0)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(f"{TEMPO}/enable", json={"source": "link", "bpm": 60})  # 1 s per beat
    await peer.send({"quantize_mode": "beat"})
    await asyncio.sleep(0.1)
    await peer.send({"_quantized": True, "ctrl_input": {"button": ["KeyD"]}})
    await sim.wait_for(lambda s: any(m.get("type") == "change_scheduled" for m in peer.messages))
    scheduled = next(m for m in peer.messages if m.get("type") == "change_scheduled")
    assert 0 < scheduled["delay_ms"] <= 1000
    assert session.ctrl["button"] == ["KeyA"]
    await sim.wait_for(lambda s: {"type": "change_applied"} in peer.messages, timeout=2.0)
    await sim.wait_for(lambda s: session.ctrl["button"] == ["KeyD"], timeout=1.0)
    assert "_quantized" not in session.received
