"""Wires what a performance plays to into one run: live inputs (OSC, MIDI, beat LFOs), the
modulation that maps them onto the picture, and the MIDI controller's controls.

Kept out of `app.py` so the run's wiring stays one call: `start_performance` starts the
modulator and (when the show names a `midi.device`) the MIDI input as tasks of the run's exit
stack, points OSC's ``/showrunner/input/<name>`` at the inputs and gives the control page its
meters and learn mode. MIDI commands go through the command gate (source ``midi``): debounced
and journaled like every other press.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from showrunner.control.gate import Commands
from showrunner.control.osc import OscControl
from showrunner.learn import LearnError, learn, mapping_for
from showrunner.live.inputs import BeatClock, InputKind, LiveInputs, fixed_beats
from showrunner.live.modulation import Modulator
from showrunner.live.player import Player
from showrunner.midi.controls import Controls, Press, SetInput
from showrunner.midi.ports import MidiInput, MidiMessage

__all__ = ["Performance", "start_performance"]

log = logging.getLogger(__name__)


@dataclass
class Performance:
    """The live inputs of one run, and the MIDI controller when the show names one."""

    inputs: LiveInputs
    modulator: Modulator
    controls: Controls
    port: MidiInput | None = None
    show_path: Path | None = None  # where learn mode writes
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def set_input(self, name: str, value: float) -> bool:
        """Set an input from the operator page (a slider); False when the show refuses it."""
        return self.inputs.set(name, value, InputKind.PAGE)

    async def learn(self, action: str, name: str | None) -> dict[str, Any]:
        """Map the last control seen to `action` in the show file (learn mode); the entry
        written. LearnError (a ShowrunnerError) says why not."""
        last = self.controls.last
        if self.port is None:
            raise LearnError("the show names no MIDI device (`midi: {device: …}`)")
        if last is None:
            raise LearnError("press a control on the MIDI device first")
        if self.show_path is None:
            raise LearnError("this run has no show file to write")
        entry = mapping_for(last, action, name)
        await asyncio.to_thread(learn, self.show_path, entry)
        return entry

    def meters(self) -> dict[str, Any]:
        """What the page shows: every input's value, and the MIDI device and last control."""
        last = self.controls.last
        return {
            "inputs": self.inputs.meters(),
            "midi": None if self.port is None else {
                "device": self.port.device,
                "port": self.port.port_name,
                "last": None if last is None else {
                    "kind": last.kind.value, "number": last.number, "channel": last.channel,
                    "value": last.value,
                },
            },
        }

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def start_performance(
    stack: AsyncExitStack,
    player: Player,
    commands: Commands,
    *,
    chunk_interval: Callable[[], float],
    osc: OscControl | None = None,
    show_path: Path | None = None,
    beat: BeatClock | None = None,
) -> Performance:
    """Start the run's live inputs, modulation and MIDI controller; all stop with `stack`.

    `beat` returns the current beat for the LFOs (a live tempo source's); None counts the show's
    fixed bpm from now."""
    clock = player.clock
    if beat is None:
        beat = fixed_beats(player.timeline.show.bpm, clock.monotonic(), clock.monotonic)
    inputs = LiveInputs(lambda: player.timeline.show.inputs, beat, clock.monotonic)
    perf = Performance(inputs, Modulator(player, inputs, clock, interval=chunk_interval),
                       Controls(lambda: player.timeline.show.controls), show_path=show_path)
    perf.spawn(perf.modulator.run())
    if osc is not None:
        osc.inputs = lambda name, value: inputs.set(name, value, InputKind.OSC)
        stack.callback(setattr, osc, "inputs", None)
    midi = player.timeline.show.midi
    if midi is not None:
        perf.port = MidiInput(midi.device, lambda m: _heard(perf, commands, m), api=midi.api,
                              on_state=lambda text: player.log.record("midi", text=text, detail=text))
        perf.spawn(perf.port.run())
    stack.push_async_callback(_stop, perf)
    return perf


def _heard(perf: Performance, commands: Commands, message: MidiMessage) -> None:
    action = perf.controls.action(message)
    if isinstance(action, SetInput):
        perf.inputs.set(action.name, action.value, InputKind.MIDI)
    elif isinstance(action, Press):
        perf.spawn(commands.run(action.command, action.arg, source="midi"))


async def _stop(perf: Performance) -> None:
    tasks = list(perf.tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task
