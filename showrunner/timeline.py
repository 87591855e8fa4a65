"""The compiled timeline: a show turned into exactly what is sent to Scope, and when.

:func:`compile_timeline` is a pure function of a validated :class:`~showrunner.model.Show`. The
dry-run report and the player both read its result, so what the report shows is what plays.

Compiling tracks every value in file order (model.py docstring), then gives each scene:

- ``state_in``: the full resolved Scope state right after its entry, which is what a jump (goto,
  section repeat, show loop, seek, BACK) sends instead of replaying earlier scenes;
- ``actions``: the entry (one data-channel message with only what changed, or a reload and
  reconnect when the pipeline, its load parameters or the input mode change, contract §4.2),
  then travel steps and keyframe samples, at most one message per chunk (contract §3.2 step 5).

:meth:`Timeline.schedule` unrolls sections, gotos and the show loop lazily; a show that loops
forever yields forever, so callers take what they need.
"""

from __future__ import annotations

import bisect
import copy
import difflib
import gc
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from showrunner import pipelines
from showrunner.errors import CueError, ShowError
from showrunner.model import KEYFRAME_TARGET, Keyframe, LoadParams, Scene, Section, Show, Transition

__all__ = [
    "ASSET_PREFIX",
    "LORA_PREFIX",
    "Action",
    "CompiledScene",
    "Curve",
    "Pass",
    "PassItem",
    "Prompt",
    "ScheduledScene",
    "State",
    "Timeline",
    "TransitionState",
    "compile_timeline",
    "ease",
    "load_estimate",
    "main_pipeline",
    "resolve_refs",
    "seconds_to_steps",
]

# Messages name image assets and LoRAs symbolically; the player swaps in server paths (after
# uploading, and after GET /api/v1/loras) just before sending, so compiling needs no server.
ASSET_PREFIX = "@asset:"
LORA_PREFIX = "@lora:"

# Planning figures for a pipeline pipelines.py does not know (a plugin): a Wan-like chunk.
FALLBACK_FRAMES_PER_CHUNK = 12
FALLBACK_FPS = 16.0

# Rough output gap of a pipeline switch (contract §4.2: load time plus ~1-2 s of ICE/DTLS). Scope
# reports no load times; these are planning figures for the report, not measurements.
RECONNECT_SECONDS = 1.5
LOAD_SECONDS_WAN = 30.0
LOAD_SECONDS_PLAIN = 0.5
LOAD_SECONDS_UNKNOWN = 10.0

# Persistent runtime keys in the order they appear in every message (contract §3.3).
PARAM_KEYS = (
    "denoising_step_list",
    "noise_scale",
    "noise_controller",
    "manage_cache",
    "kv_cache_attention_bias",
    "vace_context_scale",
    "prompt_interpolation_method",
    "vace_use_input_video",
    "paused",
)
_MESSAGE_ORDER = (
    "transition",
    *PARAM_KEYS,
    "lora_scales",
    "vace_ref_images",
    "first_frame_image",
    "last_frame_image",
    "reset_cache",
)
_RANK = {k: n for n, k in enumerate(_MESSAGE_ORDER)}
_PARAM_SET = frozenset(PARAM_KEYS)
_LOAD_ORDER = (
    "height",
    "width",
    "base_seed",
    "vae_type",
    "quantization",
    "vace_enabled",
    "loras",
    "lora_merge_mode",
)
# Keys whose strings (or lists of strings, or `path` entries) are @asset:/@lora: references.
_REF_KEYS = frozenset(
    {"vace_ref_images", "first_frame_image", "last_frame_image", "images", "lora_scales", "loras"}
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

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_T = TypeVar("_T")
_EPS = 1e-9
_PASS_LIMIT = 1_000_000


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------


def seconds_to_steps(seconds: float, chunk_interval: float) -> int:
    """Chunks (transition steps) in `seconds`: rounded to nearest, at least 1 when seconds > 0."""
    if seconds <= 0:
        return 0
    return max(1, math.floor(seconds / chunk_interval + 0.5 + _EPS))


def ease(kind: str, u: float) -> float:
    """Progress 0..1 of a keyframe segment at fraction `u` of its time.

    step: holds until the keyframe; linear; ease-in: u²; ease-out: 1-(1-u)²; ease-in-out:
    quadratic in, then out; cubic: smoothstep 3u²-2u³.
    """
    u = min(1.0, max(0.0, u))
    if kind == "step":
        return 1.0 if u >= 1.0 else 0.0
    if kind == "ease-in":
        return u * u
    if kind == "ease-out":
        return 1.0 - (1.0 - u) ** 2
    if kind == "ease-in-out":
        return 2 * u * u if u < 0.5 else 1.0 - 2 * (1.0 - u) ** 2
    if kind == "cubic":
        return u * u * (3.0 - 2.0 * u)
    return u


def main_pipeline(chain: Sequence[str]) -> str:
    """The chain's generating pipeline: the first known one that takes prompts (contract §8-K)."""
    known = [p for p in chain if pipelines.lookup(p) is not None]
    for pid in known:
        info = pipelines.lookup(pid)
        if info is not None and info.supports_prompts:
            return pid
    return known[0] if known else chain[0]


def load_estimate(pipeline_id: str) -> float:
    """Planning figure for loading one pipeline, in seconds (Scope reports none, §2.3)."""
    info = pipelines.lookup(pipeline_id)
    if info is None:
        return LOAD_SECONDS_UNKNOWN
    return LOAD_SECONDS_WAN if info.wan else LOAD_SECONDS_PLAIN


def resolve_refs(
    message: Mapping[str, Any], assets: Mapping[str, str], loras: Mapping[str, str]
) -> dict[str, Any]:
    """A deep copy of `message` with @asset:/@lora: references replaced by server paths.

    Only keys that carry references are touched, so a prompt text that happens to start with
    "@asset:" is sent as written.
    """
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key in _REF_KEYS:
            out[key] = _resolve(value, assets, loras)
        elif isinstance(value, Mapping):
            out[key] = resolve_refs(value, assets, loras)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve(value: Any, assets: Mapping[str, str], loras: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for prefix, table, what in ((ASSET_PREFIX, assets, "image asset"), (LORA_PREFIX, loras, "LoRA")):
            if value.startswith(prefix):
                name = value[len(prefix) :]
                if name not in table:
                    raise ShowError(f"{what} {name!r} has no server path (not uploaded or not found)")
                return table[name]
        return value
    if isinstance(value, Mapping):
        return {k: _resolve(v, assets, loras) if k == "path" else copy.deepcopy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v, assets, loras) for v in value]
    return copy.deepcopy(value)


def _fmt(seconds: float) -> str:
    """Short clock text for messages: 0:05, 1:30, 1:02:03, 0:07.5."""
    whole = int(seconds)
    frac = seconds - whole
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    text = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
    if frac > 0.0005:
        text += f"{frac:.3f}".rstrip("0")[1:]
    return text


def _ordered(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """Messages in one key order, so equal states give byte-identical JSON (keys of _MESSAGE_ORDER)."""
    if len(message) > 1:
        message = {k: message[k] for k in sorted(message, key=_RANK.__getitem__)}
    return MappingProxyType(message)


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    """One weighted prompt as sent on the wire (weights are ratios, contract §3.3)."""

    text: str
    weight: float = 1.0

    def wire(self) -> dict[str, Any]:
        return {"text": self.text, "weight": self.weight}


def _prompts_wire(prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
    return [p.wire() for p in prompts]


def _transition_message(prompts: Sequence[Prompt], steps: int, method: str) -> dict[str, Any]:
    return {
        "target_prompts": _prompts_wire(prompts),
        "num_steps": steps,
        "temporal_interpolation_method": method,
    }


@dataclass(frozen=True, slots=True)
class TransitionState:
    """A prompt transition in progress (contract §3.3 `transition`)."""

    from_prompts: tuple[Prompt, ...]
    to_prompts: tuple[Prompt, ...]
    steps: int
    method: str
    progress: float  # 0..1 of its steps


@dataclass(frozen=True)
class State:
    """The full resolved Scope state at one point, like a lighting console's tracked state.

    Mappings are read-only views; consecutive states share the ones that did not change.
    """

    chain: tuple[str, ...]
    load_params: Mapping[str, Any]
    input_mode: str
    prompts: tuple[Prompt, ...] = ()
    transition: TransitionState | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    lora_scales: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    vace_refs: tuple[str, ...] = ()
    output_sinks: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    input_source: Mapping[str, Any] | None = None

    @property
    def load_json(self) -> str:
        """`load_params` as JSON, byte-identical for equal states (the §2.2 reuse rule)."""
        cached: str | None = self.__dict__.get("_load_json")
        if cached is None:
            cached = json.dumps(dict(self.load_params), separators=(",", ":"))
            self.__dict__["_load_json"] = cached  # frozen: cache outside the fields
        return cached

    @property
    def session_key(self) -> tuple[tuple[str, ...], str, str]:
        """When this changes between two states the player must reload and reconnect (§4.2)."""
        return (self.chain, self.load_json, self.input_mode)

    def load_request(self) -> dict[str, Any]:
        """The body of POST /api/v1/pipeline/load for this state (legacy shared form, §2.2)."""
        return {"pipeline_ids": list(self.chain), "load_params": copy.deepcopy(dict(self.load_params))}

    def initial_parameters(self) -> dict[str, Any]:
        """`initialParameters` of an offer that starts a session in this state (§2.6, §9.3)."""
        out: dict[str, Any] = {"pipeline_ids": list(self.chain), "input_mode": self.input_mode}
        if self.prompts:
            out["prompts"] = _prompts_wire(self.prompts)
        out.update(self._persistent())
        if self.output_sinks:
            out["output_sinks"] = copy.deepcopy(dict(self.output_sinks))
        if self.input_source is not None:
            out["input_source"] = copy.deepcopy(dict(self.input_source))
        return out

    def resync_message(self) -> dict[str, Any]:
        """One data-channel message that puts a live session into this state.

        The prompts go as a `transition` with 0 steps (a cut), because a plain `prompts` equal to
        the last one received does nothing (contract §8-G).
        """
        out: dict[str, Any] = {}
        if self.prompts:
            out["transition"] = _transition_message(self.prompts, 0, _method(self.chain))
        out.update(self._persistent())
        return out

    def _persistent(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(self.params[k]) for k in PARAM_KEYS if k in self.params}
        if self.lora_scales:
            out["lora_scales"] = _lora_list(self.lora_scales.items())
        if self.vace_refs:
            out["vace_ref_images"] = [ASSET_PREFIX + r for r in self.vace_refs]
        return out


def _build(cls: type[_T], **values: Any) -> _T:
    """Construct a frozen dataclass from ALL its fields without __init__ (compile hot path)."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def _with(state: State, **changes: Any) -> State:
    """`dataclasses.replace` for State, without re-running __init__ (a hot path when compiling)."""
    new = object.__new__(State)
    values = new.__dict__
    values.update(state.__dict__)
    if "load_params" in changes:
        values.pop("_load_json", None)
    values.update(changes)
    return new


def _merge_params(params: Mapping[str, Any], changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """Params with `changes`, keys kept in PARAM_KEYS order."""
    merged = dict(params)
    merged.update(changes)
    if len(merged) != len(params):
        merged = {k: merged[k] for k in sorted(merged, key=_RANK.__getitem__)}
    return MappingProxyType(merged)


def _lora_list(items: Iterator[tuple[str, float]] | Sequence[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"path": LORA_PREFIX + name, "scale": scale} for name, scale in items]


def _method(chain: Sequence[str]) -> str:
    info = pipelines.lookup(main_pipeline(chain))
    return info.transition_method if info else "linear"


def _load_scale(state: State, name: str) -> float | None:
    for lora in state.load_params.get("loras") or ():
        if lora.get("path") == LORA_PREFIX + name:
            return float(lora.get("scale", 1.0))
    return None


def _lora_now(state: State, name: str) -> float | None:
    """The scale in force: the last runtime scale, else the one it was loaded with."""
    value = state.lora_scales.get(name)
    return value if value is not None else _load_scale(state, name)


def _same_session(a: State, b: State) -> bool:
    return (
        a.chain == b.chain
        and a.input_mode == b.input_mode
        and (a.load_params is b.load_params or a.load_params == b.load_params)
    )


def _apply(state: State, message: Mapping[str, Any]) -> State:
    """The state after Scope applies one data-channel message (one-shots leave no trace)."""
    changes: dict[str, Any] = {}
    transition = message.get("transition")
    if transition is not None:
        changes["prompts"] = tuple(Prompt(p["text"], p["weight"]) for p in transition["target_prompts"])
    params = {k: v for k, v in message.items() if k in _PARAM_SET}
    if params:
        changes["params"] = _merge_params(state.params, params)
    scales = message.get("lora_scales")
    if scales:
        merged_scales = dict(state.lora_scales)
        merged_scales.update((item["path"][len(LORA_PREFIX) :], item["scale"]) for item in scales)
        changes["lora_scales"] = MappingProxyType(merged_scales)
    return _with(state, **changes) if changes else state


# ---------------------------------------------------------------------------------------------
# Compiled scenes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    """One thing the player does during a scene."""

    offset: float  # seconds from the scene's start (pre_wait included: 0 = the scene is live)
    kind: str  # "session": (re)load + reconnect with `message` as initialParameters; "send"
    message: Mapping[str, Any]  # the exact JSON, with @asset:/@lora: references
    label: str  # "enter", "travel 1", "keyframe", "restore manage_cache", ...


@dataclass(frozen=True)
class Curve:
    """One keyframed value of a scene, evaluated exactly (samples go out at the chunk rate)."""

    target: str  # as written: noise_scale, lora.<name>, prompt.<index>.weight
    start: float | None  # value at the scene's start; None = the first keyframe's value holds
    keyframes: tuple[Keyframe, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_times", [k.at for k in self.keyframes])

    @property
    def end(self) -> float:
        return self.keyframes[-1].at

    def value_at(self, offset: float) -> float:
        """The value `offset` seconds into the scene (the first segment starts from `start`)."""
        return self._value(bisect.bisect_right(self._times, offset), offset)

    def samples(self, interval: float, count: int) -> list[float]:
        """Values at 0, interval, 2*interval, ... (`count` of them), walking the segments once."""
        times, last = self._times, len(self._times)
        out: list[float] = []
        j = 0
        for n in range(count):
            t = n * interval
            while j < last and times[j] <= t:
                j += 1
            out.append(self._value(j, t))
        return out

    def _value(self, j: int, offset: float) -> float:
        """Value at `offset`, where `j` is the first keyframe later than it (bisect_right)."""
        frames = self.keyframes
        if j == len(frames):
            return frames[-1].value
        if j > 0 and frames[j - 1].at == offset:
            return frames[j - 1].value
        nxt = frames[j]
        if j == 0:
            if self.start is None:
                return nxt.value
            t0, v0 = 0.0, self.start
        else:
            t0, v0 = frames[j - 1].at, frames[j - 1].value
        return v0 + (nxt.value - v0) * ease(nxt.ease, (offset - t0) / (nxt.at - t0))


@dataclass(frozen=True)
class CompiledScene:
    """A scene with its resolved state and the actions that play it."""

    index: int
    name: str
    cue: str | None  # None = timed; "go" = waits for GO; other = a named cue (GO also fires it)
    pre_wait: float
    at: float | None  # start from its part's origin (timed scenes, pre_wait included); None for cues
    duration: float | None  # as written; None = lasts until the next scene starts, or holds
    entry: Action | None  # the first action at offset 0 (None when entering changes nothing)
    state_in: State  # right after the entry action
    chunk_interval: float  # frames_per_chunk / fps of the main pipeline
    reconnect: bool  # the entry reloads + reconnects (vs the previous scene in file order)
    warnings: tuple[str, ...]
    goto: tuple[int, int | None] | None  # (target index, times or None = every time)
    closed_only: bool  # the hours.closed scene: never in the normal flow
    # Additions used by the report, seek and the journal.
    end: float | None  # static end from the part's origin; None = depends on a cue, or holds
    trigger: str  # "timed", "at 0:30", "after intro+0:02", "GO", "cue drop", "closed hours"
    main_pipeline: str
    fps: float  # the fps assumed for seconds -> steps
    state_out: State  # what is on the wire when the scene has played to its end
    curves: tuple[Curve, ...]
    switch_estimate: float  # seconds without output at the entry (0 without a reconnect)
    sections: tuple[str, ...] = ()  # names of the sections that contain the scene
    _later: Any = field(default=None, repr=False, compare=False)  # makes the later actions

    @property
    def actions(self) -> tuple[Action, ...]:
        """The entry, then travel steps and keyframe samples, sorted by offset.

        Messages after the entry (one per chunk of every keyframed stretch) are made on first
        use: compiling stays cheap for a report, and they only depend on this scene.
        """
        cached: tuple[Action, ...] | None = self.__dict__.get("_actions")
        if cached is None:
            later: tuple[Action, ...] = self._later() if self._later is not None else ()
            cached = ((self.entry,) if self.entry is not None else ()) + later
            self.__dict__["_actions"] = cached  # frozen: cache outside the fields
            self.__dict__["_later"] = None  # free what made them
        return cached

    def _slot(self, offset: float) -> int:
        """The chunk slot of `offset`, as `_Plan.slot` cuts this scene."""
        n = _nearest(offset, self.chunk_interval)
        last = _max_slot(self.length, self.chunk_interval)
        return min(n, last) if last is not None else n

    @property
    def length(self) -> float | None:
        """Static length in seconds, None when it depends on a cue or holds."""
        start = self.pre_wait if self.cue is not None else self.at
        if self.closed_only:
            start = 0.0
        if self.end is None or start is None:
            return None
        return self.end - start

    def state_at(self, offset: float) -> State:
        """The state `offset` seconds into this scene, entered directly (a seek or a jump)."""
        t = max(0.0, offset)
        state = self.state_in
        last: tuple[float, TransitionState] | None = None
        travelled = -1  # slot of the last travel stop reached
        if state.transition is not None:
            last = (0.0, state.transition)
        for action in self.actions:
            if action.offset <= 0:
                continue  # merged into state_in
            if action.offset > t + _EPS:
                break
            if action.label.startswith("travel"):
                travelled = self._slot(action.offset)
            before = state.prompts
            state = _apply(state, action.message)
            tr = action.message.get("transition")
            if tr is not None and tr["num_steps"] > 0:
                method = tr["temporal_interpolation_method"]
                last = (action.offset, TransitionState(before, state.prompts, tr["num_steps"], method, 0.0))
            elif tr is not None:
                last = None
        for curve in self.curves:
            final = self._slot(curve.end)
            if curve.target.startswith("prompt.") and travelled > final:
                continue  # a later travel stop replaced the prompts these weights were for
            if t >= final * self.chunk_interval - _EPS:  # its last value has been sent
                value = _sample(curve, final, final, self.chunk_interval)
            else:
                value = round(curve.value_at(t), 4)
            state = _set_target(state, curve.target, value)
        transition = None
        if last is not None:
            started, tr_state = last
            progress = (t - started) / (tr_state.steps * self.chunk_interval)
            if progress < 1.0:
                transition = replace(tr_state, to_prompts=state.prompts, progress=max(0.0, progress))
        return _with(state, transition=transition) if transition is not state.transition else state


def _set_target(state: State, target: str, value: float) -> State:
    """The state with one keyframe target set (noise_scale, lora.<name>, prompt.<i>.weight)."""
    if target.startswith("lora."):
        name = target[5:]
        if state.lora_scales.get(name) == value:
            return state
        return _with(state, lora_scales=MappingProxyType({**state.lora_scales, name: value}))
    if target.startswith("prompt."):
        index = int(target.split(".")[1])
        if index >= len(state.prompts) or state.prompts[index].weight == value:
            return state
        prompts = list(state.prompts)
        prompts[index] = Prompt(prompts[index].text, value)
        return _with(state, prompts=tuple(prompts))
    if state.params.get(target) == value:
        return state
    return _with(state, params=_merge_params(state.params, {target: value}))


# ---------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduledScene:
    """One occurrence of a scene in play order (loops unrolled lazily)."""

    scene: CompiledScene
    part: int  # increments at every cue scene and at each show-loop restart
    start: float | None  # from the part's origin; None = waits for its cue (+ pre_wait)
    end: float | None  # from the part's origin; None = depends on a later cue, or holds
    iteration: int  # show-loop iteration, 0-based
    path: tuple[tuple[str, int], ...]  # loop counters that led here, e.g. (("section:chorus", 2),)
    how: str = "next"  # "start", "next" (file order), "goto", "section", "loop": how it was reached
    _flow: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def jumped(self) -> bool:
        """True when the entry diff does not apply: enter with `state_in` (resync or session)."""
        return self.how != "next"


@dataclass
class _Flow:
    """Mutable position of a schedule walk."""

    index: int
    counters: dict[str, int]  # sections and limited gotos: what decides the next jump
    active: dict[str, tuple[int, int, int]]  # path label -> (count, first index, last index)
    iteration: int
    part: int
    shift: float
    how: str
    arrival: float | None  # part time the flow arrives at `index` after a jump

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.index,
            tuple(self.counters.items()),
            tuple(self.active.items()),
            self.iteration,
            self.part,
            self.shift,
            self.how,
            self.arrival,
        )

    @classmethod
    def restore(cls, snap: tuple[Any, ...]) -> _Flow:
        index, counters, active, iteration, part, shift, how, arrival = snap
        return cls(index, dict(counters), dict(active), iteration, part, shift, how, arrival)


@dataclass(frozen=True, slots=True)
class PassItem:
    """One occurrence in the first pass, on the absolute show clock (every cue fires at once)."""

    occurrence: ScheduledScene
    start: float
    end: float | None
    switch: float  # estimated seconds without output at its entry (reload + reconnect), else 0


@dataclass(frozen=True)
class Pass:
    """One pass of the show: up to the show-loop restart, the end, or an endless goto's repeat."""

    items: tuple[PassItem, ...]
    end: float  # absolute end of the pass (the start of a last scene that holds)
    holds: bool  # the last scene holds (no end)
    cycle: str | None  # "loop" (show loop), "goto" (a goto without `times`), None
    cycle_start: float | None  # absolute time the repeating part starts
    period: float | None
    truncated: bool  # stopped after too many occurrences
    wrap_switch: float  # reconnect estimate going round the cycle, 0 if none

    @cached_property
    def starts(self) -> list[float]:
        return [item.start for item in self.items]


class Timeline:
    """The compiled show. Immutable; `schedule()` is lazy and may be infinite."""

    def __init__(
        self,
        show: Show,
        source: str | None,
        scenes: tuple[CompiledScene, ...],
        warnings: tuple[str, ...],
        sections: Mapping[int, tuple[tuple[Section, int], ...]],
    ) -> None:
        self.show = show
        self.source = source
        self.scenes = scenes
        self.warnings = warnings
        first = scenes[0]
        self.fps = show.fps or first.fps
        self._names = {s.name: s.index for s in reversed(scenes)}
        self._flow = [s.index for s in scenes if not s.closed_only]
        self._next = {a: b for a, b in zip(self._flow, self._flow[1:], strict=False)}
        self._section_ends = sections  # last scene -> (section, first scene), innermost first
        self._repeats = {sec.name: sec.repeat for sec in show.sections}
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError("a Timeline is immutable; compile a new one")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"<Timeline {self.show.title!r}: {len(self.scenes)} scenes>"

    # -- lookup --------------------------------------------------------------------------------

    def scene(self, name_or_index: int | str) -> CompiledScene:
        """A scene by name or file index; CueError if there is none."""
        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
            if 0 <= name_or_index < len(self.scenes):
                return self.scenes[name_or_index]
            raise CueError(f"no scene number {name_or_index} (the show has {len(self.scenes)})")
        index = self._names.get(str(name_or_index))
        if index is None:
            hint = difflib.get_close_matches(str(name_or_index), list(self._names), n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise CueError(f"unknown scene {name_or_index!r}{suffix}")
        return self.scenes[index]

    # -- schedule ------------------------------------------------------------------------------

    def schedule(
        self, start: int | str = 0, *, start_offset: float | None = None
    ) -> Iterator[ScheduledScene]:
        """Scenes in play order, lazily: sections repeat, gotos jump, the show loops.

        With `start_offset` None the first scene keeps its written timing (a cue scene waits for
        its cue); with a number it starts at that part time, already triggered. Closed-hours
        scenes are skipped; asking to start at one yields it alone.
        """
        index = self.scene(start).index
        if index == 0 and start == 0 and self.scenes[0].closed_only:
            index = self._flow[0]
        flow = _Flow(index, {}, {}, 0, 0, 0.0, "start", None)
        item = self._occurrence(flow, start_offset)
        while True:
            yield item
            nxt = self._step(flow, item)
            if nxt is None:
                return
            item = nxt

    def next_after(self, occurrence: ScheduledScene) -> ScheduledScene | None:
        """The item that follows `occurrence` in its schedule (None at the end of the show)."""
        if not occurrence._flow:
            raise ValueError("not an item of Timeline.schedule()")
        flow = _Flow.restore(occurrence._flow)
        return self._step(flow, occurrence)

    def _occurrence(self, flow: _Flow, start_offset: float | None = None) -> ScheduledScene:
        sc = self.scenes[flow.index]
        static = sc.pre_wait if sc.cue is not None else (sc.at or 0.0)
        start: float | None
        if flow.how == "start":
            if start_offset is None:
                flow.shift = 0.0
                start = None if sc.cue is not None else static
            else:
                flow.shift = start_offset - static
                start = start_offset
        elif sc.cue is not None:
            if flow.how != "loop":
                flow.part += 1
            flow.shift = 0.0
            start = None
        else:
            if flow.how in ("goto", "section"):
                assert flow.arrival is not None
                flow.shift = flow.arrival - (static - sc.pre_wait)
            elif flow.how == "loop":
                flow.shift = 0.0
            start = static + flow.shift
        end = sc.end + flow.shift if sc.end is not None else None
        path = tuple(
            (label, count) for label, (count, lo, hi) in flow.active.items() if lo <= sc.index <= hi
        )
        fresh = tuple(
            ("section:" + name, 1)
            for name in sc.sections
            if self._repeats.get(name, 1) > 1 and "section:" + name not in flow.active
        )
        if fresh:
            path = fresh + path
        return ScheduledScene(sc, flow.part, start, end, flow.iteration, path, flow.how, flow.snapshot())

    def _step(self, flow: _Flow, item: ScheduledScene) -> ScheduledScene | None:
        """Advance `flow` past `item`; the next occurrence, or None at the end of the show."""
        sc = item.scene
        if sc.closed_only:
            return None
        if not self._jump(flow, sc, item.end):
            nxt = self._next.get(sc.index)
            if nxt is not None:
                flow.index, flow.how = nxt, "next"
            else:
                count = self.show.loop_count
                if count is not None and flow.iteration + 1 >= count:
                    return None
                flow.iteration += 1
                flow.part += 1
                flow.counters.clear()
                flow.active.clear()
                flow.index, flow.how = self._flow[0], "loop"
        return self._occurrence(flow)

    def _jump(self, flow: _Flow, sc: CompiledScene, end: float | None) -> bool:
        """Take the scene's goto or a section repeat if one is due; False to go on in file order."""
        if sc.goto is not None:
            target, times = sc.goto
            key = "goto:" + sc.name
            done = flow.counters.get(key, 0)
            if times is None or done < times:
                if times is not None:
                    flow.counters[key] = done + 1
                count = flow.active.get(key, (1, 0, 0))[0] + 1
                flow.active[key] = (count, min(target, sc.index), max(target, sc.index))
                self._go(flow, target, "goto", end)
                return True
            flow.counters.pop(key, None)
            flow.active.pop(key, None)
        for section, first in self._section_ends.get(sc.index, ()):
            key = "section:" + section.name
            done = flow.counters.get(key, 0)
            if done + 1 < section.repeat:
                flow.counters[key] = done + 1
                flow.active[key] = (done + 2, first, sc.index)
                self._go(flow, first, "section", end)
                return True
            flow.counters.pop(key, None)
            flow.active.pop(key, None)
        return False

    @staticmethod
    def _go(flow: _Flow, target: int, how: str, end: float | None) -> None:
        flow.index, flow.how, flow.arrival = target, how, end

    # -- one pass, totals ----------------------------------------------------------------------

    @cached_property
    def _pass(self) -> Pass:
        with paused_gc():
            return self._walk_pass()

    def one_pass(self) -> Pass:
        """The first pass on the absolute show clock, every cue assumed to fire at once.

        Stops at the show-loop restart, at the end, or when an endless goto comes round to a
        jump it already took (then `cycle` is "goto" and `period` its length).
        """
        return self._pass

    def _walk_pass(self) -> Pass:
        items: list[PassItem] = []
        seen: dict[tuple[Any, ...], float] = {}
        origin = 0.0
        prev: PassItem | None = None
        cycle: str | None = None
        cycle_start: float | None = None
        truncated = False
        nxt: ScheduledScene | None = None
        for occ in self.schedule():
            if prev is not None:
                arrival = prev.end if prev.end is not None else prev.start
                if occ.how == "loop":
                    cycle, cycle_start, nxt = "loop", 0.0, occ
                    break
                if occ.how == "goto":
                    key = (occ.scene.index, occ._flow[1], occ._flow[3])
                    if key in seen:
                        cycle, cycle_start, nxt = "goto", seen[key], occ
                        break
                    seen[key] = arrival
                if occ.part != prev.occurrence.part:
                    origin = arrival
            if len(items) >= _PASS_LIMIT:
                truncated = True
                break
            begin = origin + (occ.start if occ.start is not None else occ.scene.pre_wait)
            finish = origin + occ.end if occ.end is not None else None
            switch = 0.0
            if prev is not None and not _same_session(prev.occurrence.scene.state_out, occ.scene.state_in):
                switch = _switch_estimate(prev.occurrence.scene.state_out, occ.scene.state_in)
            prev = PassItem(occ, begin, finish, switch)
            items.append(prev)
        assert prev is not None
        end = prev.end if prev.end is not None else prev.start
        wrap = 0.0
        if nxt is not None and not _same_session(prev.occurrence.scene.state_out, nxt.scene.state_in):
            wrap = _switch_estimate(prev.occurrence.scene.state_out, nxt.scene.state_in)
        period = end - cycle_start if cycle_start is not None else None
        return Pass(tuple(items), end, prev.end is None, cycle, cycle_start, period, truncated, wrap)

    @cached_property
    def total_duration(self) -> float | None:
        """The whole show with every cue firing at once; None if it never ends."""
        p = self._pass
        if p.truncated or p.cycle == "goto":
            return None
        if p.cycle == "loop":
            count = self.show.loop_count
            return None if count is None else count * p.end
        return p.end

    @cached_property
    def period(self) -> float | None:
        """Length of one round of a looping show (show loop or endless goto), else None."""
        return self._pass.period

    @cached_property
    def switch_count(self) -> int:
        """Reloads/reconnects in one pass (going round the loop included; the first load not)."""
        p = self._pass
        return sum(1 for item in p.items if item.switch > 0) + (1 if p.wrap_switch > 0 else 0)

    @cached_property
    def switch_seconds(self) -> float:
        """Estimated seconds without output in one pass (see `switch_count`)."""
        p = self._pass
        return sum(item.switch for item in p.items) + p.wrap_switch

    # -- states --------------------------------------------------------------------------------

    def state_at_scene(self, scene: int | str, offset: float) -> State:
        """The state `offset` seconds into `scene` when entered directly (seek, BACK, goto)."""
        return self.scene(scene).state_at(offset)

    def locate(self, time: float) -> tuple[PassItem, float]:
        """The pass item playing at absolute show `time` (cues at once) and the offset into it."""
        p = self._pass
        t = max(0.0, time)
        if p.period and p.cycle_start is not None and t >= p.end:
            count = self.show.loop_count if p.cycle == "loop" else None
            if count is None or t < count * p.end:
                t = p.cycle_start + (t - p.cycle_start) % p.period
        index = max(0, bisect.bisect_right(p.starts, t) - 1)
        item = p.items[index]
        return item, t - item.start

    def state_at(self, time: float) -> State:
        """The state at absolute show `time`, every cue assumed to fire at once (`--at 1:30`)."""
        item, offset = self.locate(time)
        return item.occurrence.scene.state_at(offset)


def _switch_estimate(before: State | None, after: State) -> float:
    """Seconds without output when going from `before` to `after` (contract §4.2)."""
    if before is not None and before.chain == after.chain and before.load_params == after.load_params:
        return RECONNECT_SECONDS  # input mode only: a new session on the loaded pipeline
    if before is None or before.load_params != after.load_params:
        loads = after.chain
    else:  # same load params: loaded instances are kept (reuse rule, §2.2)
        loads = tuple(p for p in after.chain if p not in before.chain)
    return sum(load_estimate(p) for p in loads) + RECONNECT_SECONDS


# ---------------------------------------------------------------------------------------------
# Compiling
# ---------------------------------------------------------------------------------------------


def compile_timeline(show: Show, *, source: str | None = None) -> Timeline:
    """Compile a validated show; raises ShowError for timing that cannot be played."""
    with paused_gc():
        return _Compiler(show, source).run()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Compiling allocates a few objects per chunk of show time and frees none of them; the
    collector would rescan the growing heap again and again (it doubled 10k-scene compile time).
    Reference counting still frees everything; cycles are collected once it is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Written(NamedTuple):
    """Values as the show has written them so far (file order), before keyframes move them."""

    chain: tuple[str, ...]
    load: LoadParams
    mode: str | None  # None = the main pipeline's default mode
    prompts: tuple[Prompt, ...]
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


def _nearest(offset: float, interval: float) -> int:
    """The chunk slot nearest to `offset`."""
    return math.floor(offset / interval + 0.5 + _EPS)


def _max_slot(length: float | None, interval: float) -> int | None:
    """The last slot that starts before the scene ends (None: the scene has no fixed end)."""
    if length is None:
        return None
    return max(0, math.ceil(length / interval - _EPS) - 1)


def _sample(curve: Curve, n: int, last: int, interval: float, exact: float | None = None) -> float:
    """The value a curve sends at slot `n` (0 <= n <= last), rounded to 4 decimals.

    A keyframe lands exactly on its nearest slot (the later keyframe wins a shared slot) and the
    last keyframe on the curve's last slot, unless the scene ends first: keyframes after the
    scene's end never happen. `exact` is the sampled value when the caller has it.
    """
    value = exact
    for frame in curve.keyframes:
        if _nearest(frame.at, interval) == n:
            value = frame.value
    if n == last and _nearest(curve.end, interval) == last:
        value = curve.keyframes[-1].value
    if value is None:
        value = curve.value_at(n * interval)
    return round(value, 4)


class _Plan:
    """A scene's time cut into chunk slots: travel stops and keyframe samples per slot."""

    __slots__ = ("scene", "curves", "interval", "max_slot")

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
        n = _nearest(offset, self.interval)
        return min(n, self.max_slot) if self.max_slot is not None else n

    def last(self, curve: Curve) -> int:
        """The curve's last slot: its last keyframe's, or the scene's last if that comes first."""
        return self.slot(curve.end)

    def values(self, curve: Curve) -> list[float]:
        """What the curve sends at slots 0..its last (the rules of `_sample`)."""
        last, interval = self.last(curve), self.interval
        values: list[float | None] = list(curve.samples(interval, last + 1))
        for frame in curve.keyframes:
            n = _nearest(frame.at, interval)
            if n <= last:
                values[n] = frame.value
        if _nearest(curve.end, interval) == last:
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
            zero.values[curve.target] = _sample(curve, 0, self.last(curve), self.interval)
        return zero

    def final_state(self, state_in: State, fade: tuple[int, int | None] | None) -> State:
        """The wire state once every later action has been sent (without making them)."""
        state = state_in
        if not self.curves and not self.scene.travel:
            return _with(state, transition=None) if state.transition is not None else state
        travel = [(self.slot(step.at), k, step) for k, step in enumerate(self.scene.travel, 1)]
        last_travel = max((n for n, _, _ in travel), default=0)
        if last_travel > 0:  # the last stop's prompts; weights keyframed up to it or later apply
            step = [step for n, _, step in travel if n == last_travel][-1]
            state = _with(state, prompts=tuple(Prompt(p.text, p.weight) for p in step.prompts))
        for curve in self.curves:
            last = self.last(curve)
            if curve.target.startswith("prompt.") and last < last_travel:
                continue
            state = _set_target(state, curve.target, _sample(curve, last, last, self.interval))
        if fade is not None:
            state = _set_param(state, "manage_cache", fade[1] is not None)
        return _with(state, transition=None) if state.transition is not None else state


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
                elif (t.end[prev] or 0.0) > start + _EPS:
                    t.notes.setdefault(prev, []).append(
                        f"cut short at {_fmt(start)}: {s.name!r} starts before its duration is over"
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
            t.trigger[i] = f"at {_fmt(s.at)}"
            start = s.at + s.pre_wait
            before = t.start[prev] if prev is not None else None
            if prev is not None and before is not None and start < before - _EPS:
                raise self._error(
                    f"starts at {_fmt(start)}, before {scenes[prev].name!r} ({_fmt(before)})",
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
            offset = f"+{_fmt(s.after.offset)}" if s.after.offset else ""
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
            loras=_EMPTY,
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
            prompts = tuple([Prompt(p.text, p.weight) for p in s.prompts])
        params = prev.params
        own = _runtime_params(s) if s.model_fields_set & _RUNTIME_FIELDS else None
        if own:
            params = _merge_params(prev.params, own)
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
        for key in _LOAD_ORDER:
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
        max_slot = _max_slot(length, ci)

        curves = self._curves(s, w, load_params, warnings)
        plan = _Plan(s, curves, ci, max_slot)
        base = _build(
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
        session = wire is None or not _same_session(wire, entry)
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
        switch = _switch_estimate(wire, state_in) if session else 0.0
        compiled = _build(
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
            state_out=_with(state_out, transition=None) if state_out.transition else state_out,
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
                    start = _load_scale(loaded, name)
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
            state = _with(state, prompts=tuple(Prompt(p.text, p.weight) for p in step.prompts))
            if step.transition is not None:
                spec = step.transition
        for target, value in slot.values.items():
            state = _set_target(state, target, value)
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
        series = [(plan.values(c), _lora_now(wire, c.target[5:]) if wire else None) for c in lora_curves]
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
        lo, hi = _fmt(first * ci), _fmt(last * ci)
        tail = f"restored at {_fmt((last + 1) * ci)}"
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
            steps, method = _steps(spec, info, ci)
            msg["transition"] = _transition_message(entry.prompts, steps, method)
        if entry.params is not wire.params:  # shared when nothing changed
            wire_params = wire.params
            for key, value in entry.params.items():
                if value != wire_params.get(key):
                    msg[key] = list(value) if isinstance(value, list) else value
        if entry.lora_scales is not wire.lora_scales:
            changed = [(n, v) for n, v in entry.lora_scales.items() if v != _lora_now(wire, n)]
            if changed:
                msg["lora_scales"] = _lora_list(changed)
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
            state_in = _with(entry, transition=moving)
        return (_ordered(msg) if msg else _EMPTY), state_in

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
        method = state.transition.method if state.transition else _steps(spec, info, ci)[1]
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
                target = tuple(Prompt(p.text, p.weight) for p in step.prompts)
                steps, method = _steps(step.transition or spec, info, ci)
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
                        now = _lora_now(state, name)
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
                msg["transition"] = _transition_message(weighted, steps, method)
                prompts = weighted
            if changed_lora:
                keyframed = True
                msg["lora_scales"] = _lora_list(changed_lora)
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
                actions.append(Action(n * ci, "send", _ordered(msg), label))
        return tuple(actions)


def _weighted(prompts: tuple[Prompt, ...], values: Mapping[str, float]) -> tuple[Prompt, ...]:
    """Prompts with keyframed weights (prompt.<i>.weight) applied."""
    out = prompts
    for target, value in values.items():
        if target.startswith("prompt."):
            index = int(target.split(".")[1])
            if index < len(out) and out[index].weight != value:
                lst = list(out)
                lst[index] = Prompt(lst[index].text, value)
                out = tuple(lst)
    return out


def _set_param(state: State, key: str, value: Any) -> State:
    if state.params.get(key) == value and key in state.params:
        return state
    return _with(state, params=_merge_params(state.params, {key: value}))


def _resets(msg: Mapping[str, Any], state: State) -> bool:
    """Whether Scope hard-resets the cache on this message (contract §3.3, §4.3)."""
    if msg.get("reset_cache"):
        return True
    manage = msg.get("manage_cache", state.params.get("manage_cache"))
    return manage is True and ("lora_scales" in msg or "denoising_step_list" in msg)


def _steps(
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
