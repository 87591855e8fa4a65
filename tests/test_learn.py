"""Learn mode: the entry a pressed control makes, the show file edited in place, and the whole
loop on the operator page in a real browser (a JACK port as the device, the hot reload taking
the new mapping up)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, needs_chromium

from showrunner.app import RunOptions, run
from showrunner.learn import LearnError, learn, mapping_for
from showrunner.live.player import Player
from showrunner.midi.ports import MidiKind, MidiMessage
from showrunner.sim import Simulator
from showrunner.testing import until

SHOW = """\
# a show to learn on
title: learning
defaults: {pipeline: controller-viz}
midi: {device: learn desk, api: jack}   # the desk
inputs:
  fader: {}
controls:
  - {note: 36, do: go}   # the big pad
scenes:
  - name: first
    prompts: one
  - name: second
    cue: go
    prompts: two
"""


def test_an_entry_per_kind_of_control() -> None:
    assert mapping_for(MidiMessage(MidiKind.NOTE, 10, 40, 99), "goto", "second") == {
        "note": 40, "channel": 10, "goto": "second"}
    assert mapping_for(MidiMessage(MidiKind.CC, 1, 21, 5), "input", "fader") == {
        "cc": 21, "channel": 1, "input": "fader"}
    assert mapping_for(MidiMessage(MidiKind.PROGRAM, 2, 7), "panic", None) == {
        "program": 7, "channel": 2, "do": "panic"}


@pytest.mark.parametrize(
    ("message", "action", "name", "why"),
    [
        (MidiMessage(MidiKind.CLOCK), "go", None, "press a pad"),
        (MidiMessage(MidiKind.NOTE, 1, 1, 9), "jump", None, "unknown action 'jump'"),
        (MidiMessage(MidiKind.NOTE, 1, 1, 9), "goto", None, "goto needs name"),
        (MidiMessage(MidiKind.NOTE, 1, 1, 9), "go", "x", "go takes no name"),
        (MidiMessage(MidiKind.NOTE, 1, 1, 9), "input", "fader", "only a `cc` can set an input"),
    ],
)
def test_what_cannot_be_learned_says_why(message: MidiMessage, action: str, name: str | None,
                                         why: str) -> None:
    with pytest.raises(LearnError, match=why):
        mapping_for(message, action, name)


def test_learning_writes_the_file_keeping_comments_and_replaces_a_control_learned_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "show.yaml"
    path.write_text(SHOW)
    learn(path, {"note": 40, "channel": 1, "goto": "second"})
    learn(path, {"note": 36, "do": "panic"})
    text = path.read_text()
    assert text == SHOW.replace(
        "  - {note: 36, do: go}   # the big pad\n",
        "  - {note: 36, do: panic} # the big pad\n  - {note: 40, channel: 1, goto: second}\n",
    )


def test_a_mapping_the_show_would_refuse_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    path.write_text(SHOW)
    with pytest.raises(LearnError, match=r"controls\[1\]\.goto: unknown scene 'secnd'"):
        learn(path, {"note": 41, "goto": "secnd"})
    assert path.read_text() == SHOW


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@needs_chromium
@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.anyio
async def test_learn_mode_on_the_page_maps_a_pad_that_then_jumps(
    jack: str, sim_thread: Simulator, tmp_path: Path
) -> None:
    import mido

    path = tmp_path / "show.yaml"
    path.write_text(SHOW)
    device: Any = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("Learn Desk 1",
                                                                              virtual=True)
    port = _free_port()
    players: list[Player] = []
    stop = asyncio.Event()
    options = RunOptions(path, scope_url=sim_thread.url, stdin_tty=False, control_port=port)
    runner = asyncio.create_task(run(options, stop_event=stop, on_player=players.append))
    try:
        await until(lambda: players and players[0].status().connection == "connected", timeout=20)
        async with chromium(tmp_path) as browser:
            await browser.open(f"http://127.0.0.1:{port}/")
            await browser.wait_for("!document.getElementById('learn').hidden")
            await browser.wait_for("document.getElementById('learn-device').textContent"
                                   " === 'learn desk'", timeout=10)
            for _ in range(10):  # pressed again if the first press came too early, as a person would
                device.send(mido.Message("note_on", channel=2, note=40, velocity=90))
                try:
                    await browser.wait_for("document.getElementById('learn-last').textContent"
                                           " === 'note 40 ch 3'", timeout=3)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("the page never showed the pressed note")
            choice = json.dumps(json.dumps({"action": "goto", "name": "second"}, separators=(",", ":")))
            await browser.wait_for(f"[...document.getElementById('learn-action').options]"
                                   f".some(o => o.value === {choice})")
            await browser.evaluate(f"document.getElementById('learn-action').value = {choice}")
            await browser.click("#learn-map")
            answer = await browser.wait_for(
                "document.getElementById('learn-answer').dataset.ok === 'true'"
                " && document.getElementById('learn-answer').textContent")
            assert "written to the show" in answer
            meters = await browser.evaluate(
                "[...document.querySelectorAll('#meters li')].map(li => li.dataset.name)")
            assert meters == ["fader"]
            # the fader's slider sets the input from the page
            await browser.evaluate(
                "(() => { const s = document.querySelector('#meters .meter-slider');"
                " s.value = '0.4'; s.dispatchEvent(new Event('input')); })()")
            await browser.wait_for("document.querySelector('#meters li').dataset.kind === 'page'"
                                   " && document.querySelector('#meters li').dataset.value === '0.4'")
        assert "  - {note: 40, channel: 3, goto: second}\n" in path.read_text()
        assert "# the big pad" in path.read_text()
        # the hot reload takes the mapping up: the pad now jumps
        await until(lambda: any(c.note == 40 for c in players[0].timeline.show.controls), timeout=10)
        device.send(mido.Message("note_on", channel=2, note=40, velocity=90))
        await until(lambda: players[0].status().scene == "second", timeout=15)
    finally:
        stop.set()
        device.close()
    assert await asyncio.wait_for(runner, 10) == 0
