"""The compiled timeline: a show turned into exactly what is sent to Scope, and when.

:func:`compile_timeline` is a pure function of a validated :class:`~showrunner.show.model.Show`. The
dry-run report and the player both read its result, so what the report shows is what plays.

Compiling tracks every value in file order (model.py docstring), then gives each scene:

- ``state_in``: the full resolved Scope state right after its entry, which is what a jump (goto,
  section repeat, show loop, seek, BACK) sends instead of replaying earlier scenes;
- ``actions``: the entry (one data-channel message with only what changed, or a reload and
  reconnect when the pipeline, its load parameters or the input mode change, docs/scope.md §4.2),
  then travel steps and keyframe samples, at most one message per chunk (docs/scope.md §3.2 step 5).

:meth:`Timeline.schedule` unrolls sections, gotos and the show loop lazily; a show that loops
forever yields forever, so callers take what they need.
"""

from __future__ import annotations

import bisect
import copy
import difflib
import gc
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from showrunner import pipelines
from showrunner.errors import ShowError, UnknownSceneError

# The state types and wire prefixes live in state.py; they are re-exported here, where callers
# have always found them.
from showrunner.plan.state import (
    ASSET_PREFIX,
    LORA_PREFIX,
    State,
    TransitionState,
    WeightedPrompt,
    apply,
    main_pipeline,
    same_session,
    set_target,
    with_changes,
)
from showrunner.show.model import Keyframe, Section, Show

__all__ = [
    "ASSET_PREFIX",
    "LORA_PREFIX",
    "Action",
    "CompiledScene",
    "Curve",
    "Pass",
    "PassItem",
    "ScheduledScene",
    "State",
    "Timeline",
    "TransitionState",
    "WeightedPrompt",
    "ease",
    "fmt_time",
    "load_estimate",
    "main_pipeline",
    "resolve_refs",
    "seconds_to_steps",
]

# Planning figures for a pipeline pipelines.py does not know (a plugin): a Wan-like chunk.
FALLBACK_FRAMES_PER_CHUNK = 12
FALLBACK_FPS = 16.0

# Rough output gap of a pipeline switch (docs/scope.md §4.2: load time plus ~1-2 s of ICE/DTLS). Scope
# reports no load times; these are planning figures for the report, not measurements.
RECONNECT_SECONDS = 1.5
LOAD_SECONDS_WAN = 30.0
LOAD_SECONDS_PLAIN = 0.5
LOAD_SECONDS_UNKNOWN = 10.0

# Keys whose strings (or lists of strings, or `path` entries) are @asset:/@lora: references.
_REF_KEYS = frozenset(
    {"vace_ref_images", "first_frame_image", "last_frame_image", "images", "lora_scales", "loras"}
)

EPS = 1e-9
_PASS_LIMIT = 1_000_000


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------


def fmt_time(seconds: float | None) -> str:
    """Clock text: 0:05, 1:30, 1:02:03, 0:07.5 ("-" for None)."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + fmt_time(-seconds)
    rounded = round(seconds, 3)
    whole = int(rounded)
    frac = rounded - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    if frac > 0.0005:
        text += f"{frac:.3f}".rstrip("0")[1:]
    return text


def seconds_to_steps(seconds: float, chunk_interval: float) -> int:
    """Chunks (transition steps) in `seconds`: rounded to nearest, at least 1 when seconds > 0."""
    if seconds <= 0:
        return 0
    return max(1, math.floor(seconds / chunk_interval + 0.5 + EPS))


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
    _times: list[float] = field(init=False, repr=False, compare=False)  # the keyframes' `at`

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


# Chunk slots: how a scene's time is cut into one message per chunk. The compiler plans with
# them and a compiled scene replays them for a seek, so both follow the same rules.


def nearest_slot(offset: float, interval: float) -> int:
    """The chunk slot nearest to `offset`."""
    return math.floor(offset / interval + 0.5 + EPS)


def last_slot_before(length: float | None, interval: float) -> int | None:
    """The last slot that starts before the scene ends (None: the scene has no fixed end)."""
    if length is None:
        return None
    return max(0, math.ceil(length / interval - EPS) - 1)


def sample(curve: Curve, n: int, last: int, interval: float, exact: float | None = None) -> float:
    """The value a curve sends at slot `n` (0 <= n <= last), rounded to 4 decimals.

    A keyframe lands exactly on its nearest slot (the later keyframe wins a shared slot) and the
    last keyframe on the curve's last slot, unless the scene ends first: keyframes after the
    scene's end never happen. `exact` is the sampled value when the caller has it.
    """
    value = exact
    for frame in curve.keyframes:
        if nearest_slot(frame.at, interval) == n:
            value = frame.value
    if n == last and nearest_slot(curve.end, interval) == last:
        value = curve.keyframes[-1].value
    if value is None:
        value = curve.value_at(n * interval)
    return round(value, 4)


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
    # Musical time: the scene's length and actions follow a live tempo (written in bars or
    # beats); its start, from the scene before it (`at`: from its part's origin), does.
    follows_tempo: bool = False
    start_follows_tempo: bool = False
    transitions_follow_tempo: bool = False  # a transition's chunk steps scale with a live tempo
    quantize: float | None = None  # GO, cues and GOTO into it land on this grid (beats)
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
        """The chunk slot of `offset`, as the compiler's `SlotPlan.slot` (slots.py) cuts this scene."""
        n = nearest_slot(offset, self.chunk_interval)
        last = last_slot_before(self.length, self.chunk_interval)
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
            if action.offset > t + EPS:
                break
            if action.label.startswith("travel"):
                travelled = self._slot(action.offset)
            before = state.prompts
            state = apply(state, action.message)
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
            if t >= final * self.chunk_interval - EPS:  # its last value has been sent
                value = sample(curve, final, final, self.chunk_interval)
            else:
                value = round(curve.value_at(t), 4)
            state = set_target(state, curve.target, value)
        transition = None
        if last is not None:
            started, tr_state = last
            progress = (t - started) / (tr_state.steps * self.chunk_interval)
            if progress < 1.0:
                transition = replace(tr_state, to_prompts=state.prompts, progress=max(0.0, progress))
        return with_changes(state, transition=transition) if transition is not state.transition else state


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
        """A scene by name or file index; UnknownSceneError if there is none."""
        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
            if 0 <= name_or_index < len(self.scenes):
                return self.scenes[name_or_index]
            raise UnknownSceneError(f"no scene number {name_or_index} (the show has {len(self.scenes)})")
        index = self._names.get(str(name_or_index))
        if index is None:
            hint = difflib.get_close_matches(str(name_or_index), list(self._names), n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise UnknownSceneError(f"unknown scene {name_or_index!r}{suffix}")
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
            if prev is not None and not same_session(prev.occurrence.scene.state_out, occ.scene.state_in):
                switch = switch_estimate(prev.occurrence.scene.state_out, occ.scene.state_in)
            prev = PassItem(occ, begin, finish, switch)
            items.append(prev)
        assert prev is not None
        end = prev.end if prev.end is not None else prev.start
        wrap = 0.0
        if nxt is not None and not same_session(prev.occurrence.scene.state_out, nxt.scene.state_in):
            wrap = switch_estimate(prev.occurrence.scene.state_out, nxt.scene.state_in)
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

    def pass_item_at(self, time: float) -> tuple[PassItem, float]:
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
        item, offset = self.pass_item_at(time)
        return item.occurrence.scene.state_at(offset)


def switch_estimate(before: State | None, after: State) -> float:
    """Seconds without output when going from `before` to `after` (docs/scope.md §4.2)."""
    if before is not None and before.chain == after.chain and before.load_params == after.load_params:
        return RECONNECT_SECONDS  # input mode only: a new session on the loaded pipeline
    if before is None or before.load_params != after.load_params:
        loads = after.chain
    else:  # same load params: loaded instances are kept (reuse rule, §2.2)
        loads = tuple(p for p in after.chain if p not in before.chain)
    return sum(load_estimate(p) for p in loads) + RECONNECT_SECONDS
