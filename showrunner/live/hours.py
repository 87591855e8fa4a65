"""Opening hours of an installation: is it open now, and when does that change?

Each window of ``show.hours.open`` becomes two cron triggers (the opening on its days, the
closing on the same days, or the next ones when the window runs past midnight). A window
is open at ``t`` when its next closing comes before its next opening (or with it: a whole-day
window closes as it opens again); the installation is
open when any window is. Everything here is pure given a datetime, so tests drive it with
a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from showrunner.live.scheduling import Trigger, cron_at, local_timezone, next_fire
from showrunner.show.model import Hours, Window

__all__ = ["OpeningHours"]

# Overlapping windows can need a few boundaries before the state really flips.
_MAX_STEPS = 64


def _hhmm(text: str) -> tuple[int, int, int]:
    """(day shift, hour, minute); "24:00" is midnight of the next day."""
    hour, minute = (int(part) for part in text.split(":"))
    if hour == 24:
        return 1, 0, 0
    return 0, hour, minute


@dataclass(frozen=True)
class _Window:
    source: Window
    opening: Trigger
    closing: Trigger

    def is_open(self, at: datetime) -> bool:
        opens = next_fire(self.opening, at)
        closes = next_fire(self.closing, at)
        if closes is None:
            return False
        # A window that closes at the very moment it opens again (00:00-24:00 on consecutive
        # days) stays open: its closing comes no later than its next opening.
        return opens is None or closes <= opens


def _compile(window: Window, tz: tzinfo) -> _Window:
    start_shift, start_hour, start_minute = _hhmm(window.start)
    end_shift, end_hour, end_minute = _hhmm(window.end)
    if end_shift == 0 and (end_hour, end_minute) <= (start_hour, start_minute):
        end_shift = 1  # e.g. 22:00-02:00 closes the next day
    days = window.weekdays
    opening = cron_at([d + start_shift for d in days], start_hour, start_minute, tz)
    closing = cron_at([d + start_shift + end_shift for d in days], end_hour, end_minute, tz)
    return _Window(window, opening, closing)


class OpeningHours:
    """The `hours:` block of a show, ready to answer questions about a moment."""

    def __init__(self, hours: Hours, *, tz: tzinfo | None = None) -> None:
        self.hours = hours
        if tz is not None:
            self.tz = tz
        elif hours.timezone:
            self.tz = ZoneInfo(hours.timezone)
        else:
            self.tz = local_timezone()
        self._windows = [_compile(w, self.tz) for w in hours.open]

    def __repr__(self) -> str:
        spans = ", ".join(f"{w.days}:{w.start}-{w.end}" for w in self.hours.open)
        return f"OpeningHours([{spans}], tz={str(self.tz)!r}, closed={self.closed_scene!r})"

    @property
    def closed_scene(self) -> str | None:
        """The scene played while closed, or None to pause."""
        return None if self.hours.closed == "pause" else self.hours.closed

    def is_open(self, at: datetime) -> bool:
        """Whether any window is open at `at` (open at the opening minute, closed at the closing one)."""
        at = self._aware(at)
        return any(w.is_open(at) for w in self._windows)

    def next_change(self, at: datetime) -> datetime | None:
        """The first moment after `at` when `is_open` changes (None: it never does)."""
        at = self._aware(at)
        state = self.is_open(at)
        cursor = at
        for _ in range(_MAX_STEPS):
            fires = [
                fire
                for w in self._windows
                for trigger in (w.opening, w.closing)
                if (fire := next_fire(trigger, cursor)) is not None
            ]
            if not fires:
                return None
            cursor = min(fires)
            if self.is_open(cursor) != state:
                return cursor
        return None

    def _aware(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("opening hours need an aware datetime")
        return at.astimezone(self.tz)
