from __future__ import annotations

from typing import Any

import pytest

from showrunner.plan.compiler import compile_timeline
from showrunner.plan.modulate import in_force, tracked_values, update_message
from showrunner.show.model import Show

SHOW: dict[str, Any] = {
    "title": "mod",
    "assets": {"loras": {"glow": "glow.safetensors"}},
    "defaults": {"noise_scale": 0.4, "load": {"loras": [{"lora": "glow", "scale": 0.5,
                                                         "merge_mode": "runtime_peft"}]}},
    "inputs": {"fader": {}, "wobble": {"lfo": {"every": 4}}},
    "scenes": [
        {"name": "a", "prompts": [{"text": "x", "weight": 1}, {"text": "y", "weight": 1}],
         "duration": 4, "modulate": {"noise_scale": {"input": "fader", "range": [0.2, 0.6]}}},
        {"name": "b", "duration": 4,
         "modulate": {"lora.glow": {"input": "wobble", "range": [0, 1]}}},
        {"name": "c", "duration": 4, "noise_scale": 0.7, "modulate": {"noise_scale": "off"}},
    ],
}


def test_mappings_track_until_switched_off() -> None:
    show = Show.model_validate(SHOW)
    force = in_force(show)
    assert [sorted(m) for m in force] == [["noise_scale"], ["lora.glow", "noise_scale"], ["lora.glow"]]
    assert force[1]["noise_scale"].input == "fader"


def test_update_and_tracked_values_over_the_compiled_state() -> None:
    timeline = compile_timeline(Show.model_validate(SHOW))
    state = timeline.state_at_scene("c", 0.0)
    assert state is not None
    assert tracked_values(["noise_scale", "lora.glow", "prompt.1.weight", "prompt.5.weight"], state) == {
        "noise_scale": 0.7, "lora.glow": 0.5, "prompt.1.weight": 1.0
    }
    msg = update_message({"noise_scale": 0.3, "lora.glow": 0.25, "prompt.1.weight": 0.5}, state)
    assert msg["noise_scale"] == 0.3
    assert msg["lora_scales"] == [{"path": "@lora:glow", "scale": 0.25}]
    assert msg["transition"]["num_steps"] == 0
    assert [p["weight"] for p in msg["transition"]["target_prompts"]] == [1.0, 0.5]
    assert update_message({}, state) == {}


def test_weights_that_would_all_be_zero_are_not_sent() -> None:
    timeline = compile_timeline(Show.model_validate(SHOW))
    state = timeline.state_at_scene("a", 0.0)
    assert "transition" not in update_message({"prompt.0.weight": 0.0, "prompt.1.weight": 0.0}, state)
    assert update_message({"prompt.0.weight": 0.0}, state)["transition"]["target_prompts"][0] == {
        "text": "x", "weight": 0.0
    }


@pytest.mark.parametrize("target", ["noise_scale", "vace_context_scale", "kv_cache_attention_bias"])
def test_runtime_params_go_as_they_are(target: str) -> None:
    state = compile_timeline(Show.model_validate(SHOW)).state_at_scene("a", 0.0)
    assert update_message({target: 0.5}, state) == {target: 0.5}
