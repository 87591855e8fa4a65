"""The tracked Scope state: everything on the wire at one point, and how messages change it.

Both the compiler (which builds states) and the compiled scenes (which replay them for a seek or
a jump) work on it, so it sits below both, with the wire vocabulary it needs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from showrunner import pipelines

__all__ = [
    "ASSET_PREFIX",
    "EMPTY",
    "LORA_PREFIX",
    "PARAM_KEYS",
    "State",
    "TransitionState",
    "WeightedPrompt",
    "apply",
    "build",
    "input_source_change",
    "load_scale",
    "lora_list",
    "lora_now",
    "main_pipeline",
    "merge_params",
    "ordered_message",
    "same_session",
    "set_param",
    "set_target",
    "transition_message",
    "with_changes",
]

# Messages name image assets and LoRAs symbolically; the player swaps in server paths (after
# uploading, and after GET /api/v1/loras) just before sending, so compiling needs no server.
ASSET_PREFIX = "@asset:"
LORA_PREFIX = "@lora:"

# Persistent runtime keys in the order they appear in every message (docs/scope.md §3.3).
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

EMPTY: Mapping[str, Any] = MappingProxyType({})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class WeightedPrompt:
    """One prompt of a resolved state with its weight, as sent on the wire (weights are ratios,
    docs/scope.md §3.3). What a show file writes is :class:`showrunner.show.model.Prompt`.
    """

    text: str
    weight: float = 1.0

    def wire(self) -> dict[str, Any]:
        return {"text": self.text, "weight": self.weight}


def _prompts_wire(prompts: Sequence[WeightedPrompt]) -> list[dict[str, Any]]:
    return [p.wire() for p in prompts]


def transition_message(prompts: Sequence[WeightedPrompt], steps: int, method: str) -> dict[str, Any]:
    return {
        "target_prompts": _prompts_wire(prompts),
        "num_steps": steps,
        "temporal_interpolation_method": method,
    }


@dataclass(frozen=True, slots=True)
class TransitionState:
    """A prompt transition in progress (docs/scope.md §3.3 `transition`)."""

    from_prompts: tuple[WeightedPrompt, ...]
    to_prompts: tuple[WeightedPrompt, ...]
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
    prompts: tuple[WeightedPrompt, ...] = ()
    transition: TransitionState | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    lora_scales: Mapping[str, float] = field(default_factory=lambda: EMPTY)
    vace_refs: tuple[str, ...] = ()
    output_sinks: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
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
        if self.input_source is not None and self.input_mode == "video":
            # Only a video-mode session reads it; Scope starts a decoder even for a text-mode
            # one (docs/scope.md §10).
            out["input_source"] = copy.deepcopy(dict(self.input_source))
        return out

    def resync_message(self) -> dict[str, Any]:
        """One data-channel message that puts a live session into this state.

        The prompts go as a `transition` with 0 steps (a cut), because a plain `prompts` equal to
        the last one received does nothing (docs/scope.md §8-G).
        """
        out: dict[str, Any] = {}
        if self.prompts:
            out["transition"] = transition_message(self.prompts, 0, _method(self.chain))
        out.update(self._persistent())
        return out

    def _persistent(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(self.params[k]) for k in PARAM_KEYS if k in self.params}
        if self.lora_scales:
            out["lora_scales"] = lora_list(self.lora_scales.items())
        if self.vace_refs:
            out["vace_ref_images"] = [ASSET_PREFIX + r for r in self.vace_refs]
        return out


def build(cls: type[_T], **values: Any) -> _T:
    """Construct a frozen dataclass from ALL its fields without __init__ (compile hot path)."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def with_changes(state: State, **changes: Any) -> State:
    """`dataclasses.replace` for State, without re-running __init__ (a hot path when compiling)."""
    new = object.__new__(State)
    values = new.__dict__
    values.update(state.__dict__)
    if "load_params" in changes:
        values.pop("_load_json", None)
    values.update(changes)
    return new


def merge_params(params: Mapping[str, Any], changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """Params with `changes`, keys kept in PARAM_KEYS order."""
    merged = dict(params)
    merged.update(changes)
    if len(merged) != len(params):
        merged = {k: merged[k] for k in sorted(merged, key=_RANK.__getitem__)}
    return MappingProxyType(merged)


def ordered_message(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """Messages in one key order, so equal states give byte-identical JSON (keys of _MESSAGE_ORDER)."""
    if len(message) > 1:
        message = {k: message[k] for k in sorted(message, key=_RANK.__getitem__)}
    return MappingProxyType(message)


def lora_list(items: Iterable[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"path": LORA_PREFIX + name, "scale": scale} for name, scale in items]


def main_pipeline(chain: Sequence[str]) -> str:
    """The chain's generating pipeline: the first known one that takes prompts (docs/scope.md §8-K)."""
    known = [p for p in chain if pipelines.lookup(p) is not None]
    for pid in known:
        info = pipelines.lookup(pid)
        if info is not None and info.supports_prompts:
            return pid
    return known[0] if known else chain[0]


def _method(chain: Sequence[str]) -> str:
    info = pipelines.lookup(main_pipeline(chain))
    return info.transition_method if info else "linear"


def load_scale(state: State, name: str) -> float | None:
    for lora in state.load_params.get("loras") or ():
        if lora.get("path") == LORA_PREFIX + name:
            return float(lora.get("scale", 1.0))
    return None


def lora_now(state: State, name: str) -> float | None:
    """The scale in force: the last runtime scale, else the one it was loaded with."""
    value = state.lora_scales.get(name)
    return value if value is not None else load_scale(state, name)


def input_source_change(old: State, new: State) -> dict[str, Any] | None:
    """The `input_source` message that moves a running session from `old`'s source to `new`'s,
    or None: nothing to send (the same source, or a text-mode session, which reads none).

    Scope's frame processor (server/frame_processor.py `_update_input_source`) starts a source
    when one is enabled and none runs, stops it when disabled, and replaces a running one only
    when the `source_type` differs or the message says ``"reconnect": true``: another file of
    the same type needs the flag. A source the new state drops is disabled.
    """
    before, after = old.input_source, new.input_source
    if new.input_mode != "video" or before == after:
        return None
    if after is None:
        assert before is not None
        return {**copy.deepcopy(dict(before)), "enabled": False}
    message = copy.deepcopy(dict(after))
    running = old.input_mode == "video" and before is not None and before.get("enabled", True)
    if running and before is not None and after.get("enabled", True) and (
        before.get("source_type") == after.get("source_type")
    ):
        message["reconnect"] = True
    return message


def same_session(a: State, b: State) -> bool:
    return (
        a.chain == b.chain
        and a.input_mode == b.input_mode
        and (a.load_params is b.load_params or a.load_params == b.load_params)
    )


def apply(state: State, message: Mapping[str, Any]) -> State:
    """The state after Scope applies one data-channel message (one-shots leave no trace)."""
    changes: dict[str, Any] = {}
    transition = message.get("transition")
    if transition is not None:
        target = transition["target_prompts"]
        changes["prompts"] = tuple(WeightedPrompt(p["text"], p["weight"]) for p in target)
    params = {k: v for k, v in message.items() if k in _PARAM_SET}
    if params:
        changes["params"] = merge_params(state.params, params)
    scales = message.get("lora_scales")
    if scales:
        merged_scales = dict(state.lora_scales)
        merged_scales.update((item["path"][len(LORA_PREFIX) :], item["scale"]) for item in scales)
        changes["lora_scales"] = MappingProxyType(merged_scales)
    return with_changes(state, **changes) if changes else state


def set_param(state: State, key: str, value: Any) -> State:
    """The state with one persistent param set (the same state when it already has it)."""
    if state.params.get(key) == value and key in state.params:
        return state
    return with_changes(state, params=merge_params(state.params, {key: value}))


def set_target(state: State, target: str, value: float) -> State:
    """The state with one keyframe target set (noise_scale, lora.<name>, prompt.<i>.weight)."""
    if target.startswith("lora."):
        name = target[5:]
        if state.lora_scales.get(name) == value:
            return state
        return with_changes(state, lora_scales=MappingProxyType({**state.lora_scales, name: value}))
    if target.startswith("prompt."):
        index = int(target.split(".")[1])
        if index >= len(state.prompts) or state.prompts[index].weight == value:
            return state
        prompts = list(state.prompts)
        prompts[index] = WeightedPrompt(prompts[index].text, value)
        return with_changes(state, prompts=tuple(prompts))
    if state.params.get(target) == value:
        return state
    return with_changes(state, params=merge_params(state.params, {target: value}))
