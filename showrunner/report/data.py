"""The report as JSON-ready data (README: "--json: the report format")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from showrunner.plan.timeline import (
    LOAD_SECONDS_PLAIN,
    LOAD_SECONDS_UNKNOWN,
    LOAD_SECONDS_WAN,
    RECONNECT_SECONDS,
    State,
    Timeline,
    paused_gc,
)
from showrunner.report.common import (
    Dark,
    Row,
    changes,
    chunking,
    dark_stretches,
    dark_text,
    entry_text,
    finding_data,
    loop_text,
    plain,
    table_rows,
)
from showrunner.report.cost import gpu_cost, hook_times
from showrunner.report.hours import hours_data

FORMAT = "showrunner-report"
VERSION = 1


def _state_data(state: State) -> dict[str, Any]:
    data: dict[str, Any] = {
        "chain": list(state.chain),
        "input_mode": state.input_mode,
        "load_params": plain(state.load_params),
        "prompts": [p.wire() for p in state.prompts],
        "params": plain(state.params),
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


def row_changes(timeline: Timeline, row: Row) -> list[str]:
    """What the row's scene changes on entry, against what was on before its first play (in file
    order for a scene the pass never reaches)."""
    sc = row.scene
    p = timeline.one_pass()
    if row.first is not None:
        n = row.position
        before = p.items[n - 1].occurrence.scene.state_out if n else None
        return changes(before, sc, row.first.switch)
    before = timeline.scenes[sc.index - 1].state_out if sc.index else None
    return changes(before, sc, sc.switch_estimate if sc.index else 0.0)


def _scene_data(timeline: Timeline, row: Row, dark: Sequence[Dark]) -> dict[str, Any]:
    sc = row.scene
    transition, entry_kind = entry_text(sc)
    return {
        "index": sc.index,
        "name": sc.name,
        "notes": timeline.show.scenes[sc.index].notes,
        "trigger": sc.trigger,
        "follows_tempo": sc.follows_tempo,
        "start_follows_tempo": sc.start_follows_tempo,
        "quantize": sc.quantize,
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
            {"offset": round(a.offset, 6), "kind": a.kind, "label": a.label, "message": plain(a.message)}
            for a in sc.actions
        ],
        "warnings": list(sc.warnings),
        "no_picture": round(sum(d.seconds for d in dark), 3),
        "changes": row_changes(timeline, row),
    }


def report_data(
    timeline: Timeline,
    *,
    findings: Sequence[object] = (),
    now: datetime | None = None,
    gpu_rate: float | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data (docs/report.md: "--json").

    `now` (an aware datetime) is the moment "open now" and "next open" of opening hours are
    told against; without it they are null. Nothing here reads the clock. `gpu_rate` (price
    of a GPU hour) overrides the show's `cost.per_hour`.
    """
    with paused_gc():
        data = _report_data(timeline, findings, now)
    cost = gpu_cost(timeline.show, per_hour=gpu_rate)
    data["gpu"] = cost.to_json() if cost is not None else None
    data["hooks"] = [t.to_json() for t in hook_times(timeline.show)]
    return data


def _report_data(timeline: Timeline, findings: Sequence[object], now: datetime | None) -> dict[str, Any]:
    show = timeline.show
    p = timeline.one_pass()
    rows, _ = table_rows(timeline, p)
    by_index = {row.scene.index: row for row in rows}
    dark = dark_stretches(p)
    dark_by_scene: dict[int, list[Dark]] = {}
    for d in dark:
        dark_by_scene.setdefault(p.items[d.item].occurrence.scene.index, []).append(d)
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
        "summary": loop_text(timeline, p),
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
        "chunking": chunking(timeline),
        "findings": [finding_data(f) for f in findings],
        "warnings": list(timeline.warnings),
        "sections": [
            {"name": s.name, "start": s.start, "end": s.end, "repeat": s.repeat} for s in show.sections
        ],
        "no_picture": [
            {
                "scene": p.items[d.item].occurrence.scene.index,
                "name": p.items[d.item].occurrence.scene.name,
                "start": round(d.start, 6),
                "seconds": round(d.seconds, 3),
                "length": d.length,
                "cause": d.text,
                "text": dark_text(d, p.items[d.item].occurrence.scene.name),
            }
            for d in dark
        ],
        "hours": hours_data(show.hours, now),
        "scenes": [
            _scene_data(timeline, by_index[sc.index], dark_by_scene.get(sc.index, ()))
            for sc in timeline.scenes
        ],
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


def render_json(
    timeline: Timeline,
    *,
    findings: Sequence[object] = (),
    now: datetime | None = None,
    gpu_rate: float | None = None,
) -> str:
    """`report_data` as indented JSON (what `--json` writes)."""
    data = report_data(timeline, findings=findings, now=now, gpu_rate=gpu_rate)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
