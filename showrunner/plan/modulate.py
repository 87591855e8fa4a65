"""Scenes' `modulate:` mappings: which are in force where, and the message that puts values on air.

Pure. A mapping tracks like any scene value: set in a scene, it stays in force in the following
scenes (in file order) until a later scene maps the same target again or switches it ``off``.
Where a mapping ends, the tracked value of its target (the scene's own, a keyframe's, the
default's) goes back on air.

Targets are the keyframe targets: ``noise_scale``, ``vace_context_scale``,
``kv_cache_attention_bias`` (sent as they are), ``lora.<name>`` (a runtime ``lora_scales``
entry) and ``prompt.<index>.weight`` (the scene's blend with that weight, as a transition of 0
steps: weights are ratios, docs/scope.md §3.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from showrunner.plan.state import (
    LORA_PREFIX,
    State,
    WeightedPrompt,
    lora_now,
    ordered_message,
    transition_message,
)
from showrunner.show.model import Modulation, Show

__all__ = ["PARAM_TARGETS", "in_force", "tracked_values", "update_message"]

PARAM_TARGETS = frozenset({"noise_scale", "vace_context_scale", "kv_cache_attention_bias"})


def in_force(show: Show) -> tuple[Mapping[str, Modulation], ...]:
    """For each scene (file order), the mappings in force there: target -> mapping."""
    out: list[Mapping[str, Modulation]] = []
    current: dict[str, Modulation] = {}
    for scene in show.scenes:
        if scene.modulate:
            current = dict(current)
            for target, mapping in scene.modulate.items():
                if mapping is None:
                    current.pop(target, None)
                else:
                    current[target] = mapping
        out.append(current)
    return tuple(out)


def tracked_values(targets: Iterable[str], state: State) -> dict[str, float]:
    """The values `state` holds for `targets` (those it holds a value for)."""
    out: dict[str, float] = {}
    for target in targets:
        value: Any
        if target in PARAM_TARGETS:
            value = state.params.get(target)
        elif target.startswith("lora."):
            value = lora_now(state, target[5:])
        elif target.startswith("prompt."):
            index = int(target.split(".")[1])
            value = state.prompts[index].weight if index < len(state.prompts) else None
        else:
            value = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[target] = float(value)
    return out


def update_message(values: Mapping[str, float], state: State) -> dict[str, Any]:
    """One data-channel message setting `values` (target -> value) over `state`; {} for none.

    LoRA paths are written ``@lora:<name>`` (resolved to server paths as every message is)."""
    msg: dict[str, Any] = {}
    scales: list[dict[str, Any]] = []
    prompts = list(state.prompts)
    weighted = False
    for target, value in values.items():
        if target in PARAM_TARGETS:
            msg[target] = value
        elif target.startswith("lora."):
            scales.append({"path": LORA_PREFIX + target[5:], "scale": value})
        elif target.startswith("prompt."):
            index = int(target.split(".")[1])
            if index < len(prompts):
                prompts[index] = WeightedPrompt(prompts[index].text, value)
                weighted = True
    if scales:
        msg["lora_scales"] = scales
    if weighted and any(p.weight > 0 for p in prompts):
        method = state.transition.method if state.transition is not None else "linear"
        msg["transition"] = transition_message(prompts, 0, method)
    return dict(ordered_message(msg))
