"""build_source: one factory per name; a name without one is a one-line error."""

from __future__ import annotations

import time

import pytest

from showrunner.errors import TempoSourceError
from showrunner.sync.link import LinkTempo
from showrunner.sync.sources import SOURCES, SourceContext, SourceOptions, build_source
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


def test_midi_is_not_in_this_build_and_scope_needs_a_session() -> None:
    assert "midi" not in SOURCES
    with pytest.raises(TempoSourceError, match=r"^no tempo source 'midi' in this build \(there are: "
                       r"fixed, link, scope, tap, osc\)$"):
        build_source(SourceOptions("midi"), CONTEXT)
    with pytest.raises(TempoSourceError, match=r"^source scope needs a Scope session$"):
        build_source(SourceOptions("scope"), CONTEXT)
