from __future__ import annotations

from typing import get_args

import pytest

from showrunner.music.modulation import CURVES, Smoother, apply_curve, map_value
from showrunner.show.model import Curve


def test_the_show_offers_every_curve() -> None:
    assert set(get_args(Curve)) == set(CURVES)


@pytest.mark.parametrize(("curve", "half"), [("linear", 0.5), ("ease-in", 0.25), ("ease-out", 0.75),
                                             ("ease-in-out", 0.5)])
def test_curves_keep_the_ends_and_bend_the_middle(curve: str, half: float) -> None:
    assert apply_curve(curve, 0.0) == 0.0  # type: ignore[arg-type]
    assert apply_curve(curve, 1.0) == 1.0  # type: ignore[arg-type]
    assert apply_curve(curve, 0.5) == pytest.approx(half)  # type: ignore[arg-type]


def test_map_value_clips_and_may_invert() -> None:
    assert map_value(0.5, 0.2, 0.6) == pytest.approx(0.4)
    assert map_value(7.0, 0.2, 0.6) == pytest.approx(0.6)
    assert map_value(-1.0, 0.2, 0.6) == pytest.approx(0.2)
    assert map_value(0.25, 1.0, 0.0) == pytest.approx(0.75)
    assert map_value(float("nan"), 0.2, 0.6) == pytest.approx(0.2)


def test_smoother_attack_and_release() -> None:
    s = Smoother(attack=0.1, release=1.0)
    assert s.step(0.0, 0.0) == 0.0  # the first target is taken as is
    up = s.step(1.0, 0.1)  # one time constant: 63 %
    assert up == pytest.approx(1 - 0.36787944, rel=1e-6)
    down = s.step(0.0, 0.1)  # release is ten times slower
    assert down == pytest.approx(up * 0.90483742, rel=1e-6)


def test_smoother_without_times_follows_at_once() -> None:
    s = Smoother()
    assert [s.step(v, 0.01) for v in (0.3, 0.9, 0.1)] == [0.3, 0.9, 0.1]
