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
