from __future__ import annotations

from typing import get_args

import pytest

from showrunner.music.lfo import SHAPES, lfo_value
from showrunner.show.model import LfoShape


def test_the_show_offers_every_shape() -> None:
    assert set(get_args(LfoShape)) == set(SHAPES)


@pytest.mark.parametrize(
    ("shape", "values"),
    [
        ("sine", [0.0, 0.5, 1.0, 0.5]),
        ("triangle", [0.0, 0.5, 1.0, 0.5]),
        ("saw", [0.0, 0.25, 0.5, 0.75]),
        ("ramp-down", [1.0, 0.75, 0.5, 0.25]),
        ("square", [1.0, 1.0, 0.0, 0.0]),
    ],
)
def test_shapes_over_one_cycle_of_four_beats(shape: str, values: list[float]) -> None:
    got = [lfo_value(shape, beat, 4.0) for beat in (0, 1, 2, 3)]  # type: ignore[arg-type]
    assert got == pytest.approx(values)
    # locked to the beat: the next cycle repeats it
    assert [lfo_value(shape, 8 + b, 4.0) for b in (0, 1, 2, 3)] == pytest.approx(values)  # type: ignore[arg-type]


def test_phase_shifts_the_cycle() -> None:
    assert lfo_value("saw", 0.0, 4.0, phase=0.25) == pytest.approx(0.25)


def test_random_holds_one_value_per_cycle_the_same_on_every_run() -> None:
    first = [lfo_value("random", b, 2.0) for b in (0.0, 0.5, 1.9)]
    assert len(set(first)) == 1 and 0 <= first[0] < 1
    cycles = {lfo_value("random", 2.0 * c, 2.0) for c in range(50)}
    assert len(cycles) == 50
    assert lfo_value("random", 4.1, 2.0) == lfo_value("random", 4.1, 2.0)


def test_a_cycle_of_zero_beats_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 0 beats"):
        lfo_value("sine", 1.0, 0.0)
