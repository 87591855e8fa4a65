"""One self-contained HTML page (inline CSS and SVG, no scripts, no external URLs), rendered from
the jinja2 templates in ``showrunner/report/templates`` with autoescaping on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

import jinja2

from showrunner.plan.timeline import Timeline, fmt_time
from showrunner.report.common import chunking_text, loop_markers, switch_text, table_rows
from showrunner.report.data import report_data
from showrunner.report.svg import timeline_svg
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
    return env


def render_html(timeline: Timeline, *, findings: Sequence[object] = ()) -> str:
    """One self-contained HTML page: summary, SVG timeline, table, per-scene messages."""
    data = report_data(timeline, findings=findings)
    p = timeline.one_pass()
    rows, reached = table_rows(timeline, p)
    markers: dict[int, list[str]] = {}
    for marker in loop_markers(timeline, p):
        markers.setdefault(marker.after, []).append(marker.text)
    table = [
        {
            "cells": row_cells(row),
            "markers": markers.get(row.scene.index, []) if row.first else [],
            "reached": n < reached,
        }
        for n, row in enumerate(rows)
    ]
    details = [
        {
            "scene": scene,
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
        for scene in data["scenes"]
    ]
    return _env().get_template("report.html.j2").render(
        data=data,
        table=table,
        columns=[name for name, _, _ in COLUMNS],
        details=details,
        svg=timeline_svg(timeline, p),
        chunking=chunking_text(timeline),
        switches=switch_text(timeline),
        warnings=[f["text"] for f in data["findings"]] + data["warnings"],
    )
