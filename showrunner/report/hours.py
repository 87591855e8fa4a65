"""Opening hours for the report: the week as open stretches per day, whether the installation is
open at a given moment and when it next opens.

Pure: the moment comes in as an argument (the CLI passes the time it runs), so a report
rendered twice with the same `now` is the same. The player's own scheduler (live/hours.py)
decides when to open and close; this module only describes the same `hours:` block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from showrunner.show.model import Hours

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_TITLES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY = 24 * 60


def _minutes(text: str) -> int:
    hour, minute = (int(part) for part in text.split(":"))
    return hour * 60 + minute


@dataclass(frozen=True)
class Stretch:
    """One open window on one weekday, in minutes from that day's midnight (end may pass 1440)."""

    day: int  # Monday = 0
    start: int
    end: int


def stretches(hours: Hours) -> list[Stretch]:
    out: list[Stretch] = []
    for window in hours.open:
        start, end = _minutes(window.start), _minutes(window.end)
        if end <= start:
            end += _DAY  # runs past midnight
        out.extend(Stretch(day, start, end) for day in window.weekdays)
    return out


def week(hours: Hours) -> list[list[tuple[int, int]]]:
    """Per weekday (Monday first), the open stretches within that day as (start, end) minutes;
    a stretch past midnight shows on the next day from 0:00. Overlaps are merged."""
    days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for s in stretches(hours):
        days[s.day].append((s.start, min(s.end, _DAY)))
        if s.end > _DAY:
            days[(s.day + 1) % 7].append((0, s.end - _DAY))
    merged: list[list[tuple[int, int]]] = []
    for spans in days:
        out: list[tuple[int, int]] = []
        for a, b in sorted(spans):
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        merged.append(out)
    return merged


def _zone(hours: Hours, now: datetime) -> tzinfo:
    if hours.timezone:
        return ZoneInfo(hours.timezone)
    zone = now.tzinfo
    assert zone is not None
    return zone  # the machine's local time: what `now` was given in


def _openings(hours: Hours, day: date, zone: tzinfo) -> list[tuple[datetime, datetime]]:
    """Open (start, end) of every window that opens on `day`, as wall-clock times in `zone`."""
    out = []
    for s in stretches(hours):
        if s.day == day.weekday():
            start = datetime.combine(day, time(s.start // 60, s.start % 60), zone)
            out.append((start, start + timedelta(minutes=s.end - s.start)))
    return out


def _covering(hours: Hours, at: datetime, zone: tzinfo) -> list[tuple[datetime, datetime]]:
    local = at.astimezone(zone)
    spans = _openings(hours, local.date() - timedelta(days=1), zone) + _openings(hours, local.date(), zone)
    return [(a, b) for a, b in spans if a <= local < b]


def status(hours: Hours, now: datetime) -> tuple[bool, datetime | None, datetime | None]:
    """(open at `now`, when it closes if open, when it next opens) for an aware `now`; an
    installation open around the clock never closes (None, None)."""
    if now.tzinfo is None:
        raise ValueError("opening hours need an aware datetime")
    zone = _zone(hours, now)
    covering = _covering(hours, now, zone)
    closes: datetime | None = None
    after = now
    if covering:
        closes = max(b for _, b in covering)
        for _ in range(16):  # windows that touch or overlap keep it open
            more = _covering(hours, closes, zone)
            if not more:
                break
            closes = max(b for _, b in more)
        else:  # open around the clock (00:00-24:00 every day): it never closes
            return True, None, None
        after = closes
    local = after.astimezone(zone)
    candidates = [
        a
        for offset in range(0, 9)
        for a, _ in _openings(hours, local.date() + timedelta(days=offset), zone)
        if a > after or (not covering and a == after)
    ]
    return bool(covering), closes, min(candidates) if candidates else None


def hours_data(hours: Hours | None, now: datetime | None) -> dict[str, Any] | None:
    """The `hours` entry of the JSON report (None for a show without opening hours)."""
    if hours is None:
        return None
    data: dict[str, Any] = {
        "timezone": hours.timezone,
        "windows": [
            {"days": [DAY_NAMES[d] for d in w.weekdays], "start": w.start, "end": w.end}
            for w in hours.open
        ],
        "closed": hours.closed,
        "week": [[[a, b] for a, b in day] for day in week(hours)],
        "now": None,
        "open_now": None,
        "closes": None,
        "next_open": None,
    }
    if now is not None:
        is_open, closes, next_open = status(hours, now)
        zone = _zone(hours, now)
        data["now"] = now.astimezone(zone).isoformat()
        data["open_now"] = is_open
        data["closes"] = closes.isoformat() if closes else None
        data["next_open"] = next_open.isoformat() if next_open else None
    return data


def when(text: str | None) -> str:
    """'Sun 11 Jan 11:00' for an ISO time from `hours_data` ('-' for None)."""
    if not text:
        return "-"
    moment = datetime.fromisoformat(text)
    return f"{DAY_TITLES[moment.weekday()]} {moment.day} {moment:%b %H:%M}"
