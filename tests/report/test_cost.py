"""GPU hours and cost from opening hours and the warm-up lead, and when the hooks run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from showrunner.cli import main
from showrunner.report.cost import cost_lines, gpu_cost, gpu_spans, hook_times
from showrunner.show.model import Show

ROOT = Path(__file__).parents[2]
TRUE = {"command": ["true"]}


def _show(hours: list[dict[str, Any]] | None, *, lead: str | None = None, **top: Any) -> Show:
    data: dict[str, Any] = {"title": "t", "scenes": [{"name": "a", "prompts": "p"}], **top}
    if hours is not None:
        data["hours"] = {"timezone": "Europe/Berlin", "open": hours}
    if lead is not None:
        data["hooks"] = {"before_open": {**TRUE, "lead": lead}, "after_close": TRUE}
    return Show.model_validate(data)


GALLERY_HOURS = [
    {"days": "weekdays", "start": "10:00", "end": "18:00"},
    {"days": "weekends", "start": "11:00", "end": "20:00"},
]


def test_opening_hours_and_lead_against_always_on() -> None:
    cost = gpu_cost(_show(GALLERY_HOURS, lead="10 min"), per_hour=0.95)
    assert cost is not None
    assert cost.week_hours == pytest.approx(5 * (8 + 1 / 6) + 2 * (9 + 1 / 6))  # 59.17 h
    assert cost.month_hours == pytest.approx(cost.week_hours * 30 / 7)
    data = cost.to_json()
    assert data["always_on"]["month"] == {"hours": 720.0, "cost": 684.0}
    assert data["scheduled"]["week"] == {"hours": 59.167, "cost": 56.21}
    assert data["scheduled"]["month"]["cost"] == pytest.approx(240.89)
    assert cost.stops and 0.64 < cost.saving < 0.65


def test_no_price_no_cost_and_the_show_price_is_overridden() -> None:
    assert gpu_cost(_show(GALLERY_HOURS)) is None
    show = _show(GALLERY_HOURS, cost={"per_hour": 2, "currency": "EUR"})
    assert gpu_cost(show) is not None and gpu_cost(show).per_hour == 2  # type: ignore[union-attr]
    assert gpu_cost(show, per_hour=0.5).per_hour == 0.5  # type: ignore[union-attr]
    assert cost_lines(show)[0].startswith("GPU cost (one Scope server, EUR 2/h; opening hours)")


def test_always_open_and_no_hours_cost_as_much_as_always_on() -> None:
    around = _show([{"start": "00:00", "end": "24:00"}], lead="10 min")
    assert gpu_spans(around) == [(0, 7 * 24 * 60)]
    assert gpu_cost(around, per_hour=1).week_hours == 168  # type: ignore[union-attr]
    assert gpu_cost(_show(None), per_hour=1).week_hours == 168  # type: ignore[union-attr]
    times = {t.name: t.when for t in hook_times(around)}
    assert times == {"before_open": "at the start of the run",
                     "after_close": "never (open around the clock)"}


def test_a_break_shorter_than_the_lead_keeps_the_gpu_on() -> None:
    hours = [{"start": "10:00", "end": "13:00"}, {"start": "13:05", "end": "18:00"}]
    spans = gpu_spans(_show(hours, lead="10 min"))
    assert spans[:2] == [(590, 1080), (590 + 1440, 1080 + 1440)] and len(spans) == 7
    assert len(gpu_spans(_show(hours, lead="1 min"))) == 14


def test_spans_wrap_over_the_end_of_the_week() -> None:
    show = _show([{"days": ["sun"], "start": "22:00", "end": "02:00"},
                  {"days": ["mon"], "start": "00:05", "end": "01:00"}], lead="10 min")
    assert gpu_spans(show) == [(6 * 1440 + 21 * 60 + 50, 7 * 1440 + 120)]
    times = {t.name: t.when for t in hook_times(show)}
    assert times["before_open"].startswith("Sun 21:50 (Europe/Berlin), 10 min before opening")
    assert times["after_close"] == "Mon 02:00 (Europe/Berlin)"


def test_hook_times_name_days_times_and_actions() -> None:
    show = _show(GALLERY_HOURS, hooks={
        "before_open": {"command": ["pod", "start"], "lead": "15m"},
        "on_outage": {"http": {"url": "http://127.0.0.1:9/x", "method": "PUT"}},
    }, alerts={"after": 45})
    times = [(t.name, t.when, t.action) for t in hook_times(show)]
    assert times == [
        ("before_open", "Mon-Fri 09:45, Sat-Sun 10:45 (Europe/Berlin), 15 min before opening, "
                        "and at the start of a run while open", "pod start"),
        ("on_outage", "once after 45 s without a picture while the show should play",
         "PUT http://127.0.0.1:9/x"),
    ]
    assert "  (no after_close hook: the GPU stays on unless something else stops it)" in cost_lines(
        show, per_hour=1)


def test_report_prints_the_gallery_cost(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gallery = str(ROOT / "shows" / "gallery.yaml")
    assert main(["report", gallery]) == 0
    out = capsys.readouterr().out
    assert "GPU cost (one Scope server, USD 0.95/h; opening hours + 10 min lead):" in out
    assert "  always on  24.0 h     22.80  168.0 h    159.60    720.0 h    684.00" in out
    assert "  before_open  Mon-Fri 09:50, Sat-Sun 10:50 (Europe/Berlin)" in out
    assert main(["report", gallery, "--gpu-rate", "2", "--json", str(tmp_path / "r.json"),
                 "--html", str(tmp_path / "r.html")]) == 0
    data = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert data["gpu"]["per_hour"] == 2 and data["gpu"]["always_on"]["month"]["cost"] == 1440
    assert [h["name"] for h in data["hooks"]] == ["before_open", "after_close"]
    assert "one Scope server at USD 2/h" in (tmp_path / "r.html").read_text("utf-8")
