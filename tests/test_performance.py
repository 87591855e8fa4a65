"""Live inputs on a running show, end to end: OSC in, modulation out, the simulator over loopback."""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from showrunner.app import RunOptions, run
from showrunner.live.journal import read_journal
from showrunner.live.player import Player
from showrunner.music.modulation import map_value
from showrunner.sim import Simulator
from showrunner.testing import until

SHOW = """
title: modulated
defaults: {pipeline: controller-viz, kv_cache_attention_bias: 0.3}
inputs:
  level: {}
scenes:
  - name: first
    prompts: a pulsing light
    duration: 60
    modulate:
      kv_cache_attention_bias: {input: level, range: [0.1, 0.9], curve: ease-in}
"""


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sent(sim: Simulator, key: str, since: float) -> list[tuple[float, Any]]:
    return [(r["received_at"], r["message"][key]) for r in list(sim.records)
            if r["kind"] == "data" and isinstance(r["message"], dict) and key in r["message"]
            and r["received_at"] >= since]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.anyio
async def test_osc_input_at_200_per_second_reaches_scope_once_per_chunk(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    show = tmp_path / "show.yaml"
    show.write_text(SHOW)
    osc_port, control_port = _free_port(), _free_port(socket.SOCK_STREAM)
    players: list[Player] = []
    stop = asyncio.Event()
    journal = tmp_path / "run.jsonl"
    options = RunOptions(show, scope_url=sim_thread.url, osc_port=osc_port,
                         control_port=control_port, stdin_tty=False, journal_path=journal)
    runner = asyncio.create_task(run(options, stop_event=stop, on_player=players.append))
    await until(lambda: players and players[0].status().connection == "connected", timeout=20)
    player = players[0]
    interval = float(player.sink.chunk_interval)  # type: ignore[attr-defined]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    started = time.time()
    values = [((i * 37) % 101) / 100 for i in range(400)]  # 2 s of 200 messages/s
    t0 = time.monotonic()
    for i, value in enumerate(values):
        await asyncio.sleep(max(0.0, t0 + i / 200 - time.monotonic()))
        client.sendto(_osc("/showrunner/input/level", value), ("127.0.0.1", osc_port))
    sending = time.monotonic() - t0
    client.close()
    expected = round(map_value(values[-1], 0.1, 0.9, "ease-in"), 4)
    await until(lambda: (s := _sent(sim_thread, "kv_cache_attention_bias", started))
                and s[-1][1] == expected, timeout=5)
    await asyncio.sleep(3 * interval)  # nothing more comes once the input is still
    # what the page shows
    async with httpx.AsyncClient() as http:
        meters = (await http.get(f"http://127.0.0.1:{control_port}/api/inputs")).json()
    stop.set()
    assert await asyncio.wait_for(runner, 10) == 0
    sent = _sent(sim_thread, "kv_cache_attention_bias", started)
    written = [r["sent_at"] for r in read_journal(journal)
               if r["kind"] == "send" and r["sent_at"] >= started]
    # Received from the first one written after `started` on (one written just before it may
    # arrive after it; both times are this process's wall clock).
    every = [r["received_at"] for r in sim_thread.records
             if r["kind"] == "data" and r["received_at"] >= written[0]]
    gaps = [b - a for a, b in itertools.pairwise(every)]
    span = every[-1] - every[0]
    spacing = [b - a for a, b in itertools.pairwise(written)]
    print(f"\n200 msg/s for {sending:.2f} s: {len(sent)} modulation messages, {len(every)} data "
          f"messages in {span:.2f} s; chunk {interval * 1000:.1f} ms; written: gaps median "
          f"{statistics.median(spacing) * 1000:.1f} ms, min {min(spacing) * 1000:.1f} ms; "
          f"received: median {statistics.median(gaps) * 1000:.1f} ms, "
          f"min {min(gaps) * 1000:.1f} ms")
    assert sent[-1][1] == expected
    assert len(written) == len(every)
    assert min(spacing) >= interval - 0.003  # written at most once per chunk (timer tolerance)
    assert len(every) <= span / interval + 2  # and so received
    assert len(sent) < len(values)  # merged, not one per input message
    assert meters["inputs"] == [
        {"name": "level", "value": values[-1], "kind": "osc", "age": meters["inputs"][0]["age"]}
    ]


def _osc(address: str, value: float) -> bytes:
    builder = OscMessageBuilder(address=address)
    builder.add_arg(value)
    return bytes(builder.build().dgram)





MIDI_SHOW = """
title: midi desk
defaults: {pipeline: controller-viz}
midi: {device: desk perf1, api: jack}
inputs:
  fader: {}
controls:
  - {note: 36, do: go}
  - {cc: 21, input: fader}
scenes:
  - name: first
    prompts: one
    modulate:
      noise_scale: {input: fader, range: [0, 1]}
  - name: second
    cue: go
    prompts: two
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.anyio
async def test_a_midi_pad_presses_go_through_the_gate_and_a_fader_sets_an_input(
    jack: str, sim_thread: Simulator, tmp_path: Path
) -> None:
    import mido

    show = tmp_path / "show.yaml"
    show.write_text(MIDI_SHOW)
    device: Any = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("Desk perf1",
                                                                              virtual=True)
    players: list[Player] = []
    stop = asyncio.Event()
    journal = tmp_path / "run.jsonl"
    options = RunOptions(show, scope_url=sim_thread.url, stdin_tty=False, journal_path=journal)
    runner = asyncio.create_task(run(options, stop_event=stop, on_player=players.append))
    try:
        await until(lambda: players and players[0].status().connection == "connected", timeout=20)
        await until(lambda: any(r["kind"] == "midi" and "reading" in r["detail"]
                                for r in read_journal(journal)), timeout=10)
        started = time.time()
        device.send(mido.Message("control_change", control=21, value=127))
        await until(lambda: (s := _sent(sim_thread, "noise_scale", started)) and s[-1][1] == 1.0,
                    timeout=15)
        device.send(mido.Message("note_on", note=36, velocity=100))
        device.send(mido.Message("note_on", note=36, velocity=100))  # a bounce: debounced
        await until(lambda: players[0].status().scene == "second", timeout=15)
    finally:
        stop.set()
        device.close()
    assert await asyncio.wait_for(runner, 10) == 0
    presses = [r for r in read_journal(journal) if r.get("source") == "midi"]
    # the bounce is refused at once, the press is journaled when the player has taken it
    assert sorted((r["command"], r["applied"], r.get("reason")) for r in presses) == [
        ("go", False, "debounced"), ("go", True, None)
    ]
