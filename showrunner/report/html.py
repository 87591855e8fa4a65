"""One self-contained HTML page (inline CSS, SVG and script; no external URL, no request), rendered
from the jinja2 templates in ``showrunner/report/templates`` with autoescaping on.

The page: a header with the facts, the findings (lint, compile, scenes without picture), the
timeline picture (svg.py) with zoom, pan, a minimap and hover details, the opening hours on a
week strip, a printable cue sheet, the technical table, and per-scene details with the exact
messages folded away.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

from showrunner.plan.timeline import Timeline, fmt_time
from showrunner.report.common import (
    chunking_text,
    dark_stretches,
    dark_text,
    loop_markers,
    num,
    prompts_text,
    switch_text,
    table_rows,
    trigger_text,
)
from showrunner.report.data import report_data
from showrunner.report.hours import DAY_TITLES, when
from showrunner.report.svg import GUTTER, PAD_RIGHT, PLOT, ROW, ticks, timeline_picture
from showrunner.report.text import COLUMNS, row_cells


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("showrunner.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = fmt_time
    env.filters["num"] = num
    return env


def _script_json(value: Any) -> Markup:
    """JSON safe inside <script type="application/json"> (no "</script>" can close it)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _state_summary(state: dict[str, Any]) -> list[tuple[str, str]]:
    out = [("pipeline", f"{' > '.join(state['chain'])} ({state['input_mode']} mode)")]
    prompts = " | ".join(
        p["text"] if p["weight"] == 1 else f"{p['text']} ({num(p['weight'])})" for p in state["prompts"]
    )
    out.append(("prompts", prompts or "-"))
    if state["params"]:
        out.append(("values", ", ".join(f"{k} {json.dumps(v)}" for k, v in state["params"].items())))
    if state["lora_scales"]:
        out.append(("LoRA", ", ".join(f"{k} {num(v)}" for k, v in state["lora_scales"].items())))
    if state["vace_refs"]:
        out.append(("VACE refs", ", ".join(state["vace_refs"])))
    return out


def _details(scene: dict[str, Any]) -> dict[str, Any]:
    """One scene's details: the readable summary, and the exact messages and state as JSON."""
    return {
        "scene": scene,
        "summary": _state_summary(scene["state_in"]),
        "actions": [
            {
                "offset": fmt_time(a["offset"]),
                "kind": a["kind"],
                "label": a["label"],
                "json": json.dumps(a["message"], indent=2, ensure_ascii=False),
            }
            for a in scene["actions"]
        ],
        "state_json": json.dumps(scene["state_in"], indent=2, ensure_ascii=False),
    }


def _hours_view(hours: dict[str, Any] | None) -> dict[str, Any] | None:
    """The week strip: 7 rows of 24 h (open stretches, closed ones with the closed scene)."""
    if hours is None:
        return None
    left, width, row, top = 44.0, 696.0, 22.0, 22.0
    per_min = width / (24 * 60)
    closed = "paused" if hours["closed"] == "pause" else hours["closed"]
    days = []
    for d, spans in enumerate(hours["week"]):
        y = top + d * row
        bars = []
        cursor = 0
        for a, b in [*spans, [24 * 60, 24 * 60]]:
            if a > cursor:
                w = (a - cursor) * per_min
                bars.append({"x": round(left + cursor * per_min, 1), "w": round(w, 1), "open": False,
                             "text": closed if w >= 8 * len(closed) + 12 else "",
                             "title": f"{DAY_TITLES[d]} {cursor // 60:02d}:{cursor % 60:02d}–"
                                      f"{a // 60:02d}:{a % 60:02d} closed: {closed}"})
            if b > a:
                w = (b - a) * per_min
                span = f"{a // 60:02d}:{a % 60:02d}–{b // 60:02d}:{b % 60:02d}"
                bars.append({"x": round(left + a * per_min, 1), "w": round(w, 1), "open": True,
                             "text": span if w >= 84 else "", "title": f"{DAY_TITLES[d]} {span} open"})
            cursor = max(cursor, b)
        days.append({"name": DAY_TITLES[d], "y": y, "bars": bars})
    now_mark = None
    if hours["now"]:
        moment = datetime.fromisoformat(hours["now"])
        minutes = moment.hour * 60 + moment.minute
        now_mark = {"x": round(left + minutes * per_min, 1), "y": top + moment.weekday() * row}
    status = None
    if hours["open_now"] is not None:
        if hours["open_now"] and hours["closes"] is None:
            status = "open now, around the clock"
        elif hours["open_now"]:
            status = f"open now, until {when(hours['closes'])}; opens next {when(hours['next_open'])}"
        else:
            status = f"closed now ({closed}); opens next {when(hours['next_open'])}"
            if hours["next_open"] and hours["now"]:
                wait = datetime.fromisoformat(hours["next_open"]) - datetime.fromisoformat(hours["now"])
                minutes = int(wait.total_seconds() // 60)
                status += f", in {minutes // 1440} d {minutes % 1440 // 60} h {minutes % 60} min" if (
                    minutes >= 1440) else f", in {minutes // 60} h {minutes % 60} min"
    return {
        "days": days,
        "hours": [{"x": round(left + h * 60 * per_min, 1), "label": f"{h}:00"} for h in range(0, 24, 3)],
        "width": left + width + 8,
        "height": top + 7 * row + 6,
        "left": left,
        "right": left + width,
        "row": row,
        "top": top,
        "now": now_mark,
        "status": status,
        "timezone": hours["timezone"] or "the player machine's local time",
        "closed": closed,
        "windows": [
            f"{', '.join(d.capitalize() for d in w['days'])} {w['start']}–{w['end']}"
            for w in hours["windows"]
        ],
    }


def render_html(
    timeline: Timeline,
    *,
    findings: Sequence[object] = (),
    now: datetime | None = None,
    gpu_rate: float | None = None,
) -> str:
    """One self-contained HTML page: facts, findings, the zoomable timeline, opening hours, the cue
    sheet, the table and per-scene details. `now` (aware) is only used for "next open";
    `gpu_rate` overrides the show's `cost.per_hour`."""
    data = report_data(timeline, findings=findings, now=now, gpu_rate=gpu_rate)
    p = timeline.one_pass()
    rows, reached = table_rows(timeline, p)
    dark = dark_stretches(p)
    markers: dict[int, list[str]] = {}
    for marker in loop_markers(timeline, p):
        markers.setdefault(marker.after, []).append(marker.text)
    warned = any(row.scene.warnings for row in rows)
    columns = COLUMNS if warned else COLUMNS[:-1]
    table = [
        {
            "cells": row_cells(row)[: len(columns)],
            "markers": markers.get(row.scene.index, []) if row.first else [],
            "reached": n < reached,
        }
        for n, row in enumerate(rows)
    ]
    scenes = data["scenes"]
    sheet = [
        {
            "index": row.scene.index,
            "time": row.time,
            "trigger": trigger_text(row.scene),
            "name": row.scene.name + (f" ×{row.plays}" if row.plays > 1 else ""),
            "notes": scenes[row.scene.index]["notes"] or "",
            "prompt": prompts_text(row.scene.state_in.prompts),
            "changes": scenes[row.scene.index]["changes"],
            "dark": scenes[row.scene.index]["no_picture"],
            "reached": n < reached,
            "markers": markers.get(row.scene.index, []) if row.first else [],
        }
        for n, row in enumerate(rows)
    ]
    picture = timeline_picture(timeline, p, dark)
    dark_notes = [dark_text(d, p.items[d.item].occurrence.scene.name) for d in dark]
    config = {
        "span": picture.span,
        "gutter": GUTTER,
        "padRight": PAD_RIGHT,
        "plot": PLOT,
        "bpm": picture.bpm,
        "beatsPerBar": picture.beats_per_bar,
        "rulerY": picture.ruler_y,
        "barsY": picture.bars_y,
        "height": picture.height,
        "row": ROW,
        "items": picture.items,
    }
    return _env().get_template("report.html.j2").render(
        data=data,
        table=table,
        columns=[name for name, _, _ in columns],
        sheet=sheet,
        details=[_details(scene) for scene in scenes],
        pic=picture,
        ticks=ticks(picture.span),
        config=_script_json(config),
        chunking=chunking_text(timeline),
        switches=switch_text(timeline) if timeline.switch_count else None,
        warnings=[f["text"] for f in data["findings"]] + data["warnings"],
        dark_notes=dark_notes,
        hours=_hours_view(data["hours"]),
        has_cues=any(sc.cue is not None for sc in timeline.scenes),
        warned=warned,
        gutter=GUTTER,
        plot=PLOT,
    )
