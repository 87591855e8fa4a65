"""The simulated pipeline processor's parameter rules, exercised chunk by chunk."""

from __future__ import annotations

from typing import Any

import pytest

from showrunner.sim.session import (
    QUEUE_SIZE,
    SimSession,
    Stream,
    blend,
    normalize_prompts,
)


def make(initial: dict[str, Any] | None = None, **stream: Any) -> SimSession:
    spec: dict[str, Any] = {
        "pipeline_ids": ("longlive",),
        "pipeline_id": "longlive",
        "height": 320,
        "width": 576,
        "fps": 16.0,
        "frames_per_chunk": 12,
        "vace": True,
    }
    spec.update(stream)
    return SimSession("s1", initial or {}, stream=Stream(**spec))


def texts(session: SimSession) -> dict[str, float]:
    return {p["text"]: round(p["weight"], 3) for p in session.prompts}


CAT = [{"text": "a cat", "weight": 1.0}]
DOG = [{"text": "a dog", "weight": 1.0}]


def test_chunk_interval_is_frames_per_chunk_over_fps() -> None:
    """docs/scope.md §3.3: about 12 frames per call for longlive; at 16 fps that is 0.75 s."""
    assert make().chunk_interval == pytest.approx(0.75)
    assert SimSession("x", {}).chunk_interval == 0.0


def test_queue_holds_eight_and_drops_the_newest() -> None:
    """docs/scope.md §3.2 step 5 / §8-F: maxsize 8, the newest update is dropped when full."""
    session = make()
    for i in range(20):
        session.receive({"seq": i})
    assert session.queued == QUEUE_SIZE == 8
    assert [u["seq"] for u in session.dropped] == list(range(8, 20))
    for _ in range(10):
        session.step()
    assert [a["update"]["seq"] for a in session.applied] == list(range(8))
    assert [a["chunk"] for a in session.applied] == list(range(1, 9))


def test_one_update_per_chunk_shallow_merged() -> None:
    """docs/scope.md §3.2: one dict per chunk, shallow-merged into the persistent dict."""
    session = make({"noise_scale": 0.5, "ctrl": {"a": 1}})
    session.receive({"noise_scale": 0.6})
    session.receive({"ctrl": {"b": 2}})
    session.step()
    assert session.params["noise_scale"] == 0.6
    assert session.params["ctrl"] == {"a": 1}
    session.step()
    assert session.params["ctrl"] == {"b": 2}


def test_control_keys_are_stripped_and_quantized_applies_at_once() -> None:
    """docs/scope.md §3.2 step 4 and §6: control keys never reach the pipeline; no tempo = no defer."""
    session = make()
    session.receive({"bpm": 120, "quantize_mode": "beat", "_quantized": True, "noise_scale": 0.3})
    session.step()
    assert session.applied[0]["update"] == {"noise_scale": 0.3}
    assert "bpm" not in session.params and "bpm" not in session.received


def test_non_object_message_is_dropped() -> None:
    """docs/scope.md §3.1: messages are JSON objects; anything else is logged and dropped."""
    session = make()
    session.receive([1, 2])
    session.step()
    assert session.applied == [] and session.dropped == []


def test_paused_applies_immediately_and_queues_the_rest() -> None:
    """docs/scope.md §3.2 step 2: `paused` bypasses the queue."""
    seen: list[bool] = []
    session = make()
    session.on_pause_change = seen.append
    session.receive({"paused": True, "noise_scale": 0.2})
    assert session.paused and seen == [True]
    assert session.queued == 1
    session.receive({"paused": False})
    assert not session.paused and seen == [True, False]
    assert session.queued == 1  # a pure `paused` message never enters the queue


def test_transition_runs_over_num_steps_chunks() -> None:
    """docs/scope.md §3.3: `transition` interpolates over `num_steps` chunks."""
    session = make({"prompts": CAT})
    session.step()
    assert texts(session) == {"a cat": 1.0}
    session.receive({"transition": {"target_prompts": DOG, "num_steps": 4}})
    session.step()  # chunk 2: step 1 of 4
    assert texts(session) == {"a cat": 0.75, "a dog": 0.25}
    assert session.transition is not None and session.transition["step"] == 1
    session.step()
    session.step()
    assert texts(session) == {"a cat": 0.25, "a dog": 0.75}
    session.step()  # chunk 5: done
    assert texts(session) == {"a dog": 1.0}
    record = session.transitions[-1]
    assert (record["start_chunk"], record["end_chunk"]) == (2, 5)
    assert record["end_chunk"] - record["start_chunk"] + 1 == 4
    assert "transition" not in session.params


def test_transition_does_not_update_prompts() -> None:
    """docs/scope.md §8-G: after a transition, the persistent `prompts` still holds the old ones."""
    session = make({"prompts": CAT})
    session.step()
    session.receive({"transition": {"target_prompts": DOG, "num_steps": 2}})
    for _ in range(3):
        session.step()
    assert texts(session) == {"a dog": 1.0}
    assert session.params["prompts"] == CAT
    # Re-sending the last *received* prompts is "no change" (docs/scope.md §8-G).
    session.receive({"prompts": CAT})
    session.step()
    assert texts(session) == {"a dog": 1.0}


def test_transition_zero_steps_is_a_cut_and_default_is_zero() -> None:
    """docs/scope.md §3.3 / §8-I: num_steps 0 is a cut, and 0 is the data-channel default."""
    session = make({"prompts": CAT})
    session.step()
    session.receive({"transition": {"target_prompts": DOG}})
    session.step()
    assert texts(session) == {"a dog": 1.0}
    assert session.transitions[-1]["num_steps"] == 0


def test_new_prompts_cancel_a_transition() -> None:
    """docs/scope.md §3.3: new prompts arriving mid-transition cancel it."""
    session = make({"prompts": CAT})
    session.step()
    session.receive({"transition": {"target_prompts": DOG, "num_steps": 8}})
    session.step()
    session.receive({"prompts": [{"text": "a bird", "weight": 1}]})
    session.step()
    assert texts(session) == {"a bird": 1.0}
    assert session.transitions[-1]["cancelled"] is True
    assert session.transition is None


def test_transition_on_first_chunk_snaps() -> None:
    """docs/scope.md §3.3: with no previous embedding (first chunk) a transition snaps."""
    session = make({"transition": {"target_prompts": DOG, "num_steps": 4}})
    session.step()
    assert texts(session) == {"a dog": 1.0}


def test_one_shot_keys_are_consumed_by_the_next_chunk() -> None:
    """docs/scope.md §3.3 / §8-L: reset_cache, vace_ref_images, ... live for one chunk only."""
    session = make({"prompts": CAT})
    session.step()
    session.receive({"vace_ref_images": ["/tmp/ref.png"], "reset_cache": True, "noise_scale": 0.4})
    session.step()
    assert session.params["vace_ref_images"] == ["/tmp/ref.png"]
    assert session.vace_ref == "/tmp/ref.png"
    session.step()
    assert "vace_ref_images" not in session.params
    assert "reset_cache" not in session.params
    assert session.params["noise_scale"] == 0.4  # persistent keys stay


def test_initial_one_shots_apply_to_the_first_chunk_only() -> None:
    """docs/scope.md §4.4: initialParameters.vace_ref_images applies to the first chunk only."""
    session = make({"vace_ref_images": ["/tmp/a.png"]})
    session.step()
    assert session.params.get("vace_ref_images") == ["/tmp/a.png"]
    session.step()
    assert "vace_ref_images" not in session.params


def test_cache_reset_forgets_the_reference_image() -> None:
    """docs/scope.md §4.4: a reference only lives on through the KV cache; re-send after a reset."""
    session = make()
    session.step()
    session.receive({"vace_ref_images": ["/tmp/ref.png"]})
    session.step()
    session.receive({"reset_cache": True})
    session.step()
    assert session.vace_ref is None
    assert [r["reason"] for r in session.cache_resets] == ["init", "reset_cache"]


def _with_lora(mode: str) -> SimSession:
    adapter = {"path": "/l/a.safetensors", "scale": 1.0, "merge_mode": mode, "adapter_name": "a"}
    return make(lora_adapters=(adapter,))


def test_lora_scales_ignored_with_permanent_merge() -> None:
    """docs/scope.md §4.3: permanent_merge (the default) ignores lora_scales, yet resets the cache."""
    session = _with_lora("permanent_merge")
    session.step()
    session.receive({"lora_scales": [{"path": "/l/a.safetensors", "scale": 0.2}]})
    session.step()
    assert session.lora_scales == {"/l/a.safetensors": 1.0}
    assert session.cache_resets[-1] == {"chunk": 2, "reason": "lora_scales"}
    session.step()
    assert "lora_scales" not in session.params  # one-shot


def test_lora_scales_applied_with_runtime_peft() -> None:
    """docs/scope.md §4.3: runtime_peft adapters take new scales, matched by path or adapter name."""
    session = _with_lora("runtime_peft")
    session.step()
    session.receive({"lora_scales": [{"path": "a", "scale": 0.2}]})
    session.step()
    assert session.lora_scales == {"/l/a.safetensors": 0.2}
    session.receive({"lora_scales": [{"path": "/unknown.safetensors", "scale": 3}]})
    session.step()
    assert session.lora_scales == {"/l/a.safetensors": 0.2}


def test_manage_cache_resets() -> None:
    """docs/scope.md §3.3 bottom: step-list changes reset the cache while manage_cache is on."""
    session = make({"denoising_step_list": [1000, 750]})
    session.step()
    session.receive({"denoising_step_list": [1000, 750]})  # unchanged: no reset
    session.receive({"denoising_step_list": [700, 500]})
    session.receive({"manage_cache": False})
    session.receive({"denoising_step_list": [900, 100]})  # manage_cache off: no reset
    for _ in range(4):
        session.step()
    assert [r["reason"] for r in session.cache_resets] == ["init", "denoising_step_list"]


def test_prompt_change_resets_only_in_video_mode() -> None:
    """docs/scope.md §3.3: a plain prompt change is a hard cut only in video mode."""
    text = make({"prompts": CAT, "input_mode": "text"})
    video = make({"prompts": CAT, "input_mode": "video"})
    for session in (text, video):
        session.step()
        session.receive({"prompts": DOG})
        session.step()
    assert [r["reason"] for r in text.cache_resets] == ["init"]
    assert [r["reason"] for r in video.cache_resets] == ["init", "prompts"]


def test_ctrl_input_mouse_accumulates() -> None:
    """docs/scope.md §3.3: ctrl_input mouse deltas add up; buttons are replaced."""
    session = make()
    session.receive({"ctrl_input": {"button": ["KeyW"], "mouse": [1, 2]}})
    session.receive({"ctrl_input": {"button": [], "mouse": [3, 4]}})
    session.step()
    session.step()
    assert session.ctrl == {"button": [], "mouse": [4.0, 6.0]}


def test_prompt_helpers() -> None:
    assert normalize_prompts([{"text": "a", "weight": 100}, {"text": "b", "weight": 300}]) == [
        {"text": "a", "weight": 0.25},
        {"text": "b", "weight": 0.75},
    ]
    assert normalize_prompts([]) is None
    assert normalize_prompts("nope") is None
    assert blend([{"text": "a", "weight": 1.0}], [{"text": "a", "weight": 1.0}], 0.5) == [
        {"text": "a", "weight": 1.0}
    ]
