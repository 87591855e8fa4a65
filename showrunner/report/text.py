"""The terminal report (a table of one pass, totals, switch gaps, fps, preflight warnings) and
the resolved state `report --at` prints.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from showrunner.plan.state import main_pipeline
from showrunner.plan.timeline import State, Timeline, paused_gc
from showrunner.report.common import (
    Marker,
    Row,
    chunking_text,
    cut,
    dark_stretches,
    dark_text,
    entry_text,
    finding_data,
    loop_markers,
    loop_text,
    lora_text,
    num,
    plain,
    prompts_text,
    switch_text,
    table_rows,
    tempo_legend,
    trigger_text,
)
from showrunner.report.cost import cost_lines

DEFAULT_WIDTH = 120

# (header, most it grows to, least it shrinks to); prompts take what is left. The time column
# is never cut (it grows to its longest time, "drop+0:40"); the `!` column is only there when a
# scene has compile warnings.
COLUMNS = (
    ("time", 0, 0),
    ("scene", 24, 6),
    ("trigger", 20, 5),
    ("pipeline", 22, 6),
    ("prompts", 0, 8),
    ("transition", 16, 5),
    ("LoRA", 18, 4),
    ("VACE", 14, 4),
    ("!", 2, 1),
)
_TIME = 0
_PROMPTS = 4


def _widths(rows: Sequence[Sequence[str]], total: int, columns: Sequence[tuple[str, int, int]]) -> list[int]:
    """Column widths that fit `total`: content width up to a cap, the widest shrinking first."""
    widths = [len(name) for name, _, _ in columns]
    for cells in rows:
        for n, cell in enumerate(cells):
            if len(cell) > widths[n]:
                widths[n] = len(cell)
    least = [widths[_TIME] if n == _TIME else col[2] for n, col in enumerate(columns)]
    prompts = widths[_PROMPTS]
    widths = [min(w, cap) if cap else w for w, (_, cap, _) in zip(widths, columns, strict=True)]
    widths[_PROMPTS] = least[_PROMPTS]
    room = total - (sum(widths) + len(widths) - 1)
    if room >= 0:
        widths[_PROMPTS] += min(room, max(0, prompts - widths[_PROMPTS]))
        return widths
    while room < 0:
        shrinkable = [n for n in range(len(columns)) if widths[n] > least[n]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda n: widths[n] - least[n])
        widths[widest] -= 1
        room += 1
    return widths


def render_text(
    timeline: Timeline,
    *,
    findings: Sequence[object] = (),
    width: int | None = None,
    gpu_rate: float | None = None,
) -> str:
    """The terminal report: one pass as a table, totals, switch gaps, fps, preflight warnings.

    `width` is the terminal width (default 120); the table fits it, the prompts column taking
    what the other columns leave. Times are never cut. `gpu_rate` (price of a GPU hour)
    overrides the show's `cost.per_hour`.
    """
    with paused_gc():
        text = _render_text(timeline, findings, width)
    lines = cost_lines(timeline.show, per_hour=gpu_rate)
    return text + ("\n" + "\n".join(lines) + "\n" if lines else "")


def _render_text(timeline: Timeline, findings: Sequence[object], width: int | None) -> str:
    total_width = max(60, width or DEFAULT_WIDTH)
    p = timeline.one_pass()
    rows, reached = table_rows(timeline, p)
    cells = [row_cells(row) for row in rows]
    warned = any(c[-1] for c in cells)
    columns = COLUMNS if warned else COLUMNS[:-1]
    if not warned:
        cells = [c[:-1] for c in cells]
    widths = _widths(cells, total_width, columns)
    markers: dict[int, list[Marker]] = {}
    for marker in loop_markers(timeline, p):
        markers.setdefault(marker.after, []).append(marker)
    notes = textwrap.TextWrapper(
        width=total_width, initial_indent="  ✎ ", subsequent_indent="    ", break_on_hyphens=False
    )

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if len(c) <= w else c[: w - 1] + "…" for c, w in zip(cells, widths, strict=True)
        ]
        return " ".join(parts).rstrip()

    out = [f"{timeline.show.title}" + (f"  ({timeline.source})" if timeline.source else ""), ""]
    out.append(line([name for name, _, _ in columns]))
    out.append(line(["-" * w for w in widths]))
    for n, row in enumerate(rows):
        if n == reached:
            out.append("  not in the normal flow:")
        out.append(line(cells[n]))
        note = timeline.show.scenes[row.scene.index].notes
        if note:
            out.extend(notes.wrap(" ".join(note.split())))
        for marker in markers.get(row.scene.index, ()) if row.first is not None else ():
            out.append("  " + cut(marker.text, total_width - 2))
    if p.cycle == "loop":
        out.append("  " + loop_text(timeline, p).replace("loops forever", "↻ loops forever", 1))
    wrap = textwrap.TextWrapper(width=total_width, subsequent_indent="    ", break_on_hyphens=False)
    out.append("")
    out.extend(wrap.wrap(f"Total: {loop_text(timeline, p)}"))
    if timeline.switch_count:
        out.extend(wrap.wrap(f"Pipeline switches: {switch_text(timeline)}"))
    out.extend(wrap.wrap("Seconds → steps: " + chunking_text(timeline)))
    legend = ["* = reload/reconnect at entry"]
    if any(sc.cue is not None for sc in timeline.scenes):
        legend.append("cue parts are timed from their cue (GO+0:04)")
    if warned:
        legend.append("! = compile warnings of the scene (listed below)")
    if (tempo := tempo_legend(timeline)) is not None:
        legend.append(tempo)
    out.extend(wrap.wrap("; ".join(legend) + "."))
    warnings = [finding_data(f)["text"] for f in findings] + list(timeline.warnings)
    warnings += [dark_text(d, p.items[d.item].occurrence.scene.name) for d in dark_stretches(p)]
    if warnings:
        out.append("")
        out.append(f"Preflight warnings ({len(warnings)}):")
        out.extend(f"  - {w}" for w in warnings)  # unwrapped: one per line, easy to grep
    return "\n".join(out) + "\n"


def row_cells(row: Row) -> list[str]:
    sc = row.scene
    switched = sc.reconnect
    if row.first is not None:  # the pass knows what really comes before it
        switched = row.first.switch > 0 or row.first.occurrence.how == "start"
    name = sc.name + (f" ×{row.plays}" if row.plays > 1 else "")
    prompts = prompts_text(sc.state_in.prompts)
    if row.travel:
        prompts += f" (+{row.travel} travel)"
    transition, _ = entry_text(sc)
    pipeline = ">".join(sc.state_in.chain) + ("*" if switched else "")
    return [
        row.time,
        name,
        trigger_text(sc),
        pipeline,
        prompts,
        transition,
        lora_text(sc),
        ",".join(sc.state_in.vace_refs) or "-",
        str(len(sc.warnings)) if sc.warnings else "",
    ]


# ---------------------------------------------------------------------------------------------
# --at (read by showrunner.plan.start.parse_position)
# ---------------------------------------------------------------------------------------------


def render_state(state: State, *, label: str) -> str:
    """The resolved state as readable lines (for `report --at`)."""
    lines = [f"State at {label}"]

    def add(key: str, value: str) -> None:
        lines.append(f"  {key + ':':<14}{value}")

    add("pipeline", f"{' > '.join(state.chain)} ({state.input_mode} mode)")
    add("load", json.dumps(plain(state.load_params)))
    add("prompts", prompts_text(state.prompts))
    if state.transition is not None:
        tr = state.transition
        add(
            "transition",
            f"from {prompts_text(tr.from_prompts)}: {tr.steps} steps {tr.method}, "
            f"{round(tr.progress * 100)}% done",
        )
    params = " ".join(f"{k}={json.dumps(plain(v))}" for k, v in state.params.items())
    add("params", params or "-")
    add("LoRA scales", " ".join(f"{k}={num(v)}" for k, v in state.lora_scales.items()) or "-")
    add("VACE refs", ", ".join(state.vace_refs) or "-")
    if state.output_sinks:
        add("output sinks", json.dumps(plain(state.output_sinks)))
    if state.input_source is not None and state.input_mode == "video":
        add("input source", json.dumps(plain(state.input_source)))
    elif state.input_source is not None:  # as live: a text-mode session is not sent it
        add("input source", f"not sent ({main_pipeline(state.chain)} runs in text mode)")
    return "\n".join(lines) + "\n"
