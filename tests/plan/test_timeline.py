"""The compiled timeline: start times, tracked state, the exact messages and the lazy schedule."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from showrunner.errors import ShowError, UnknownSceneError
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import (
    Action,
    CompiledScene,
    Timeline,
    ease,
    fmt_time,
    resolve_refs,
    seconds_to_steps,
)
from showrunner.show.model import Show

LONGLIVE_CHUNK = 0.75  # 12 frames per chunk at 16 fps


def make(scenes: list[dict[str, Any]], **top: Any) -> Timeline:
    """Compile a show built from plain data (bars need the bpm in the validation context)."""
    data: dict[str, Any] = {"title": "test", **top, "scenes": scenes}
    show = Show.model_validate(data, context={"bpm": top.get("bpm")})
    return compile_timeline(show, source="test.yaml")


def lora_show(manage_cache: bool, keyframes: list[dict[str, Any]]) -> Timeline:
    return make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {"name": "b", "prompts": "two", "duration": 10, "keyframes": {"lora.style": keyframes}},
            {"name": "c", "prompts": "three", "duration": 5},
        ],
        defaults={
            "manage_cache": manage_cache,
            "load": {"loras": [{"lora": "style", "merge_mode": "runtime_peft"}]},
        },
        assets={"loras": {"style": "style.safetensors"}},
    )


def sends(scene: CompiledScene) -> list[Action]:
    return [a for a in scene.actions if a.kind == "send"]


def names(items: Any) -> list[str]:
    return [item.scene.name for item in items]


# ---------------------------------------------------------------------------------------------
# Start times
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenes", "expected"),
    [
        pytest.param(
            [{"name": "a", "duration": 10}, {"name": "b", "duration": 5}, {"name": "c"}],
            [("a", 0, 0.0, 10.0), ("b", 0, 10.0, 15.0), ("c", 0, 15.0, None)],
            id="sequential",
        ),
        pytest.param(
            [{"name": "a"}, {"name": "b", "at": "0:30", "duration": 5}, {"name": "c", "duration": 1}],
            [("a", 0, 0.0, 30.0), ("b", 0, 30.0, 35.0), ("c", 0, 35.0, 36.0)],
            id="at-ends-an-open-scene",
        ),
        pytest.param(
            [
                {"name": "a", "duration": 10},
                {"name": "b", "duration": 10},
                {"name": "c", "after": {"scene": "a", "offset": 2}, "duration": 3},
            ],
            [("a", 0, 0.0, 10.0), ("b", 0, 10.0, 12.0), ("c", 0, 12.0, 15.0)],
            id="after-offset-cuts-the-previous-short",
        ),
        pytest.param(
            [
                {"name": "a", "duration": 10},
                {"name": "b", "cue": True, "duration": 4},
                {"name": "c", "duration": 6},
                {"name": "d", "cue": "drop", "pre_wait": 1, "duration": 2},
                {"name": "e", "at": 5, "duration": 1},
            ],
            [
                ("a", 0, 0.0, 10.0),
                ("b", 1, None, 4.0),
                ("c", 1, 4.0, 10.0),
                ("d", 2, None, 3.0),
                ("e", 2, 5.0, 6.0),
            ],
            id="cue-parts",
        ),
        pytest.param(
            [
                {"name": "a", "duration": 10, "pre_wait": 1},
                {"name": "b", "duration": 5, "pre_wait": 2},
                {"name": "c", "at": 20, "pre_wait": "500ms", "duration": 1},
            ],
            [("a", 0, 1.0, 11.0), ("b", 0, 13.0, 18.0), ("c", 0, 20.5, 21.5)],
            id="pre-wait",
        ),
    ],
)
def test_start_times(scenes: list[dict[str, Any]], expected: list[tuple[Any, ...]]) -> None:
    """Timed scenes follow on, `at` counts from the part origin, cue scenes open a new part."""
    timeline = make(scenes)
    got = [(o.scene.name, o.part, o.start, o.end) for o in timeline.schedule()]
    assert got == expected


def test_bars_follow_the_bpm() -> None:
    timeline = make(
        [{"name": "a", "duration": "8 bars"}, {"name": "b", "at": "4 bars", "duration": "16 beats"}],
        bpm=120,
    )
    a, b = timeline.scenes
    assert a.duration == 16.0
    assert (b.at, b.end) == (8.0, 16.0)
    assert a.end == 8.0  # cut short by b


def test_a_scene_that_never_ends_before_a_timed_scene_is_an_error() -> None:
    with pytest.raises(ShowError) as caught:
        make([{"name": "intro", "prompts": "x"}, {"name": "next", "duration": 5}])
    assert "'intro' has no duration" in str(caught.value)
    assert caught.value.key_path == "scenes[0].duration"
    assert caught.value.path == "test.yaml"


@pytest.mark.parametrize(
    ("scenes", "top", "message"),
    [
        pytest.param(
            [{"name": "a", "duration": 5}, {"name": "b", "goto": "a"}],
            {},
            "has `goto` but never ends",
            id="goto-without-end",
        ),
        pytest.param(
            [{"name": "a", "duration": 5}, {"name": "b"}],
            {"loop": True},
            "never ends",
            id="loop-with-holding-last-scene",
        ),
        pytest.param(
            [
                {"name": "a", "duration": 5},
                {"name": "b", "cue": True, "duration": 5},
                {"name": "c", "after": "a", "duration": 5},
            ],
            {},
            "plays before a cue",
            id="after-across-a-cue",
        ),
        pytest.param(
            [{"name": "a", "duration": 10}, {"name": "b", "at": 20, "duration": 2}, {"name": "c", "at": 5}],
            {},
            "before 'b'",
            id="at-before-the-previous-start",
        ),
        pytest.param(
            [{"name": "a", "duration": 5}, {"name": "b"}],
            {"sections": [{"name": "s", "start": "a", "end": "b", "repeat": 2}]},
            "cannot repeat",
            id="section-that-never-ends",
        ),
    ],
)
def test_unplayable_timing_is_a_compile_error(
    scenes: list[dict[str, Any]], top: dict[str, Any], message: str
) -> None:
    with pytest.raises(ShowError, match=message):
        make(scenes, **top)


# ---------------------------------------------------------------------------------------------
# Tracked state
# ---------------------------------------------------------------------------------------------


def test_values_track_in_file_order() -> None:
    """A value set once stays until changed (model.py docstring); a jump uses state_in."""
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5, "noise_scale": 0.3, "input_mode": "video"},
            {"name": "b", "prompts": "two", "duration": 5, "kv_cache_attention_bias": 0.5},
            {"name": "c", "duration": 5, "noise_scale": 0.6, "denoising_steps": [1000, 500]},
        ],
    )
    a, b, c = timeline.scenes
    # Values the show sets later are there from the start at Scope's default (longlive in video
    # mode), so a jump back to `a` puts them back.
    assert a.state_in.params == {
        "denoising_step_list": [1000, 750], "noise_scale": 0.3, "kv_cache_attention_bias": 1.0
    }
    assert b.state_in.params == {
        "denoising_step_list": [1000, 750], "noise_scale": 0.3, "kv_cache_attention_bias": 0.5
    }
    assert dict(c.state_in.params) == {
        "denoising_step_list": [1000, 500],
        "noise_scale": 0.6,
        "kv_cache_attention_bias": 0.5,
    }
    assert [p.text for p in c.state_in.prompts] == ["two"]
    assert c.state_in.input_mode == "video"
    # c's entry sends only what changed: no prompts, the new steps and noise
    (entry,) = c.actions
    assert dict(entry.message) == {"denoising_step_list": [1000, 500], "noise_scale": 0.6}


def test_unchanged_mappings_are_shared_between_states() -> None:
    """No per-scene copies of unchanged values, so compiling stays linear."""
    timeline = make([{"name": f"s{i}", "prompts": f"p{i}", "duration": 1} for i in range(50)])
    first, last = timeline.scenes[1], timeline.scenes[-1]
    assert first.state_in.params is last.state_in.params
    assert first.state_in.load_params is last.state_in.load_params


def test_entry_message_is_a_transition_with_steps_from_seconds() -> None:
    """Prompts always go as a `transition` (docs/scope.md §8-G); seconds -> chunks (§3.3)."""
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {
                "name": "b",
                "prompts": ["two", {"text": "three", "weight": 0.5}],
                "transition": "3s",
                "duration": 5,
            },
            {"name": "c", "prompts": "four", "transition": "cut", "duration": 5},
            {"name": "d", "prompts": "five", "transition": {"steps": 7, "method": "linear"}, "duration": 5},
        ]
    )
    b, c, d = (timeline.scene(n).actions[0].message for n in "bcd")
    assert dict(b) == {
        "transition": {
            "target_prompts": [{"text": "two", "weight": 1.0}, {"text": "three", "weight": 0.5}],
            "num_steps": 4,
            "temporal_interpolation_method": "slerp",
        }
    }
    assert c["transition"]["num_steps"] == 0
    assert (d["transition"]["num_steps"], d["transition"]["temporal_interpolation_method"]) == (7, "linear")


def test_absent_transition_uses_the_pipeline_default() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5, "pipeline": "krea-realtime-video"},
            {"name": "b", "prompts": "two", "duration": 5},
        ]
    )
    tr = timeline.scene("b").actions[0].message["transition"]
    assert (tr["num_steps"], tr["temporal_interpolation_method"]) == (4, "linear")


@pytest.mark.parametrize(
    ("seconds", "interval", "steps"),
    [
        pytest.param(3.0, 0.75, 4, id="3s-longlive"),
        pytest.param(0.2, 0.75, 1, id="short-is-one-chunk"),
        pytest.param(0.0, 0.75, 0, id="zero-is-a-cut"),
        pytest.param(1.1, 0.75, 1, id="rounds-down"),
        pytest.param(1.2, 0.75, 2, id="rounds-up"),
        pytest.param(1.125, 0.75, 2, id="half-rounds-up"),
        pytest.param(2.0, 0.25, 8, id="streamdiffusion-4-frames"),
    ],
)
def test_seconds_to_steps(seconds: float, interval: float, steps: int) -> None:
    assert seconds_to_steps(seconds, interval) == steps


@pytest.mark.parametrize(
    ("pipeline", "fps", "interval"),
    [
        pytest.param("longlive", None, 0.75, id="longlive-12-frames-16fps"),
        pytest.param("streamdiffusionv2", None, 0.25, id="sdv2-4-frames-16fps"),
        pytest.param("longlive", 24, 0.5, id="show-fps-overrides"),
        pytest.param("my-plugin", None, 0.75, id="unknown-plugin-fallback"),
    ],
)
def test_chunk_interval(pipeline: str, fps: float | None, interval: float) -> None:
    top: dict[str, Any] = {"fps": fps} if fps else {}
    timeline = make([{"name": "a", "prompts": "x", "pipeline": pipeline}], **top)
    assert timeline.scenes[0].chunk_interval == pytest.approx(interval)


def test_unknown_pipeline_is_warned() -> None:
    timeline = make([{"name": "a", "prompts": "x", "pipeline": "my-plugin"}])
    assert any("not known offline" in w for w in timeline.warnings)


# ---------------------------------------------------------------------------------------------
# Sessions and load parameters (docs/scope.md §2.2, §2.6, §4.2)
# ---------------------------------------------------------------------------------------------


def test_first_scene_and_pipeline_changes_open_a_session() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5, "manage_cache": True},
            {"name": "b", "prompts": "two", "duration": 5},
            {"name": "c", "prompts": "three", "duration": 5, "pipeline": "krea-realtime-video"},
            {"name": "d", "prompts": "four", "duration": 5, "load": {"base_seed": 7}},
            {"name": "e", "prompts": "five", "duration": 5},
        ],
        defaults={"output_sinks": {"ndi": {"name": "show"}}},
    )
    kinds = [(s.name, s.reconnect, s.actions[0].kind, s.actions[0].label) for s in timeline.scenes]
    assert kinds == [
        ("a", True, "session", "enter (load)"),
        ("b", False, "send", "enter"),
        ("c", True, "session", "enter (reload)"),
        ("d", True, "session", "enter (reload)"),
        ("e", False, "send", "enter"),
    ]
    first = dict(timeline.scene("a").actions[0].message)
    assert first == {
        "pipeline_ids": ["longlive"],
        "input_mode": "text",
        "prompts": [{"text": "one", "weight": 1.0}],
        "manage_cache": True,
        "output_sinks": {"ndi": {"enabled": True, "name": "show"}},
    }
    d = timeline.scene("d").state_in
    # both sizes always sent (docs/scope.md §8-D), then only what the show set
    assert dict(d.load_params) == {"height": 512, "width": 512, "base_seed": 7}
    assert timeline.switch_count == 2


def test_input_mode_change_reconnects_without_reload() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {"name": "b", "prompts": "two", "duration": 5, "input_mode": "video"},
        ],
        defaults={"load": {"height": 320, "width": 576}},
    )
    b = timeline.scene("b")
    assert (b.reconnect, b.actions[0].label) == (True, "enter (reconnect)")
    assert b.actions[0].message["input_mode"] == "video"
    assert b.switch_estimate == 1.5


def test_equal_states_give_byte_identical_load_params() -> None:
    """Writing the default size explicitly is no change: no reload (§2.2 reuse rule)."""
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {"name": "b", "prompts": "two", "duration": 5, "load": {"height": 320, "width": 576}},
            {"name": "c", "prompts": "three", "duration": 5, "load": {"quantization": "none"}},
        ]
    )
    a, b, c = timeline.scenes
    assert not b.reconnect
    assert a.state_in.load_json == b.state_in.load_json == '{"height":320,"width":576}'
    assert a.state_in.session_key == b.state_in.session_key
    assert c.reconnect and c.state_in.load_params["quantization"] is None
    assert json.dumps(dict(c.state_in.load_params)) == '{"height": 320, "width": 576, "quantization": null}'


def test_initial_parameters_and_resync_message() -> None:
    timeline = make(
        [
            {
                "name": "a",
                "prompts": "one",
                "duration": 5,
                "vace": {"refs": ["face"], "context_scale": 0.7},
                "loras": {"style": 0.4},
                "denoising_steps": [1000, 500],
            }
        ],
        defaults={"load": {"loras": [{"lora": "style", "merge_mode": "runtime_peft"}]}},
        assets={"images": {"face": "face.png"}, "loras": {"style": "s.safetensors"}},
    )
    state = timeline.scenes[0].state_in
    assert state.initial_parameters() == {
        "pipeline_ids": ["longlive"],
        "input_mode": "text",
        "prompts": [{"text": "one", "weight": 1.0}],
        "denoising_step_list": [1000, 500],
        "vace_context_scale": 0.7,
        "lora_scales": [{"path": "@lora:style", "scale": 0.4}],
        "vace_ref_images": ["@asset:face"],
    }
    assert state.resync_message() == {
        "transition": {
            "target_prompts": [{"text": "one", "weight": 1.0}],
            "num_steps": 0,
            "temporal_interpolation_method": "slerp",
        },
        "denoising_step_list": [1000, 500],
        "vace_context_scale": 0.7,
        "lora_scales": [{"path": "@lora:style", "scale": 0.4}],
        "vace_ref_images": ["@asset:face"],
    }
    assert state.load_request()["load_params"]["loras"] == [
        {"path": "@lora:style", "scale": 1.0, "merge_mode": "runtime_peft"}
    ]


def test_resolve_refs_substitutes_server_paths_only_in_reference_keys() -> None:
    message = {
        "transition": {"target_prompts": [{"text": "@asset:face stays text", "weight": 1.0}]},
        "vace_ref_images": ["@asset:face"],
        "first_frame_image": "@asset:face",
        "lora_scales": [{"path": "@lora:style", "scale": 0.5}],
        "loras": [{"path": "@lora:style", "scale": 1.0}],
    }
    out = resolve_refs(message, {"face": "/srv/assets/face.png"}, {"style": "/srv/lora/style.safetensors"})
    assert out["vace_ref_images"] == ["/srv/assets/face.png"]
    assert out["first_frame_image"] == "/srv/assets/face.png"
    assert out["lora_scales"] == [{"path": "/srv/lora/style.safetensors", "scale": 0.5}]
    assert out["loras"][0]["path"] == "/srv/lora/style.safetensors"
    assert out["transition"]["target_prompts"][0]["text"] == "@asset:face stays text"
    assert message["vace_ref_images"] == ["@asset:face"]  # a copy
    with pytest.raises(ShowError, match="'other'"):
        resolve_refs({"vace_ref_images": ["@asset:other"]}, {}, {})


# ---------------------------------------------------------------------------------------------
# Keyframes, travel, chunk rate (docs/scope.md §3.2 step 5)
# ---------------------------------------------------------------------------------------------


def test_keyframes_are_sampled_per_chunk_and_merged_into_the_entry() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {
                "name": "b",
                "prompts": "two",
                "duration": 10,
                "keyframes": {"noise_scale": [{"at": 0, "value": 0}, {"at": 3, "value": 1}]},
            },
        ]
    )
    b = timeline.scene("b")
    entry, *samples = b.actions
    assert entry.label == "enter" and entry.message["noise_scale"] == 0
    assert "transition" in entry.message  # one message: prompts and the first keyframe value
    assert [(a.offset, dict(a.message), a.label) for a in samples] == [
        (0.75, {"noise_scale": 0.25}, "keyframe"),
        (1.5, {"noise_scale": 0.5}, "keyframe"),
        (2.25, {"noise_scale": 0.75}, "keyframe"),
        (3.0, {"noise_scale": 1.0}, "keyframe"),
    ]
    assert b.state_out.params["noise_scale"] == 1.0


def test_step_keyframes_send_only_at_the_keyframe() -> None:
    timeline = make(
        [
            {
                "name": "a",
                "prompts": "one",
                "duration": 10,
                "keyframes": {
                    "vace_context_scale": [
                        {"at": 0, "value": 0.2},
                        {"at": 2, "value": 0.8, "ease": "step"},
                        {"at": 5, "value": 1.2, "ease": "step"},
                    ]
                },
            }
        ]
    )
    later = [(a.offset, dict(a.message)) for a in timeline.scenes[0].actions[1:]]
    # 2 s is nearest to the 2.25 s chunk, 5 s to the 5.25 s one
    assert later == [(2.25, {"vace_context_scale": 0.8}), (5.25, {"vace_context_scale": 1.2})]


def test_at_most_one_send_per_chunk_interval() -> None:
    """Travel, several keyframes and the entry never share a chunk: they merge into one message."""
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {
                "name": "b",
                "prompts": "two",
                "duration": 12,
                "travel": [
                    {"at": 1.6, "prompts": "three"},
                    {"at": 1.8, "prompts": "four"},
                    {"at": 6, "prompts": "five"},
                ],
                "keyframes": {
                    "noise_scale": [{"at": 0, "value": 0.1}, {"at": 8, "value": 0.9, "ease": "ease-in-out"}],
                    "kv_cache_attention_bias": [{"at": 1, "value": 0.2}, {"at": 4, "value": 0.9}],
                },
            },
        ]
    )
    actions = timeline.scene("b").actions
    offsets = [a.offset for a in actions]
    assert offsets == sorted(offsets)
    assert all(b - a >= LONGLIVE_CHUNK - 1e-9 for a, b in itertools.pairwise(offsets))
    merged = next(a for a in actions if a.label.startswith("travel"))
    # 1.6 s and 1.8 s fall in the same chunk (1.5 s): the later stop wins, keyframes ride along
    assert merged.offset == 1.5 and merged.label == "travel 2 + keyframe"
    assert merged.message["transition"]["target_prompts"] == [{"text": "four", "weight": 1.0}]
    assert {"noise_scale", "kv_cache_attention_bias"} <= set(merged.message)


def test_prompt_weight_keyframes_keep_the_running_transition() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {
                "name": "b",
                "prompts": ["x", "y"],
                "transition": {"steps": 4},
                "duration": 10,
                "keyframes": {"prompt.1.weight": [{"at": 0, "value": 0}, {"at": 1.5, "value": 1}]},
            },
        ]
    )
    entry, first, second = timeline.scene("b").actions
    assert entry.message["transition"]["target_prompts"][1] == {"text": "y", "weight": 0.0}
    assert first.message["transition"]["num_steps"] == 3  # 4 steps started one chunk ago
    assert first.message["transition"]["target_prompts"][1]["weight"] == 0.5
    assert second.message["transition"]["num_steps"] == 2


def test_lora_fade_with_manage_cache_turns_it_off_and_restores_it() -> None:
    """Every lora_scales message resets the cache while manage_cache is on (docs/scope.md §4.3)."""
    timeline = lora_show(True, [{"at": 0, "value": 0}, {"at": 1.5, "value": 1}])
    b = timeline.scene("b")
    got = [(a.offset, dict(a.message), a.label) for a in b.actions]
    assert got[0][1]["manage_cache"] is False
    assert got[0][1]["lora_scales"] == [{"path": "@lora:style", "scale": 0.0}]
    assert got[1:] == [
        (0.75, {"lora_scales": [{"path": "@lora:style", "scale": 0.5}]}, "keyframe"),
        (1.5, {"lora_scales": [{"path": "@lora:style", "scale": 1.0}]}, "keyframe"),
        (2.25, {"manage_cache": True}, "restore manage_cache"),
    ]
    assert b.state_in.params["manage_cache"] is False
    assert b.state_out.params["manage_cache"] is True
    assert any("manage_cache off" in w for w in b.warnings)
    # the next scene finds manage_cache on again and sends nothing about it
    assert "manage_cache" not in timeline.scene("c").actions[0].message


def test_lora_fade_without_manage_cache_sends_only_scales() -> None:
    timeline = lora_show(False, [{"at": 0, "value": 0}, {"at": 1.5, "value": 1}])
    b = timeline.scene("b")
    assert all("manage_cache" not in a.message for a in b.actions)
    assert [a.message["lora_scales"][0]["scale"] for a in b.actions] == [0.0, 0.5, 1.0]
    assert not b.warnings


def test_lora_fade_up_to_the_scene_end_restores_with_the_next_scene() -> None:
    timeline = lora_show(True, [{"at": 9, "value": 0.2}, {"at": 10, "value": 0.9}])
    b, c = timeline.scene("b"), timeline.scene("c")
    assert all(a.offset < 10 for a in b.actions)
    assert b.state_out.params["manage_cache"] is False
    assert c.actions[0].message["manage_cache"] is True
    assert any("next scene turns it back on" in w for w in b.warnings)


@pytest.mark.parametrize(
    ("change", "resets"),
    [
        pytest.param({"reset_cache": True}, True, id="reset_cache"),
        pytest.param({"denoising_steps": [1000, 250]}, True, id="step-list-with-manage_cache"),
        pytest.param({"loras": {"style": 0.3}}, True, id="lora-scale-with-manage_cache"),
        pytest.param({"noise_scale": 0.5}, False, id="plain-param"),
    ],
)
def test_vace_refs_are_resent_with_every_cache_reset(change: dict[str, Any], resets: bool) -> None:
    """One-shot refs vanish with the cache, so a resetting message carries them again (§4.4)."""
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5, "vace": {"refs": ["face"]}},
            {"name": "b", "duration": 5, **change},
        ],
        defaults={"manage_cache": True, "load": {"loras": [{"lora": "style", "merge_mode": "runtime_peft"}]}},
        assets={"images": {"face": "face.png"}, "loras": {"style": "s.safetensors"}},
    )
    assert timeline.scene("a").actions[0].message["vace_ref_images"] == ["@asset:face"]
    message = timeline.scene("b").actions[0].message
    assert ("vace_ref_images" in message) is resets
    if resets:
        assert message["vace_ref_images"] == ["@asset:face"]


def test_reset_turns_the_scene_transition_into_a_cut() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 5},
            {"name": "b", "prompts": "two", "transition": "4s", "reset_cache": True, "duration": 5},
        ]
    )
    b = timeline.scene("b")
    assert b.actions[0].message["transition"]["num_steps"] == 0
    assert any("becomes a cut" in w for w in b.warnings)


def test_runtime_scale_of_a_merged_lora_is_warned() -> None:
    timeline = make(
        [{"name": "a", "prompts": "x", "loras": {"style": 0.5, "other": 1}}],
        defaults={"load": {"loras": [{"lora": "style"}]}},
        assets={"loras": {"style": "s.safetensors", "other": "o.safetensors"}},
    )
    warnings = timeline.scenes[0].warnings
    assert any("'style' is loaded with permanent_merge" in w for w in warnings)
    assert any("'other' is not in `load.loras`" in w for w in warnings)


# ---------------------------------------------------------------------------------------------
# state_at / state_at_scene
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "at_quarter", "at_half"),
    [
        pytest.param("linear", 0.25, 0.5, id="linear"),
        pytest.param("step", 0.0, 0.0, id="step"),
        pytest.param("ease-in", 0.0625, 0.25, id="ease-in"),
        pytest.param("ease-out", 0.4375, 0.75, id="ease-out"),
        pytest.param("ease-in-out", 0.125, 0.5, id="ease-in-out"),
        pytest.param("cubic", 0.15625, 0.5, id="cubic"),
    ],
)
def test_state_mid_keyframe_follows_the_ease(kind: str, at_quarter: float, at_half: float) -> None:
    timeline = make(
        [
            {
                "name": "a",
                "prompts": "x",
                "duration": 10,
                "keyframes": {"noise_scale": [{"at": 2, "value": 0}, {"at": 6, "value": 1, "ease": kind}]},
            }
        ]
    )
    assert ease(kind, 0.25) == pytest.approx(at_quarter)
    value = timeline.state_at_scene("a", 3).params["noise_scale"]
    assert value == pytest.approx(at_quarter, abs=1e-4)
    assert timeline.state_at_scene("a", 4).params["noise_scale"] == pytest.approx(at_half, abs=1e-4)
    assert timeline.state_at_scene("a", 1).params["noise_scale"] == 0  # before the first keyframe
    assert timeline.state_at_scene("a", 8).params["noise_scale"] == 1


def test_first_keyframe_after_zero_starts_from_the_tracked_value() -> None:
    timeline = make(
        [
            {
                "name": "a",
                "prompts": "x",
                "duration": 10,
                "noise_scale": 0.2,
                "keyframes": {"noise_scale": [{"at": 4, "value": 0.6}]},
            }
        ]
    )
    assert timeline.state_at_scene("a", 2).params["noise_scale"] == pytest.approx(0.4)


def test_state_mid_transition_has_its_progress() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 10},
            {
                "name": "b",
                "prompts": "two",
                "transition": "3s",
                "duration": 10,
                "travel": [{"at": 6, "prompts": "three", "transition": "1.5s"}],
            },
        ]
    )
    state = timeline.state_at(11.5)  # 1.5 s into b's 4-step (3 s) transition
    assert state.transition is not None
    assert [p.text for p in state.transition.from_prompts] == ["one"]
    assert [p.text for p in state.prompts] == ["two"]
    assert (state.transition.steps, state.transition.progress) == (4, pytest.approx(0.5))
    assert timeline.state_at_scene("b", 3.5).transition is None
    travel = timeline.state_at_scene("b", 6.75)
    assert travel.transition is not None and travel.transition.progress == pytest.approx(0.5)
    assert [p.text for p in travel.transition.from_prompts] == ["two"]
    assert [p.text for p in travel.prompts] == ["three"]


def test_state_at_follows_cues_firing_at_once_and_loops() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "one", "duration": 10},
            {"name": "b", "prompts": "two", "cue": True, "pre_wait": 2, "duration": 5},
        ],
        loop=True,
    )
    assert [p.text for p in timeline.state_at(5).prompts] == ["one"]
    assert [p.text for p in timeline.state_at(11).prompts] == ["one"]  # b's pre_wait
    assert [p.text for p in timeline.state_at(13).prompts] == ["two"]
    assert timeline.period == 17
    assert [p.text for p in timeline.state_at(17 * 1000 + 5).prompts] == ["one"]
    assert [p.text for p in timeline.state_at(17 * 1000 + 13).prompts] == ["two"]


# ---------------------------------------------------------------------------------------------
# The schedule
# ---------------------------------------------------------------------------------------------


def test_section_repeat() -> None:
    timeline = make(
        [{"name": n, "prompts": n, "duration": 5} for n in "abcd"],
        sections=[{"name": "chorus", "start": "b", "end": "c", "repeat": 3}],
    )
    items = list(timeline.schedule())
    assert names(items) == list("abcbcbcd")
    assert [o.start for o in items] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert [o.path for o in items][1:7:2] == [
        (("section:chorus", 1),),
        (("section:chorus", 2),),
        (("section:chorus", 3),),
    ]
    assert [o.how for o in items][:4] == ["start", "next", "next", "section"]
    assert timeline.total_duration == 40


def test_goto_times() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 5},
            {"name": "b", "prompts": "b", "duration": 5, "goto": {"scene": "a", "times": 2}},
            {"name": "c", "prompts": "c", "duration": 5},
        ]
    )
    items = list(timeline.schedule())
    assert names(items) == list("abababc")
    assert items[-1].start == 30 and timeline.total_duration == 35
    assert items[2].jumped and not items[1].jumped


def test_loop_n_times() -> None:
    timeline = make([{"name": n, "prompts": n, "duration": 5} for n in "ab"], loop=3)
    items = list(timeline.schedule())
    assert [(o.scene.name, o.iteration, o.part, o.start) for o in items] == [
        ("a", 0, 0, 0),
        ("b", 0, 0, 5),
        ("a", 1, 1, 0),
        ("b", 1, 1, 5),
        ("a", 2, 2, 0),
        ("b", 2, 2, 5),
    ]
    assert (timeline.total_duration, timeline.period) == (30, 10)


@pytest.mark.timeout(5)
def test_loop_forever_is_lazy() -> None:
    timeline = make(
        [{"name": n, "prompts": n, "duration": 5} for n in "abc"],
        loop="forever",
        sections=[{"name": "s", "start": "a", "end": "b", "repeat": 2}],
    )
    items = list(itertools.islice(timeline.schedule(), 1000))
    assert names(items[:6]) == ["a", "b", "a", "b", "c", "a"]
    assert items[999].iteration == 199
    assert (timeline.total_duration, timeline.period) == (None, 25)


def test_endless_goto_has_a_period() -> None:
    timeline = make(
        [
            {"name": "intro", "prompts": "i", "duration": 4},
            {"name": "a", "prompts": "a", "duration": 5},
            {"name": "b", "prompts": "b", "duration": 5, "goto": "a"},
            {"name": "never", "prompts": "n", "duration": 5},
        ]
    )
    assert names(itertools.islice(timeline.schedule(), 7)) == ["intro", "a", "b", "a", "b", "a", "b"]
    p = timeline.one_pass()
    assert (p.cycle, p.cycle_start, p.period) == ("goto", 14, 10)
    assert timeline.total_duration is None
    assert [q.text for q in timeline.state_at(4 + 10 * 50 + 6).prompts] == ["b"]


def test_schedule_from_a_scene_with_an_offset_and_next_after() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 5},
            {"name": "b", "prompts": "b", "cue": "drop", "duration": 5},
            {"name": "c", "prompts": "c", "at": 8, "duration": 5},
        ]
    )
    first, second = itertools.islice(timeline.schedule("b", start_offset=100.0), 2)
    assert (first.start, first.end) == (100.0, 105.0)
    assert (second.scene.name, second.start) == ("c", 108.0)
    nxt = timeline.next_after(first)
    assert nxt is not None and (nxt.scene.name, nxt.start) == ("c", 108.0)
    assert timeline.next_after(second) is None
    waiting = next(iter(timeline.schedule("b")))
    assert waiting.start is None and waiting.end == 5.0


def test_closed_hours_scene_is_compiled_but_never_scheduled() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 5},
            {"name": "night", "prompts": "stars", "noise_scale": 0.9},
            {"name": "b", "prompts": "b", "duration": 5},
        ],
        loop=2,
        hours={"open": [{"start": "10:00", "end": "18:00"}], "closed": "night"},
    )
    night = timeline.scene("night")
    assert night.closed_only and night.actions
    assert names(timeline.schedule()) == ["a", "b", "a", "b"]
    # nothing tracks from a scene outside the flow: b has Scope's default, which opening again
    # puts back
    assert timeline.scene("b").state_in.params["noise_scale"] == 0.7
    assert names(timeline.schedule("night")) == ["night"]


def test_unknown_scene_is_an_unknown_scene_error() -> None:
    timeline = make([{"name": "intro", "prompts": "x"}])
    with pytest.raises(UnknownSceneError, match="did you mean 'intro'"):
        timeline.scene("intr")
    with pytest.raises(UnknownSceneError):
        timeline.scene(3)


def test_timeline_is_immutable() -> None:
    timeline = make([{"name": "a", "prompts": "x"}])
    with pytest.raises(AttributeError):
        timeline.scenes = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        timeline.scenes[0].actions[0].message["prompts"] = []  # type: ignore[index]


def test_switch_gaps_in_one_pass() -> None:
    timeline = make(
        [
            {"name": "a", "prompts": "a", "duration": 5},
            {"name": "b", "prompts": "b", "duration": 5, "pipeline": "passthrough"},
            {"name": "c", "prompts": "c", "duration": 5, "pipeline": "longlive"},
        ],
        loop=True,
    )
    # a->b (0.5 s load + 1.5), b->c (30 + 1.5); going round c->a needs nothing
    assert timeline.switch_count == 2
    assert timeline.switch_seconds == pytest.approx(33.5)


# ---------------------------------------------------------------------------------------------
# The end state a scene tracks equals what its messages put on the wire
# ---------------------------------------------------------------------------------------------


def wire_after(scene: CompiledScene) -> dict[str, Any]:
    """Fold the scene's messages onto its entry state, as Scope merges them (docs/scope.md §3.2)."""
    state = scene.state_in
    prompts = [p.wire() for p in state.prompts]
    params = dict(state.params)
    loras = dict(state.lora_scales)
    for action in scene.actions[1 if scene.entry else 0 :]:
        message = action.message
        if "transition" in message:
            prompts = message["transition"]["target_prompts"]
        params.update({k: v for k, v in message.items() if k in params or k in _PARAM_NAMES})
        for item in message.get("lora_scales", ()):
            loras[item["path"].removeprefix("@lora:")] = item["scale"]
    return {"prompts": prompts, "params": params, "loras": loras}


_PARAM_NAMES = {"noise_scale", "vace_context_scale", "kv_cache_attention_bias", "manage_cache"}


def tracked(scene: CompiledScene) -> dict[str, Any]:
    out = scene.state_out
    return {
        "prompts": [p.wire() for p in out.prompts],
        "params": dict(out.params),
        "loras": dict(out.lora_scales),
    }


EDGE_SCENES: list[dict[str, Any]] = [
    {"name": "a", "prompts": ["x", "y"], "duration": 6},
    {
        "name": "weights-then-travel",
        "prompts": ["x", "y"],
        "duration": 9,
        "keyframes": {"prompt.1.weight": [{"at": 0, "value": 0.2}, {"at": 3, "value": 0.9}]},
        "travel": [{"at": 5, "prompts": ["p", "q"]}],
    },
    {
        "name": "travel-then-weights",
        "duration": 9,
        "keyframes": {
            "prompt.0.weight": [{"at": 1, "value": 0.1}, {"at": 8.9, "value": 0.7, "ease": "cubic"}]
        },
        "travel": [{"at": 2, "prompts": ["m", "n"]}, {"at": 2.1, "prompts": ["o", "r"]}],
    },
    {
        "name": "fade-to-the-end",
        "duration": 4,
        "keyframes": {
            "lora.style": [{"at": 0.5, "value": 0.3}, {"at": 4, "value": 0.8, "ease": "ease-out"}],
            "noise_scale": [{"at": 3, "value": 0.4, "ease": "step"}],
        },
    },
    {"name": "holds", "prompts": "z", "keyframes": {"vace_context_scale": [{"at": 20, "value": 1.5}]}},
]


def bench_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_compile.py"
    spec = importlib.util.spec_from_file_location("bench_compile", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("which", ["edge-cases", "benchmark-show"])
def test_state_out_matches_the_messages(which: str) -> None:
    """`state_out` is tracked without making the per-chunk messages; both must agree, and a
    seek to the end of a scene lands on it."""
    if which == "edge-cases":
        timeline = make(
            EDGE_SCENES,
            defaults={
                "manage_cache": True,
                "load": {"loras": [{"lora": "style", "merge_mode": "runtime_peft"}]},
            },
            assets={"loras": {"style": "s.safetensors"}},
        )
    else:
        timeline = compile_timeline(Show.model_validate(bench_module().make_show(400)))
    for scene in timeline.scenes:
        assert wire_after(scene) == tracked(scene), scene.name
        end = scene.length if scene.length is not None else 1e6
        at_end = scene.state_at(end)
        assert at_end.prompts == scene.state_out.prompts, scene.name
        assert dict(at_end.params) == dict(scene.state_out.params), scene.name
        assert dict(at_end.lora_scales) == dict(scene.state_out.lora_scales), scene.name


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (5, "0:05"), (7.5, "0:07.5"), (90, "1:30"), (3723, "1:02:03"),
     (59.9996, "1:00"), (0.0004, "0:00"), (-2.25, "-0:02.25"), (None, "-")],
)
def test_clock_text_for_reports_and_messages(seconds: float | None, text: str) -> None:
    # 59.9996 s rounds to a whole minute instead of printing "0:59." (the fraction rounds up).
    assert fmt_time(seconds) == text
