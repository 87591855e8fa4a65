"""The report's opening hours: open stretches of the week, open now, next change."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from showrunner.report.hours import hours_data, status, week
from showrunner.show.model import Hours

BERLIN = ZoneInfo("Europe/Berlin")


def _hours(*windows: dict[str, object]) -> Hours:
    return Hours.model_validate({"timezone": "Europe/Berlin", "open": list(windows)})


def test_weekday_hours() -> None:
    hours = _hours({"days": "weekdays", "start": "10:00", "end": "18:00"})
    monday = datetime(2026, 1, 5, 12, tzinfo=BERLIN)
    assert status(hours, monday) == (
        True, datetime(2026, 1, 5, 18, tzinfo=BERLIN), datetime(2026, 1, 6, 10, tzinfo=BERLIN)
    )
    assert week(hours)[0] == [(600, 1080)] and week(hours)[5] == []


def test_open_around_the_clock_never_closes() -> None:
    hours = _hours({"start": "00:00", "end": "24:00"})
    now = datetime(2026, 1, 5, 12, tzinfo=BERLIN)
    assert status(hours, now) == (True, None, None)
    assert week(hours) == [[(0, 1440)]] * 7
    data = hours_data(hours, now)
    assert data is not None and data["open_now"] is True and data["closes"] is None
