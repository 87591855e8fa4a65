"""The report as a curator and a VJ read it: dark scenes, notes, the cue sheet, opening hours,
the terminal table at 80 columns, and what `report` / `import -o` do with files.

(The page itself, in a real browser, is tests/report/test_page.py.)
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from showrunner.cli import main
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.report.data import report_data
from showrunner.report.html import render_html
from showrunner.report.text import render_text
from showrunner.show.load import load
from showrunner.show.model import Show

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scope"


def example(name: str) -> Timeline:
    result = load(ROOT / "shows" / f"{name}.yaml")
    return compile_timeline(result.show, source=f"shows/{name}.yaml")


def make(scenes: list[dict[str, Any]], **top: Any) -> Timeline:
    data: dict[str, Any] = {"title": "T", **top, "scenes": scenes}
    return compile_timeline(Show.model_validate(data, context={"bpm": top.get("bpm")}))


# ---------------------------------------------------------------------------------------------
# A scene that will be dark
# ---------------------------------------------------------------------------------------------


def test_the_dark_krea_scene_is_flagged_with_the_seconds_lost() -> None:
    timeline = example("performance")
    data = report_data(timeline)
    krea = next(s for s in data["scenes"] if s["name"] == "krea")
    assert krea["no_picture"] == pytest.approx(31.5)
    assert [(d["name"], d["seconds"], d["length"]) for d in data["no_picture"]] == [("krea", 31.5, 32.0)]
    text = render_text(timeline)
    assert "krea: no picture for ~31.5 s of its 0:32" in text
    html = render_html(timeline)
    assert 'class="nopic' in html and "no picture for ~31.5 s of its 0:32" in html


def test_a_gap_longer_than_its_scene_darkens_the_next_one_too() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 10},
            {"name": "b", "pipeline": "krea-realtime-video", "prompts": "b", "duration": 20},
            {"name": "c", "prompts": "c", "duration": 30},
        ]
    )
    lost = {d["name"]: d["seconds"] for d in report_data(timeline)["no_picture"]}
    assert lost == {"b": 20.0, "c": 11.5}


def test_a_show_without_switches_has_no_dark_scene() -> None:
    data = report_data(example("minimal"))
    assert data["no_picture"] == [] and all(s["no_picture"] == 0 for s in data["scenes"])


# ---------------------------------------------------------------------------------------------
# Notes
# ---------------------------------------------------------------------------------------------

NOTED = [
    {"name": "a", "prompts": "a foggy harbour", "duration": 10, "notes": "house lights down <now>"},
    {"name": "b", "prompts": "neon", "duration": 10},
]


def test_notes_are_in_json_text_and_the_cue_sheet() -> None:
    timeline = make(NOTED)
    assert [s["notes"] for s in report_data(timeline)["scenes"]] == ["house lights down <now>", None]
    text = render_text(timeline)
    assert "✎ house lights down <now>" in text
    html = render_html(timeline)
    sheet = html[html.index('id="cue-sheet"') :]
    assert "house lights down &lt;now&gt;" in sheet


# ---------------------------------------------------------------------------------------------
# The terminal table
# ---------------------------------------------------------------------------------------------


def test_no_switch_line_or_cue_legend_on_a_plain_show() -> None:
    text = render_text(example("minimal"))
    assert "Pipeline switches" not in text
    assert "GO+" not in text and "cue parts" not in text


def test_the_cue_legend_and_switches_stay_where_they_apply() -> None:
    text = render_text(example("performance"))
    assert "Pipeline switches: 1 per pass" in text and "cue parts are timed from their cue" in text


def test_the_warning_column_is_dropped_when_empty_and_explained_when_not() -> None:
    plain = render_text(example("minimal"))
    header = next(line for line in plain.splitlines() if line.startswith("time"))
    assert not header.rstrip().endswith("!")
    warned = render_text(
        make(
            [
                {"name": "a", "prompts": "a", "duration": 5},
                {"name": "w", "prompts": "w", "duration": 4,
                 "keyframes": {"lora.x": [{"at": 0, "value": 0}, {"at": 2, "value": 1}]}},
            ],
            assets={"loras": {"x": "x.safetensors"}},
            defaults={"manage_cache": True, "load": {"loras": [{"lora": "x", "merge_mode": "runtime_peft"}]}},
        )
    )
    header = next(line for line in warned.splitlines() if line.startswith("time"))
    assert header.rstrip().endswith("!")
    assert "! = compile warnings of the scene (listed below)" in warned


@pytest.mark.parametrize("width", [60, 80, 100])
def test_times_are_never_truncated(width: int) -> None:
    text = render_text(example("performance"), width=width)
    times = [line.split()[0] for line in text.splitlines() if re.match(r"^(\d|GO|drop)", line)]
    assert "drop+0:40" in times and "drop+0:08" in times and "GO+0:48" in times
    assert not any("…" in t for t in times)
    table = [line for line in text.splitlines() if re.match(r"^(\d|GO|drop|-{3})", line)]
    assert all(len(line) <= width for line in table)


# ---------------------------------------------------------------------------------------------
# Opening hours (the time comes in as an argument: rendering stays pure)
# ---------------------------------------------------------------------------------------------


def test_hours_in_json_with_the_next_open_time() -> None:
    timeline = example("gallery")
    # Saturday 2026-01-10 21:30 in Berlin (20:30 UTC): closed; opens Sunday 11:00.
    now = datetime(2026, 1, 10, 20, 30, tzinfo=UTC)
    hours = report_data(timeline, now=now)["hours"]
    assert hours["timezone"] == "Europe/Berlin" and hours["closed"] == "night"
    assert hours["open_now"] is False
    assert hours["next_open"] == "2026-01-11T11:00:00+01:00"
    assert {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "18:00"} in hours["windows"]
    html = render_html(timeline, now=now)
    assert 'id="hours"' in html and "Europe/Berlin" in html and "Sun 11 Jan 11:00" in html
    assert "night" in html[html.index('id="hours"') :]


def test_hours_without_now_say_nothing_about_next_open() -> None:
    hours = report_data(example("gallery"))["hours"]
    assert hours["open_now"] is None and hours["next_open"] is None
    assert report_data(example("minimal"))["hours"] is None


def test_open_now_and_the_next_opening_after_closing() -> None:
    # Monday 2026-01-05 12:00 Berlin: open until 18:00, opens again Tuesday 10:00.
    now = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
    hours = report_data(example("gallery"), now=now)["hours"]
    assert hours["open_now"] is True
    assert hours["closes"] == "2026-01-05T18:00:00+01:00"
    assert hours["next_open"] == "2026-01-06T10:00:00+01:00"


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


def test_html_and_json_do_not_print_the_table_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = str(ROOT / "shows/minimal.yaml")
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["report", show, "--html", str(html), "--json", str(data)]) == 0
    out = capsys.readouterr().out
    assert out == "" and html.exists() and data.exists()
    assert main(["report", show, "--html", str(html), "--text"]) == 0
    assert "dawn" in capsys.readouterr().out
    assert main(["report", show, "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "showrunner-report"


def test_report_passes_now_for_the_next_opening(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.json"
    assert main(["report", str(ROOT / "shows/gallery.yaml"), "--json", str(out)]) == 0
    hours = json.loads(out.read_text("utf-8"))["hours"]
    assert hours["open_now"] in (True, False) and hours["next_open"]


def test_import_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "show.yaml"
    out.write_text("keep me\n")
    source = str(FIXTURES / "timeline-krea-shapes.json")
    assert main(["import", source, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == f"{out} exists; not overwriting it (use --force)\n"
    assert out.read_text() == "keep me\n"
    assert main(["import", source, "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("# yaml-language-server")
