"""Action emission: the messages a compiled scene sends, at its entry and at later chunk slots.

The entry is a session (reload and reconnect with the full state, docs/scope.md §4.2) or one `send`
with only what changed on the wire; later actions are travel stops and keyframe samples, at most
one message per chunk slot. Scope's cache rules (docs/scope.md §3.3, §4.3, §4.4) shape both.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from showrunner import pipelines
from showrunner.plan.notes import Note
from showrunner.plan.slots import Slot, SlotPlan
from showrunner.plan.state import (
    ASSET_PREFIX,
    EMPTY,
    LORA_PREFIX,
    State,
    TransitionState,
    WeightedPrompt,
    input_source_change,
    lora_list,
    lora_now,
    ordered_message,
    set_target,
    transition_message,
    with_changes,
)
from showrunner.plan.timeline import Action, Curve, fmt_time, seconds_to_steps
from showrunner.show.model import Scene, Transition

__all__ = [
    "entry_message",
    "entry_state",
    "later_actions",
    "lora_fade",
    "lora_warnings",
    "session_entry",
    "transition_steps",
]

_PARAM_TARGETS = frozenset({"noise_scale", "vace_context_scale", "kv_cache_attention_bias"})

Fade = tuple[int, int | None]  # (first slot, restore slot or None) of a fade with manage_cache off


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


# ---------------------------------------------------------------------------------------------
# The entry
# ---------------------------------------------------------------------------------------------


def entry_state(base: State, slot: Slot | None, spec: Transition | None) -> tuple[State, Transition | None]:
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


def lora_warnings(s: Scene, entry: State, curves: tuple[Curve, ...], warnings: list[str]) -> None:
    names = list(s.loras) + [c.target[5:] for c in curves if c.target.startswith("lora.")]
    if not names:
        return
    merge_default = entry.load_params.get("lora_merge_mode") or "permanent_merge"
    loaded = {lo["path"][len(LORA_PREFIX) :]: lo for lo in entry.load_params.get("loras") or ()}
    for name in dict.fromkeys(names):
        loc = ("loras", name) if name in s.loras else ("keyframes", "lora." + name)
        if name not in loaded:
            warnings.append(Note(f"LoRA {name!r} is not in `load.loras`, so setting its scale does "
                                 "nothing", loc, "lora-not-loaded"))
        elif loaded[name].get("merge_mode", merge_default) != "runtime_peft":
            warnings.append(Note(
                f"LoRA {name!r} is loaded with permanent_merge: runtime scales are ignored "
                "(use merge_mode: runtime_peft, docs/scope.md §4.3)", loc, "lora-not-runtime"
            ))


def lora_fade(
    plan: SlotPlan, entry: State, wire: State | None, session: bool, warnings: list[str]
) -> Fade | None:
    """(first slot, restore slot or None) of a LoRA fade that turns manage_cache off.

    Every lora_scales message resets the cache while manage_cache is on (docs/scope.md §4.3), so
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
    warnings.append(Note(
        f"LoRA fade {lo}-{hi} runs with manage_cache off ({tail}): every lora_scales message "
        "resets the cache while it is on (docs/scope.md §4.3)", ("keyframes", lora_curves[0].target),
        "lora-fade",
    ))
    return first, restore


def session_entry(s: Scene, entry: State, wire: State | None) -> Action:
    """The entry that (re)loads and reconnects: `entry` in full as initialParameters (§2.6)."""
    message = entry.initial_parameters()
    for key, ref in (("first_frame_image", s.first_frame), ("last_frame_image", s.last_frame)):
        if ref is not None:
            message[key] = ASSET_PREFIX + ref
    return Action(0.0, "session", MappingProxyType(message), _session_label(wire, entry))


def _session_label(before: State | None, after: State) -> str:
    if before is None:
        return "enter (load)"
    if before.chain == after.chain and before.load_params == after.load_params:
        return "enter (reconnect)"
    return "enter (reload)"


def entry_message(
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
    source = input_source_change(wire, entry)
    if source is not None:
        msg["input_source"] = source
    if _resets(msg, entry):
        if entry.vace_refs:  # one-shot refs vanish with the cache (docs/scope.md §4.4)
            msg["vace_ref_images"] = [ASSET_PREFIX + r for r in entry.vace_refs]
        if "transition" in msg and steps > 0:
            msg["transition"]["num_steps"] = 0
            if s.transition is not None and not s.transition.is_cut:
                warnings.append(Note("the transition becomes a cut: this entry resets the cache",
                                     ("transition",)))
            steps = 0
        if "lora_scales" in msg and not s.reset_cache:
            warnings.append(Note("changing LoRA scales with manage_cache on resets the cache "
                                 "(a visible cut)", ("loras",)))
    state_in = entry
    if "transition" in msg and steps > 0:
        moving = TransitionState(wire.prompts, entry.prompts, steps, method, 0.0)
        state_in = with_changes(entry, transition=moving)
    return (ordered_message(msg) if msg else EMPTY), state_in


def _resets(msg: Mapping[str, Any], state: State) -> bool:
    """Whether Scope hard-resets the cache on this message (docs/scope.md §3.3, §4.3)."""
    if msg.get("reset_cache"):
        return True
    manage = msg.get("manage_cache", state.params.get("manage_cache"))
    return manage is True and ("lora_scales" in msg or "denoising_step_list" in msg)


# ---------------------------------------------------------------------------------------------
# After the entry
# ---------------------------------------------------------------------------------------------


def later_actions(
    plan: SlotPlan,
    state: State,
    spec: Transition | None,
    info: pipelines.PipelineInfo | None,
    fade: Fade | None,
) -> tuple[Action, ...]:
    """Travel steps and keyframe samples after the entry, one message per chunk slot.

    Simulates the wire with plain values; `SlotPlan.final_state` gives the same end state
    without the simulation (a test holds the two together).
    """
    slots = plan.slots()
    order = [n for n in slots if n > 0]
    if fade is not None and fade[1] is not None and fade[1] not in slots:
        order.append(fade[1])
    order.sort()
    wire = _LaterWire(plan, state, spec, info, fade)
    empty = Slot()
    actions: list[Action] = []
    for n in order:
        action = wire.send(n, slots.get(n, empty))
        if action is not None:
            actions.append(action)
    return tuple(actions)


class _LaterWire:
    """What the later actions have changed on the wire since the entry, slot by slot."""

    def __init__(
        self,
        plan: SlotPlan,
        state: State,
        spec: Transition | None,
        info: pipelines.PipelineInfo | None,
        fade: Fade | None,
    ) -> None:
        self.state, self.spec, self.info, self.fade = state, spec, info, fade
        self.ci = ci = plan.interval
        self.tr_slot, self.tr_steps = 0, state.transition.steps if state.transition else 0
        self.method = state.transition.method if state.transition else transition_steps(spec, info, ci)[1]
        self.fade_on = fade is not None and fade[0] == 0
        self.prompts = state.prompts
        self.params: dict[str, Any] = {}  # changed persistent params
        self.loras: dict[str, float] = {}  # changed runtime scales
        self.manage = state.params.get("manage_cache")
        self.refs = [ASSET_PREFIX + r for r in state.vace_refs]
        self.weights = any(c.target.startswith("prompt.") for c in plan.curves)

    def send(self, n: int, slot: Slot) -> Action | None:
        """The message of slot `n` (None when it changes nothing)."""
        msg: dict[str, Any] = {}
        labels: list[str] = []
        target = self.prompts
        steps: int | None = None
        if slot.travel is not None:
            k, step = slot.travel
            labels.append(f"travel {k}")
            target = tuple(WeightedPrompt(p.text, p.weight) for p in step.prompts)
            steps, self.method = transition_steps(step.transition or self.spec, self.info, self.ci)
        keyframed, changed_lora = self._keyframes(slot, msg)
        weighted = _weighted(target, slot.values) if self.weights else target
        keyframed = keyframed or weighted != target
        if weighted != self.prompts:
            if steps is None:  # weights only: keep the running transition going
                steps = max(0, self.tr_steps - (n - self.tr_slot))
            else:
                self.tr_slot, self.tr_steps = n, steps
            msg["transition"] = transition_message(weighted, steps, self.method)
            self.prompts = weighted
        if changed_lora:
            keyframed = True
            msg["lora_scales"] = lora_list(changed_lora)
            if self.fade is not None and not self.fade_on:
                msg["manage_cache"] = self.params["manage_cache"] = self.manage = False
                self.fade_on = True
        if keyframed:
            labels.append("keyframe")
        if self.fade is not None and self.fade_on and n == self.fade[1]:
            msg["manage_cache"] = self.params["manage_cache"] = self.manage = True
            labels.append("restore manage_cache")
            self.fade_on = False
        if self.refs and self.manage is True and ("lora_scales" in msg or "denoising_step_list" in msg):
            msg["vace_ref_images"] = list(self.refs)  # the reset drops one-shot refs (§4.4)
        if not msg:
            return None
        label = labels[0] if len(labels) == 1 else " + ".join(labels)
        return Action(n * self.ci, "send", ordered_message(msg), label)

    def _keyframes(self, slot: Slot, msg: dict[str, Any]) -> tuple[bool, list[tuple[str, float]]]:
        """Put the slot's changed param values in `msg`; (any changed, changed LoRA scales)."""
        keyframed = False
        changed_lora: list[tuple[str, float]] = []
        for key, value in slot.values.items():
            if key in _PARAM_TARGETS:
                if self.params.get(key, self.state.params.get(key)) != value:
                    msg[key] = self.params[key] = value
                    keyframed = True
            elif key.startswith("lora."):
                name = key[5:]
                now = self.loras.get(name)
                if now is None:
                    now = lora_now(self.state, name)
                if now != value:
                    changed_lora.append((name, value))
                    self.loras[name] = value
        return keyframed, changed_lora


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
