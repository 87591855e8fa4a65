"""The outage detector: no picture for `after` seconds while the show should play.

One detector per run. It is told at each tick (`observe`) whether there is a picture and
whether one is expected (the show is open, or plays a closed scene; not while the GPU is being
started or was stopped on purpose). No picture for `after` seconds while expected is an
*outage*: one ``outage`` journal record and one call of `on_outage`, however long it lasts.
The picture coming back ends it: one ``recovered`` record (with the seconds without picture)
and one call of `on_recover`. Time without an expected picture does not count. The run's
`Installation` (installation.py) calls `observe` every second of its clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from showrunner.live.clock import Clock
from showrunner.live.events import EventLog

__all__ = ["OUTAGE_AFTER", "Outage", "OutageState", "OutageWatch"]

OUTAGE_AFTER = 30.0


class OutageState(enum.StrEnum):
    PICTURE = "picture"  # a picture, or none expected
    DARK = "dark"  # no picture while expected, not yet for `after` seconds
    OUTAGE = "outage"


@dataclass(frozen=True)
class Outage:
    """One outage, for the callbacks: when it began (unix time) and what the link said."""

    since: float
    reason: str
    seconds: float = 0.0  # without picture, counted when it ends


class OutageWatch:
    """Turns ticks of (picture, expected) into outage and recovery events."""

    def __init__(
        self,
        clock: Clock,
        log: EventLog,
        *,
        after: float = OUTAGE_AFTER,
        picture: Callable[[], bool],
        expected: Callable[[], bool],
        reason: Callable[[], str] = lambda: "no picture",
        on_outage: Callable[[Outage], None] = lambda outage: None,
        on_recover: Callable[[Outage], None] = lambda outage: None,
    ) -> None:
        self.clock = clock
        self.log = log
        self.after = after
        self._picture = picture
        self._expected = expected
        self._reason = reason
        self._on_outage = on_outage
        self._on_recover = on_recover
        self.state = OutageState.PICTURE
        self.dark_since: float | None = None  # monotonic
        self.outages = 0
        self._current: Outage | None = None

    def __repr__(self) -> str:
        return f"OutageWatch({self.state.value!r}, after={self.after:g}, outages={self.outages})"

    def observe(self) -> OutageState:
        """One look at the picture; journals and calls back on a change."""
        now = self.clock.monotonic()
        if self._picture():
            if self._current is not None:
                self._recovered(now)
            self.dark_since = None
            self.state = OutageState.PICTURE
        elif self._current is None:
            if not self._expected():
                self.dark_since = None
                self.state = OutageState.PICTURE
            elif self.dark_since is None:
                self.dark_since = now
                self.state = OutageState.DARK
            elif now - self.dark_since >= self.after:
                self._begin(now)
        return self.state

    def _begin(self, now: float) -> None:
        assert self.dark_since is not None
        since = self.log.unix(self.dark_since)
        reason = self._reason()
        self._current = Outage(since=since, reason=reason)
        self.outages += 1
        self.state = OutageState.OUTAGE
        self.log.record("outage", label=reason, since=round(since, 3), after=self.after,
                        text=f"outage: no picture for {now - self.dark_since:.0f} s ({reason})",
                        level="error")
        self._on_outage(self._current)

    def _recovered(self, now: float) -> None:
        assert self._current is not None and self.dark_since is not None
        seconds = round(now - self.dark_since, 3)
        outage = Outage(self._current.since, self._current.reason, seconds)
        self._current = None
        self.log.record("recovered", label="picture back", since=round(outage.since, 3),
                        seconds=seconds, text=f"recovered: picture back after {seconds:.0f} s")
        self._on_recover(outage)
