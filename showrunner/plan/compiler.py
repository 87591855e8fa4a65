"""Compiling a validated Show into a Timeline: timing, tracked values, entry and later actions.

timeline.py holds what compiling produces and how it is queried; this module is only how it is
made. It builds on timeline.py.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

from showrunner import pipelines
from showrunner.errors import ShowError
from showrunner.plan.state import (
    ASSET_PREFIX,
    EMPTY,
    LORA_PREFIX,
    PARAM_KEYS,
    State,
    TransitionState,
    WeightedPrompt,
    build,
    load_scale,
    lora_list,
    lora_now,
    main_pipeline,
    merge_params,
    ordered_message,
    same_session,
    set_target,
    transition_message,
    with_changes,
)
from showrunner.plan.timeline import (
    EPS,
    FALLBACK_FPS,
    FALLBACK_FRAMES_PER_CHUNK,
    Action,
    CompiledScene,
    Curve,
    Timeline,
    fmt_time,
    last_slot_before,
    nearest_slot,
    paused_gc,
    sample,
    seconds_to_steps,
    switch_estimate,
)
from showrunner.show.model import (
    KEYFRAME_TARGET,
    LoadParams,
    Scene,
    Section,
    Show,
    Transition,
)

__all__ = ["compile_timeline", "transition_steps"]

# Key order of `load_params` as sent (POST /api/v1/pipeline/load, the offer's load).
_LOAD_PARAMS_KEY_ORDER = (
    "height",
    "width",
    "base_seed",
    "vae_type",
    "quantization",
    "vace_enabled",
    "loras",
    "lora_merge_mode",
)
_RUNTIME_FIELDS = frozenset(
    {
        "denoising_steps",
        "noise_scale",
        "noise_controller",
        "manage_cache",
        "kv_cache_attention_bias",
        "vace_context_scale",
        "prompt_interpolation",
        "vace",
        "paused",
    }
)
_SAME_NAME_PARAMS = (
    "noise_scale",
    "noise_controller",
    "manage_cache",
    "kv_cache_attention_bias",
    "vace_context_scale",
)
_PARAM_TARGETS = frozenset({"noise_scale", "vace_context_scale", "kv_cache_attention_bias"})


def compile_timeline(show: Show, *, source: str | None = None) -> Timeline:
    """Compile a validated show; raises ShowError for timing that cannot be played."""
    with paused_gc():
        return _Compiler(show, source).run()


class _Written(NamedTuple):
    """Values as the show has written them so far (file order), before keyframes move them."""

    chain: tuple[str, ...]
    load: LoadParams
    mode: str | None  # None = the main pipeline's default mode
    prompts: tuple[WeightedPrompt, ...]
    params: Mapping[str, Any]
    loras: Mapping[str, float]
    refs: tuple[str, ...]


class _Slot:
    """What happens at one chunk slot of a scene: a travel stop, keyframe values."""

    __slots__ = ("travel", "values")

    def __init__(self) -> None:
        self.travel: tuple[int, Any] | None = None
        self.values: dict[str, float] = {}


@dataclass
class _Timing:
    start: list[float | None]
    end: list[float | None]
    trigger: list[str]
    notes: dict[int, list[str]]


def _runtime_params(values: Any) -> dict[str, Any]:
    """Wire keys a RuntimeParams-like object (defaults or a scene) sets."""
    out: dict[str, Any] = {}
    steps = getattr(values, "denoising_steps", None)
    if steps is not None:
        out["denoising_step_list"] = list(steps)
    for key in _SAME_NAME_PARAMS:
        value = getattr(values, key, None)
        if value is not None:
            out[key] = value
    if getattr(values, "prompt_interpolation", None) is not None:
        out["prompt_interpolation_method"] = values.prompt_interpolation
    vace = getattr(values, "vace", None)
    if vace is not None:
        if vace.context_scale is not None:
            out["vace_context_scale"] = vace.context_scale
        if vace.use_input_video is not None:
            out["vace_use_input_video"] = vace.use_input_video
    if getattr(values, "paused", None) is not None:
        out["paused"] = values.paused
    return out


class _Plan:
    """A scene's time cut into chunk slots: travel stops and keyframe samples per slot."""

    __slots__ = ("curves", "interval", "max_slot", "scene")

    def __init__(self, scene: Scene, curves: tuple[Curve, ...], interval: float, max_slot: int | None):
        self.scene = scene
        self.curves = curves
        self.interval = interval
        self.max_slot = max_slot

    @property
    def has_later(self) -> bool:
        return bool(self.curves) or any(self.slot(step.at) > 0 for step in self.scene.travel)

    def slot(self, offset: float) -> int:
        """The chunk slot nearest to `offset`, inside the scene."""
        n = nearest_slot(offset, self.interval)
        return min(n, self.max_slot) if self.max_slot is not None else n

    def last(self, curve: Curve) -> int:
        """The curve's last slot: its last keyframe's, or the scene's last if that comes first."""
        return self.slot(curve.end)

    def values(self, curve: Curve) -> list[float]:
        """What the curve sends at slots 0..its last (the rules of `sample`)."""
        last, interval = self.last(curve), self.interval
        values: list[float | None] = list(curve.samples(interval, last + 1))
        for frame in curve.keyframes:
            n = nearest_slot(frame.at, interval)
            if n <= last:
                values[n] = frame.value
        if nearest_slot(curve.end, interval) == last:
            values[last] = curve.keyframes[-1].value
        return [round(v, 4) for v in values if v is not None]

    def slots(self) -> dict[int, _Slot]:
        """Travel stops and keyframe values by slot."""
        table: dict[int, _Slot] = {}
        for k, step in enumerate(self.scene.travel, 1):
            table.setdefault(self.slot(step.at), _Slot()).travel = (k, step)
        for curve in self.curves:
            target = curve.target
            for n, value in enumerate(self.values(curve)):
                entry = table.get(n)
                if entry is None:
                    entry = table[n] = _Slot()
                entry.values[target] = value
        return table

    def zero(self) -> _Slot | None:
        """Slot 0 alone (merged into the entry), by the same rules as `slots`."""
        travel = [(k, step) for k, step in enumerate(self.scene.travel, 1) if self.slot(step.at) == 0]
        if not travel and not self.curves:
            return None
        zero = _Slot()
        if travel:
            zero.travel = travel[-1]
        for curve in self.curves:
            zero.values[curve.target] = sample(curve, 0, self.last(curve), self.interval)
        return zero

    def final_state(self, state_in: State, fade: tuple[int, int | None] | None) -> State:
        """The wire state once every later action has been sent (without making them)."""
        state = state_in
        if not self.curves and not self.scene.travel:
            return with_changes(state, transition=None) if state.transition is not None else state
        travel = [(self.slot(step.at), k, step) for k, step in enumerate(self.scene.travel, 1)]
        last_travel = max((n for n, _, _ in travel), default=0)
        if last_travel > 0:  # the last stop's prompts; weights keyframed up to it or later apply
            step = [step for n, _, step in travel if n == last_travel][-1]
            state = with_changes(state, prompts=tuple(WeightedPrompt(p.text, p.weight) for p in step.prompts))
        for curve in self.curves:
            last = self.last(curve)
            if curve.target.startswith("prompt.") and last < last_travel:
                continue
            state = set_target(state, curve.target, sample(curve, last, last, self.interval))
        if fade is not None:
            state = _set_param(state, "manage_cache", fade[1] is not None)
        return with_changes(state, transition=None) if state.transition is not None else state


class _Compiler:
    def __init__(self, show: Show, source: str | None) -> None:
        self.show = show
        self.source = source
        self.path = source or "<show>"
        self.names: dict[str, int] = {}
        for i, scene in enumerate(show.scenes):
            self.names.setdefault(scene.name, i)
        closed = show.hours.closed if show.hours is not None and show.hours.closed != "pause" else None
        self.closed = self._ref(closed, "hours.closed") if closed is not None else None
        self.flow = [i for i in range(len(show.scenes)) if i != self.closed]
        if not self.flow:
            raise self._error(
                "the closed-hours scene is the only scene; add one to play while open", "hours.closed"
            )
        d = show.defaults
        self.sinks: Mapping[str, Any] = MappingProxyType(
            {k: v.model_dump(exclude_none=True) for k, v in d.output_sinks.items()}
        )
        self.source_input = (
            MappingProxyType(d.input_source.model_dump(exclude_none=True)) if d.input_source else None
        )
        self.cues = [scene.cue_name for scene in show.scenes]
        self._chunk_cache: dict[tuple[str, ...], tuple[str, float, float, bool]] = {}

    def _error(self, message: str, key_path: str) -> ShowError:
        return ShowError(message, path=self.path, key_path=key_path)

    def _ref(self, name: str, key_path: str) -> int:
        if name not in self.names:
            hint = difflib.get_close_matches(name, list(self.names), n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self._error(f"unknown scene {name!r}{suffix}", key_path)
        return self.names[name]

    def run(self) -> Timeline:
        timing = self._timing()
        sections = self._sections(timing)
        self._check_jumps(timing)
        scenes = self._scenes(timing, sections)
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

    # -- timing --------------------------------------------------------------------------------

    def _timing(self) -> _Timing:
        scenes = self.show.scenes
        n = len(scenes)
        t = _Timing([None] * n, [None] * n, [""] * n, {})
        part = [0] * n
        part_no = 0
        prev: int | None = None
        for pos, i in enumerate(self.flow):
            s = scenes[i]
            if self.cues[i] is not None and pos:
                part_no += 1
            part[i] = part_no
            start = self._start(i, s, prev, t, part)
            t.start[i] = start
            if prev is not None and self.cues[i] is None and (s.at is not None or s.after is not None):
                if scenes[prev].duration is None:
                    t.end[prev] = start
                elif (t.end[prev] or 0.0) > start + EPS:
                    t.notes.setdefault(prev, []).append(
                        f"cut short at {fmt_time(start)}: {s.name!r} starts before its duration is over"
                    )
                    t.end[prev] = start
            t.end[i] = start + s.duration if s.duration is not None else None
            prev = i
        if self.closed is not None:
            s = scenes[self.closed]
            t.start[self.closed] = 0.0
            t.end[self.closed] = s.duration
            t.trigger[self.closed] = "closed hours"
        return t

    def _start(self, i: int, s: Scene, prev: int | None, t: _Timing, part: list[int]) -> float:
        scenes = self.show.scenes
        cue = self.cues[i]
        if cue is not None:
            t.trigger[i] = "GO" if cue == "go" else f"cue {cue}"
            return s.pre_wait
        if s.at is not None:
            t.trigger[i] = f"at {fmt_time(s.at)}"
            start = s.at + s.pre_wait
            before = t.start[prev] if prev is not None else None
            if prev is not None and before is not None and start < before - EPS:
                raise self._error(
                    f"starts at {fmt_time(start)}, before {scenes[prev].name!r} ({fmt_time(before)})",
                    f"scenes[{i}].at",
                )
            return start
        if s.after is not None:
            j = self._ref(s.after.scene, f"scenes[{i}].after.scene")
            key = f"scenes[{i}].after"
            if j >= i or j == self.closed:
                raise self._error(f"scene {s.after.scene!r} must come before {s.name!r}", key)
            if part[j] != part[i]:
                raise self._error(
                    f"{s.after.scene!r} plays before a cue, so its end is not on this part's clock; "
                    "use `at` (from the cue) instead",
                    key,
                )
            end = t.end[j]
            if end is None:
                raise self._error(f"{s.after.scene!r} has no end to start after; give it a `duration`", key)
            offset = f"+{fmt_time(s.after.offset)}" if s.after.offset else ""
            t.trigger[i] = f"after {s.after.scene}{offset}"
            return end + s.after.offset + s.pre_wait
        t.trigger[i] = "timed"
        if prev is None:
            return s.pre_wait
        end = t.end[prev]
        if end is None:
            p = scenes[prev]
            raise self._error(
                f"scene {p.name!r} has no duration, so {s.name!r} (which starts when it ends) "
                f"would never start; give {p.name!r} a `duration`, or {s.name!r} an `at`, "
                "`after` or `cue`",
                f"scenes[{prev}].duration",
            )
        return end + s.pre_wait

    def _sections(self, t: _Timing) -> list[tuple[Section, int, int]]:
        out = []
        for k, section in enumerate(self.show.sections):
            first = self._ref(section.start, f"sections[{k}].start")
            last = self._ref(section.end, f"sections[{k}].end")
            if first > last:
                message = f"scene {section.end!r} comes before {section.start!r}"
                raise self._error(message, f"sections[{k}].end")
            if self.closed is not None and first <= self.closed <= last:
                raise self._error("a section cannot contain the closed-hours scene", f"sections[{k}]")
            if section.repeat > 1 and t.end[last] is None:
                raise self._error(
                    f"its last scene {section.end!r} never ends, so it cannot repeat; give it a `duration`",
                    f"sections[{k}]",
                )
            out.append((section, first, last))
        return out

    def _check_jumps(self, t: _Timing) -> None:
        scenes = self.show.scenes
        for i in self.flow:
            s = scenes[i]
            if s.goto is not None:
                target = self._ref(s.goto.scene, f"scenes[{i}].goto.scene")
                if target == self.closed:
                    raise self._error("cannot go to the closed-hours scene", f"scenes[{i}].goto")
                if t.end[i] is None:
                    raise self._error(
                        f"scene {s.name!r} has `goto` but never ends; give it a `duration`",
                        f"scenes[{i}].goto",
                    )
        last = self.flow[-1]
        if self.show.loop_count != 1 and t.end[last] is None:
            raise self._error(
                f"the show loops, but its last scene {scenes[last].name!r} never ends; "
                "give it a `duration`",
                "loop",
            )

    # -- states and actions --------------------------------------------------------------------

    def _initial(self) -> _Written:
        d = self.show.defaults
        params = _runtime_params(d)
        return _Written(
            chain=tuple(d.pipeline),
            load=d.load,
            mode=d.input_mode,
            prompts=(),
            params=MappingProxyType({k: params[k] for k in PARAM_KEYS if k in params}),
            loras=EMPTY,
            refs=(),
        )

    def _scenes(self, t: _Timing, sections: list[tuple[Section, int, int]]) -> list[CompiledScene]:
        written = self._initial()
        wire: State | None = None
        out: list[CompiledScene] = []
        in_sections: dict[int, list[str]] = {}
        for section, first, last in sections:
            for i in range(first, last + 1):
                in_sections.setdefault(i, []).append(section.name)
        for i in range(len(self.show.scenes)):
            compiled, after, out_state = self._scene(i, written, wire, t, tuple(in_sections.get(i, ())))
            out.append(compiled)
            if i != self.closed:  # the closed scene is never in the flow, so nothing tracks from it
                written, wire = after, out_state
        return out

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

    def _written(self, s: Scene, prev: _Written) -> _Written:
        chain = tuple(s.pipeline) if s.pipeline else prev.chain
        load = prev.load
        if s.load is not None:
            update = {
                k: getattr(s.load, k) for k in LoadParams.model_fields if getattr(s.load, k) is not None
            }
            if update:
                load = prev.load.model_copy(update=update)
        prompts = prev.prompts
        if s.prompts:
            prompts = tuple([WeightedPrompt(p.text, p.weight) for p in s.prompts])
        params = prev.params
        own = _runtime_params(s) if s.model_fields_set & _RUNTIME_FIELDS else None
        if own:
            params = merge_params(prev.params, own)
        loras = prev.loras
        if s.loras:
            loras = MappingProxyType({**prev.loras, **s.loras})
        refs = prev.refs
        if s.vace is not None and s.vace.refs is not None:
            refs = tuple(s.vace.refs)
        return _Written(chain, load, s.input_mode or prev.mode, prompts, params, loras, refs)

    def _load_params(self, w: _Written, mode: str, prev: State | None) -> Mapping[str, Any]:
        info = pipelines.lookup(main_pipeline(w.chain))
        load = w.load
        out: dict[str, Any] = {}
        height, width = load.height, load.width
        if info is not None:
            default_h, default_w = info.default_size(mode)
            height = height if height is not None else default_h
            width = width if width is not None else default_w
        values: dict[str, Any] = {
            "height": height,
            "width": width,
            "base_seed": load.base_seed,
            "vae_type": load.vae_type,
            "vace_enabled": load.vace_enabled,
            "lora_merge_mode": load.lora_merge_mode,
        }
        for key in _LOAD_PARAMS_KEY_ORDER:
            if key == "quantization":
                if load.quantization is not None:
                    out[key] = None if load.quantization == "none" else load.quantization
            elif key == "loras":
                if load.loras is not None:
                    out[key] = [
                        {"path": LORA_PREFIX + lo.lora, "scale": lo.scale}
                        | ({"merge_mode": lo.merge_mode} if lo.merge_mode else {})
                        for lo in load.loras
                    ]
            elif values[key] is not None:
                out[key] = values[key]
        if prev is not None and prev.load_params == out:
            return prev.load_params  # share: equal states, identical JSON
        return MappingProxyType(out)

    def _scene(
        self,
        i: int,
        written: _Written,
        wire: State | None,
        t: _Timing,
        sections: tuple[str, ...],
    ) -> tuple[CompiledScene, _Written, State]:
        s = self.show.scenes[i]
        warnings: list[str] = list(t.notes.get(i, ()))
        w = self._written(s, written)
        pid, ci, fps, known = self._chunking(w.chain)
        info = pipelines.lookup(pid)
        if not known:
            warnings.append(
                f"pipeline {pid!r} is not known offline: assuming {FALLBACK_FRAMES_PER_CHUNK} frames "
                f"per chunk at {fps:g} fps"
            )
        mode = w.mode or (info.default_mode if info else "text")
        if wire is not None and w.chain == wire.chain and w.load is written.load and mode == wire.input_mode:
            load_params = wire.load_params  # nothing that shapes the load changed
        else:
            load_params = self._load_params(w, mode, wire)
        start, end = t.start[i], t.end[i]
        length = end - start if start is not None and end is not None else None
        max_slot = last_slot_before(length, ci)

        curves = self._curves(s, w, load_params, warnings)
        plan = _Plan(s, curves, ci, max_slot)
        base = build(
            State,
            chain=w.chain,
            load_params=load_params,
            input_mode=mode,
            prompts=w.prompts,
            params=w.params,
            lora_scales=w.loras,
            vace_refs=w.refs,
            transition=None,
            output_sinks=self.sinks,
            input_source=self.source_input,
        )
        spec = s.transition if s.transition is not None else self.show.defaults.transition
        entry, spec = self._entry_state(base, plan.zero(), spec)
        session = wire is None or not same_session(wire, entry)
        if s.prompts is not None and not s.prompts:
            warnings.append("`prompts` is empty: the previous prompts stay (Scope cannot take none)")
        if not entry.prompts and (info is None or info.supports_prompts) and wire is None:
            warnings.append("no prompts yet: Scope starts from its own default prompt")
        self._lora_warnings(s, entry, curves, warnings)

        fade = self._fade(plan, entry, wire, session, warnings) if curves else None
        if fade is not None and fade[0] == 0:
            entry = _set_param(entry, "manage_cache", False)
        entry_action: Action | None = None
        if session:
            message = entry.initial_parameters()
            for key, ref in (("first_frame_image", s.first_frame), ("last_frame_image", s.last_frame)):
                if ref is not None:
                    message[key] = ASSET_PREFIX + ref
            entry_action = Action(0.0, "session", MappingProxyType(message), _session_label(wire, entry))
            state_in = entry
        else:
            assert wire is not None
            message, state_in = self._entry_message(s, wire, entry, spec, info, ci, warnings)
            if message:
                entry_action = Action(0.0, "send", message, "enter")
        state_out = plan.final_state(state_in, fade)
        later = None
        if plan.has_later:
            later = partial(self._later, plan, state_in, spec, info, fade)

        after = _Written(
            chain=w.chain,
            load=w.load,
            mode=w.mode,
            prompts=state_out.prompts,
            params=state_out.params if fade is None else _set_param(state_out, "manage_cache", True).params,
            loras=state_out.lora_scales,
            refs=w.refs,
        )
        goto = None
        if s.goto is not None:
            goto = (self.names[s.goto.scene], s.goto.times)
        switch = switch_estimate(wire, state_in) if session else 0.0
        compiled = build(
            CompiledScene,
            index=i,
            name=s.name,
            cue=self.cues[i],
            pre_wait=s.pre_wait,
            at=None if self.cues[i] is not None or i == self.closed else start,
            duration=s.duration,
            entry=entry_action,
            state_in=state_in,
            chunk_interval=ci,
            reconnect=session,
            warnings=tuple(warnings),
            goto=goto,
            closed_only=i == self.closed,
            end=end,
            trigger=t.trigger[i],
            main_pipeline=pid,
            fps=fps,
            state_out=with_changes(state_out, transition=None) if state_out.transition else state_out,
            curves=curves,
            switch_estimate=switch,
            sections=sections,
            _later=later,
        )
        return compiled, after, compiled.state_out

    def _curves(
        self, s: Scene, w: _Written, load_params: Mapping[str, Any], warnings: list[str]
    ) -> tuple[Curve, ...]:
        if not s.keyframes:
            return ()
        out: list[Curve] = []
        for target, frames in s.keyframes.items():
            match = KEYFRAME_TARGET.match(target)
            if match is None or not frames:
                warnings.append(f"keyframes {target!r} ignored (unknown target or no keyframes)")
                continue
            ordered = tuple(sorted(frames, key=lambda k: k.at))
            start: float | None
            if match.group("lora"):
                name = match.group("lora")
                start = w.loras.get(name)
                if start is None:
                    loaded = State((), load_params, "text")
                    start = load_scale(loaded, name)
            elif match.group("prompt"):
                index = int(match.group("prompt"))
                if index >= len(w.prompts):
                    warnings.append(f"keyframes {target!r} ignored: there are only {len(w.prompts)} prompts")
                    continue
                start = w.prompts[index].weight
            else:
                start = w.params.get(target)
            out.append(Curve(target, start, ordered))
        return tuple(out)

    def _entry_state(
        self, base: State, slot: _Slot | None, spec: Transition | None
    ) -> tuple[State, Transition | None]:
        """The written state with what happens at slot 0 (travel at 0, keyframe values at 0)."""
        state = base
        if slot is None:
            return state, spec
        if slot.travel is not None:
            step = slot.travel[1]
            state = with_changes(state, prompts=tuple(WeightedPrompt(p.text, p.weight) for p in step.prompts))
            if step.transition is not None:
                spec = step.transition
        for target, value in slot.values.items():
            state = set_target(state, target, value)
        return state, spec

    @staticmethod
    def _lora_warnings(s: Scene, entry: State, curves: tuple[Curve, ...], warnings: list[str]) -> None:
        names = list(s.loras) + [c.target[5:] for c in curves if c.target.startswith("lora.")]
        if not names:
            return
        merge_default = entry.load_params.get("lora_merge_mode") or "permanent_merge"
        loaded = {lo["path"][len(LORA_PREFIX) :]: lo for lo in entry.load_params.get("loras") or ()}
        for name in dict.fromkeys(names):
            if name not in loaded:
                warnings.append(f"LoRA {name!r} is not in `load.loras`, so setting its scale does nothing")
            elif loaded[name].get("merge_mode", merge_default) != "runtime_peft":
                warnings.append(
                    f"LoRA {name!r} is loaded with permanent_merge: runtime scales are ignored "
                    "(use merge_mode: runtime_peft, contract §4.3)"
                )

    @staticmethod
    def _fade(
        plan: _Plan, entry: State, wire: State | None, session: bool, warnings: list[str]
    ) -> tuple[int, int | None] | None:
        """(first slot, restore slot or None) of a LoRA fade that turns manage_cache off.

        Every lora_scales message resets the cache while manage_cache is on (contract §4.3), so
        a sampled fade would stutter; it runs with manage_cache off and restores it after.
        """
        lora_curves = [c for c in plan.curves if c.target.startswith("lora.")]
        if not lora_curves or entry.params.get("manage_cache") is not True:
            return None
        series = [(plan.values(c), lora_now(wire, c.target[5:]) if wire else None) for c in lora_curves]
        ci, max_slot = plan.interval, plan.max_slot
        emitted: list[int] = []  # slots that send lora_scales (a session entry sends none)
        for n in range(max(len(values) for values, _ in series)):
            changed = any(
                n < len(values) and values[n] != (values[n - 1] if n else before)
                for values, before in series
            )
            if changed and not (n == 0 and session):
                emitted.append(n)
        if not emitted:
            return None
        first, last = emitted[0], emitted[-1]
        restore: int | None = last + 1
        if max_slot is not None and last + 1 > max_slot:
            restore = None
        lo, hi = fmt_time(first * ci), fmt_time(last * ci)
        tail = f"restored at {fmt_time((last + 1) * ci)}"
        if restore is None:
            tail = "the next scene turns it back on"
        warnings.append(
            f"LoRA fade {lo}-{hi} runs with manage_cache off ({tail}): every lora_scales message "
            "resets the cache while it is on (contract §4.3)"
        )
        return first, restore

    def _entry_message(
        self,
        s: Scene,
        wire: State,
        entry: State,
        spec: Transition | None,
        info: pipelines.PipelineInfo | None,
        ci: float,
        warnings: list[str],
    ) -> tuple[Mapping[str, Any], State]:
        """The entry `send`: only what changed vs the wire, plus the scene's one-shots."""
        msg: dict[str, Any] = {}
        steps, method = 0, ""
        if entry.prompts and entry.prompts != wire.prompts:
            steps, method = transition_steps(spec, info, ci)
            msg["transition"] = transition_message(entry.prompts, steps, method)
        if entry.params is not wire.params:  # shared when nothing changed
            wire_params = wire.params
            for key, value in entry.params.items():
                if value != wire_params.get(key):
                    msg[key] = list(value) if isinstance(value, list) else value
        if entry.lora_scales is not wire.lora_scales:
            changed = [(n, v) for n, v in entry.lora_scales.items() if v != lora_now(wire, n)]
            if changed:
                msg["lora_scales"] = lora_list(changed)
        if s.vace is not None and s.vace.refs:
            msg["vace_ref_images"] = [ASSET_PREFIX + r for r in entry.vace_refs]
        if s.first_frame is not None:
            msg["first_frame_image"] = ASSET_PREFIX + s.first_frame
        if s.last_frame is not None:
            msg["last_frame_image"] = ASSET_PREFIX + s.last_frame
        if s.reset_cache:
            msg["reset_cache"] = True
        if _resets(msg, entry):
            if entry.vace_refs:  # one-shot refs vanish with the cache (contract §4.4)
                msg["vace_ref_images"] = [ASSET_PREFIX + r for r in entry.vace_refs]
            if "transition" in msg and steps > 0:
                msg["transition"]["num_steps"] = 0
                if s.transition is not None and not s.transition.is_cut:
                    warnings.append("the transition becomes a cut: this entry resets the cache")
                steps = 0
            if "lora_scales" in msg and not s.reset_cache:
                warnings.append("changing LoRA scales with manage_cache on resets the cache (a visible cut)")
        state_in = entry
        if "transition" in msg and steps > 0:
            moving = TransitionState(wire.prompts, entry.prompts, steps, method, 0.0)
            state_in = with_changes(entry, transition=moving)
        return (ordered_message(msg) if msg else EMPTY), state_in

    @staticmethod
    def _later(
        plan: _Plan,
        state: State,
        spec: Transition | None,
        info: pipelines.PipelineInfo | None,
        fade: tuple[int, int | None] | None,
    ) -> tuple[Action, ...]:
        """Travel steps and keyframe samples after the entry, one message per chunk slot.

        Simulates the wire with plain values; `_Plan.final_state` gives the same end state
        without the simulation (a test holds the two together).
        """
        slots = plan.slots()
        ci, curves = plan.interval, plan.curves
        actions: list[Action] = []
        order = [n for n in slots if n > 0]
        if fade is not None and fade[1] is not None and fade[1] not in slots:
            order.append(fade[1])
        order.sort()
        tr_slot, tr_steps = 0, state.transition.steps if state.transition else 0
        method = state.transition.method if state.transition else transition_steps(spec, info, ci)[1]
        fade_on = fade is not None and fade[0] == 0
        prompts = state.prompts
        params: dict[str, Any] = {}  # changed persistent params
        loras: dict[str, float] = {}  # changed runtime scales
        manage = state.params.get("manage_cache")
        refs = [ASSET_PREFIX + r for r in state.vace_refs]
        weights = any(c.target.startswith("prompt.") for c in curves)
        empty = _Slot()
        for n in order:
            slot = slots.get(n, empty)
            msg: dict[str, Any] = {}
            labels: list[str] = []
            target = prompts
            steps: int | None = None
            if slot.travel is not None:
                k, step = slot.travel
                labels.append(f"travel {k}")
                target = tuple(WeightedPrompt(p.text, p.weight) for p in step.prompts)
                steps, method = transition_steps(step.transition or spec, info, ci)
            keyframed = False
            changed_lora: list[tuple[str, float]] = []
            for key, value in slot.values.items():
                if key in _PARAM_TARGETS:
                    if params.get(key, state.params.get(key)) != value:
                        msg[key] = params[key] = value
                        keyframed = True
                elif key.startswith("lora."):
                    name = key[5:]
                    now = loras.get(name)
                    if now is None:
                        now = lora_now(state, name)
                    if now != value:
                        changed_lora.append((name, value))
                        loras[name] = value
            weighted = _weighted(target, slot.values) if weights else target
            keyframed = keyframed or weighted != target
            if weighted != prompts:
                if steps is None:  # weights only: keep the running transition going
                    steps = max(0, tr_steps - (n - tr_slot))
                else:
                    tr_slot, tr_steps = n, steps
                msg["transition"] = transition_message(weighted, steps, method)
                prompts = weighted
            if changed_lora:
                keyframed = True
                msg["lora_scales"] = lora_list(changed_lora)
                if fade is not None and not fade_on:
                    msg["manage_cache"] = params["manage_cache"] = manage = False
                    fade_on = True
            if keyframed:
                labels.append("keyframe")
            if fade is not None and fade_on and n == fade[1]:
                msg["manage_cache"] = params["manage_cache"] = manage = True
                labels.append("restore manage_cache")
                fade_on = False
            if refs and manage is True and ("lora_scales" in msg or "denoising_step_list" in msg):
                msg["vace_ref_images"] = list(refs)  # the reset drops one-shot refs (§4.4)
            if msg:
                label = labels[0] if len(labels) == 1 else " + ".join(labels)
                actions.append(Action(n * ci, "send", ordered_message(msg), label))
        return tuple(actions)


def _weighted(prompts: tuple[WeightedPrompt, ...], values: Mapping[str, float]) -> tuple[WeightedPrompt, ...]:
    """Prompts with keyframed weights (prompt.<i>.weight) applied."""
    out = prompts
    for target, value in values.items():
        if target.startswith("prompt."):
            index = int(target.split(".")[1])
            if index < len(out) and out[index].weight != value:
                lst = list(out)
                lst[index] = WeightedPrompt(lst[index].text, value)
                out = tuple(lst)
    return out


def _set_param(state: State, key: str, value: Any) -> State:
    if state.params.get(key) == value and key in state.params:
        return state
    return with_changes(state, params=merge_params(state.params, {key: value}))


def _resets(msg: Mapping[str, Any], state: State) -> bool:
    """Whether Scope hard-resets the cache on this message (contract §3.3, §4.3)."""
    if msg.get("reset_cache"):
        return True
    manage = msg.get("manage_cache", state.params.get("manage_cache"))
    return manage is True and ("lora_scales" in msg or "denoising_step_list" in msg)


def transition_steps(
    spec: Transition | None, info: pipelines.PipelineInfo | None, ci: float
) -> tuple[int, str]:
    """(num_steps, method) of a transition spec; absent = the pipeline's default."""
    default_steps = info.transition_steps if info else 0
    default_method = info.transition_method if info else "linear"
    if spec is None:
        return default_steps, default_method
    method = spec.method or default_method
    if spec.is_cut:
        return 0, method
    if spec.steps is not None:
        return spec.steps, method
    if spec.duration is not None:
        return seconds_to_steps(spec.duration, ci), method
    return default_steps, method


def _session_label(before: State | None, after: State) -> str:
    if before is None:
        return "enter (load)"
    if before.chain == after.chain and before.load_params == after.load_params:
        return "enter (reconnect)"
    return "enter (reload)"
