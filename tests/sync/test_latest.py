"""LatestReading: the newest reading run on to now; bar and beat count from 1."""

from __future__ import annotations

import pytest

from showrunner.music.reading import TempoReading
from showrunner.sync.latest import LatestReading


def test_the_beat_runs_on_while_playing_and_stands_while_stopped() -> None:
    latest = LatestReading(TempoReading(120.0, 6.5, 10.0, True, "link"), beats_per_bar=4)
    status = latest.status(11.0)  # two beats later: beat 8.5 = bar 3, beat 1
    assert (status.beat, status.bar, status.beat_in_bar) == (8.5, 3, 1)
    assert status.to_json() == {
        "source": "link", "bpm": 120.0, "beat": 8.5, "bar": 3, "beat_in_bar": 1,
        "beats_per_bar": 4, "playing": True, "peers": None, "error": None,
    }
    latest.update(TempoReading(90.0, 9.0, 12.0, False, "link"))
    assert latest.beat_at(20.0) == 9.0
    assert latest.status(20.0).beat_in_bar == 2


@pytest.mark.parametrize(
    "beats_per_bar, beat, bar, in_bar", [(3, 0.0, 1, 1), (3, 5.99, 2, 3), (7, 7.0, 2, 1)]
)
def test_bars(beats_per_bar: int, beat: float, bar: int, in_bar: int) -> None:
    status = LatestReading(TempoReading(100.0, beat, 0.0), beats_per_bar).status(0.0)
    assert (status.bar, status.beat_in_bar) == (bar, in_bar)
