"""The tempo map: beats and times across tempo changes and phase corrections."""

from __future__ import annotations

import pytest

from showrunner.music.reading import TempoReading
from showrunner.music.tempo import JUMP_BEATS, TempoMap


def test_fixed_tempo_maps_beats_and_bars() -> None:
    tempo = TempoMap.fixed(120.0, at=10.0, beats_per_bar=4)
    assert tempo.beat_at(10.0) == 0.0
    assert tempo.beat_at(12.0) == 4.0
    assert tempo.bar_at(14.0) == 2.0
    assert tempo.time_of_beat(8.0) == 14.0
    assert tempo.next_boundary(12.1, 4) == 8.0
    assert tempo.next_boundary(12.0, 4) == 4.0  # on a bar line: that bar line
    assert tempo.warp(11.0, 3.0, 120.0) == 14.0  # the nominal tempo: exactly t + seconds


def test_tempo_change_keeps_the_beat_continuous_and_moves_future_beats() -> None:
    tempo = TempoMap.fixed(120.0, at=0.0)
    assert tempo.time_of_beat(32.0) == pytest.approx(16.0)
    # At t=8 s (beat 16) the tempo becomes 128: the beat there stays 16.
    assert tempo.feed(TempoReading(128.0, 16.0, 8.0))
    assert tempo.beat_at(8.0) == pytest.approx(16.0)
    assert tempo.beat_at(7.0) == pytest.approx(14.0)  # the past is not rewritten
    assert tempo.time_of_beat(32.0) == pytest.approx(8.0 + 16 * 60 / 128)
    # 16 nominal seconds (32 beats at 120) from t=0 end on beat 32, now sooner.
    assert tempo.warp(0.0, 16.0, 120.0) == pytest.approx(8.0 + 7.5)
    assert tempo.bpm() == 128.0


def test_a_small_phase_error_is_absorbed_over_one_beat() -> None:
    tempo = TempoMap.fixed(120.0, at=0.0)
    # The source says beat 4.1 at t=2 (the map has 4.0): the grid slides over the next beat.
    assert tempo.feed(TempoReading(120.0, 4.1, 2.0))
    assert tempo.beat_at(2.0) == pytest.approx(4.0)  # no jump
    assert tempo.beat_at(2.25) == pytest.approx(4.0 + 0.55)  # a little faster meanwhile
    assert tempo.beat_at(2.5) == pytest.approx(5.1)  # caught up one beat later
    assert tempo.beat_at(3.0) == pytest.approx(6.1)
    assert tempo.time_of_beat(8.1) == pytest.approx(4.0)


def test_a_large_phase_error_moves_the_grid_at_once() -> None:
    tempo = TempoMap.fixed(120.0, at=0.0)
    assert tempo.feed(TempoReading(120.0, 4.0 + JUMP_BEATS + 0.5, 2.0))
    assert tempo.beat_at(2.0) == pytest.approx(4.75)


def test_readings_that_agree_or_come_late_change_nothing() -> None:
    tempo = TempoMap.fixed(120.0, at=0.0)
    assert not tempo.feed(TempoReading(120.0, 8.0, 4.0))  # agrees
    assert tempo.feed(TempoReading(126.0, 10.0, 5.0))
    assert not tempo.feed(TempoReading(90.0, 9.0, 4.5))  # older than the last one
    assert not tempo.feed(TempoReading(0.0, 12.0, 6.0))  # nonsense
    assert tempo.bpm() == 126.0
    assert len(tempo.segments) == 2


def test_a_new_reading_replaces_a_pending_correction() -> None:
    tempo = TempoMap.fixed(120.0, at=0.0)
    tempo.feed(TempoReading(120.0, 4.1, 2.0))  # correction planned until 2.5 s
    assert not tempo.feed(TempoReading(120.0, 4.1 + 0.2 * 2, 2.2))  # the source, on its way
    assert tempo.beat_at(3.0) == pytest.approx(6.1)  # the correction still completes
    tempo.feed(TempoReading(60.0, tempo.beat_at(2.3), 2.3))
    assert all(s.at <= 2.3 for s in tempo.segments)
    assert tempo.time_of_beat(tempo.beat_at(2.3) + 1) == pytest.approx(3.3)


def test_an_empty_map_says_so() -> None:
    tempo = TempoMap()
    assert tempo.empty
    with pytest.raises(LookupError):
        tempo.beat_at(0.0)


def test_a_moment_just_past_a_boundary_may_count_as_on_it() -> None:
    tempo = TempoMap.fixed(120.0, at=0.0)
    assert tempo.next_boundary(2.003, 4) == 8.0  # 3 ms past bar 1: the next bar
    assert tempo.next_boundary(2.003, 4, slack=0.005) == 4.0  # within the slack: that bar


def test_a_jump_renumbers_the_beats_and_what_was_on_a_line_goes_to_the_next_line() -> None:
    """A transport restart (MIDI start, a new Link session) renumbers the beats: a musical time
    counted from before it keeps its beats to go, and what was on a bar or beat line of the old
    count lands on the next such line of the new one (never at a beat of the old numbering,
    which would be minutes away or long past)."""
    tempo = TempoMap.fixed(120.0, at=0.0, beat=800.0)
    assert tempo.jumped(0.0) == 0.0
    assert tempo.feed(TempoReading(120.0, 0.0, 3.0))  # at 3 s the count was 806: restarted at 0
    assert tempo.jumps == ((3.0, -806.0),)
    assert tempo.jumped(0.0) == -806.0 and tempo.jumped(3.0) == 0.0
    assert tempo.recount(808.0, -806.0) == 4.0  # a bar line: the next bar line of the new count
    assert tempo.recount(807.0, -806.0) == 1.0  # a beat line: the next beat line
    assert tempo.recount(807.3, -806.0) == pytest.approx(1.3)  # off the grid: beats to go kept
    # Eight beats (two bars) from the show's start at 0 s (beat 800) end on the new bar line.
    assert tempo.warp(0.0, 4.0, 120.0) == pytest.approx(5.0)
    assert tempo.warp(3.5, 1.0, 120.0) == pytest.approx(4.5)  # after the jump: as before


def test_jumps_are_counted_past_the_kept_history() -> None:
    """The player tells a jump by the count going up; the list keeps only the last ones, so a
    count taken from its length would stop moving after a few thousand transport restarts."""
    tempo = TempoMap.fixed(120.0, at=0.0)
    for n in range(4100):
        assert tempo.feed(TempoReading(120.0, 10.0 * (n % 2), 1.0 + n))
    assert tempo.jump_count == 4100 and len(tempo.jumps) == 4096
    assert tempo.feed(TempoReading(120.0, 500.0, 5000.0))
    assert tempo.jump_count == 4101
