"""Compiling a validated Show into a Timeline: timing, tracked values, entry and later actions.

timeline.py holds what compiling produces and how it is queried; this module is only how it is
made, in passes of their own: timing.py (when scenes start and end), tracking.py (the values
written so far), slots.py (a scene's time in chunk slots) and actions.py (the messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from showrunner import pipelines
from showrunner.plan.actions import (
    entry_message,
    entry_state,
    later_actions,
    lora_fade,
    lora_warnings,
    session_entry,
)
from showrunner.plan.notes import Note
from showrunner.plan.slots import SlotPlan
from showrunner.plan.state import (
    EMPTY,
    State,
    build,
    main_pipeline,
    same_session,
    set_param,
    with_changes,
)
from showrunner.plan.timeline import (
    FALLBACK_FPS,
    FALLBACK_FRAMES_PER_CHUNK,
    Action,
    CompiledScene,
    Timeline,
    last_slot_before,
    paused_gc,
    switch_estimate,
)
from showrunner.plan.timing import Timing, time_show
from showrunner.plan.tracking import (
    Touched,
    Written,
    initial_written,
    keyframe_curves,
    load_params_of,
    next_written,
    runtime_defaults,
    scene_touches,
    touched,
    with_defaults,
    with_load_scales,
    written_after,
)
from showrunner.show.model import Scene, Section, Show, Transition, is_musical, quantize_beats

__all__ = ["Compiler", "compile_timeline"]


def compile_timeline(show: Show, *, source: str | None = None) -> Timeline:
    """Compile a validated show; raises ShowError for timing that cannot be played."""
    with paused_gc():
        return _Compiler(show, source, None).run()


class Compiler:
    """Compiles successive versions of one show, re-using the compiled scenes an edit does not
    touch (hot reload keeps one). Pure: the memo is only this object's state.

    A scene is re-used when everything its compilation reads is the same as last time: the scene
    model (the same object, or an equal one), what the scenes before it left written and on the
    wire, its timing (start, end, cue, trigger, goto target, sections, notes) and the show-level
    values every scene reads (defaults, fps, assets, bpm). Those are compared by identity first,
    so a scene after an unchanged scene costs a few comparisons; an edit recompiles the edited
    scene and, while its effect carries on, the scenes after it.
    """

    def __init__(self) -> None:
        self._show_key: tuple[Any, ...] | None = None
        self._memo: dict[str, tuple[tuple[Any, ...], CompiledScene, Written]] = {}
        # The last compile's scenes, timing and compiled scenes: an edit of a few scenes copies
        # the compiled scenes before the first edited one, and those after the effect ends.
        self._last: tuple[list[Scene], Timing, list[CompiledScene]] | None = None
        self.reused = 0  # scenes re-used by the last compile
        self.compiled = 0  # scenes compiled by the last compile

    def compile(self, show: Show, *, source: str | None = None) -> Timeline:
        """Compile `show` as compile_timeline does, re-using what the last compile made."""
        # Every state carries every value the show touches anywhere: a value touched for the
        # first time (or no more) changes every scene.
        used = self._touched(show)
        key = (show.defaults, show.fps, show.assets, show.bpm, show.beats_per_bar, used)
        if self._show_key is None or not _same_key(self._show_key, key):
            self._memo = {}
            self._last = None
        self._show_key = key
        self.reused = self.compiled = 0
        with paused_gc():
            compiling = _Compiler(show, source, self, used)
            timeline = compiling.run()
        self._last = (show.scenes, compiling.timing, list(timeline.scenes))
        if len(self._memo) > len(show.scenes):  # every scene's name is in the memo now
            names = {s.name for s in show.scenes}
            for name in [n for n in self._memo if n not in names]:
                del self._memo[name]
        return timeline

    def _touched(self, show: Show) -> Touched:
        """touched(show); the last compile's when only scenes that touch the same were replaced."""
        if self._last is not None and self._show_key is not None and \
                len(self._last[0]) == len(show.scenes) and show.defaults == self._show_key[0]:
            pairs = zip(self._last[0], show.scenes, strict=True)
            if all(scene_touches(a) == scene_touches(b) for a, b in pairs if a is not b):
                used: Touched = self._show_key[-1]
                return used
        return touched(show)

    def _lookup(self, name: str, key: tuple[Any, ...]) -> tuple[CompiledScene, Written] | None:
        hit = self._memo.get(name)
        if hit is None or not _same_key(hit[0], key):
            return None
        self.reused += 1
        return hit[1], hit[2]

    def _store(self, name: str, key: tuple[Any, ...], compiled: CompiledScene, after: Written) -> None:
        self.compiled += 1
        self._memo[name] = (key, compiled, after)

    def _edited(self, scenes: list[Scene], timing: Timing) -> tuple[list[CompiledScene], int, int] | None:
        """(the last compile's scenes, first and last index of a scene that is not the same
        object) when only scenes were replaced and every scene's timing is as it was; else None.
        Then every scene before the first edited one compiles as it did last time."""
        if self._last is None:
            return None
        scenes_before, timing_before, compiled = self._last
        if len(scenes_before) != len(scenes) or timing_before != timing:
            return None
        edited = [i for i, (a, b) in enumerate(zip(scenes_before, scenes, strict=True)) if a is not b]
        if not edited:
            return compiled, len(scenes), len(scenes)
        return compiled, edited[0], edited[-1]

    def _state_before(self, scenes: list[Scene], compiled: list[CompiledScene], first: int,
                      closed: int | None) -> tuple[Written, State | None] | None:
        """What the scenes before `first` left written and on the wire, as last compiled."""
        for k in range(first - 1, -1, -1):
            if k != closed:
                hit = self._memo.get(scenes[k].name)
                if hit is None or hit[1] is not compiled[k]:
                    return None
                return hit[2], compiled[k].state_out
        return None


def _same_key(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal keys. Tuple equality takes identical parts as equal without comparing them (the
    common case: a re-used scene's key is made of the same objects), in C."""
    return a == b


@dataclass
class _Entry:
    """One scene on its way in: its tracked values, chunk slots and the state its entry makes."""

    index: int
    scene: Scene
    written: Written
    pipeline: str  # the main pipeline
    interval: float  # chunk interval (seconds)
    fps: float
    info: pipelines.PipelineInfo | None
    plan: SlotPlan
    spec: Transition | None  # the transition into the scene (slot 0's travel stop may set it)
    state: State  # the written state with slot 0 applied
    session: bool  # entering reloads and reconnects
    warnings: list[str]
    defaults: Mapping[str, Any]  # Scope's defaults of the touched params it has not written


class _Compiler:
    def __init__(
        self, show: Show, source: str | None, memo: Compiler | None, used: Touched | None = None
    ) -> None:
        self.memo = memo
        self.show = show
        self.source = source
        self.timing = time_show(show, source or "<show>")
        d = show.defaults
        self.sinks: Mapping[str, Any] = MappingProxyType(
            {k: v.model_dump(exclude_none=True) for k, v in d.output_sinks.items()}
        )
        self._chunk_cache: dict[tuple[str, ...], tuple[str, float, float, bool]] = {}
        # Every state carries every value the show touches anywhere (tracking.Touched), so a
        # jump puts back what later scenes changed.
        self.touched = used if used is not None else touched(show)
        self._defaults_cache: dict[tuple[tuple[str, ...], str], Mapping[str, Any]] = {}
        self._filled: dict[tuple[int, int], tuple[Mapping[str, Any], ...]] = {}

    def run(self) -> Timeline:
        sections = self.timing.sections
        scenes = self._scenes(sections)
        warnings: list[str] = []
        for sc in scenes:
            if sc.warnings:
                warnings.extend(f"{sc.name}: {w}" for w in sc.warnings)
        ends: dict[int, list[tuple[Section, int]]] = {}
        for section, first, last in sections:
            ends.setdefault(last, []).append((section, first))
        for entries in ends.values():
            entries.sort(key=lambda e: -e[1])  # innermost (latest start) first
        return Timeline(
            self.show,
            self.source,
            tuple(scenes),
            tuple(warnings),
            {k: tuple(v) for k, v in ends.items()},
        )

    def _scenes(self, sections: list[tuple[Section, int, int]]) -> list[CompiledScene]:
        written = initial_written(self.show)
        wire: State | None = None
        out: list[CompiledScene] = []
        in_sections: dict[int, list[str]] = {}
        for section, first, last in sections:
            for i in range(first, last + 1):
                in_sections.setdefault(i, []).append(section.name)
        t = self.timing
        closed = t.closed
        memo = self.memo
        scenes = self.show.scenes
        start, edited = 0, memo._edited(scenes, t) if memo is not None else None
        if memo is not None and edited is not None:
            before, first, last = edited
            state = memo._state_before(scenes, before, first, closed) if first else None
            if first == 0 or state is not None:
                start = first
                out.extend(before[:first])
                memo.reused += first
                if state is not None:
                    written, wire = state
        for i in range(start, len(scenes)):
            s = scenes[i]
            sections_i = tuple(in_sections.get(i, ()))
            if memo is not None:
                goto = t.names[s.goto.scene] if s.goto is not None else None
                key = (s, written, wire, t.start[i], t.end[i], t.cues[i], t.trigger[i],
                       i == closed, goto, sections_i, t.notes.get(i, ()), self._musical(i))
                hit = memo._lookup(s.name, key)
                if hit is not None and edited is not None and i > edited[2] and \
                        hit[0] is edited[0][i]:
                    # past the edit, a scene entered as last time: so are all that follow
                    out.append(hit[0])
                    out.extend(edited[0][i + 1:])
                    memo.reused += len(scenes) - i - 1
                    break
                if hit is not None:
                    compiled, after = hit
                    if compiled.index != i:
                        compiled = build(CompiledScene, **{**compiled.__dict__, "index": i})
                else:
                    entry = self._entry(i, written, wire)
                    compiled, after = self._scene(entry, wire, sections_i)
                    memo._store(s.name, key, compiled, after)
            else:
                entry = self._entry(i, written, wire)
                compiled, after = self._scene(entry, wire, sections_i)
            out.append(compiled)
            if i != closed:  # the closed scene is never in the flow, so nothing tracks from it
                written, wire = after, compiled.state_out
        return out

    def _musical(self, i: int) -> tuple[bool, bool, float | None, bool]:
        """(inside follows the tempo, start follows it, quantize grid in beats, a transition
        written in bars or beats) of scene `i`."""
        t, s, show = self.timing, self.show.scenes[i], self.show
        grid = quantize_beats(s.quantize if s.quantize is not None else show.quantize, show.beats_per_bar)
        specs = [s.transition if s.transition is not None else show.defaults.transition]
        specs += [step.transition for step in s.travel]
        transitions = any(spec is not None and is_musical(spec.duration) for spec in specs)
        return t.inner_follows[i], t.start_follows[i], grid, transitions

    def _chunking(self, chain: tuple[str, ...]) -> tuple[str, float, float, bool]:
        """(main pipeline, chunk interval, fps, known) of a chain."""
        cached = self._chunk_cache.get(chain)
        if cached is None:
            pid = main_pipeline(chain)
            info = pipelines.lookup(pid)
            frames = info.frames_per_chunk if info else FALLBACK_FRAMES_PER_CHUNK
            fps = self.show.fps or (info.typical_fps if info else FALLBACK_FPS)
            cached = self._chunk_cache[chain] = (pid, frames / fps, fps, info is not None)
        return cached

    def _entry(self, i: int, written: Written, wire: State | None) -> _Entry:
        """Scene `i` after `written` (what earlier scenes wrote) with `wire` on the wire."""
        t: Timing = self.timing
        s = self.show.scenes[i]
        warnings: list[str] = [Note(n, ("duration",)) for n in t.notes.get(i, ())]
        w = next_written(s, written)
        pid, ci, fps, known = self._chunking(w.chain)
        info = pipelines.lookup(pid)
        if not known:
            warnings.append(Note(
                f"pipeline {pid!r} is not known offline: assuming {FALLBACK_FRAMES_PER_CHUNK} frames "
                f"per chunk at {fps:g} fps", ("pipeline",), "unknown-pipeline"
            ))
        mode = w.mode or (info.default_mode if info else "text")
        if wire is not None and w.chain == wire.chain and w.load is written.load and mode == wire.input_mode:
            load_params = wire.load_params  # nothing that shapes the load changed
        else:
            load_params = load_params_of(w, mode, wire)
        start, end = t.start[i], t.end[i]
        length = end - start if start is not None and end is not None else None
        curves = keyframe_curves(s, w, load_params, warnings)
        plan = SlotPlan(s, curves, ci, last_slot_before(length, ci))
        defaults = self._defaults(w.chain, mode)
        base = build(
            State,
            chain=w.chain,
            load_params=load_params,
            input_mode=mode,
            prompts=w.prompts,
            params=self._fill(w.params, defaults),
            lora_scales=with_load_scales(w.loras, self.touched.loras, load_params),
            vace_refs=w.refs,
            transition=None,
            output_sinks=self.sinks,
            input_source=w.source,
        )
        spec = s.transition if s.transition is not None else self.show.defaults.transition
        entry, spec = entry_state(base, plan.zero(), spec)
        session = wire is None or not same_session(wire, entry)
        if s.prompts is not None and not s.prompts:
            warnings.append(Note("`prompts` is empty: the previous prompts stay (Scope cannot take "
                                 "none)", ("prompts",)))
        if not entry.prompts and (info is None or info.supports_prompts) and wire is None:
            warnings.append("no prompts yet: Scope starts from its own default prompt")
        lora_warnings(s, entry, curves, warnings)
        return _Entry(i, s, w, pid, ci, fps, info, plan, spec, entry, session, warnings, defaults)

    def _defaults(self, chain: tuple[str, ...], mode: str) -> Mapping[str, Any]:
        key = (chain, mode)
        cached = self._defaults_cache.get(key)
        if cached is None:
            cached = self._defaults_cache[key] = runtime_defaults(self.touched.params, chain, mode)
        return cached

    def _fill(self, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> Mapping[str, Any]:
        """`params` with `defaults` filled in; the same object for the same inputs (an unchanged
        value is shared between states, which keeps entry diffs cheap)."""
        key = (id(params), id(defaults))
        hit = self._filled.get(key)
        if hit is not None and hit[0] is params and hit[1] is defaults:
            return hit[2]
        filled = with_defaults(params, defaults)
        self._filled[key] = (params, defaults, filled)
        return filled

    def _scene(
        self, e: _Entry, wire: State | None, sections: tuple[str, ...]
    ) -> tuple[CompiledScene, Written]:
        """The compiled scene and what it leaves written for the next one."""
        s, plan, warnings, entry, i = e.scene, e.plan, e.warnings, e.state, e.index
        fade = lora_fade(plan, entry, wire, e.session, warnings) if plan.curves else None
        if fade is not None and fade[0] == 0:
            entry = set_param(entry, "manage_cache", False)
        entry_action: Action | None = None
        if e.session:
            entry_action = session_entry(s, entry, wire)
            state_in = entry
        else:
            assert wire is not None
            message, state_in = entry_message(s, wire, entry, e.spec, e.info, e.interval, warnings)
            if message:
                entry_action = Action(0.0, "send", message, "enter")
        state_out = plan.final_state(state_in, fade)
        later = None
        if plan.has_later:
            later = partial(later_actions, plan, state_in, e.spec, e.info, fade)
        w = e.written
        out_params = state_out.params if fade is None else set_param(state_out, "manage_cache", True).params
        if out_params is self._fill(w.params, e.defaults):
            params = w.params  # nothing moved: what is written stays the same object
        else:
            params = written_after(w.params, out_params, e.defaults)
        loras = w.loras
        if state_out.lora_scales is not w.loras and (self.touched.loras or state_out.lora_scales):
            load_scales = with_load_scales(EMPTY, self.touched.loras, state_in.load_params)
            loras = written_after(w.loras, state_out.lora_scales, load_scales)
        after = Written(
            chain=w.chain,
            load=w.load,
            mode=w.mode,
            prompts=state_out.prompts,
            params=params,
            loras=loras,
            refs=w.refs,
            source=w.source,
        )
        t = self.timing
        goto = (t.names[s.goto.scene], s.goto.times) if s.goto is not None else None
        follows, start_follows, grid, transitions_follow = self._musical(i)
        compiled = build(
            CompiledScene,
            index=i,
            name=s.name,
            cue=t.cues[i],
            pre_wait=s.pre_wait,
            at=None if t.cues[i] is not None or i == t.closed else t.start[i],
            duration=s.duration,
            entry=entry_action,
            state_in=state_in,
            chunk_interval=e.interval,
            reconnect=e.session,
            warnings=tuple(warnings),
            goto=goto,
            closed_only=i == t.closed,
            end=t.end[i],
            trigger=t.trigger[i],
            main_pipeline=e.pipeline,
            fps=e.fps,
            state_out=with_changes(state_out, transition=None) if state_out.transition else state_out,
            curves=plan.curves,
            switch_estimate=switch_estimate(wire, state_in) if e.session else 0.0,
            sections=sections,
            follows_tempo=follows,
            start_follows_tempo=start_follows,
            quantize=grid,
            transitions_follow_tempo=transitions_follow,
            _later=later,
        )
        return compiled, after
