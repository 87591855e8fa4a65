"""The dry-run report of a compiled timeline: a terminal table, one HTML page, and JSON.

Everything here reads a :class:`~showrunner.plan.timeline.Timeline` and never iterates a schedule past
one pass (:meth:`Timeline.one_pass`), so a show that loops forever reports at once. The HTML page
is self-contained (inline CSS and SVG, no scripts, no external URLs), rendered from jinja2
templates in ``showrunner/templates`` with autoescaping on.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from showrunner import pipelines
from showrunner.plan.timeline import (
    LOAD_SECONDS_PLAIN,
    LOAD_SECONDS_UNKNOWN,
    LOAD_SECONDS_WAN,
    LORA_PREFIX,
    RECONNECT_SECONDS,
    CompiledScene,
    Pass,
    PassItem,
    State,
    Timeline,
    WeightedPrompt,
    fmt_time,
    paused_gc,
)

FORMAT = "showrunner-report"
VERSION = 1
DEFAULT_WIDTH = 120

SWITCH_NOTE = (
    f"estimate per switch: load {LOAD_SECONDS_WAN:g}s per Wan pipeline, {LOAD_SECONDS_PLAIN:g}s "
    f"per weight-free one, {LOAD_SECONDS_UNKNOWN:g}s per unknown one, "
    f"+ {RECONNECT_SECONDS:g}s reconnect"
)


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------


def _cut(text: str, width: int) -> str:
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


def _num(value: float) -> str:
    return f"{value:g}"


def _prompts_text(prompts: Sequence[WeightedPrompt]) -> str:
    if not prompts:
        return "-"
    return " | ".join(p.text if p.weight == 1 else f"{p.text} ({_num(p.weight)})" for p in prompts)


def _plain(value: Any) -> Any:
    """JSON-ready copy of nested mappings / tuples."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _finding(finding: object) -> dict[str, Any]:
    fmt = getattr(finding, "format", None)
    text = fmt() if callable(fmt) else str(finding)
    return {
        "severity": str(getattr(finding, "severity", "warning")),
        "message": str(getattr(finding, "message", text)),
        "text": str(text),
    }


# ---------------------------------------------------------------------------------------------
# What the three renderings share
# ---------------------------------------------------------------------------------------------


@dataclass
class _Row:
    scene: CompiledScene
    first: PassItem | None  # first occurrence in the pass, None if not reached
    plays: int
    time: str  # part-relative label: "1:30", "GO+0:04"
    travel: int  # travel stops written in the scene


@dataclass
class _Marker:
    after: int  # scene index the marker follows in the table
    kind: str  # "section" | "goto" | "loop"
    text: str


def _cue_label(scene: CompiledScene) -> str:
    return "GO" if scene.cue == "go" else str(scene.cue)


def _rows(timeline: Timeline, p: Pass) -> tuple[list[_Row], int]:
    """Table rows in first-play order (unreached scenes last) and how many were reached."""
    show = timeline.show.scenes
    first: dict[int, PassItem] = {}
    plays: dict[int, int] = {}
    labels: dict[int, str] = {}  # part -> cue label (part 0 runs on the show clock)
    for item in p.items:
        occ = item.occurrence
        index = occ.scene.index
        plays[index] = plays.get(index, 0) + 1
        if occ.part not in labels:
            labels[occ.part] = _cue_label(occ.scene) if occ.part and occ.scene.cue else ""
        first.setdefault(index, item)
    rows: list[_Row] = []
    for index, item in first.items():
        occ = item.occurrence
        label = labels.get(occ.part, "")
        if not label:
            time = fmt_time(item.start)
        else:
            offset = occ.start if occ.start is not None else occ.scene.pre_wait
            time = label if offset == 0 else f"{label}+{fmt_time(offset)}"
        rows.append(_Row(timeline.scenes[index], item, plays[index], time, len(show[index].travel)))
    reached = len(rows)
    for scene in timeline.scenes:
        if scene.index not in first:
            rows.append(_Row(scene, None, 0, "-", len(show[scene.index].travel)))
    return rows, reached


def _markers(timeline: Timeline, p: Pass) -> list[_Marker]:
    show = timeline.show
    out: list[_Marker] = []
    for section in show.sections:
        if section.repeat > 1:
            first, last = timeline.scene(section.start), timeline.scene(section.end)
            length = None
            if first.at is not None and last.end is not None:
                length = last.end - (first.at - first.pre_wait)
            each = f", {fmt_time(length)} each" if length is not None else ""
            out.append(
                _Marker(
                    last.index,
                    "section",
                    f"↻ section {section.name}: {section.start}…{section.end} "
                    f"plays {section.repeat}×{each}",
                )
            )
    for scene in timeline.scenes:
        if scene.goto is not None and not scene.closed_only:
            target, times = scene.goto
            how = "every time" if times is None else f"{times}×"
            out.append(_Marker(scene.index, "goto", f"↻ goto {timeline.scenes[target].name} ({how})"))
    return out


def _loop_text(timeline: Timeline, p: Pass) -> str:
    if p.truncated:
        return f"first pass cut after {len(p.items)} scenes; totals not computed"
    if p.cycle == "goto":
        return (
            f"repeats forever (endless goto): {fmt_time(p.period)} per round "
            f"from {fmt_time(p.cycle_start)}"
        )
    count = timeline.show.loop_count
    if p.cycle == "loop":
        if count is None:
            return f"loops forever, period {fmt_time(p.period)}"
        return f"plays {count}×: {fmt_time(p.period)} each, {fmt_time(timeline.total_duration)} in all"
    last = p.items[-1].occurrence.scene.name
    tail = f', then holds "{last}"' if p.holds and timeline.show.end == "hold" else ""
    if p.holds and timeline.show.end == "stop":
        tail = f', stops when "{last}" starts'
    return f"{fmt_time(timeline.total_duration)} (cues fire at once){tail}"


def _chunking(timeline: Timeline) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for scene in timeline.scenes:
        if scene.main_pipeline in seen:
            continue
        info = pipelines.lookup(scene.main_pipeline)
        seen[scene.main_pipeline] = {
            "pipeline": scene.main_pipeline,
            "frames_per_chunk": round(scene.chunk_interval * scene.fps),
            "fps": scene.fps,
            "fps_source": "show" if timeline.show.fps else ("pipeline" if info else "fallback"),
            "chunk_interval": scene.chunk_interval,
            "known": info is not None,
        }
    return list(seen.values())


def _chunking_text(timeline: Timeline) -> str:
    parts = []
    for c in _chunking(timeline):
        source = {"show": "show fps", "pipeline": "typical fps", "fallback": "assumed"}[c["fps_source"]]
        parts.append(
            f"{c['pipeline']} {c['frames_per_chunk']} frames/chunk at {_num(c['fps'])} fps "
            f"({source}) = {_num(round(c['chunk_interval'], 4))}s per step"
        )
    return "; ".join(parts)


def _switch_text(timeline: Timeline) -> str:
    p = timeline.one_pass()
    initial = p.items[0].occurrence.scene.switch_estimate
    return (
        f"{timeline.switch_count} per pass, ~{_num(round(timeline.switch_seconds, 1))}s without "
        f"output ({SWITCH_NOTE}); first load ~{_num(round(initial, 1))}s before the show starts"
    )


def _entry(scene: CompiledScene) -> tuple[str, str]:
    """(transition text, entry kind) of a scene's entry."""
    action = scene.entry
    if action is None:
        return "-", "none"
    if action.kind == "session":
        return "session", "session"
    tr = action.message.get("transition")
    if tr is None:
        return "-", "send"
    steps = tr["num_steps"]
    if steps == 0:
        return "cut", "send"
    secs = _num(round(steps * scene.chunk_interval, 2))
    return f"{tr['temporal_interpolation_method']} {steps} ({secs}s)", "send"


def _lora_text(scene: CompiledScene) -> str:
    if not scene.state_in.lora_scales and not scene.curves:
        return "-"
    curves = {c.target[5:]: c for c in scene.curves if c.target.startswith("lora.")}
    parts = []
    for name, scale in scene.state_in.lora_scales.items():
        curve = curves.pop(name, None)
        if curve is not None:
            parts.append(f"{name} {_num(scale)}→{_num(curve.keyframes[-1].value)}")
        else:
            parts.append(f"{name} {_num(scale)}")
    for name, curve in curves.items():
        parts.append(f"{name} →{_num(curve.keyframes[-1].value)}")
    return ", ".join(parts) or "-"


# ---------------------------------------------------------------------------------------------
# Terminal
# ---------------------------------------------------------------------------------------------

# (header, most it grows to, least it shrinks to); prompts take what is left.
_COLUMNS = (
    ("time", 10, 7),
    ("scene", 24, 8),
    ("trigger", 20, 6),
    ("pipeline", 22, 8),
    ("prompts", 0, 16),
    ("transition", 16, 8),
    ("LoRA", 18, 6),
    ("VACE", 14, 4),
    ("!", 2, 1),
)
_PROMPTS = 4


def _widths(rows: Sequence[Sequence[str]], total: int) -> list[int]:
    """Column widths that fit `total`: content width up to a cap, the widest shrinking first."""
    widths = [len(name) for name, _, _ in _COLUMNS]
    for cells in rows:
        for n, cell in enumerate(cells):
            if len(cell) > widths[n]:
                widths[n] = len(cell)
    prompts = widths[_PROMPTS]
    widths = [min(w, cap) if cap else w for w, (_, cap, _) in zip(widths, _COLUMNS, strict=True)]
    widths[_PROMPTS] = _COLUMNS[_PROMPTS][2]
    room = total - (sum(widths) + len(widths) - 1)
    if room >= 0:
        widths[_PROMPTS] += min(room, max(0, prompts - widths[_PROMPTS]))
        return widths
    while room < 0:
        shrinkable = [n for n, (_, _, least) in enumerate(_COLUMNS) if widths[n] > least]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda n: widths[n] - _COLUMNS[n][2])
        widths[widest] -= 1
        room += 1
    return widths


def render_text(timeline: Timeline, *, findings: Sequence[object] = (), width: int | None = None) -> str:
    """The terminal report: one pass as a table, totals, switch gaps, fps, preflight warnings.

    `width` is the terminal width (default 120); the table fits it, the prompts column taking
    what the other columns leave.
    """
    with paused_gc():
        return _render_text(timeline, findings, width)


def _render_text(timeline: Timeline, findings: Sequence[object], width: int | None) -> str:
    total_width = max(60, width or DEFAULT_WIDTH)
    p = timeline.one_pass()
    rows, reached = _rows(timeline, p)
    cells = [_text_cells(row) for row in rows]
    widths = _widths(cells, total_width)
    markers: dict[int, list[_Marker]] = {}
    for marker in _markers(timeline, p):
        markers.setdefault(marker.after, []).append(marker)

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if len(c) <= w else c[: w - 1] + "…" for c, w in zip(cells, widths, strict=True)
        ]
        return " ".join(parts).rstrip()

    out = [f"{timeline.show.title}" + (f"  ({timeline.source})" if timeline.source else ""), ""]
    out.append(line([name for name, _, _ in _COLUMNS]))
    out.append(line(["-" * w for w in widths]))
    for n, row in enumerate(rows):
        if n == reached:
            out.append("  not in the normal flow:")
        out.append(line(cells[n]))
        for marker in markers.get(row.scene.index, ()) if row.first is not None else ():
            out.append("  " + _cut(marker.text, total_width - 2))
    if p.cycle == "loop":
        out.append("  " + _loop_text(timeline, p).replace("loops forever", "↻ loops forever", 1))
    wrap = textwrap.TextWrapper(width=total_width, subsequent_indent="    ", break_on_hyphens=False)
    out.append("")
    out.extend(wrap.wrap(f"Total: {_loop_text(timeline, p)}"))
    out.extend(wrap.wrap(f"Pipeline switches: {_switch_text(timeline)}"))
    out.extend(wrap.wrap("Seconds → steps: " + _chunking_text(timeline)))
    out.append("* = reload/reconnect at entry; cue parts are timed from their cue (GO+0:04).")
    warnings = [_finding(f)["text"] for f in findings] + list(timeline.warnings)
    if warnings:
        out.append("")
        out.append(f"Preflight warnings ({len(warnings)}):")
        out.extend(f"  - {w}" for w in warnings)  # unwrapped: one per line, easy to grep
    return "\n".join(out) + "\n"


def _text_cells(row: _Row) -> list[str]:
    sc = row.scene
    switched = sc.reconnect
    if row.first is not None:  # the pass knows what really comes before it
        switched = row.first.switch > 0 or row.first.occurrence.how == "start"
    name = sc.name + (f" ×{row.plays}" if row.plays > 1 else "")
    prompts = _prompts_text(sc.state_in.prompts)
    if row.travel:
        prompts += f" (+{row.travel} travel)"
    transition, _ = _entry(sc)
    pipeline = ">".join(sc.state_in.chain) + ("*" if switched else "")
    return [
        row.time,
        name,
        sc.trigger,
        pipeline,
        prompts,
        transition,
        _lora_text(sc),
        ",".join(sc.state_in.vace_refs) or "-",
        str(len(sc.warnings)) if sc.warnings else "",
    ]


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def _state_data(state: State) -> dict[str, Any]:
    data: dict[str, Any] = {
        "chain": list(state.chain),
        "input_mode": state.input_mode,
        "load_params": _plain(state.load_params),
        "prompts": [p.wire() for p in state.prompts],
        "params": _plain(state.params),
        "lora_scales": dict(state.lora_scales),
        "vace_refs": list(state.vace_refs),
        "transition": None,
    }
    if state.transition is not None:
        tr = state.transition
        data["transition"] = {
            "from_prompts": [p.wire() for p in tr.from_prompts],
            "to_prompts": [p.wire() for p in tr.to_prompts],
            "steps": tr.steps,
            "method": tr.method,
            "progress": round(tr.progress, 4),
        }
    return data


def _scene_data(timeline: Timeline, row: _Row) -> dict[str, Any]:
    sc = row.scene
    transition, entry_kind = _entry(sc)
    return {
        "index": sc.index,
        "name": sc.name,
        "trigger": sc.trigger,
        "cue": sc.cue,
        "pre_wait": sc.pre_wait,
        "at": sc.at,
        "duration": sc.duration,
        "end": sc.end,
        "time": row.time,
        "first_start": row.first.start if row.first else None,
        "plays": row.plays,
        "closed_only": sc.closed_only,
        "sections": list(sc.sections),
        "goto": (
            {"scene": timeline.scenes[sc.goto[0]].name, "times": sc.goto[1]}
            if sc.goto is not None
            else None
        ),
        "pipeline": sc.main_pipeline,
        "chunk_interval": sc.chunk_interval,
        "fps": sc.fps,
        "reconnect": sc.reconnect,
        "switch_estimate": sc.switch_estimate,
        "entry": entry_kind,
        "transition": transition,
        "state_in": _state_data(sc.state_in),
        "state_out": _state_data(sc.state_out),
        "keyframes": {
            c.target: [{"at": k.at, "value": k.value, "ease": k.ease} for k in c.keyframes]
            for c in sc.curves
        },
        "actions": [
            {"offset": round(a.offset, 6), "kind": a.kind, "label": a.label, "message": _plain(a.message)}
            for a in sc.actions
        ],
        "warnings": list(sc.warnings),
    }


def report_data(timeline: Timeline, *, findings: Sequence[object] = ()) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data (README: "--json: the report format")."""
    with paused_gc():
        return _report_data(timeline, findings)


def _report_data(timeline: Timeline, findings: Sequence[object]) -> dict[str, Any]:
    show = timeline.show
    p = timeline.one_pass()
    rows, _ = _rows(timeline, p)
    by_index = {row.scene.index: row for row in rows}
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": show.title,
        "source": timeline.source,
        "bpm": show.bpm,
        "fps": show.fps,
        "loop": {"count": show.loop_count, "end": show.end},
        "total_duration": timeline.total_duration,
        "period": timeline.period,
        "summary": _loop_text(timeline, p),
        "switches": {
            "count": timeline.switch_count,
            "seconds": round(timeline.switch_seconds, 3),
            "initial_load": p.items[0].occurrence.scene.switch_estimate if p.items else 0.0,
            "estimate": {
                "load_wan": LOAD_SECONDS_WAN,
                "load_weight_free": LOAD_SECONDS_PLAIN,
                "load_unknown": LOAD_SECONDS_UNKNOWN,
                "reconnect": RECONNECT_SECONDS,
            },
        },
        "chunking": _chunking(timeline),
        "findings": [_finding(f) for f in findings],
        "warnings": list(timeline.warnings),
        "sections": [
            {"name": s.name, "start": s.start, "end": s.end, "repeat": s.repeat} for s in show.sections
        ],
        "scenes": [_scene_data(timeline, by_index[sc.index]) for sc in timeline.scenes],
        "pass": {
            "end": p.end,
            "holds": p.holds,
            "cycle": p.cycle,
            "cycle_start": p.cycle_start,
            "period": p.period,
            "truncated": p.truncated,
            "wrap_switch": p.wrap_switch,
            "items": [
                {
                    "scene": item.occurrence.scene.index,
                    "name": item.occurrence.scene.name,
                    "part": item.occurrence.part,
                    "start": item.occurrence.start,
                    "end": item.occurrence.end,
                    "abs_start": item.start,
                    "abs_end": item.end,
                    "iteration": item.occurrence.iteration,
                    "how": item.occurrence.how,
                    "path": [list(step) for step in item.occurrence.path],
                    "switch": item.switch,
                }
                for item in p.items
            ],
        },
    }


def render_json(timeline: Timeline, *, findings: Sequence[object] = ()) -> str:
    """`report_data` as indented JSON (what `--json` writes)."""
    return json.dumps(report_data(timeline, findings=findings), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# --at (read by showrunner.plan.position.parse_position)
# ---------------------------------------------------------------------------------------------


def render_state(state: State, *, label: str) -> str:
    """The resolved state as readable lines (for `report --at`)."""
    lines = [f"State at {label}"]

    def add(key: str, value: str) -> None:
        lines.append(f"  {key + ':':<14}{value}")

    add("pipeline", f"{' > '.join(state.chain)} ({state.input_mode} mode)")
    add("load", json.dumps(_plain(state.load_params)))
    add("prompts", _prompts_text(state.prompts))
    if state.transition is not None:
        tr = state.transition
        add(
            "transition",
            f"from {_prompts_text(tr.from_prompts)}: {tr.steps} steps {tr.method}, "
            f"{round(tr.progress * 100)}% done",
        )
    params = " ".join(f"{k}={json.dumps(_plain(v))}" for k, v in state.params.items())
    add("params", params or "-")
    add("LoRA scales", " ".join(f"{k}={_num(v)}" for k, v in state.lora_scales.items()) or "-")
    add("VACE refs", ", ".join(state.vace_refs) or "-")
    if state.output_sinks:
        add("output sinks", json.dumps(_plain(state.output_sinks)))
    if state.input_source is not None:
        add("input source", json.dumps(_plain(state.input_source)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948", "#9c755f")
_LORA_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
_LABEL_W = 96
_MIN_PLOT = 900
_MAX_PLOT = 4000
_TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)


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
    rows, reached = _rows(timeline, p)
    markers: dict[int, list[str]] = {}
    for marker in _markers(timeline, p):
        markers.setdefault(marker.after, []).append(marker.text)
    table = [
        {
            "cells": _text_cells(row),
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
        columns=[name for name, _, _ in _COLUMNS],
        details=details,
        svg=_svg(timeline, p),
        chunking=_chunking_text(timeline),
        switches=_switch_text(timeline),
        warnings=[f["text"] for f in data["findings"]] + data["warnings"],
    )


class _Canvas:
    """Geometry (seconds -> px) and the shapes drawn so far; the template only draws them."""

    def __init__(self, span: float) -> None:
        self.span = span
        plot = min(_MAX_PLOT, max(_MIN_PLOT, span * 8))
        self.scale = plot / span  # px per second
        self.width = plot + _LABEL_W + 20
        self.shapes: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("rects", "gaps", "lines", "texts", "polylines", "dots", "brackets")
        }

    def x(self, t: float) -> float:
        return round(_LABEL_W + t * self.scale, 1)

    def w(self, a: float, b: float) -> float:
        return round(max(0.5, (min(b, self.span) - a) * self.scale), 1)

    def rect(self, kind: str, t0: float, t1: float, y: float, h: float, title: str, fill: str = "") -> float:
        width = self.w(t0, t1)
        self.shapes[kind].append({"x": self.x(t0), "y": y, "w": width, "h": h, "fill": fill, "title": title})
        return width

    def line(self, t: float, y1: float, y2: float, cls: str, title: str) -> None:
        x = self.x(t)
        self.shapes["lines"].append({"x1": x, "y1": y1, "x2": x, "y2": y2, "cls": cls, "title": title})

    def text(self, x: float, y: float, text: str, cls: str, fill: str | None = None) -> None:
        entry: dict[str, Any] = {"x": x, "y": y, "text": text, "cls": cls}
        if fill:
            entry["fill"] = fill
        self.shapes["texts"].append(entry)


def _svg(timeline: Timeline, p: Pass) -> dict[str, Any]:
    """The timeline picture: lanes over one pass, on the absolute clock (cues at once)."""
    span = max(p.end, max((i.end or i.start for i in p.items), default=0.0), 1.0)
    if p.holds:  # show a stretch of the held last look
        span += max(5.0, span * 0.05)
    canvas = _Canvas(span)
    lora_names = list(
        dict.fromkeys(
            name
            for item in p.items
            for name in [
                *item.occurrence.scene.state_in.lora_scales,
                *(c.target[5:] for c in item.occurrence.scene.curves if c.target.startswith("lora.")),
            ]
        )
    )
    heights = {
        "cues": 18,
        "pipeline": 24,
        "gaps": 10 if any(item.switch > 0 for item in p.items) else 0,
        "prompts": 24,
        "LoRA": 56 if lora_names else 0,
        "VACE": 16,
    }
    lanes: dict[str, dict[str, Any]] = {}
    y = 28.0
    for name, height in heights.items():
        if height:
            lanes[name] = {"name": name, "y": y, "h": height}
            y += height + 8
    _pipeline_lane(p, canvas, lanes["pipeline"], lanes.get("gaps"))
    _prompt_lane(p, canvas, lanes["prompts"])
    _cue_marks(p, canvas, lanes["cues"], y)
    if lora_names:
        _lora_lane(p, canvas, lanes["LoRA"], lora_names)
    _vace_lane(p, canvas, lanes["VACE"])
    levels = _brackets(timeline, p, canvas, y)
    height = y + levels * 18 + 34
    step = next((s for s in _TICKS if s * canvas.scale >= 80), _TICKS[-1])
    ticks = [
        {"x": canvas.x(k * step), "y": height - 22, "label": fmt_time(k * step)}
        for k in range(math.floor(span / step) + 1)
    ]
    return {
        "width": round(canvas.width),
        "height": round(height),
        "lanes": list(lanes.values()),
        "ticks": ticks,
        **canvas.shapes,
    }


def _item_end(item: PassItem, span: float) -> float:
    return item.end if item.end is not None else span


def _pipeline_lane(p: Pass, canvas: _Canvas, lane: dict[str, Any], gaps: dict[str, Any] | None) -> None:
    """One bar per run of the same chain; hatched estimates of the output gap at each switch."""
    colours: dict[str, str] = {}
    runs: list[list[Any]] = []  # [start, end, chain]
    for item in p.items:
        chain = " > ".join(item.occurrence.scene.state_in.chain)
        colours.setdefault(chain, _PALETTE[len(colours) % len(_PALETTE)])
        end = _item_end(item, canvas.span)
        if runs and runs[-1][2] == chain and item.switch == 0:
            runs[-1][1] = end
        else:
            runs.append([item.start, end, chain])
        if item.switch > 0 and gaps is not None:
            name = item.occurrence.scene.name
            title = f"~{_num(round(item.switch, 1))} s reload + reconnect before {name} (estimate)"
            canvas.rect("gaps", item.start, item.start + item.switch, gaps["y"], gaps["h"], title)
    for start, end, chain in runs:
        title = f"{chain} {fmt_time(start)}–{fmt_time(end)}"
        width = canvas.rect("rects", start, end, lane["y"], lane["h"], title, colours[chain])
        if width > 40:
            canvas.text(canvas.x(start) + 4, lane["y"] + 16, _cut(chain, int(width / 7)), "on")


def _prompt_lane(p: Pass, canvas: _Canvas, lane: dict[str, Any]) -> None:
    """One box per occurrence with its prompts; a tick at each travel stop."""
    for n, item in enumerate(p.items):
        sc = item.occurrence.scene
        text = _prompts_text(sc.state_in.prompts)
        title = f"{sc.name} {fmt_time(item.start)}: {text}"
        fill = "#eef2f7" if n % 2 else "#dde5ef"
        end = _item_end(item, canvas.span)
        width = canvas.rect("rects", item.start, end, lane["y"], lane["h"], title, fill)
        if width > 30:
            label = _cut(f"{sc.name}: {text}", int(width / 6.5))
            canvas.text(canvas.x(item.start) + 3, lane["y"] + 16, label, "in")
        for action in sc.actions:
            if action.label.startswith("travel"):
                title = f"{sc.name} {action.label} at +{fmt_time(action.offset)}"
                canvas.line(item.start + action.offset, lane["y"], lane["y"] + lane["h"], "travel", title)


def _cue_marks(p: Pass, canvas: _Canvas, lane: dict[str, Any], bottom: float) -> None:
    for item in p.items:
        sc = item.occurrence.scene
        if sc.cue is not None:
            fired = item.start - sc.pre_wait
            canvas.line(fired, lane["y"], bottom, "cue", f"{_cue_label(sc)} → {sc.name}")
            canvas.text(canvas.x(fired) + 3, lane["y"] + 12, _cue_label(sc), "cue")


def _lora_lane(p: Pass, canvas: _Canvas, lane: dict[str, Any], names: list[str]) -> None:
    """Each LoRA's runtime scale as a polyline through its sampled values, held between them."""
    series: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for item in p.items:
        sc = item.occurrence.scene
        current = {n: _scale(sc.state_in, n) for n in names}
        for n, value in current.items():
            if value is not None:
                series[n].append((item.start, value))
        for action in sc.actions:
            if action.offset <= 0:
                continue
            for entry in action.message.get("lora_scales") or ():
                n = entry["path"][len(LORA_PREFIX) :]
                if n in series:
                    t = item.start + action.offset
                    held = current.get(n)
                    if held is not None:
                        series[n].append((t, held))
                    series[n].append((t, entry["scale"]))
                    current[n] = entry["scale"]
        end = _item_end(item, canvas.span)
        for n, value in current.items():
            if value is not None:
                series[n].append((end, value))
    values = [0.0, 1.0] + [v for pts in series.values() for _, v in pts]
    low, high = min(values), max(values)
    top, height = lane["y"] + 4, lane["h"] - 8

    def y(v: float) -> float:
        return round(top + height - (v - low) / (high - low) * height, 1)

    for k, (name, pts) in enumerate(series.items()):
        if pts:
            colour = _LORA_COLOURS[k % len(_LORA_COLOURS)]
            points = " ".join(f"{canvas.x(t)},{y(v)}" for t, v in pts)
            canvas.shapes["polylines"].append({"points": points, "stroke": colour, "title": f"LoRA {name}"})
            label = f"{name} ({_num(low)}…{_num(high)})"
            canvas.text(canvas.x(canvas.span) - 6 - k * 110, lane["y"] + 10, label, "small end", colour)


def _scale(state: State, name: str) -> float | None:
    value = state.lora_scales.get(name)
    if value is not None:
        return value
    for lora in state.load_params.get("loras") or ():
        if lora.get("path") == LORA_PREFIX + name:
            return float(lora.get("scale", 1.0))
    return None


def _vace_lane(p: Pass, canvas: _Canvas, lane: dict[str, Any]) -> None:
    """Where refs are in force, and a dot wherever vace_ref_images is (re-)sent."""
    for item in p.items:
        sc = item.occurrence.scene
        refs = sc.state_in.vace_refs
        if refs:
            end = _item_end(item, canvas.span)
            title = f"VACE refs: {', '.join(refs)}"
            canvas.rect("rects", item.start, end, lane["y"] + 3, lane["h"] - 6, title, "#c9b3e6")
        for action in sc.actions:
            if "vace_ref_images" in action.message:
                canvas.shapes["dots"].append(
                    {
                        "cx": canvas.x(item.start + action.offset),
                        "cy": lane["y"] + lane["h"] / 2,
                        "title": f"{sc.name}: vace_ref_images sent ({action.label})",
                    }
                )


def _brackets(timeline: Timeline, p: Pass, canvas: _Canvas, y0: float) -> int:
    """Loop brackets (sections, gotos, the show loop), stacked so they never overlap."""
    first: dict[int, PassItem] = {}
    last: dict[int, PassItem] = {}
    for item in p.items:
        first.setdefault(item.occurrence.scene.index, item)
        last[item.occurrence.scene.index] = item
    spans: list[tuple[float, float, str]] = []
    for section in timeline.show.sections:
        a, b = timeline.scene(section.start).index, timeline.scene(section.end).index
        if section.repeat > 1 and a in first and b in last:
            end = _item_end(last[b], p.end)
            spans.append((first[a].start, end, f"section {section.name} ×{section.repeat}"))
    for scene in timeline.scenes:
        if scene.goto is None or scene.closed_only or scene.index not in last:
            continue
        target, times = scene.goto
        lo = min(target, scene.index)
        if lo in first:
            label = f"goto {timeline.scenes[target].name} " + ("forever" if times is None else f"×{times}")
            spans.append((first[lo].start, _item_end(last[scene.index], p.end), label))
    if p.cycle is not None and p.cycle_start is not None:
        count = timeline.show.loop_count
        label = "show loop " + ("forever" if count is None else f"×{count}")
        if p.cycle == "goto":
            label = "repeats forever"
        spans.append((p.cycle_start, p.end, f"↻ {label} (period {fmt_time(p.period)})"))
    levels: list[float] = []  # where the last bracket of each level ends
    for start, end, label in sorted(spans):
        level = next((k for k, taken in enumerate(levels) if taken <= start), len(levels))
        if level == len(levels):
            levels.append(end)
        else:
            levels[level] = end
        y = y0 + level * 18
        bracket = {"x": canvas.x(start), "w": canvas.w(start, end), "y": y, "label": label}
        canvas.shapes["brackets"].append(bracket)
    return max(1, len(levels))
