"""The timeline picture of the HTML report: lanes over one pass on the absolute clock (every
cue fires at once), as shapes the template draws (no jinja2 here).
"""

from __future__ import annotations

import math
from typing import Any

from showrunner.plan.state import lora_now
from showrunner.plan.timeline import LORA_PREFIX, Pass, PassItem, Timeline, fmt_time
from showrunner.report.common import cue_label, cut, num, prompts_text

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948", "#9c755f")
_LORA_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
_LABEL_W = 96
_MIN_PLOT = 900
_MAX_PLOT = 4000
_TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)


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


def timeline_svg(timeline: Timeline, p: Pass) -> dict[str, Any]:
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
    for name, size in heights.items():
        if size:
            lanes[name] = {"name": name, "y": y, "h": size}
            y += size + 8
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
            title = f"~{num(round(item.switch, 1))} s reload + reconnect before {name} (estimate)"
            canvas.rect("gaps", item.start, item.start + item.switch, gaps["y"], gaps["h"], title)
    for start, end, chain in runs:
        title = f"{chain} {fmt_time(start)}–{fmt_time(end)}"
        width = canvas.rect("rects", start, end, lane["y"], lane["h"], title, colours[chain])
        if width > 40:
            canvas.text(canvas.x(start) + 4, lane["y"] + 16, cut(chain, int(width / 7)), "on")


def _prompt_lane(p: Pass, canvas: _Canvas, lane: dict[str, Any]) -> None:
    """One box per occurrence with its prompts; a tick at each travel stop."""
    for n, item in enumerate(p.items):
        sc = item.occurrence.scene
        text = prompts_text(sc.state_in.prompts)
        title = f"{sc.name} {fmt_time(item.start)}: {text}"
        fill = "#eef2f7" if n % 2 else "#dde5ef"
        end = _item_end(item, canvas.span)
        width = canvas.rect("rects", item.start, end, lane["y"], lane["h"], title, fill)
        if width > 30:
            label = cut(f"{sc.name}: {text}", int(width / 6.5))
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
            canvas.line(fired, lane["y"], bottom, "cue", f"{cue_label(sc)} → {sc.name}")
            canvas.text(canvas.x(fired) + 3, lane["y"] + 12, cue_label(sc), "cue")


def _lora_lane(p: Pass, canvas: _Canvas, lane: dict[str, Any], names: list[str]) -> None:
    """Each LoRA's runtime scale as a polyline through its sampled values, held between them."""
    series: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for item in p.items:
        sc = item.occurrence.scene
        current = {n: lora_now(sc.state_in, n) for n in names}
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
    top: float = lane["y"] + 4
    height: float = lane["h"] - 8

    def y(v: float) -> float:
        return round(top + height - (v - low) / (high - low) * height, 1)

    for k, (name, pts) in enumerate(series.items()):
        if pts:
            colour = _LORA_COLOURS[k % len(_LORA_COLOURS)]
            points = " ".join(f"{canvas.x(t)},{y(v)}" for t, v in pts)
            canvas.shapes["polylines"].append({"points": points, "stroke": colour, "title": f"LoRA {name}"})
            label = f"{name} ({num(low)}…{num(high)})"
            canvas.text(canvas.x(canvas.span) - 6 - k * 110, lane["y"] + 10, label, "small end", colour)


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
