"""Ableton Link: two peers on one machine agree on tempo and phase, and a proposed tempo
reaches the other. Each run is in a network namespace with only loopback (tests/netns.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netns import run_isolated

HERE = Path(__file__).resolve().parent


def test_two_link_peers_agree_on_tempo_and_phase() -> None:
    done = run_isolated(HERE / "link_peers.py", timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["sources"] == ["link", "link"]
    assert result["peers"] == [1, 1]
    # One session, one tempo (Link decides whose: 120 or 90).
    assert result["bpm"][0] == pytest.approx(result["bpm"][1], abs=0.01)
    assert min(abs(result["bpm"][0] - 120.0), abs(result["bpm"][0] - 90.0)) < 0.01
    a, b = result["beat"]
    assert a == pytest.approx(b, abs=0.05)  # the same beat (1/20 beat = 25 ms at 120 bpm)
    assert abs((a % 4) - (b % 4)) < 0.05  # and the same place in the bar (quantum 4)
    # A tempo proposed by one peer is the other's within half a second.
    assert result["bpm_after"] == pytest.approx(133.0, abs=0.01)
    assert result["followed_after"] < 0.5
    assert result["readings_per_beat"] >= 3  # four a beat
    # Taps on one peer propose their tempo to the session: the other follows.
    a_bpm, b_bpm = result["tapped"]
    assert a_bpm == pytest.approx(b_bpm, abs=0.01)
    assert 170 < a_bpm < 230  # taps 0.3 s apart: 200 bpm


def test_a_run_with_link_shows_its_peers_and_follows_and_sets_the_session_tempo(
    tmp_path: Path,
) -> None:
    """`run --tempo link` (the app, its status API) beside another Link peer."""
    done = run_isolated(HERE / "link_run.py", str(tmp_path), timeout=90)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])  # after the run's own lines
    joined = result["joined"]
    assert (joined["source"], joined["peers"], joined["playing"], joined["error"]) == (
        "link", 1, True, None)
    assert result["followed"]["bpm"] == pytest.approx(140.0, abs=0.01)
    assert result["answer"] == {"command": "bpm", "applied": True, "bpm": 150.0}
    assert result["peer_bpm"] == pytest.approx(150.0, abs=0.01)
    assert result["exit"] == 0
    assert result["warned"] == []
