"""Choosing a tempo source by name: the registry `build_source` reads.

Each entry makes a `BuiltSource`: the `TempoSource` itself and what else it can do — take a
proposed tempo (taps and OSC ``/showrunner/bpm`` while it plays), take taps that also set the
beat, count Link peers. A name without an entry is a `TempoSourceError` naming the ones there
are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from showrunner.errors import TempoSourceError
from showrunner.midi.clock import MidiClock
from showrunner.music.reading import TempoSource
from showrunner.sync.fixed import FixedTempo
from showrunner.sync.link import LinkTempo
from showrunner.sync.scope import ScopeTempo, ScopeTempoApi, ServerEvents
from showrunner.sync.tap import ManualTempo

__all__ = ["SOURCES", "BuiltSource", "SourceContext", "SourceOptions", "build_source"]

DEFAULT_BPM = 120.0  # a show without `bpm`


@dataclass(frozen=True)
class SourceOptions:
    """What the show (`tempo:`, `bpm`, `beats_per_bar`) and `run --tempo` ask for."""

    name: str = "fixed"
    bpm: float = DEFAULT_BPM
    beats_per_bar: int = 4
    scope_follows: str = "link"
    tap_reset: float = 2.0
    midi_device: str | None = None  # the device sending MIDI clock (part of its name)
    midi_api: str | None = None  # the MIDI system (alsa, jack, ...); None: the platform's


@dataclass(frozen=True)
class SourceContext:
    """What a source may use: the monotonic clock, and Scope's REST API and data channel (None
    over the headless transport)."""

    clock: Callable[[], float]
    scope_api: ScopeTempoApi | None = None
    scope_events: ServerEvents | None = None


@dataclass(frozen=True)
class BuiltSource:
    source: TempoSource
    propose: Callable[[float], Awaitable[None]] | None = None  # set the tempo
    tap: Callable[[float], float | None] | None = None  # a tap at a monotonic time (sets the beat
    # too); the bpm it set, None for the first of a count
    peers: Callable[[], int | None] | None = None  # other Link peers


Factory = Callable[[SourceOptions, SourceContext], BuiltSource]


def _fixed(options: SourceOptions, context: SourceContext) -> BuiltSource:
    return BuiltSource(FixedTempo(options.bpm, context.clock))


def _manual(options: SourceOptions, context: SourceContext) -> BuiltSource:
    source = ManualTempo(options.bpm, context.clock, name=options.name,
                         reset_after=options.tap_reset)
    return BuiltSource(source, propose=source.propose, tap=source.tap)


def _link(options: SourceOptions, context: SourceContext) -> BuiltSource:
    source = LinkTempo(options.bpm, options.beats_per_bar, context.clock)
    return BuiltSource(source, propose=source.propose, peers=lambda: source.peers)


def _scope(options: SourceOptions, context: SourceContext) -> BuiltSource:
    if context.scope_api is None:
        raise TempoSourceError("source scope needs a Scope server")
    source = ScopeTempo(context.scope_api, context.scope_events, bpm=options.bpm,
                        beats_per_bar=options.beats_per_bar, follows=options.scope_follows,
                        clock=context.clock)
    return BuiltSource(source, propose=source.propose)


def _midi(options: SourceOptions, context: SourceContext) -> BuiltSource:
    if options.midi_device is None:
        raise TempoSourceError("source midi needs the device sending clock: `tempo.midi_clock` "
                               "or `midi.device` in the show")
    return BuiltSource(MidiClock(options.midi_device, api=options.midi_api, clock=context.clock))


#: source name -> how it is made.
SOURCES: dict[str, Factory] = {
    "fixed": _fixed,
    "link": _link,
    "scope": _scope,
    "tap": _manual,
    "osc": _manual,
    "midi": _midi,
}


def build_source(options: SourceOptions, context: SourceContext) -> BuiltSource:
    """The source `options.name` names; TempoSourceError (one line) when there is none."""
    factory = SOURCES.get(options.name)
    if factory is None:
        known = ", ".join(SOURCES)
        raise TempoSourceError(f"no tempo source {options.name!r} in this build (there are: {known})")
    return factory(options, context)
