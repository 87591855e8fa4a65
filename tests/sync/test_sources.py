"""build_source: one factory per name; a name without one is a one-line error."""

from __future__ import annotations

import time

import pytest

from showrunner.errors import TempoSourceError
from showrunner.midi.clock import MidiClock
from showrunner.sync.link import LinkTempo
from showrunner.sync.sources import SourceContext, SourceOptions, build_source
from showrunner.sync.tap import ManualTempo

CONTEXT = SourceContext(clock=time.monotonic)


def test_each_name_builds_its_source() -> None:
    assert build_source(SourceOptions("fixed"), CONTEXT).source.name == "fixed"
    tap = build_source(SourceOptions("tap", bpm=100), CONTEXT)
    osc = build_source(SourceOptions("osc"), CONTEXT)
    assert isinstance(tap.source, ManualTempo) and tap.tap is not None and tap.propose is not None
    assert (tap.source.name, osc.source.name) == ("tap", "osc")
    link = build_source(SourceOptions("link", bpm=128, beats_per_bar=3), CONTEXT)
    assert isinstance(link.source, LinkTempo) and link.peers is not None
    assert link.peers() is None  # not joined: nothing is sent before `run`


def test_midi_needs_a_device_and_scope_needs_a_session() -> None:
    """The MIDI clock reads the device the show names (`tempo.midi_clock`, else `midi.device`);
    without one it is a one-line error, and so is the Scope source without a session."""
    with pytest.raises(TempoSourceError, match=r"^source midi needs the device sending clock: "
                       r"`tempo.midi_clock` or `midi.device` in the show$"):
        build_source(SourceOptions("midi"), CONTEXT)
    clock = build_source(SourceOptions("midi", midi_device="clock", midi_api="jack"), CONTEXT)
    assert isinstance(clock.source, MidiClock) and clock.propose is None
    assert (clock.source.device, clock.source.api) == ("clock", "jack")
    with pytest.raises(TempoSourceError, match=r"^source scope needs a Scope server$"):
        build_source(SourceOptions("scope"), CONTEXT)
    with pytest.raises(TempoSourceError, match=r"^no tempo source 'ableton' in this build \(there "
                       r"are: fixed, link, scope, tap, osc, midi\)$"):
        build_source(SourceOptions("ableton"), CONTEXT)
