"""What an edit changes in the plan: a diff of two compiled timelines, scene by scene.

Hot reload prints this diff before applying it and writes it to the journal. Scenes are matched
by name, so a renamed scene is one removal plus one addition. The comparison is made on the
*compiled* scenes, so an edit that only changes tracked values (a default, an earlier scene's
setting that carries on) shows up on every scene whose state it changes.

The second half moves a playing show from one plan to the next: the same occurrence in the new
plan (`carry_occurrence`) and the one data-channel message that turns what is on the wire into
what the new plan wants there (`state_delta`).

Pure: no clock, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from showrunner import pipelines
from showrunner.errors import UnknownSceneError
from showrunner.plan.actions import transition_steps
from showrunner.plan.state import input_source_change

if TYPE_CHECKING:
    from showrunner.plan.timeline import (
        Action,
        CompiledScene,
        ScheduledScene,
        State,
        Timeline,
    )

# Show-level model fields compared one by one (scenes are diffed separately).
SHOW_FIELDS: tuple[str, ...] = (
    "title",
    "bpm",
    "beats_per_bar",
    "fps",
    "vars",
    "include",
    "scope",
    "defaults",
    "assets",
    "sections",
    "loop",
    "end",
    "hours",
    "reload_at",
)

# Wire keys -> the names a show author wrote, so the summary reads like the show file.
_FIELD_NAMES: dict[str, str] = {
    "pipeline_ids": "pipeline",
    "denoising_step_list": "denoising_steps",
    "prompt_interpolation_method": "prompt_interpolation",
    "lora_scales": "loras",
    "vace_ref_images": "vace_refs",
    "vace_use_input_video": "vace_use_input_video",
    "first_frame_image": "first_frame",
    "last_frame_image": "last_frame",
}

# Entry-message keys that belong to the scene itself rather than to the tracked state.
_OWN_ENTRY_KEYS: frozenset[str] = frozenset(
    {"transition", "reset_cache", "first_frame_image", "last_frame_image", "images"}
)

# Fields that say *when* a scene plays rather than what it shows.
TIMING_FIELDS: frozenset[str] = frozenset(
    {"trigger", "duration", "pre_wait", "cue", "goto", "closed_only", "follows_tempo",
     "start_follows_tempo", "quantize", "transitions_follow_tempo"}
)
# Fields whose change needs a pipeline reload and a reconnect (docs/scope.md §4.2).
SESSION_FIELDS: frozenset[str] = frozenset({"pipeline", "load", "input_mode"})

_RETIMED_SHOWN = 4  # retimed scenes named in the summary before "+N more"

# What a compiled scene is made of, besides its index and the lazily made later actions.
_COMPILED_PARTS: tuple[str, ...] = (
    "name", "cue", "pre_wait", "at", "duration", "entry", "state_in", "chunk_interval",
    "reconnect", "warnings", "goto", "closed_only", "end", "trigger", "main_pipeline", "fps",
    "state_out", "curves", "switch_estimate", "sections", "follows_tempo", "start_follows_tempo",
    "quantize", "transitions_follow_tempo",
)


@dataclass(frozen=True)
class SceneChange:
    """One scene present in both plans whose compiled form differs."""

    name: str
    fields: tuple[str, ...]
    old_index: int
    new_index: int
    details: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # field -> {old, new}

    @property
    def needs_reconnect(self) -> bool:
        """True when applying the change to a playing scene means reload + reconnect."""
        return bool(SESSION_FIELDS.intersection(self.fields))

    @property
    def picture_fields(self) -> tuple[str, ...]:
        """The changed fields that alter the picture (not only the scene's timing)."""
        return tuple(f for f in self.fields if f not in TIMING_FIELDS)

    def to_json(self) -> dict[str, Any]:
        return {
            "scene": self.name,
            "fields": list(self.fields),
            "old_index": self.old_index,
            "new_index": self.new_index,
            "details": {k: dict(v) for k, v in self.details.items()},
        }


@dataclass(frozen=True)
class Retimed:
    """A scene that now starts at a different time in the first pass of the show."""

    name: str
    old_part: int | None
    old_start: float | None
    new_part: int | None
    new_start: float | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PlanDiff:
    """The difference between the plan that is playing and the one just loaded."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[SceneChange, ...] = ()
    show: tuple[str, ...] = ()  # show-level fields that differ (bpm, defaults, hours, …)
    order_changed: bool = False  # the scenes present in both plans are in a different order
    retimed: tuple[Retimed, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the edit changes nothing that plays."""
        return not (
            self.added
            or self.removed
            or self.changed
            or self.show
            or self.order_changed
            or self.retimed
        )

    def scene(self, name: str) -> SceneChange | None:
        """The change of one scene, or None when it is unchanged (or new, or removed)."""
        for change in self.changed:
            if change.name == name:
                return change
        return None

    def summary(self) -> str:
        """Multi-line, one line per changed thing, e.g. ``~ intro: prompts, transition``."""
        if self.empty:
            return "no changes"
        lines = [f"+ {name}" for name in self.added]
        lines += [f"- {name}" for name in self.removed]
        lines += [f"~ {c.name}: {', '.join(c.fields)}" for c in self.changed]
        if self.show:
            lines.append(f"~ show: {', '.join(self.show)}")
        if self.order_changed:
            lines.append("~ order: scenes play in a new order")
        if self.retimed:
            shown = ", ".join(
                f"{r.name} {_clock(r.old_start)} -> {_clock(r.new_start)}"
                for r in self.retimed[:_RETIMED_SHOWN]
            )
            more = len(self.retimed) - _RETIMED_SHOWN
            lines.append(f"~ timing: {shown}" + (f" (+{more} more)" if more > 0 else ""))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, as written to the journal (`kind: "reload"`)."""
        return {
            "empty": self.empty,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.to_json() for c in self.changed],
            "show": list(self.show),
            "order_changed": self.order_changed,
            "retimed": [r.to_json() for r in self.retimed],
        }


def diff_timelines(old: Timeline, new: Timeline) -> PlanDiff:
    """Compare two compiled timelines scene by scene (matched by name).

    Scenes the incremental compiler re-used (plan.compiler.Compiler) are the same objects in
    both and cost a few identity checks."""
    from showrunner.plan.timeline import paused_gc

    with paused_gc():
        return _diff_timelines(old, new)


def _diff_timelines(old: Timeline, new: Timeline) -> PlanDiff:
    old_names = [s.name for s in old.scenes]
    new_names = [s.name for s in new.scenes]
    old_set, new_set = set(old_names), set(new_names)
    common_old = [n for n in old_names if n in new_set]
    common_new = [n for n in new_names if n in old_set]
    changed: list[SceneChange] = []
    for name in common_new:
        change = _diff_scene(old, new, old.scene(name), new.scene(name), old_names, new_names)
        if change is not None:
            changed.append(change)
    return PlanDiff(
        added=tuple(n for n in new_names if n not in old_set),
        removed=tuple(n for n in old_names if n not in new_set),
        changed=tuple(changed),
        show=_show_fields(old, new),
        order_changed=common_old != common_new,
        retimed=() if _same_schedule(old, new) else tuple(_retimed(old, new, common_new)),
    )


def scene_change(old: Timeline, new: Timeline, name: str) -> SceneChange | None:
    """The change of one scene between two plans (None when unchanged or absent from either)."""
    try:
        before, after = old.scene(name), new.scene(name)
    except UnknownSceneError:
        return None
    old_names = [s.name for s in old.scenes]
    new_names = [s.name for s in new.scenes]
    return _diff_scene(old, new, before, after, old_names, new_names)


def _diff_scene(
    old_tl: Timeline,
    new_tl: Timeline,
    old: CompiledScene,
    new: CompiledScene,
    old_names: Sequence[str],
    new_names: Sequence[str],
) -> SceneChange | None:
    """The changed fields of one scene, or None when both compile to the same thing."""
    if _reused(old, new) and _goto(old, old_names) == _goto(new, new_names):
        return None  # the incremental compiler re-used the scene: nothing in it changed
    names: dict[str, None] = {}  # an ordered set
    details: dict[str, dict[str, Any]] = {}

    def note(name: str, before: Any, after: Any) -> None:
        names[name] = None
        details.setdefault(name, {"old": _plain(before), "new": _plain(after)})

    for name, before, after in _state_fields(old.state_in, new.state_in):
        note(name, before, after)
    # `trigger` is the start as written ("timed", "at 0:30", "after intro+0:02", "GO"); the
    # computed start moves whenever an earlier scene's length changes, see `retimed`.
    for name in ("trigger", "duration", "pre_wait", "cue", "closed_only"):
        before, after = getattr(old, name, None), getattr(new, name, None)
        if not _same(before, after):
            note(name, before, after)
    goto_before, goto_after = _goto(old, old_names), _goto(new, new_names)
    if goto_before != goto_after:
        note("goto", goto_before, goto_after)
    if _actions_may_differ(old_tl, new_tl, old, new) and not _same(old.actions, new.actions):
        for name in _action_fields(old.actions, new.actions):
            names.setdefault(name, None)
    if not names:
        return None
    return SceneChange(
        name=new.name,
        fields=tuple(names),
        old_index=old.index,
        new_index=new.index,
        details=details,
    )


def _reused(old: CompiledScene, new: CompiledScene) -> bool:
    """The same compiled scene (perhaps at another index): every compiled part is the same object."""
    if old is new:
        return True
    o, n = old.__dict__, new.__dict__
    return all(o.get(k) is n.get(k) for k in _COMPILED_PARTS)


def _actions_may_differ(
    old_tl: Timeline, new_tl: Timeline, old: CompiledScene, new: CompiledScene
) -> bool:
    """False when everything the scene's actions are made from is equal.

    The messages after the entry (keyframe samples) are made on demand and cost far more than
    comparing what they come from: the entry, the curves, the travel as written, the chunk
    rate, the length and the state before and after.
    """
    try:
        inputs = [
            (
                scene.entry,
                scene.curves,
                scene.chunk_interval,
                scene.duration,
                scene.state_out,
                timeline.show.scenes[scene.index].travel,
            )
            for timeline, scene in ((old_tl, old), (new_tl, new))
        ]
    except (AttributeError, IndexError):
        return True  # a compiled form without these: compare the actions themselves
    return not _same(inputs[0], inputs[1])


def _goto(scene: CompiledScene, names: Sequence[str]) -> dict[str, Any] | None:
    """The jump by target *name*: inserting a scene shifts indexes, not the jump."""
    if scene.goto is None:
        return None
    target, times = scene.goto
    return {"scene": names[target] if 0 <= target < len(names) else target, "times": times}


# ---------------------------------------------------------------------------------------------
# Scene internals
# ---------------------------------------------------------------------------------------------


def _state_fields(old: State, new: State) -> Iterator[tuple[str, Any, Any]]:
    """(field name, old value, new value) for every state value that differs."""
    simple = (
        ("pipeline", "chain"),
        ("load", "load_params"),
        ("input_mode", "input_mode"),
        ("prompts", "prompts"),
    )
    for name, attr in simple:
        before, after = getattr(old, attr, None), getattr(new, attr, None)
        if not _same(before, after):
            yield name, before, after
    before_t, after_t = _transition_shape(old), _transition_shape(new)
    if before_t != after_t:
        yield "transition", before_t, after_t
    old_params: Mapping[str, Any] = getattr(old, "params", None) or {}
    new_params: Mapping[str, Any] = getattr(new, "params", None) or {}
    for key in _union(old_params, new_params):
        if not _same(old_params.get(key), new_params.get(key)):
            yield _FIELD_NAMES.get(key, key), old_params.get(key), new_params.get(key)
    rest = (
        ("loras", "lora_scales"),
        ("vace_refs", "vace_refs"),
        ("output_sinks", "output_sinks"),
        ("input_source", "input_source"),
    )
    for name, attr in rest:
        before, after = getattr(old, attr, None), getattr(new, attr, None)
        if not _same(before, after):
            yield name, before, after


def _transition_shape(state: State) -> dict[str, Any] | None:
    """How the scene moves into its prompts, without the prompts themselves.

    The prompts are compared on their own; comparing whole transitions would also flag a
    scene whose *previous* scene's prompts changed (the transition's starting point).
    """
    transition = getattr(state, "transition", None)
    if transition is None:
        return None
    return {
        "steps": getattr(transition, "steps", None),
        "method": getattr(transition, "method", None),
    }


def _action_fields(old: Sequence[Action], new: Sequence[Action]) -> Iterator[str]:
    """Names for what differs in the scene's own actions (entry one-shots, travel, keyframes).

    Most of an entry message is a delta against the state tracked from earlier scenes, so it
    changes whenever an earlier scene changes; those values are compared through `state_in`
    instead, and only the keys that belong to the scene itself are compared here.
    """
    old_entry, new_entry = _own_entry(old), _own_entry(new)
    for key in _union(old_entry, new_entry):
        if not _same(old_entry.get(key), new_entry.get(key)):
            yield _FIELD_NAMES.get(key, key)
    old_groups, new_groups = _later_groups(old), _later_groups(new)
    for group in _union(old_groups, new_groups):
        if old_groups.get(group) != new_groups.get(group):
            yield group


def _own_entry(actions: Sequence[Action]) -> dict[str, Any]:
    """The scene's own entry keys (offset 0), merged; the transition without its prompts."""
    merged: dict[str, Any] = {}
    for action in actions:
        if action.offset <= 0:
            for key, value in action.message.items():
                if key in _OWN_ENTRY_KEYS:
                    merged[key] = _plain(value)
    transition = merged.get("transition")
    if isinstance(transition, dict):
        merged["transition"] = {k: v for k, v in transition.items() if k != "target_prompts"}
    return merged


def _later_groups(actions: Sequence[Action]) -> dict[str, list[Any]]:
    """What the scene sends after its entry, split by what the author wrote: prompt travel
    (transitions) and keyframes (every other value, including the cache guards around them).
    One message may carry both; splitting by key keeps a keyframe edit from reading as travel."""
    groups: dict[str, list[Any]] = {}
    for action in actions:
        if action.offset <= 0:
            continue
        for key, value in action.message.items():
            group = "travel" if key in ("transition", "prompts") else "keyframes"
            groups.setdefault(group, []).append((round(action.offset, 6), key, _plain(value)))
    return groups


# ---------------------------------------------------------------------------------------------
# Show level
# ---------------------------------------------------------------------------------------------


def _show_fields(old: Timeline, new: Timeline) -> tuple[str, ...]:
    names = [
        name
        for name in SHOW_FIELDS
        if not _same(getattr(old.show, name, None), getattr(new.show, name, None))
    ]
    if not _same(getattr(old, "fps", None), getattr(new, "fps", None)) and "fps" not in names:
        names.append("fps")
    return tuple(names)


def _retimed(old: Timeline, new: Timeline, names: Iterable[str]) -> Iterator[Retimed]:
    """Scenes whose first start in the first pass moved (part and offset from its origin)."""
    before, after = _first_starts(old), _first_starts(new)
    for name in names:
        b, a = before.get(name), after.get(name)
        if b is None and a is None:
            continue
        b_part, b_start = b if b is not None else (None, None)
        a_part, a_start = a if a is not None else (None, None)
        if b_part != a_part or not _close(b_start, a_start):
            yield Retimed(name, b_part, b_start, a_part, a_start)


# What a compiled scene's place in the schedule is read from (Timeline.schedule).
_SCHEDULE_PARTS: tuple[str, ...] = (
    "name", "cue", "pre_wait", "at", "end", "closed_only", "goto", "sections",
)


def _same_schedule(old: Timeline, new: Timeline) -> bool:
    """True when both plans schedule the same scenes at the same times: then no scene is
    retimed, without walking the schedule (which costs far more on a big show). Scenes the
    incremental compiler re-used are the same objects and cost one identity check."""
    if len(old.scenes) != len(new.scenes) or not _same(old.show.sections, new.show.sections) \
            or old.show.loop != new.show.loop:
        return False
    for before, after in zip(old.scenes, new.scenes, strict=True):
        if before is after:
            continue
        o, n = before.__dict__, after.__dict__
        if not all(o.get(k) is n.get(k) or o.get(k) == n.get(k) for k in _SCHEDULE_PARTS):
            return False
    return True


def _first_starts(timeline: Timeline) -> dict[str, tuple[int, float | None]]:
    """Scene name -> (part, start) of its first occurrence in the first pass of the show."""
    starts: dict[str, tuple[int, float | None]] = {}
    # Goto loops and repeated sections stay inside one pass; bound the walk so that a show
    # that loops forever inside its first pass still diffs instantly.
    limit = 4 * len(timeline.scenes) + 64
    for count, occurrence in enumerate(timeline.schedule()):
        if count >= limit or occurrence.iteration > 0:
            break
        starts.setdefault(occurrence.scene.name, (occurrence.part, occurrence.start))
    return starts


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def _same(a: Any, b: Any) -> bool:
    # Compiled values compare directly (frozen dataclasses, read-only mappings, tuples); the
    # JSON form only settles the rare mixed cases such as a list against a tuple.
    if a is b:
        return True
    try:
        if a == b:
            return True
    except Exception:
        pass
    return bool(_plain(a) == _plain(b))


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, abs_tol=1e-6)


def _plain(value: Any) -> Any:
    """A JSON-ready copy: dataclasses and models become dicts, tuples become lists."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return repr(value)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "cue"
    minutes, rest = divmod(seconds, 60.0)
    text = f"{int(minutes)}:{rest:05.2f}"
    return text[:-3] if text.endswith(".00") else text


# ---------------------------------------------------------------------------------------------
# Moving a playing show to a new plan
# ---------------------------------------------------------------------------------------------


def carry_occurrence(occ: ScheduledScene, timeline: Timeline) -> ScheduledScene | None:
    """`occ` (an occurrence of an older plan) in `timeline`; None when its scene is gone.

    The scene is found by name and its timing read as now written; the loop counters that led
    to it (section repeats, limited gotos, the show-loop iteration) carry over, so an edit in
    the middle of a repeated section does not start the section's count again.
    """
    try:
        scene = timeline.scene(occ.scene.name)
    except UnknownSceneError:
        return None
    if occ.part < 0 or scene.closed_only:  # the closed-hours scene: outside the schedule
        return dataclasses.replace(occ, scene=scene)
    # An occurrence still waiting for its cue keeps waiting; any other keeps its written start.
    static = scene.pre_wait if scene.cue is not None else (scene.at or 0.0)
    start_offset = None if occ.start is None else static
    fresh = next(iter(timeline.schedule(scene.index, start_offset=start_offset)))
    # The schedule's flow snapshot: (index, counters, active loops, iteration, part, shift,
    # how, arrival). Anything else is an unknown layout: start the counters afresh.
    snap: tuple[Any, ...] = getattr(fresh, "_flow", ())
    old: tuple[Any, ...] = getattr(occ, "_flow", ())
    if len(snap) != 8 or len(old) != 8:
        return fresh
    counters = tuple((key, n) for key, n in old[1] if _loop_exists(timeline, key))
    active = tuple(
        (key, span) for key, span in ((k, _loop_span(timeline, k, v[0])) for k, v in old[2]) if span
    )
    flow = (snap[0], counters, active, old[3], old[4], snap[5], snap[6], snap[7])
    return dataclasses.replace(
        fresh, part=occ.part, iteration=occ.iteration, path=occ.path, _flow=flow
    )


def _loop_exists(timeline: Timeline, key: str) -> bool:
    kind, _, name = key.partition(":")
    if kind == "section":
        return any(s.name == name for s in timeline.show.sections)
    if kind == "goto":
        try:
            return timeline.scene(name).goto is not None
        except UnknownSceneError:
            return False
    return False


def _loop_span(timeline: Timeline, key: str, count: int) -> tuple[int, int, int] | None:
    """(count, first index, last index) of a running loop, with the new plan's indexes."""
    kind, _, name = key.partition(":")
    try:
        if kind == "section":
            section = next(s for s in timeline.show.sections if s.name == name)
            return count, timeline.scene(section.start).index, timeline.scene(section.end).index
        if kind == "goto":
            scene = timeline.scene(name)
            if scene.goto is not None:
                target = scene.goto[0]
                return count, min(target, scene.index), max(target, scene.index)
    except (UnknownSceneError, StopIteration):
        pass
    return None


def transition_for(timeline: Timeline, scene: CompiledScene) -> tuple[int, str]:
    """(num_steps, method) of the scene's own transition: how an edit of its prompts arrives."""
    try:
        written = timeline.show.scenes[scene.index].transition
    except IndexError:
        written = None
    spec = written if written is not None else timeline.show.defaults.transition
    return transition_steps(spec, pipelines.lookup(scene.main_pipeline), scene.chunk_interval)


def state_delta(
    old: State, new: State, *, steps: int, method: str, refresh_refs: bool = False
) -> dict[str, Any]:
    """One data-channel message that turns `old` (on the wire) into `new`, or {} for none.

    New prompts go as a `transition` of `steps` chunks (docs/scope.md §3.3, §8-G); every other
    value only when it differs. VACE references are one-shot and must follow a cache reset
    (docs/scope.md §4.4): they are sent again when the message resets the cache, or when
    `refresh_refs` says a reference image was replaced.
    """
    message: dict[str, Any] = {}
    if new.prompts and new.prompts != old.prompts:
        message["transition"] = {
            "target_prompts": [{"text": p.text, "weight": p.weight} for p in new.prompts],
            "num_steps": steps,
            "temporal_interpolation_method": method,
        }
    before, after = old.resync_message(), new.resync_message()
    for key, value in after.items():
        if key != "transition" and before.get(key) != value:
            message[key] = value
    value = getattr(new, "output_sinks", None)
    if value is not None and not _same(getattr(old, "output_sinks", None), value):
        message["output_sinks"] = _plain(value)
    source = input_source_change(old, new)
    if source is not None:
        message["input_source"] = _plain(source)
    resets = new.params.get("manage_cache") is True and (
        "lora_scales" in message or "denoising_step_list" in message
    )
    if (resets or refresh_refs) and "vace_ref_images" in after:
        message["vace_ref_images"] = after["vace_ref_images"]
    return message
