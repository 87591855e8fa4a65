"""Opening hours: open/closed at a moment and the next change, on the cron arithmetic."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from showrunner.live.hours import OpeningHours
from showrunner.show.model import Hours

BERLIN = ZoneInfo("Europe/Berlin")


def _hours(*windows: dict[str, object], closed: str = "pause") -> OpeningHours:
    return OpeningHours(
        Hours.model_validate({"timezone": "Europe/Berlin", "open": list(windows), "closed": closed})
    )


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    # January 2026: the 5th is a Monday.
    return datetime(2026, 1, day, hour, minute, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (_at(5, 9, 59), False),
        (_at(5, 10, 0), True),
        (_at(5, 17, 59), True),
        (_at(5, 18, 0), False),
        (_at(10, 12), False),  # Saturday
    ],
    ids=["before", "at-opening", "before-closing", "at-closing", "weekend"],
)
def test_weekday_window(at: datetime, is_open: bool) -> None:
    hours = _hours({"days": "weekdays", "start": "10:00", "end": "18:00"})
    assert hours.is_open(at) is is_open


def test_next_change_alternates() -> None:
    hours = _hours({"days": "weekdays", "start": "10:00", "end": "18:00"})
    assert hours.next_change(_at(5, 9)) == _at(5, 10)
    assert hours.next_change(_at(5, 10)) == _at(5, 18)
    assert hours.next_change(_at(9, 19)) == _at(12, 10)  # Friday night -> Monday


def test_window_past_midnight_closes_the_next_day() -> None:
    hours = _hours({"days": ["fri"], "start": "22:00", "end": "02:00"})
    assert hours.is_open(_at(9, 23))  # Friday
    assert hours.is_open(_at(10, 1, 30))  # Saturday early
    assert not hours.is_open(_at(10, 2))
    assert not hours.is_open(_at(10, 23))  # Saturday is not a listed day
    assert hours.next_change(_at(9, 23)) == _at(10, 2)


def test_end_at_midnight() -> None:
    hours = _hours({"start": "20:00", "end": "24:00"})
    assert hours.is_open(_at(5, 23, 59))
    assert not hours.is_open(_at(6, 0, 0))
    assert hours.next_change(_at(5, 21)) == _at(6, 0)


def test_a_whole_day_window_is_open_all_day() -> None:
    """00:00-24:00 closes at the moment it opens again: open around the clock on its days."""
    daily = _hours({"start": "00:00", "end": "24:00"})
    for at in (_at(5, 0), _at(5, 12), _at(5, 23, 59), _at(10, 0), _at(11, 23, 59)):
        assert daily.is_open(at), at
    assert daily.next_change(_at(5, 12)) is None
    weekdays = _hours({"days": "weekdays", "start": "00:00", "end": "24:00"})
    assert weekdays.is_open(_at(5, 12)) and weekdays.is_open(_at(9, 23, 59))  # Mon, Fri
    assert not weekdays.is_open(_at(10, 12))  # Saturday
    assert weekdays.next_change(_at(8, 12)) == _at(10, 0)  # Thursday -> Saturday 00:00
    assert weekdays.next_change(_at(10, 12)) == _at(12, 0)  # -> Monday 00:00


def test_overlapping_windows_merge() -> None:
    hours = _hours({"start": "10:00", "end": "14:00"}, {"start": "12:00", "end": "18:00"})
    assert hours.is_open(_at(5, 13))
    assert hours.next_change(_at(5, 11)) == _at(5, 18)


def test_closed_scene_and_repr() -> None:
    hours = _hours({"start": "10:00", "end": "18:00"}, closed="night")
    assert hours.closed_scene == "night"
    assert repr(hours) == "OpeningHours([daily:10:00-18:00], tz='Europe/Berlin', closed='night')"
    assert _hours({"start": "10:00", "end": "18:00"}).closed_scene is None


def test_naive_datetimes_are_refused() -> None:
    hours = _hours({"start": "10:00", "end": "18:00"})
    with pytest.raises(ValueError):
        hours.is_open(datetime(2026, 1, 5, 12))


def test_local_zone_when_the_show_names_none() -> None:
    hours = OpeningHours(Hours.model_validate({"open": [{"start": "10:00", "end": "18:00"}]}))
    assert hours.tz is not None


@pytest.mark.parametrize("at", [_at(5, 0, 0), _at(5, 12), _at(6, 23, 59), _at(11, 0, 0)])
def test_open_all_day_every_day(at: datetime) -> None:
    hours = _hours({"start": "00:00", "end": "24:00"})
    assert hours.is_open(at)
    assert hours.next_change(at) is None


def test_open_all_day_on_weekdays() -> None:
    hours = _hours({"days": "weekdays", "start": "00:00", "end": "24:00"})
    assert hours.is_open(_at(8, 23, 59))  # Thursday night into Friday
    assert hours.is_open(_at(9, 0, 0))
    assert not hours.is_open(_at(10, 0, 0))  # Saturday
    assert hours.next_change(_at(6, 12)) == _at(10, 0)
    assert hours.next_change(_at(10, 12)) == _at(12, 0)
