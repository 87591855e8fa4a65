"""The dry-run report: terminal table, self-contained HTML, JSON, and `--at`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

from showrunner.errors import PositionError
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.start import parse_position, state_at_point
from showrunner.plan.state import State
from showrunner.plan.timeline import Timeline
from showrunner.report.data import render_json, report_data
from showrunner.report.html import render_html
from showrunner.report.text import render_state, render_text
from showrunner.show.model import Show


@dataclass(frozen=True)
class Finding:
    """Stands in for a lint finding: the report only uses these three members."""

    severity: str
    message: str

    def format(self) -> str:
        return f"show.yaml:3:5: warning: {self.message}"


def make(scenes: list[dict[str, Any]], **top: Any) -> Timeline:
    data: dict[str, Any] = {"title": "Harbour <night>", **top, "scenes": scenes}
    show = Show.model_validate(data, context={"bpm": top.get("bpm")})
    return compile_timeline(show, source="shows/harbour.yaml")


@pytest.fixture
def timeline() -> Timeline:
    return make(
        [
            {"name": "intro", "prompts": "a foggy harbour", "duration": 12},
            {
                "name": "drift",
                "prompts": ["neon rain", {"text": "fog", "weight": 0.5}],
                "transition": "3s",
                "duration": "8 bars",
                "vace": {"refs": ["face"]},
                "keyframes": {
                    "lora.style": [{"at": 0, "value": 0}, {"at": 4, "value": 1, "ease": "ease-in"}]
                },
                "travel": [{"at": 8, "prompts": "city lights"}],
            },
            {
                "name": "drop",
                "cue": True,
                "pipeline": "krea-realtime-video",
                "prompts": "explosion",
                "duration": 5,
            },
            {
                "name": "after",
                "after": {"scene": "drop", "offset": 4},
                "prompts": "<calm> & quiet",
                "duration": 10,
            },
        ],
        bpm=120,
        defaults={"manage_cache": True, "load": {"loras": [{"lora": "style", "merge_mode": "runtime_peft"}]}},
        assets={"images": {"face": "face.png"}, "loras": {"style": "style.safetensors"}},
        sections=[{"name": "verse", "start": "intro", "end": "drift", "repeat": 2}],
    )


# ---------------------------------------------------------------------------------------------
# Terminal
# ---------------------------------------------------------------------------------------------


def test_text_has_the_table_rows_and_totals(timeline: Timeline) -> None:
    text = render_text(timeline, findings=[Finding("warning", "prompt is long")], width=140)
    lines = text.splitlines()
    row = {line.split()[1]: line for line in lines if re.match(r"^(\d|GO)", line)}
    assert set(row) == {"intro", "drift", "drop", "after"}
    assert row["intro"].startswith("0:00 ") and "longlive*" in row["intro"] and "session" in row["intro"]
    assert row["drift"].startswith("0:12 ") and "×2" in row["drift"] and "slerp 4 (3s)" in row["drift"]
    assert "neon rain | fog (0.5) (+1 travel)" in row["drift"] and "face" in row["drift"]
    assert row["drop"].startswith("GO ") and "krea-realtime-video*" in row["drop"]
    assert row["after"].startswith("GO+0:09 ") and "after drop+0:04" in row["after"]
    assert "↻ section verse: intro…drift plays 2×, 0:28 each" in text
    # 2 x (12 + 16) + 5 + 4 + 10
    assert "Total: 1:15 (cues fire at once)" in text
    assert "Pipeline switches: 1 per pass, ~31.5s without output" in text
    assert "longlive 12 frames/chunk at 16 fps (typical fps) = 0.75s per step" in text
    assert "show.yaml:3:5: warning: prompt is long" in text
    assert "drift: LoRA fade" in text


def test_text_width_is_respected(timeline: Timeline) -> None:
    text = render_text(timeline, width=100)
    table = [line for line in text.splitlines() if re.match(r"^(\d|GO|-{3})", line)]
    assert table and all(len(line) <= 100 for line in table)


@pytest.mark.timeout(10)
def test_a_show_that_loops_forever_reports_at_once() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 100},
            {"name": "b", "prompts": "b", "duration": 100, "goto": {"scene": "a", "times": 2}},
        ],
        loop="forever",
    )
    text = render_text(timeline)
    html = render_html(timeline)
    data = report_data(timeline)
    assert "loops forever, period 10:00" in text
    assert "↻ goto a (2×)" in text and "show loop forever" in html
    assert data["total_duration"] is None and data["period"] == 600
    assert len(data["pass"]["items"]) == 6


def test_unreached_and_closed_scenes_are_listed_last() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 5, "goto": "a"},
            {"name": "never", "prompts": "n", "duration": 5},
            {"name": "night", "prompts": "stars"},
        ],
        hours={"open": [{"start": "10:00", "end": "18:00"}], "closed": "night"},
    )
    lines = render_text(timeline).splitlines()
    marker = lines.index("  not in the normal flow:")
    after = "\n".join(lines[marker:])
    assert "never" in after and "closed hours" in after
    assert "repeats forever (endless goto)" in "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SVG_LEAVES = {"rect", "line", "circle", "polyline", "path", "stop"}


class StrictParser(HTMLParser):
    """Fails on unbalanced tags, which html.parser itself tolerates."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> but open: {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, parser.stack
    return parser


def test_html_is_one_self_contained_page(timeline: Timeline) -> None:
    html = render_html(timeline, findings=[Finding("warning", "check <this>")])
    parser = parse(html)
    assert html.startswith("<!DOCTYPE html>")
    assert parser.tags["svg"] >= 1 and 'class="curve"' in html
    urls = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", html)
    assert set(urls) == {"http://www.w3.org/2000/svg"}
    # Inline script only (zoom, pan, minimap): nothing loaded from anywhere.
    assert not re.search(r"<script[^>]*\bsrc=", html) and "fetch(" not in html
    assert "<link" not in html and "@import" not in html
    assert "url(#hatch)" in html  # in-page references only


def test_html_escapes_show_text(timeline: Timeline) -> None:
    html = render_html(timeline, findings=[Finding("warning", "check <this>")])
    assert "<calm>" not in html and "&lt;calm&gt; &amp; quiet" in html
    assert "Harbour &lt;night&gt;" in html
    assert "check &lt;this&gt;" in html


def test_html_shows_lanes_markers_and_exact_messages(timeline: Timeline) -> None:
    html = render_html(timeline)
    parse(html)
    # One lane per LoRA; the output gap is marked on the scene itself ("no picture").
    for lane in ("pipeline", "scenes", "prompts", "LoRA style", "VACE", "cues", "loops"):
        assert f'data-full="{lane}"' in html
    assert 'class="nopic"' in html and 'data-scene="drop"' in html
    assert 'data-full="section verse ×2"' in html and 'data-full="GO 1 → drop"' in html
    assert "reload + reconnect before drop (estimate)" in html
    entry = timeline.scene("drift").actions[0]
    pretty = json.dumps(dict(entry.message), indent=2, ensure_ascii=False)
    assert pretty.replace('"', "&#34;") in html


def test_html_of_a_long_show_stays_readable() -> None:
    timeline = make([{"name": f"scene-{i}", "prompts": f"look {i}", "duration": 30} for i in range(200)])
    html = render_html(timeline)
    parse(html)
    # The picture fits the page (it scales to the page width; the page's script zooms and pans).
    width = int(re.search(r'<svg id="tl"[^>]* viewBox="0 0 (\d+)', html).group(1))  # type: ignore[union-attr]
    assert width <= 1280 and '<svg id="tl" xmlns="http://www.w3.org/2000/svg" width="100%"' in html
    assert html.count('<details class="scene"') == 200


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------

DOCUMENTED = {
    "format",
    "version",
    "title",
    "source",
    "bpm",
    "fps",
    "loop",
    "total_duration",
    "period",
    "summary",
    "switches",
    "chunking",
    "findings",
    "warnings",
    "sections",
    "scenes",
    "pass",
    "no_picture",
    "hours",
    "gpu",
    "hooks",
}
SCENE_KEYS = {
    "index",
    "name",
    "trigger",
    "follows_tempo",
    "start_follows_tempo",
    "quantize",
    "cue",
    "pre_wait",
    "at",
    "duration",
    "end",
    "time",
    "first_start",
    "plays",
    "closed_only",
    "sections",
    "goto",
    "pipeline",
    "chunk_interval",
    "fps",
    "reconnect",
    "switch_estimate",
    "entry",
    "transition",
    "state_in",
    "state_out",
    "keyframes",
    "actions",
    "warnings",
    "notes",
    "no_picture",
    "changes",
}


def test_json_round_trips_with_the_documented_keys(timeline: Timeline) -> None:
    text = render_json(timeline, findings=[Finding("warning", "long")])
    data = json.loads(text)
    assert data == json.loads(json.dumps(report_data(timeline, findings=[Finding("warning", "long")])))
    assert set(data) == DOCUMENTED
    assert (data["format"], data["version"]) == ("showrunner-report", 1)
    assert data["findings"] == [
        {"severity": "warning", "message": "long", "text": "show.yaml:3:5: warning: long"}
    ]
    assert [set(s) for s in data["scenes"]] == [SCENE_KEYS] * 4
    drift = data["scenes"][1]
    assert drift["plays"] == 2 and drift["sections"] == ["verse"]
    assert drift["actions"][0]["message"]["vace_ref_images"] == ["@asset:face"]
    assert drift["keyframes"]["lora.style"][1] == {"at": 4.0, "value": 1.0, "ease": "ease-in"}
    assert [i["name"] for i in data["pass"]["items"]] == ["intro", "drift", "intro", "drift", "drop", "after"]
    assert set(data["pass"]["items"][0]) == {
        "scene", "name", "part", "start", "end", "abs_start", "abs_end", "iteration", "how", "path", "switch",
    }
    assert data["switches"]["count"] == 1 and data["total_duration"] == 75


# ---------------------------------------------------------------------------------------------
# --at
# ---------------------------------------------------------------------------------------------


def parse_at(timeline: Timeline, text: str) -> State:
    """What `report --at TEXT` shows (the parser is the one `run --at` uses)."""
    return state_at_point(timeline, parse_position(timeline, text))


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        pytest.param("0:05", "a foggy harbour", id="mm:ss"),
        pytest.param("20", "neon rain", id="seconds"),
        pytest.param("8 bars", "neon rain", id="bars"),
        pytest.param("1:10", "<calm> & quiet", id="after-the-cue"),
        pytest.param("drift", "neon rain", id="scene"),
        pytest.param("drift+12", "city lights", id="scene+seconds"),
        pytest.param("drift + 0:09", "city lights", id="scene+mm:ss"),
        pytest.param("drift+2 bars", "neon rain", id="scene+bars"),
    ],
)
def test_parse_at(timeline: Timeline, text: str, prompt: str) -> None:
    state = parse_at(timeline, text)
    assert state.prompts[0].text == prompt


@pytest.mark.parametrize("text", ["soon", "nope+3", "drift+later"])
def test_parse_at_rejects_nonsense(timeline: Timeline, text: str) -> None:
    with pytest.raises(PositionError, match=f"^--at '{re.escape(text)}': "):
        parse_at(timeline, text)


def test_render_state(timeline: Timeline) -> None:
    out = render_state(parse_at(timeline, "drift+2"), label="drift+2")
    assert out.splitlines()[0] == "State at drift+2"
    assert "longlive (text mode)" in out
    assert "neon rain | fog (0.5)" in out
    assert "from a foggy harbour: 4 steps slerp, 67% done" in out
    assert "manage_cache=false" in out
    assert "style=0.25" in out
    assert "VACE refs:    face" in out


def test_what_follows_the_tempo_is_marked_at_its_nominal_time() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": "4 bars"},
            {"name": "b", "prompts": "b", "duration": 6},
            {"name": "c", "prompts": "c", "at": "16 bars", "quantize": "2 bars"},
        ],
        bpm=120,
    )
    text = render_text(timeline, width=160)
    row = {line.split()[1]: line for line in text.splitlines() if re.match(r"^\d", line)}
    assert row["b"].startswith("0:08 ") and "timed ♩" in row["b"]  # after 4 bars at 120 bpm
    assert "timed ♩" not in row["a"] and "at 0:32 ♩" in row["c"]
    assert "♩ = starts on the beat; times in bars/beats shown at 120 bpm follow a live tempo" in text
    scenes = report_data(timeline)["scenes"]
    assert [(s["follows_tempo"], s["start_follows_tempo"], s["quantize"]) for s in scenes] == [
        (True, False, None), (False, True, None), (False, True, 8.0)
    ]
    assert "♩" not in render_text(make([{"name": "a", "prompts": "a", "duration": 8}]))


def test_the_input_source_shows_only_where_it_is_sent() -> None:
    """Live, `input_source` goes only to sessions whose pipeline runs in video mode (a text-mode
    session would start a decoder for nothing); `report --at` says the same."""
    source = {"enabled": True, "source_type": "video_file", "source_name": "rehearsal.mp4"}
    timeline = make(
        [
            {"name": "footage", "pipeline": "passthrough", "prompts": "x", "duration": 4},
            {"name": "words", "pipeline": "longlive", "prompts": "y", "duration": 4},
        ],
        defaults={"input_source": source},
    )
    video = render_state(parse_at(timeline, "footage"), label="footage")
    assert 'input source: {"enabled": true' in video
    assert "input_source" in parse_at(timeline, "footage").initial_parameters()
    text = render_state(parse_at(timeline, "words"), label="words")
    assert "input_source" not in parse_at(timeline, "words").initial_parameters()
    assert "input source: not sent (longlive runs in text mode)" in text
