"""check_bpm: 20 to 999 bpm, everything else one line."""

from __future__ import annotations

import pytest

from showrunner.sync.bpm import check_bpm


@pytest.mark.parametrize("value, expected", [(20, 20.0), (128.5, 128.5), ("999", 999.0)])
def test_good_values(value: object, expected: float) -> None:
    assert check_bpm(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        (19.9, "a tempo is 20 to 999 bpm, not 19.9"),
        (1000, "a tempo is 20 to 999 bpm, not 1000"),
        (float("nan"), "a tempo is 20 to 999 bpm, not nan"),
        ("fast", "a tempo is a number of bpm, not 'fast'"),
        (True, "a tempo is a number of bpm, not bool"),
        (None, "a tempo is a number of bpm, not NoneType"),
    ],
)
def test_bad_values_say_why_in_one_line(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_bpm(value)
    assert str(caught.value) == message
