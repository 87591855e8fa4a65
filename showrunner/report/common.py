"""What the text, JSON and HTML reports share: the table rows of one pass, loop markers,
totals and the small formatting helpers.

Everything here reads a :class:`~showrunner.plan.timeline.Timeline` and never iterates a schedule
past one pass (:meth:`Timeline.one_pass`), so a show that loops forever reports at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from showrunner import pipelines
from showrunner.plan.timeline import (
    LOAD_SECONDS_PLAIN,
    LOAD_SECONDS_UNKNOWN,
    LOAD_SECONDS_WAN,
    RECONNECT_SECONDS,
    CompiledScene,
    Pass,
    PassItem,
    Timeline,
    WeightedPrompt,
    fmt_time,
)

SWITCH_NOTE = (
    f"estimate per switch: load {LOAD_SECONDS_WAN:g}s per Wan pipeline, {LOAD_SECONDS_PLAIN:g}s "
    f"per weight-free one, {LOAD_SECONDS_UNKNOWN:g}s per unknown one, "
    f"+ {RECONNECT_SECONDS:g}s reconnect"
)


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------


def cut(text: str, width: int) -> str:
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


def num(value: float) -> str:
    return f"{value:g}"


def prompts_text(prompts: Sequence[WeightedPrompt]) -> str:
    if not prompts:
        return "-"
    return " | ".join(p.text if p.weight == 1 else f"{p.text} ({num(p.weight)})" for p in prompts)


def plain(value: Any) -> Any:
    """JSON-ready copy of nested mappings / tuples."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def finding_data(finding: object) -> dict[str, Any]:
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
class Row:
    scene: CompiledScene
    first: PassItem | None  # first occurrence in the pass, None if not reached
    plays: int
    time: str  # part-relative label: "1:30", "GO+0:04"
    travel: int  # travel stops written in the scene
    position: int = -1  # index of `first` in the pass (-1: not reached)


@dataclass
class Marker:
    after: int  # scene index the marker follows in the table
    kind: str  # "section" | "goto" | "loop"
    text: str


TEMPO_MARK = "♩"  # after a trigger: the scene starts on the beat, so it follows a live tempo


def trigger_text(scene: CompiledScene) -> str:
    """The scene's trigger, marked when its start is counted in beats (docs/report.md)."""
    return scene.trigger + (" " + TEMPO_MARK if scene.start_follows_tempo else "")


def tempo_legend(timeline: Timeline) -> str | None:
    """The legend of `TEMPO_MARK` when the show has musical time (None: it has none)."""
    if not any(s.start_follows_tempo or s.follows_tempo for s in timeline.scenes):
        return None
    return (f"{TEMPO_MARK} = starts on the beat; times in bars/beats shown at {timeline.show.bpm:g} bpm "
            "follow a live tempo")


def cue_label(scene: CompiledScene) -> str:
    return "GO" if scene.cue == "go" else str(scene.cue)


def table_rows(timeline: Timeline, p: Pass) -> tuple[list[Row], int]:
    """Table rows in first-play order (unreached scenes last) and how many were reached."""
    show = timeline.show.scenes
    first: dict[int, PassItem] = {}
    positions: dict[int, int] = {}
    plays: dict[int, int] = {}
    labels: dict[int, str] = {}  # part -> cue label (part 0 runs on the show clock)
    for n, item in enumerate(p.items):
        occ = item.occurrence
        index = occ.scene.index
        plays[index] = plays.get(index, 0) + 1
        if occ.part not in labels:
            labels[occ.part] = cue_label(occ.scene) if occ.part and occ.scene.cue else ""
        if index not in first:
            first[index] = item
            positions[index] = n
    rows: list[Row] = []
    for index, item in first.items():
        occ = item.occurrence
        label = labels.get(occ.part, "")
        if not label:
            time = fmt_time(item.start)
        else:
            offset = occ.start if occ.start is not None else occ.scene.pre_wait
            time = label if offset == 0 else f"{label}+{fmt_time(offset)}"
        rows.append(
            Row(timeline.scenes[index], item, plays[index], time, len(show[index].travel), positions[index])
        )
    reached = len(rows)
    for scene in timeline.scenes:
        if scene.index not in first:
            rows.append(Row(scene, None, 0, "-", len(show[scene.index].travel)))
    return rows, reached


def loop_markers(timeline: Timeline, p: Pass) -> list[Marker]:
    show = timeline.show
    out: list[Marker] = []
    for section in show.sections:
        if section.repeat > 1:
            first, last = timeline.scene(section.start), timeline.scene(section.end)
            length = None
            if first.at is not None and last.end is not None:
                length = last.end - (first.at - first.pre_wait)
            each = f", {fmt_time(length)} each" if length is not None else ""
            out.append(
                Marker(
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
            out.append(Marker(scene.index, "goto", f"↻ goto {timeline.scenes[target].name} ({how})"))
    return out


def loop_text(timeline: Timeline, p: Pass) -> str:
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


def chunking(timeline: Timeline) -> list[dict[str, Any]]:
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


def chunking_text(timeline: Timeline) -> str:
    parts = []
    for c in chunking(timeline):
        source = {"show": "show fps", "pipeline": "typical fps", "fallback": "assumed"}[c["fps_source"]]
        parts.append(
            f"{c['pipeline']} {c['frames_per_chunk']} frames/chunk at {num(c['fps'])} fps "
            f"({source}) = {num(round(c['chunk_interval'], 4))}s per step"
        )
    return "; ".join(parts)


def switch_text(timeline: Timeline) -> str:
    p = timeline.one_pass()
    initial = p.items[0].occurrence.scene.switch_estimate
    return (
        f"{timeline.switch_count} per pass, ~{num(round(timeline.switch_seconds, 1))}s without "
        f"output ({SWITCH_NOTE}); first load ~{num(round(initial, 1))}s before the show starts"
    )


def entry_text(scene: CompiledScene) -> tuple[str, str]:
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
    secs = num(round(steps * scene.chunk_interval, 2))
    return f"{tr['temporal_interpolation_method']} {steps} ({secs}s)", "send"


def lora_text(scene: CompiledScene) -> str:
    if not scene.state_in.lora_scales and not scene.curves:
        return "-"
    curves = {c.target[5:]: c for c in scene.curves if c.target.startswith("lora.")}
    parts = []
    for name, scale in scene.state_in.lora_scales.items():
        curve = curves.pop(name, None)
        if curve is not None:
            parts.append(f"{name} {num(scale)}→{num(curve.keyframes[-1].value)}")
        else:
            parts.append(f"{name} {num(scale)}")
    for name, curve in curves.items():
        parts.append(f"{name} →{num(curve.keyframes[-1].value)}")
    return ", ".join(parts) or "-"


# ---------------------------------------------------------------------------------------------
# Output gaps ("no picture") and what a scene changes (the cue sheet)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dark:
    """A stretch of one pass item without output: a reload + reconnect (estimate) covers it."""

    item: int  # index in Pass.items of the scene that loses its picture
    cause: int  # index of the item whose entry reloads (-1: going round the show loop)
    start: float  # absolute, show clock
    end: float
    length: float | None  # the item's length in the pass (None: it holds)
    text: str  # why: "reload + reconnect longlive → krea-realtime-video"

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _switch_why(before: Any, after: Any) -> str:
    a, b = " > ".join(before.chain), " > ".join(after.chain)
    if a != b:
        return f"reload + reconnect {a} → {b}"
    if before.load_params != after.load_params:
        return f"reload + reconnect of {b} (load settings change)"
    return f"reconnect ({before.input_mode} → {after.input_mode} mode)"


def dark_stretches(p: Pass) -> list[Dark]:
    """Where one pass has no picture: each switch's estimated gap, laid over the scenes it covers
    (a gap longer than its scene runs on into the next; gaps that overlap make one stretch, told
    by its first cause). The first load, before the show starts, is not in the pass."""
    items = p.items
    gaps = [(item.start, item.start + item.switch, n) for n, item in enumerate(items) if item.switch > 0]
    if p.wrap_switch > 0 and p.cycle_start is not None:
        first = next((n for n, item in enumerate(items) if item.start >= p.cycle_start - 1e-9), None)
        if first is not None:
            gaps.append((items[first].start, items[first].start + p.wrap_switch, -1 - first))
    merged: list[list[Any]] = []  # [start, stop, cause, how many]
    for start, stop, cause in sorted(gaps):
        if merged and start <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], stop)
            merged[-1][3] += 1
        else:
            merged.append([start, stop, cause, 1])
    out: list[Dark] = []
    for start, stop, cause, count in merged:
        begin = cause if cause >= 0 else -1 - cause
        before = items[begin - 1] if cause > 0 else items[-1]
        why = _switch_why(before.occurrence.scene.state_out, items[begin].occurrence.scene.state_in)
        if cause < 0:
            why += ", going round the show loop"
        if count > 1:
            why += f", then {count - 1} more switch{'es' if count > 2 else ''}"
        for m in range(begin, len(items)):
            item = items[m]
            end = item.end if item.end is not None else math.inf
            lo, hi = max(item.start, start), min(end, stop)
            if hi - lo > 1e-9:
                length = item.end - item.start if item.end is not None else None
                out.append(Dark(m, cause if cause >= 0 else -1, lo, hi, length, why))
            if end >= stop:
                break
    return out


def dark_text(d: Dark, name: str) -> str:
    seconds = num(round(d.seconds, 1))
    of = f"its {fmt_time(d.length)}" if d.length is not None else "its hold"
    whole = " (all of it)" if d.length is not None and d.seconds >= d.length - 1e-6 else ""
    return f"{name}: no picture for ~{seconds} s of {of}{whole} ({d.text}, estimate)"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float | int):
        return num(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def changes(before: Any, scene: CompiledScene, switch: float) -> list[str]:
    """What entering `scene` after a scene that left `before` (a State, None at the start) changes,
    in words: pipeline, reloads, values, LoRA scales, refs, one-shots, then what moves inside it."""
    after = scene.state_in
    out: list[str] = []
    if before is None:
        out.append(f"starts {' > '.join(after.chain)} ({after.input_mode} mode)")
    elif before.chain != after.chain:
        out.append(f"pipeline {' > '.join(before.chain)} → {' > '.join(after.chain)}")
    elif before.load_params != after.load_params:
        keys = sorted(k for k in {*before.load_params, *after.load_params}
                      if before.load_params.get(k) != after.load_params.get(k))
        out.append(f"reload ({', '.join(keys)})")
    elif before.input_mode != after.input_mode:
        out.append(f"{after.input_mode} mode")
    if switch > 0 and before is not None:
        out[-1:] = [out[-1] + " (reload + reconnect)"] if out else ["reconnect"]
    if before is not None:
        for key in dict.fromkeys([*before.params, *after.params]):
            old, new = before.params.get(key), after.params.get(key)
            if old != new:
                out.append(f"{key} {_value(old) if old is not None else '-'} → {_value(new)}"
                           if new is not None else f"{key} cleared")
        for name in dict.fromkeys([*before.lora_scales, *after.lora_scales]):
            old_scale, new_scale = before.lora_scales.get(name), after.lora_scales.get(name)
            if new_scale is not None and old_scale != new_scale:
                out.append(f"LoRA {name} {_value(old_scale) if old_scale is not None else '-'} → "
                           f"{_value(new_scale)}")
        if before.vace_refs != after.vace_refs:
            out.append("VACE refs " + (", ".join(after.vace_refs) or "cleared"))
    else:
        if after.params:
            out.append(", ".join(f"{k} {_value(v)}" for k, v in after.params.items()))
        if after.vace_refs:
            out.append("VACE refs " + ", ".join(after.vace_refs))
    entry = scene.entry.message if scene.entry is not None else {}
    if entry.get("reset_cache"):
        out.append("cache reset (hard cut)")
    for key, what in (("first_frame_image", "first frame"), ("last_frame_image", "last frame")):
        if key in entry:
            out.append(f"{what} {str(entry[key]).removeprefix('@asset:')}")
    transition, kind = entry_text(scene)
    if kind == "send" and transition not in ("-",):
        out.append(f"blend {transition}" if transition != "cut" else "cut")
    for curve in scene.curves:
        values: list[float] = []
        for v in ([curve.start] if curve.start is not None else []) + [k.value for k in curve.keyframes]:
            if not values or values[-1] != v:
                values.append(v)
        shown = values if len(values) <= 4 else [values[0], math.nan, values[-1]]
        path = "→".join("…" if v != v else num(v) for v in shown)
        out.append(f"{curve.target} {path} (keyframes)")
    travel = sum(1 for a in scene.actions if a.label.startswith("travel"))
    if travel:
        out.append(f"{travel} travel stop{'s' if travel > 1 else ''}")
    return out
