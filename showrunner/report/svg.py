"""The timeline picture of the HTML report: lanes over one pass on the absolute clock (every cue
fires at once), as SVG elements the template writes out (no jinja2 here).

Every element that sits on the time axis carries its times in data attributes (``data-t0``,
``data-t1``, ``data-t``, or a path template ``data-d`` with ``{t:seconds}`` for each x), so the
page's inline script can zoom and pan without the server: it only maps seconds to pixels again.
The x attributes written here are that mapping at the default zoom (the whole pass in
:data:`WIDTH` pixels), which is also what a browser without scripts shows, scaled to the page.

Labels never sit on each other. What can collide is stacked into rows, as a DAW arranges clips:
scenes that take no time (a GO that fires at once) and cues at the same moment go to rows of their
own. A label keeps inside its clip, or (for an instant) stops where the next label of its row
starts; the script shortens or hides a label that has no room at the current zoom.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from showrunner.plan.state import State, apply, lora_now
from showrunner.plan.timeline import LORA_PREFIX, CompiledScene, Curve, Pass, PassItem, Timeline, fmt_time
from showrunner.report.common import Dark, cue_label, cut, num, prompts_text
from showrunner.report.modulation import modulated_targets, overlays

WIDTH = 1232  # default width of the picture (a 1280 px window less the page margins)
GUTTER = 176  # lane names and value axes
PAD_RIGHT = 14
PLOT = WIDTH - GUTTER - PAD_RIGHT
ROW = 20  # one row of labels
CHAR = 6.6  # a conservative average glyph width at 11 px, for labels written here
MAX_ROWS = 4
VALUE_H = 56  # a value lane (curve, axis, keyframe dots)

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948", "#9c755f")
_SCENE_FILLS = ("#d5e1ee", "#e6edf5")
_CURVE_COLOURS = ("#c0392b", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
_VALUE_PARAMS = ("noise_scale", "vace_context_scale", "kv_cache_attention_bias")
_EASED_SAMPLES = 16


@dataclass
class Element:
    """One SVG element: tag, attributes (values escaped by the template), text, tooltip."""

    tag: str
    attrs: dict[str, Any]
    text: str | None = None
    title: str | None = None


@dataclass
class Lane:
    key: str  # "cues", "scenes", "value:noise_scale", ...
    name: str  # shown in the gutter
    y: float
    h: float
    kind: str  # "rows" (clips and labels) | "value" (a curve on an axis) | "ruler"
    axis: tuple[float, float] | None = None
    colour: str | None = None


@dataclass
class Picture:
    """What the template draws: lanes (gutter texts), elements on the time axis, and sizes."""

    span: float
    width: int
    height: int
    lanes: list[Lane]
    elements: list[Element]  # clipped to the plot area
    gutter: list[Element]  # lane names, axis labels (never move)
    bpm: float | None
    beats_per_bar: int
    ruler_y: float
    bars_y: float | None
    minimap: list[Element]
    items: list[dict[str, Any]] = field(default_factory=list)  # hover details, by pass item


class _Geometry:
    def __init__(self, span: float) -> None:
        self.span = span
        self.scale = PLOT / span  # px per second at the default zoom

    def x(self, t: float) -> float:
        return round(GUTTER + t * self.scale, 1)

    def w(self, a: float, b: float, least: float = 0.0) -> float:
        return round(max(least, (min(b, self.span) - a) * self.scale), 1)

    def seconds(self, px: float) -> float:
        return px / self.scale


def _t(value: float) -> str:
    return f"{round(value, 4):g}"


def _fits(text: str, px: float) -> str:
    """`text` cut to what fits `px` at the conservative glyph width ("" when nothing useful does)."""
    room = int((px - 6) / CHAR)
    if room >= len(text):
        return text
    return cut(text, room) if room >= 3 else ""


# ---------------------------------------------------------------------------------------------
# Stacking: rows so that labels never collide
# ---------------------------------------------------------------------------------------------


@dataclass
class Slot:
    """Something with a label on a row lane: a clip (t0 < t1) or an instant (t0 == t1)."""

    t0: float
    t1: float
    row: int = 0
    limit: float = 0.0  # where its label must end (seconds)


def stack(slots: Sequence[Slot], room: float, max_rows: int = MAX_ROWS) -> int:
    """Give each slot a row and a label limit; returns the rows used.

    Clips keep to row 0 unless they overlap in time; an instant needs `room` seconds for its
    label, so it goes to the first row where nothing starts or runs in that stretch. A label ends
    where its clip ends, and an instant's where the next thing on its row starts.
    """
    rows: list[list[tuple[float, float]]] = []  # per row, sorted (start, end) footprints

    def free(row: list[tuple[float, float]], a: float, b: float) -> bool:
        k = bisect.bisect_left(row, (a, -math.inf))
        if k < len(row) and row[k][0] < b:
            return False
        return not (k > 0 and row[k - 1][1] > a)

    order = sorted(range(len(slots)), key=lambda n: (slots[n].t1 <= slots[n].t0, slots[n].t0, n))
    for n in order:
        s = slots[n]
        a, b = s.t0, (s.t1 if s.t1 > s.t0 else s.t0 + room)
        r = next((k for k, row in enumerate(rows) if free(row, a, b)), -1)
        if r < 0:
            r = len(rows) if len(rows) < max_rows else min(range(len(rows)), key=lambda k: rows[k][-1][1])
            if r == len(rows):
                rows.append([])
        bisect.insort(rows[r], (a, b))
        s.row = r
    by_row: dict[int, list[Slot]] = {}
    for s in slots:
        by_row.setdefault(s.row, []).append(s)
    for row_slots in by_row.values():
        row_slots.sort(key=lambda s: (s.t0, s.t1))
        starts = [s.t0 for s in row_slots]
        for s in row_slots:
            if s.t1 > s.t0:
                s.limit = s.t1
            else:
                k = bisect.bisect_right(starts, s.t0)
                s.limit = starts[k] if k < len(starts) else math.inf
    return max(1, len(rows))


# ---------------------------------------------------------------------------------------------
# The picture
# ---------------------------------------------------------------------------------------------


def _item_end(item: PassItem, span: float, following: PassItem | None = None) -> float:
    """Where an item ends on the picture: its end, else where the next one starts (a scene that
    waits for a cue lasts no time when cues fire at once), else the end of the picture (it holds)."""
    if item.end is not None:
        return item.end
    return following.start if following is not None else span


def _ends(p: Pass, span: float) -> list[float]:
    items = p.items
    following = [*items[1:], None]
    return [_item_end(item, span, nxt) for item, nxt in zip(items, following, strict=True)]


def value_targets(timeline: Timeline, p: Pass) -> list[str]:
    """The runtime values the show sets, one lane each: noise_scale, vace_context_scale,
    kv_cache_attention_bias, each LoRA (`lora.<name>`) and prompt weights (`prompt.<i>.weight`)."""
    found: dict[str, None] = {}
    loras: dict[str, None] = {}
    prompts: set[int] = set()
    for item in p.items:
        sc = item.occurrence.scene
        for state in (sc.state_in, sc.state_out):
            for key in _VALUE_PARAMS:
                if key in state.params:
                    found[key] = None
            loras.update(dict.fromkeys(state.lora_scales))
            for lora in state.load_params.get("loras") or ():
                loras[str(lora.get("path", "")).removeprefix(LORA_PREFIX)] = None
            weights = {p.weight for p in state.prompts}
            if len(state.prompts) > 1 and len(weights) > 1:
                prompts.update(range(len(state.prompts)))
        for curve in sc.curves:
            if curve.target.startswith("lora."):
                loras[curve.target[5:]] = None
            elif curve.target.startswith("prompt."):
                prompts.add(int(curve.target.split(".")[1]))
            else:
                found[curve.target] = None
    ordered = [k for k in _VALUE_PARAMS if k in found]
    ordered += [f"lora.{name}" for name in loras if name]
    ordered += [f"prompt.{i}.weight" for i in sorted(prompts)]
    return ordered + [t for t in modulated_targets(timeline, p) if t not in ordered]


def value_of(state: State, target: str) -> float | None:
    if target.startswith("lora."):
        return lora_now(state, target[5:])
    if target.startswith("prompt."):
        index = int(target.split(".")[1])
        return state.prompts[index].weight if index < len(state.prompts) else None
    value = state.params.get(target)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def lane_title(target: str) -> str:
    if target.startswith("lora."):
        return f"LoRA {target[5:]}"
    if target.startswith("prompt."):
        return f"prompt {int(target.split('.')[1]) + 1} weight"
    return target


def _domain(target: str, values: Iterable[float]) -> tuple[float, float]:
    vals = list(values) or [0.0]
    lo, hi = min(vals), max(vals)
    if target in ("noise_scale", "kv_cache_attention_bias"):
        return 0.0, max(1.0, hi)
    return min(0.0, lo), max(1.0, hi)


def _curve_points(curve: Curve, length: float) -> list[tuple[float, float]]:
    """Offsets and values that draw a keyframed curve with its easing, up to `length`."""
    pts: list[tuple[float, float]] = []
    start_value = curve.start if curve.start is not None else curve.keyframes[0].value
    prev_t, prev_v = 0.0, start_value
    pts.append((0.0, curve.value_at(0.0)))
    for frame in curve.keyframes:
        if frame.at <= prev_t:
            prev_t, prev_v = frame.at, frame.value
            if frame.at == 0:
                pts.append((0.0, frame.value))
            continue
        if frame.ease == "step":
            pts.append((min(frame.at, length), prev_v))
            if frame.at <= length:
                pts.append((frame.at, frame.value))
        else:
            steps = 1 if frame.ease == "linear" else _EASED_SAMPLES
            for k in range(1, steps + 1):
                t = prev_t + (frame.at - prev_t) * k / steps
                if t > length + 1e-9:
                    pts.append((length, curve.value_at(length)))
                    break
                pts.append((t, curve.value_at(t)))
        prev_t, prev_v = frame.at, frame.value
        if frame.at >= length:
            break
    if pts[-1][0] < length:
        pts.append((length, pts[-1][1]))
    return pts


def value_series(
    p: Pass, target: str, span: float
) -> tuple[list[list[tuple[float, float]]], list[tuple[float, float, str]]]:
    """The value of `target` over the pass as runs of (time, value) (a break where it is unset),
    and keyframe dots (time, value, tooltip)."""
    runs: list[list[tuple[float, float]]] = [[]]
    dots: list[tuple[float, float, str]] = []

    def put(t: float, v: float | None, step: bool = True) -> None:
        if v is None:
            if runs[-1]:
                runs.append([])
            return
        run = runs[-1]
        if step and run and run[-1][1] != v and run[-1][0] < t:
            run.append((t, run[-1][1]))  # hold, then step
        if not run or run[-1] != (t, v):
            run.append((t, v))

    ends = _ends(p, span)
    for n, item in enumerate(p.items):
        sc = item.occurrence.scene
        start, end = item.start, ends[n]
        curve = next((c for c in sc.curves if c.target == target), None)
        if curve is not None:
            for k, (t, v) in enumerate(_curve_points(curve, end - start)):
                put(start + t, v, step=k == 0)
            for frame in curve.keyframes:
                if frame.at <= end - start + 1e-9:
                    text = f"{sc.name} +{fmt_time(frame.at)}: {target} {num(frame.value)} ({frame.ease})"
                    dots.append((start + frame.at, frame.value, text))
            continue
        state = sc.state_in
        put(start, value_of(state, target))
        for action in sc.actions:
            if action.offset <= 0 or start + action.offset >= end:
                continue
            state = apply(state, action.message)
            put(start + action.offset, value_of(state, target))
        put(end, value_of(state, target))
    return [run for run in runs if run], dots


def _blend(message: Any, scene: CompiledScene) -> tuple[float, str]:
    """Seconds and text of the prompt transition a message starts (0 for a cut or none)."""
    tr = message.get("transition") if message is not None else None
    if not tr or not tr.get("num_steps"):
        return 0.0, ""
    seconds = tr["num_steps"] * scene.chunk_interval
    method, steps = tr["temporal_interpolation_method"], tr["num_steps"]
    return seconds, f"{method} {steps} steps ({num(round(seconds, 2))} s)"


def timeline_picture(timeline: Timeline, p: Pass, dark: Sequence[Dark]) -> Picture:
    """The timeline picture of one pass (cues at once), with stacked labels and one lane per value."""
    return _Drawing(timeline, p, dark).picture()


Segment = tuple[int, float, float, str, float, str]  # pass item, t0, t1, prompts, blend seconds, how


class _Drawing:
    """Builds the picture lane by lane: first what stacks where (rows), then the shapes."""

    def __init__(self, timeline: Timeline, p: Pass, dark: Sequence[Dark]) -> None:
        span = max(p.end, max((i.end or i.start for i in p.items), default=0.0), 1.0)
        if p.holds:  # show a stretch of the held last look
            span += max(5.0, span * 0.05)
        self.timeline, self.p, self.dark, self.span = timeline, p, dark, span
        self.geo = _Geometry(span)
        self.ends = _ends(p, span)
        self.elements: list[Element] = []
        self.gutter: list[Element] = []
        self.lanes: list[Lane] = []
        self.dark_by_item: dict[int, list[Dark]] = {}
        for d in dark:
            self.dark_by_item.setdefault(d.item, []).append(d)
        self.colours: dict[str, str] = {}
        for item in p.items:
            chain = " > ".join(item.occurrence.scene.state_in.chain)
            self.colours.setdefault(chain, _PALETTE[len(self.colours) % len(_PALETTE)])
        self.ruler_y = 4.0
        self.y = self.ruler_y + 20
        self.bars_y: float | None = None
        if timeline.show.bpm:
            self.bars_y = self.y
            self.y += 18

    # -- helpers -------------------------------------------------------------------------------

    def add_lane(self, key: str, name: str, h: float, kind: str = "rows", **extra: Any) -> Lane:
        lane = Lane(key, name, self.y, h, kind, **extra)
        self.lanes.append(lane)
        self.y += h + 6
        return lane

    def add(self, tag: str, attrs: dict[str, Any], title: str | None = None) -> None:
        self.elements.append(Element(tag, attrs, title=title))

    def label(self, slot: Slot, lane: Lane, text: str, cls: str = "lbl", anchor: float | None = None,
              maxw: int | None = None) -> None:
        """A label that the page's script keeps between `anchor` (default the slot's start) and
        the slot's limit, cut to fit (written here cut for the default zoom)."""
        geo = self.geo
        t0 = slot.t0 if anchor is None else anchor
        limit = slot.limit if math.isfinite(slot.limit) else self.span
        px = (geo.x(limit) - geo.x(t0)) - 6
        if maxw is not None:
            px = min(px, maxw)
        px = min(px, GUTTER + PLOT - geo.x(t0) - 6)
        data: dict[str, Any] = {
            "class": cls,
            "x": round(geo.x(t0) + 3, 1),
            "y": round(lane.y + slot.row * ROW + 14, 1),
            "data-t0": _t(t0),
            "data-end": _t(slot.t1),
            "data-lim": _t(limit),
            "data-full": text,
        }
        if maxw is not None:
            data["data-maxw"] = maxw
        self.elements.append(Element("text", data, _fits(text, px)))

    def clip(self, cls: str, t0: float, t1: float, top: float, h: float, least: float = 1.0,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A rect's attributes on the time axis (`least`: its width in px at the least)."""
        geo = self.geo
        return {"class": cls, "x": geo.x(t0), "y": top, "width": geo.w(t0, t1, least), "height": h,
                "data-t0": _t(t0), "data-t1": _t(t1), **(extra or {})}

    # -- what goes where -----------------------------------------------------------------------

    def cue_slots(self) -> list[tuple[Slot, str, str]]:
        """One slot per cue with its label: `GO 1 → preshow`, `drop`, `drop → krea`."""
        out: list[tuple[Slot, str, str]] = []
        go_count = 0
        for item in self.p.items:
            sc = item.occurrence.scene
            if sc.cue is None:
                continue
            fired = item.start - sc.pre_wait
            if sc.cue == "go":
                go_count += 1
                text = f"GO {go_count} → {sc.name}"
            else:
                name = cue_label(sc)
                text = name if name == sc.name else f"{name} → {sc.name}"
            out.append((Slot(fired, fired), text, f"{text} at {fmt_time(fired)}"))
        return out

    def segments(self) -> list[Segment]:
        """Prompt blocks: each play split at its travel stops, with the blend into each."""
        out: list[Segment] = []
        for n, item in enumerate(self.p.items):
            sc = item.occurrence.scene
            start, end = item.start, self.ends[n]
            state = sc.state_in
            blend, how = _blend(sc.entry.message if sc.entry and sc.entry.kind == "send" else None, sc)
            cuts: list[tuple[float, str, float, str]] = [(start, prompts_text(state.prompts), blend, how)]
            for action in sc.actions:
                if action.offset > 0 and action.label.startswith("travel") and start + action.offset < end:
                    state = apply(state, action.message)
                    b, h = _blend(action.message, sc)
                    cuts.append((start + action.offset, prompts_text(state.prompts), b, h))
            for k, (t0, text, b, h) in enumerate(cuts):
                t1 = cuts[k + 1][0] if k + 1 < len(cuts) else end
                out.append((n, t0, t1, text, b, h))
        return out

    def picture(self) -> Picture:
        p, geo = self.p, self.geo
        cues = self.cue_slots()
        cue_rows = stack([s for s, _, _ in cues], geo.seconds(110)) if cues else 0
        scene_slots = [Slot(item.start, self.ends[n]) for n, item in enumerate(p.items)]
        scene_rows = stack(scene_slots, geo.seconds(90))
        segments = self.segments()
        prompt_slots = [Slot(t0, t1) for _, t0, t1, _, _, _ in segments]
        prompt_rows = stack(prompt_slots, geo.seconds(140))
        brackets = _bracket_spans(self.timeline, p)
        bracket_slots = [Slot(a, b) for a, b, _ in brackets]
        bracket_rows = stack(bracket_slots, 0.0, max_rows=8) if brackets else 0

        cues_lane = self.add_lane("cues", "cues", cue_rows * ROW) if cues else None
        scenes_lane = self.add_lane("scenes", "scenes", scene_rows * ROW + 4)
        pipeline_lane = self.add_lane("pipeline", "pipeline", ROW + 4)
        prompts_lane = self.add_lane("prompts", "prompts", prompt_rows * ROW + 4)
        value_lanes = [
            (target, self.add_lane(f"value:{target}", lane_title(target), VALUE_H, "value",
                                   colour=_CURVE_COLOURS[k % len(_CURVE_COLOURS)]))
            for k, target in enumerate(value_targets(self.timeline, p))
        ]
        vace_used = any(item.occurrence.scene.state_in.vace_refs for item in p.items) or any(
            "vace_ref_images" in a.message for item in p.items for a in item.occurrence.scene.actions
        )
        vace_lane = self.add_lane("vace", "VACE", ROW + 4) if vace_used else None
        loops_lane = self.add_lane("loops", "loops", bracket_rows * ROW) if brackets else None

        if cues_lane is not None:
            self.draw_cues(cues, cues_lane, self.y)
        self.draw_scenes(scene_slots, scenes_lane)
        self.draw_pipeline(pipeline_lane)
        self.draw_prompts(segments, prompt_slots, prompts_lane)
        for target, lane in value_lanes:
            self.draw_values(target, lane)
        if vace_lane is not None:
            self.draw_vace(vace_lane)
        if loops_lane is not None:
            self.draw_loops(brackets, bracket_slots, loops_lane)
        for lane in self.lanes:
            room = GUTTER - 44 if lane.kind == "value" else GUTTER - 12
            attrs = {"class": "lane", "x": 6, "y": round(lane.y + 14, 1), "data-full": lane.name,
                     "data-room": room}
            self.gutter.append(Element("text", attrs, _fits(lane.name, room)))
        show = self.timeline.show
        return Picture(self.span, WIDTH, round(self.y + 4), self.lanes, self.elements, self.gutter, show.bpm,
                       show.beats_per_bar, self.ruler_y, self.bars_y, self.minimap(), self.hover_items())

    # -- the lanes -----------------------------------------------------------------------------

    def draw_cues(self, cues: list[tuple[Slot, str, str]], lane: Lane, bottom: float) -> None:
        for slot, text, title in cues:
            x = self.geo.x(slot.t0)
            line = {"class": "cue", "x1": x, "x2": x, "y1": lane.y + slot.row * ROW + 3, "y2": bottom,
                    "data-t": _t(slot.t0)}
            self.add("line", line, title)
            self.label(slot, lane, text, "lbl cue", maxw=200)

    def draw_scenes(self, slots: list[Slot], lane: Lane) -> None:
        """A clip per play; hatched red where no picture comes (a switch's gap), and said so."""
        for n, (item, slot) in enumerate(zip(self.p.items, slots, strict=True)):
            sc = item.occurrence.scene
            top = lane.y + slot.row * ROW + 2
            instant = slot.t1 <= slot.t0
            fill = _SCENE_FILLS[n % 2] if not instant else "#3b4a5e"
            cls = "clip scene" + (" instant" if instant else "")
            attrs = self.clip(cls, slot.t0, slot.t1, top, ROW - 2, 2.0, {"fill": fill, "data-item": n})
            self.add("rect", attrs, f"{sc.name}: {fmt_time(item.start)}–{fmt_time(item.end)}")
            darks = self.dark_by_item.get(n, ())
            for d in darks:
                extra = {"data-item": n, "data-scene": sc.name, "data-seconds": _t(round(d.seconds, 3))}
                attrs = self.clip("nopic", d.start, d.end, top, ROW - 2, extra=extra)
                self.add("rect", attrs, f"no picture for ~{num(round(d.seconds, 1))} s: {d.text} (estimate)")
            lost = sum(d.seconds for d in darks)
            if lost:
                text = f"⚠ {sc.name} · no picture ~{num(round(lost, 1))} s"
                self.label(slot, lane, text, "lbl nopic-lbl", maxw=260 if instant else None)
            else:
                text = sc.name + (f" ×{item.occurrence.iteration + 1}" if item.occurrence.iteration else "")
                self.label(slot, lane, text, "lbl scene-lbl", maxw=160 if instant else None)

    def draw_pipeline(self, lane: Lane) -> None:
        """A bar per run of the same chain; the reload + reconnect hatched at its start."""
        runs: list[list[Any]] = []  # [start, end, chain]
        for n, item in enumerate(self.p.items):
            chain = " > ".join(item.occurrence.scene.state_in.chain)
            if runs and runs[-1][2] == chain and item.switch == 0:
                runs[-1][1] = self.ends[n]
            else:
                runs.append([item.start, self.ends[n], chain])
        loads = {round(item.start, 6): item.switch for item in self.p.items if item.switch > 0}
        for start, end, chain in runs:
            gap = loads.get(round(start, 6), 0.0)
            attrs = self.clip("clip run", start, end, lane.y + 2, ROW, extra={"fill": self.colours[chain]})
            self.add("rect", attrs, f"{chain} {fmt_time(start)}–{fmt_time(end)}")
            anchor = start + gap if start + gap < end else start
            self.label(Slot(start, end, 0, end), lane, chain, "lbl on", anchor=anchor)
        for item in self.p.items:
            if item.switch > 0:
                a, b = item.start, min(item.start + item.switch, self.span)
                title = (f"~{num(round(item.switch, 1))} s reload + reconnect before "
                         f"{item.occurrence.scene.name} (estimate)")
                self.add("rect", self.clip("loading", a, b, lane.y + 2, ROW), title)

    def draw_prompts(self, segments: list[Segment], slots: list[Slot], lane: Lane) -> None:
        """Prompt blocks, with a crossfade (an X over the blend's seconds) where one blends in."""
        for k, ((n, t0, t1, text, blend, how), slot) in enumerate(zip(segments, slots, strict=True)):
            top = lane.y + slot.row * ROW + 2
            item = self.p.items[n]
            sc = item.occurrence.scene
            instant = t1 <= t0
            fill = "#f1ece1" if k % 2 else "#e8e0cc"
            attrs = self.clip("clip prompt", t0, t1, top, ROW - 2, 2.0, {"fill": fill, "data-item": n})
            self.add("rect", attrs, f"{sc.name} {fmt_time(t0)}: {text}")
            anchor = t0
            if blend > 0 and not instant:
                fade_end = min(t0 + blend, t1)
                low = top + ROW - 2
                shape = (f"M{{t:{_t(t0)}}},{top} L{{t:{_t(fade_end)}}},{low} L{{t:{_t(t0)}}},{low} "
                         f"L{{t:{_t(fade_end)}}},{top} Z")
                path = {"class": "xfade", "d": _resolve(shape, self.geo.x), "data-d": shape, "data-item": n}
                self.add("path", path, f"crossfade into {sc.name}'s prompts: {how}")
                anchor = fade_end if fade_end < t1 else t0
            self.label(slot, lane, text, "lbl prompt-lbl", anchor=anchor, maxw=220 if instant else None)
            travel = next((a for a in sc.actions if a.label.startswith("travel")
                           and abs(item.start + a.offset - t0) < 1e-9), None)
            if travel is not None and k:
                x = self.geo.x(t0)
                line = {"class": "travel", "x1": x, "x2": x, "y1": top, "y2": top + ROW - 2, "data-t": _t(t0)}
                self.add("line", line, f"{sc.name} {travel.label} at +{fmt_time(travel.offset)}")

    def draw_values(self, target: str, lane: Lane) -> None:
        """One value: its axis, the curve (easing drawn as it is) and the keyframes as dots."""
        series, dots = value_series(self.p, target, self.span)
        mods = overlays(self.timeline, self.p, target, self.ends)
        lo, hi = _domain(target, [v for run in series for _, v in run] + [v for _, v, _ in dots]
                         + [v for m in mods for v in (m.low, m.high)])
        lane.axis = (lo, hi)
        top, h = lane.y + 6, lane.h - 12

        def vy(v: float) -> float:
            return round(top + (1 - (v - lo) / (hi - lo)) * h, 1)

        for m in mods:  # a band of what the input can make of it, and an LFO's curve
            band = self.clip("mod-band", m.t0, m.t1, vy(m.high), max(vy(m.low) - vy(m.high), 1.0),
                             extra={"fill": lane.colour})
            self.add("rect", band, m.title)
            if m.points:
                shape = " ".join(f"{'M' if k == 0 else 'L'}{{t:{_t(t)}}},{vy(v)}"
                                 for k, (t, v) in enumerate(m.points))
                self.add("path", {"class": "mod-lfo", "d": _resolve(shape, self.geo.x),
                                  "data-d": shape, "stroke": lane.colour}, m.title)

        for v in (lo, hi):
            axis = {"class": "axis full", "x1": GUTTER, "x2": GUTTER + PLOT, "y1": vy(v), "y2": vy(v)}
            self.add("line", axis)
        for run in series:
            shape = " ".join(
                f"{'M' if k == 0 else 'L'}{{t:{_t(t)}}},{vy(v)}" for k, (t, v) in enumerate(run)
            )
            path = {"class": "curve", "d": _resolve(shape, self.geo.x), "data-d": shape,
                    "stroke": lane.colour}
            self.add("path", path, f"{target}: {num(run[0][1])} at {fmt_time(run[0][0])}")
        for t, v, text in dots:
            dot = {"class": "key", "cx": self.geo.x(t), "cy": vy(v), "r": 3.5, "fill": lane.colour,
                   "data-t": _t(t)}
            self.add("circle", dot, text)
        for v, dy in ((hi, 4), (lo, 1)):
            attrs = {"class": "axis-lbl", "x": GUTTER - 6, "y": round(vy(v) + dy, 1), "text-anchor": "end"}
            self.gutter.append(Element("text", attrs, num(round(v, 3))))

    def draw_vace(self, lane: Lane) -> None:
        """Where VACE refs are in force (named), and a dot wherever vace_ref_images is sent."""
        for n, item in enumerate(self.p.items):
            sc = item.occurrence.scene
            refs = sc.state_in.vace_refs
            end = self.ends[n]
            if refs:
                attrs = self.clip("clip vace", item.start, end, lane.y + 2, ROW - 2, extra={"data-item": n})
                self.add("rect", attrs, f"VACE refs: {', '.join(refs)}")
                if end > item.start:
                    self.label(Slot(item.start, end, 0, end), lane, ", ".join(refs), "lbl vace-lbl",
                               anchor=item.start + self.geo.seconds(4))
            for action in sc.actions:
                if "vace_ref_images" in action.message:
                    t = item.start + action.offset
                    dot = {"class": "vace-dot", "cx": self.geo.x(t), "cy": lane.y + ROW / 2 + 1, "r": 3,
                           "data-t": _t(t)}
                    self.add("circle", dot, f"{sc.name}: vace_ref_images sent ({action.label})")

    def draw_loops(self, brackets: list[tuple[float, float, str]], slots: list[Slot], lane: Lane) -> None:
        for (a, b, text), slot in zip(brackets, slots, strict=True):
            top = lane.y + slot.row * ROW
            shape = f"M{{t:{_t(a)}}},{top + 7} v-6 H{{t:{_t(b)}}} v6"
            self.add("path", {"class": "bracket", "d": _resolve(shape, self.geo.x), "data-d": shape})
            self.label(slot, lane, text, "lbl bracket-lbl")

    def minimap(self) -> list[Element]:
        """The whole pass, small: plays coloured by pipeline, dark stretches in red."""
        out: list[Element] = []
        for n, item in enumerate(self.p.items):
            chain = " > ".join(item.occurrence.scene.state_in.chain)
            attrs = self.clip("mm", item.start, self.ends[n], 4, 16, 0.0, {"fill": self.colours[chain]})
            out.append(Element("rect", attrs))
        out.extend(Element("rect", self.clip("mm nopic-mm", d.start, d.end, 4, 16)) for d in self.dark)
        return out

    def hover_items(self) -> list[dict[str, Any]]:
        """What hovering a play shows, by pass item."""
        show = self.timeline.show
        return [
            {
                "name": item.occurrence.scene.name,
                "index": item.occurrence.scene.index,
                "start": fmt_time(item.start),
                "end": fmt_time(item.end) if item.end is not None else "holds",
                "trigger": item.occurrence.scene.trigger,
                "pipeline": " > ".join(item.occurrence.scene.state_in.chain),
                "prompts": prompts_text(item.occurrence.scene.state_in.prompts),
                "notes": show.scenes[item.occurrence.scene.index].notes or "",
                "dark": round(sum(d.seconds for d in self.dark_by_item.get(n, ())), 1),
            }
            for n, item in enumerate(self.p.items)
        ]


def _resolve(shape: str, x: Callable[[float], float]) -> str:
    """A path template with {t:seconds} resolved to x pixels at the default zoom."""
    out: list[str] = []
    rest = shape
    while "{t:" in rest:
        head, _, tail = rest.partition("{t:")
        value, _, rest = tail.partition("}")
        out.append(head + f"{x(float(value)):g}")
    out.append(rest)
    return "".join(out)


def ticks(span: float) -> list[dict[str, Any]]:
    """Clock ticks at the default zoom (the script makes its own when zooming)."""
    scale = PLOT / span
    step = next((s for s in _TICKS if s * scale >= 70), _TICKS[-1])
    return [
        {"x": round(GUTTER + k * step * scale, 1), "label": fmt_time(k * step), "t": k * step}
        for k in range(math.floor(span / step) + 1)
    ]


def _bracket_spans(timeline: Timeline, p: Pass) -> list[tuple[float, float, str]]:
    """Loop brackets (sections, gotos, the show loop) as (start, end, label)."""
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
    return sorted(spans)
