"""GPU hours and cost of an installation, and when its lifecycle hooks run, for the report.

Pure: computed from the show's `hours:`, `cost:` and `hooks:` blocks on one typical week. The
GPU of one Scope server is on from `before_open.lead` before each opening until the closing; a
closed break shorter than the lead keeps it on (neither `after_close` nor that `before_open`
runs, the same rule `showrunner run` follows). A month is 30 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from showrunner.report.hours import DAY_TITLES, week
from showrunner.show.model import Hook, Show

__all__ = ["GpuCost", "HookTimes", "gpu_cost", "gpu_spans", "hook_times"]

_WEEK = 7 * 24 * 60  # minutes
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class GpuCost:
    """Hours the GPU is on (one Scope server) per day, week and month, and what they cost."""

    per_hour: float
    currency: str
    lead: float  # seconds of warm-up before each opening
    week_hours: float  # with the opening hours and the lead
    stops: bool  # an `after_close` hook stops the GPU (else it stays on around the clock)

    @property
    def day_hours(self) -> float:
        return self.week_hours / 7

    @property
    def month_hours(self) -> float:
        return self.week_hours * DAYS_PER_MONTH / 7

    @property
    def saving(self) -> float:
        """The part of the always-on cost the opening hours save (0 to 1)."""
        return 1.0 - self.week_hours / (7 * 24)

    def rows(self) -> list[tuple[str, float, float, float]]:
        """(what, hours per day, per week, per month) for scheduled and always-on."""
        return [
            ("scheduled", self.day_hours, self.week_hours, self.month_hours),
            ("always on", 24.0, 7 * 24.0, DAYS_PER_MONTH * 24.0),
        ]

    def to_json(self) -> dict[str, Any]:
        def period(hours: float) -> dict[str, float]:
            return {"hours": round(hours, 3), "cost": round(hours * self.per_hour, 2)}

        return {
            "per_hour": self.per_hour,
            "currency": self.currency,
            "lead": self.lead,
            "stops": self.stops,
            "servers": 1,
            "scheduled": {"day": period(self.day_hours), "week": period(self.week_hours),
                          "month": period(self.month_hours)},
            "always_on": {"day": period(24.0), "week": period(7 * 24.0),
                          "month": period(DAYS_PER_MONTH * 24.0)},
            "saving": round(self.saving, 4),
        }


def _lead(show: Show) -> float:
    before = show.hooks.before_open
    return before.lead if before is not None else 0.0


def gpu_spans(show: Show) -> list[tuple[int, int]]:
    """The GPU's on-spans of one week in minutes from Monday 00:00 (end may pass the week's
    end, wrapping to Monday); [(0, 10080)] when it is on all week."""
    if show.hours is None:
        return [(0, _WEEK)]
    lead = _lead(show) / 60
    opened = [(d * 1440 + a, d * 1440 + b) for d, spans in enumerate(week(show.hours)) for a, b in spans]
    # Three weeks in a row, so that spans touching the week's ends merge across them.
    spans = sorted((a - lead + shift, b + shift) for shift in (-_WEEK, 0, _WEEK) for a, b in opened)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if any(b - a >= _WEEK for a, b in merged):
        return [(0, _WEEK)]
    return [(round(a), round(b)) for a, b in merged if 0 <= a < _WEEK]


def gpu_cost(show: Show, *, per_hour: float | None = None) -> GpuCost | None:
    """The show's GPU cost (`per_hour` overrides `cost.per_hour`); None without a price."""
    rate = per_hour if per_hour is not None else show.cost.per_hour if show.cost else None
    if rate is None:
        return None
    currency = show.cost.currency if show.cost else "USD"
    minutes = sum(b - a for a, b in gpu_spans(show))
    return GpuCost(per_hour=rate, currency=currency, lead=_lead(show), week_hours=minutes / 60,
                   stops=show.hooks.after_close is not None or show.hours is None)


@dataclass(frozen=True)
class HookTimes:
    """When one hook runs, in words ("Mon-Fri 09:50, Sat-Sun 10:50")."""

    name: str
    when: str
    action: str  # the command or "POST url"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "when": self.when, "action": self.action}


def _days(days: Sequence[int]) -> str:
    """'Mon-Fri', 'Sat-Sun', 'Mon, Wed', 'daily' for weekday numbers."""
    if len(days) == 7:
        return "daily"
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(
        DAY_TITLES[r[0]] if len(r) == 1 else f"{DAY_TITLES[r[0]]}-{DAY_TITLES[r[-1]]}" for r in runs
    )


def _weekly(minutes: Sequence[int]) -> str:
    by_time: dict[int, list[int]] = {}
    for m in minutes:
        m %= _WEEK
        by_time.setdefault(m % 1440, []).append(m // 1440)
    parts = sorted((days[0], f"{_days(days)} {t // 60:02d}:{t % 60:02d}") for t, days in by_time.items())
    return ", ".join(text for _, text in parts)


def _action(hook: Hook) -> str:
    if hook.http is not None:
        return f"{hook.http.method} {hook.http.url}"
    command = hook.command
    return command if isinstance(command, str) else " ".join(command or ())


def hook_times(show: Show, *, alert_after: float | None = None) -> list[HookTimes]:
    """When each of the show's hooks runs, in hook order (an empty list without hooks)."""
    spans = gpu_spans(show)
    always = spans == [(0, _WEEK)]
    zone = f" ({show.hours.timezone})" if show.hours and show.hours.timezone else ""
    after = alert_after if alert_after is not None else show.alerts.after
    lead = _lead(show)
    when = {
        "before_open": "at the start of the run" if always else
        f"{_weekly([a for a, _ in spans])}{zone}, {_seconds(lead)} before opening, "
        "and at the start of a run while open",
        "after_close": "never (open around the clock)" if always
        else f"{_weekly([b for _, b in spans])}{zone}",
        "on_outage": f"once after {_seconds(after)} without a picture while the show should play",
        "on_recover": "once when the picture is back after an outage",
    }
    return [
        HookTimes(name, when[name], _action(hook))
        for name, hook in show.hooks.named().items()
        if hook is not None
    ]


def _seconds(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def cost_lines(show: Show, *, per_hour: float | None = None) -> list[str]:
    """The report's lines for the GPU cost and the hooks (none when the show has neither)."""
    out: list[str] = []
    cost = gpu_cost(show, per_hour=per_hour)
    if cost is not None:
        basis = "opening hours" if show.hours is not None else "no opening hours: always on"
        if cost.lead and show.hours is not None:
            basis += f" + {_seconds(cost.lead)} lead"
        out.append(f"GPU cost (one Scope server, {cost.currency} {cost.per_hour:g}/h; {basis}):")
        out.append(f"  {'':<10} {'per day':>16} {'per week':>18} {'per month (30 d)':>20}")
        for what, *hours in cost.rows():
            cells = [f"{h:.1f} h {h * cost.per_hour:9.2f}" for h in hours]
            out.append(f"  {what:<10} {cells[0]:>16} {cells[1]:>18} {cells[2]:>20}")
        out.append(f"  the opening hours save {cost.saving:.0%} of always on")
        if not cost.stops:
            out.append("  (no after_close hook: the GPU stays on unless something else stops it)")
    times = hook_times(show)
    if times:
        out.append("Hooks (showrunner run only):")
        width = max(len(t.name) for t in times)
        out.extend(f"  {t.name:<{width}}  {t.when}: {t.action}" for t in times)
    return out
