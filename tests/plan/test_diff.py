"""The plan diff: what an edit of the show changes, scene by scene, on the compiled timelines."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from showrunner.plan.compiler import compile_timeline
from showrunner.plan.diff import (
    PlanDiff,
    carry_occurrence,
    diff_timelines,
    scene_change,
    state_delta,
    transition_for,
)
from showrunner.plan.timeline import Timeline, seconds_to_steps
from showrunner.show.model import Show

Data = dict[str, Any]

BASE: Data = {
    "title": "Diff",
    "defaults": {"transition": "2s"},
    "scenes": [
        {"name": "intro", "prompts": "a misty forest", "duration": 4, "noise_scale": 0.3},
        {
            "name": "middle",
            "prompts": ["the sea", {"text": "a storm", "weight": 0.5}],
            "duration": 4,
            "travel": [{"at": 2, "prompts": "the sky"}],
            "keyframes": {
                "kv_cache_attention_bias": [{"at": 0, "value": 0.3}, {"at": 2, "value": 0.6}]
            },
        },
        {"name": "outro", "prompts": "a city at night", "duration": 4, "goto": "middle"},
    ],
}


def _timeline(data: Data) -> Timeline:
    return compile_timeline(Show.model_validate(data))


def _diff(edit: Callable[[Data], None], base: Data = BASE) -> PlanDiff:
    new = copy.deepcopy(base)
    edit(new)
    return diff_timelines(_timeline(base), _timeline(new))


def _scene(data: Data, name: str) -> Data:
    scene: Data = next(s for s in data["scenes"] if s["name"] == name)
    return scene


def test_identical_plans_have_an_empty_diff() -> None:
    diff = diff_timelines(_timeline(BASE), _timeline(copy.deepcopy(BASE)))
    assert diff.empty
    assert diff.summary() == "no changes"
    assert diff.to_json() == {
        "empty": True,
        "added": [],
        "removed": [],
        "changed": [],
        "show": [],
        "order_changed": False,
        "retimed": [],
    }


@pytest.mark.parametrize(
    ("edit", "scene", "fields"),
    [
        (lambda d: _scene(d, "intro").update(prompts="a burning forest"), "intro", ("prompts",)),
        (lambda d: _scene(d, "outro").update(transition="cut"), "outro", ("transition",)),
        (
            lambda d: _scene(d, "outro").update(prompts="rain", transition="4s"),
            "outro",
            ("prompts", "transition"),
        ),
        (
            lambda d: _scene(d, "middle").update(prompts=["the sea", {"text": "a storm"}]),
            "middle",
            ("prompts",),
        ),
        (lambda d: _scene(d, "outro").update(noise_scale=0.9), "outro", ("noise_scale",)),
        (
            # the reconnect replaces the transition (docs/scope.md §4.2)
            lambda d: _scene(d, "outro").update(pipeline="krea-realtime-video"),
            "outro",
            ("pipeline", "load", "transition"),
        ),
        (
            # a cache reset makes the next transition snap (docs/scope.md §3.3)
            lambda d: _scene(d, "outro").update(reset_cache=True),
            "outro",
            ("transition", "reset_cache"),
        ),
        (lambda d: _scene(d, "outro").update(duration=6), "outro", ("duration",)),
        (lambda d: _scene(d, "outro").update(pre_wait=1), "outro", ("pre_wait",)),
        (lambda d: _scene(d, "outro").update(cue=True), "outro", ("trigger", "cue")),
        (lambda d: _scene(d, "outro").update(goto="intro"), "outro", ("goto",)),
        (
            lambda d: _scene(d, "middle")["travel"][0].update(prompts="the moon"),
            "middle",
            ("travel",),
        ),
        (
            lambda d: _scene(d, "middle")["keyframes"]["kv_cache_attention_bias"][1].update(at=3),
            "middle",
            ("keyframes",),
        ),
    ],
    ids=[
        "prompt",
        "transition",
        "prompt-and-transition",
        "prompt-weight",
        "parameter",
        "pipeline",
        "one-shot-reset",
        "duration",
        "pre-wait",
        "cue",
        "goto",
        "travel",
        "keyframe",
    ],
)
def test_one_scene_changes(
    edit: Callable[[Data], None], scene: str, fields: tuple[str, ...]
) -> None:
    diff = _diff(edit)
    change = diff.scene(scene)
    assert change is not None, diff.summary()
    assert change.fields == fields
    assert [c.name for c in diff.changed] == [scene]
    assert f"~ {scene}: {', '.join(fields)}" in diff.summary().splitlines()
    assert not diff.added and not diff.removed and not diff.show


def test_summary_line_reads_like_the_show_file() -> None:
    diff = _diff(lambda d: _scene(d, "outro").update(prompts="rain", transition="4s"))
    assert diff.summary() == "~ outro: prompts, transition"


def test_the_first_scene_has_no_transition_to_change() -> None:
    """The first scene opens the session with its prompts (docs/scope.md §2.6): no transition."""
    assert _diff(lambda d: _scene(d, "intro").update(transition="cut")).empty


def test_a_keyframe_end_value_tracks_into_the_next_scene() -> None:
    diff = _diff(
        lambda d: _scene(d, "middle")["keyframes"]["kv_cache_attention_bias"][1].update(value=0.9)
    )
    assert [(c.name, c.fields) for c in diff.changed] == [
        ("middle", ("keyframes",)),
        ("outro", ("kv_cache_attention_bias",)),
    ]


def test_details_carry_old_and_new_values() -> None:
    diff = _diff(lambda d: _scene(d, "intro").update(prompts="rain"))
    change = diff.scene("intro")
    assert change is not None
    assert change.details["prompts"] == {
        "old": [{"text": "a misty forest", "weight": 1.0}],
        "new": [{"text": "rain", "weight": 1.0}],
    }


def test_tracked_value_changes_every_scene_it_reaches() -> None:
    """Values track from scene to scene (model docstring): an edit of the first scene's
    noise_scale changes the state of the scenes that inherit it."""
    diff = _diff(lambda d: _scene(d, "intro").update(noise_scale=0.8))
    assert [(c.name, c.fields) for c in diff.changed] == [
        ("intro", ("noise_scale",)),
        ("middle", ("noise_scale",)),
        ("outro", ("noise_scale",)),
    ]


def test_a_default_changes_every_scene() -> None:
    diff = _diff(lambda d: d["defaults"].update(denoising_steps=[1000, 500]))
    assert diff.show == ("defaults",)
    assert {c.name for c in diff.changed} == {"intro", "middle", "outro"}
    assert all(c.fields == ("denoising_steps",) for c in diff.changed)


def test_pipeline_change_needs_a_reconnect() -> None:
    """docs/scope.md §4.2: a pipeline or load-param change means reload + reconnect."""
    diff = _diff(lambda d: _scene(d, "outro").update(pipeline="krea-realtime-video"))
    change = diff.scene("outro")
    assert change is not None and change.needs_reconnect
    prompt_only = _diff(lambda d: _scene(d, "outro").update(prompts="x")).scene("outro")
    assert prompt_only is not None and not prompt_only.needs_reconnect


def test_added_removed_and_renamed_scenes() -> None:
    def edit(d: Data) -> None:
        d["scenes"].insert(1, {"name": "bridge", "prompts": "a bridge", "duration": 2})
        _scene(d, "outro")["name"] = "finale"

    diff = _diff(edit)
    assert diff.added == ("bridge", "finale")
    assert diff.removed == ("outro",)
    lines = diff.summary().splitlines()
    assert "+ bridge" in lines and "+ finale" in lines and "- outro" in lines
    assert not diff.order_changed


def test_a_longer_scene_retimes_the_following_ones() -> None:
    diff = _diff(lambda d: _scene(d, "intro").update(duration=6))
    assert [c.name for c in diff.changed] == ["intro"]
    assert [(r.name, r.old_start, r.new_start) for r in diff.retimed] == [
        ("middle", 4.0, 6.0),
        ("outro", 8.0, 10.0),
    ]
    assert "~ timing: middle 0:04 -> 0:06, outro 0:08 -> 0:10" in diff.summary()


def test_inserting_a_scene_keeps_gotos_by_name() -> None:
    diff = _diff(
        lambda d: d["scenes"].insert(0, {"name": "pre", "prompts": "black", "duration": 1})
    )
    assert diff.added == ("pre",)
    outro = diff.scene("outro")
    assert outro is None or "goto" not in outro.fields


def test_reordered_scenes() -> None:
    def edit(d: Data) -> None:
        d["scenes"][0], d["scenes"][1] = d["scenes"][1], d["scenes"][0]

    diff = _diff(edit)
    assert diff.order_changed
    assert "~ order: scenes play in a new order" in diff.summary()


@pytest.mark.parametrize(
    ("edit", "fields"),
    [
        (lambda d: d.update(loop="forever"), ("loop",)),
        (lambda d: d.update(end="stop"), ("end",)),
        (lambda d: d.update(title="Other"), ("title",)),
        (lambda d: d.update(reload_at="boundary"), ("reload_at",)),
    ],
    ids=["loop", "end", "title", "reload_at"],
)
def test_show_level_changes(edit: Callable[[Data], None], fields: tuple[str, ...]) -> None:
    diff = _diff(edit)
    assert diff.show == fields
    assert f"~ show: {', '.join(fields)}" in diff.summary()


def test_fps_change_is_a_show_change_and_retimes_steps() -> None:
    diff = _diff(lambda d: d.update(fps=8))
    assert "fps" in diff.show
    # the same 2 s transition is fewer chunks at a lower fps
    assert all("transition" in c.fields for c in diff.changed if c.name == "middle")


def test_to_json_is_json() -> None:
    def edit(d: Data) -> None:
        _scene(d, "intro").update(prompts="rain", duration=5)
        d["scenes"].append({"name": "coda", "prompts": "dusk", "duration": 2})

    data = _diff(edit).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["added"] == ["coda"]
    assert data["changed"][0]["scene"] == "intro"
    assert data["changed"][0]["fields"] == ["prompts", "duration"]
    assert data["retimed"][0]["name"] == "middle"


@pytest.mark.timeout(10)  # a diff that walked the endless schedule would never return
def test_a_show_that_loops_forever_diffs_at_once() -> None:
    base = copy.deepcopy(BASE)
    base["loop"] = "forever"
    _scene(base, "outro").pop("goto")
    diff = _diff(lambda d: _scene(d, "intro").update(prompts="x"), base)
    assert [c.name for c in diff.changed] == ["intro"]


def test_many_retimed_scenes_are_summarised() -> None:
    base: Data = {
        "title": "Many",
        "scenes": [{"name": f"s{i}", "prompts": f"p{i}", "duration": 2} for i in range(10)],
    }
    diff = _diff(lambda d: d["scenes"][0].update(duration=3), base)
    assert len(diff.retimed) == 9
    assert diff.summary().splitlines()[-1].endswith("(+5 more)")


# ---------------------------------------------------------------------------------------------
# Moving a playing show to a new plan
# ---------------------------------------------------------------------------------------------

SECTIONED: Data = {
    "title": "Sections",
    "scenes": [
        {"name": "open", "prompts": "a door", "duration": 2},
        {"name": "verse", "prompts": "a street", "duration": 2},
        {"name": "chorus", "prompts": "a crowd", "duration": 2},
        {"name": "coda", "prompts": "an empty room", "duration": 2},
    ],
    "sections": [{"name": "song", "start": "verse", "end": "chorus", "repeat": 3}],
}


def _names_after(timeline: Timeline, occurrence: Any, count: int) -> list[str]:
    names = []
    occ = occurrence
    for _ in range(count):
        occ = timeline.next_after(occ)
        if occ is None:
            break
        names.append(occ.scene.name)
    return names


def test_carry_keeps_the_section_count() -> None:
    old = _timeline(SECTIONED)
    second_verse = [o for o in old.schedule() if o.scene.name == "verse"][1]
    edited = copy.deepcopy(SECTIONED)
    _scene(edited, "chorus")["prompts"] = "a louder crowd"
    new = _timeline(edited)
    carried = carry_occurrence(second_verse, new)
    assert carried is not None
    assert carried.scene is new.scene("verse")
    assert carried.path == second_verse.path
    # the second pass of three: one more verse/chorus after this one, then the coda
    assert _names_after(new, carried, 4) == ["chorus", "verse", "chorus", "coda"]


def test_carry_of_a_deleted_scene_is_none() -> None:
    old = _timeline(SECTIONED)
    occ = next(iter(old.schedule()))
    edited = copy.deepcopy(SECTIONED)
    edited["scenes"].pop(0)
    assert carry_occurrence(occ, _timeline(edited)) is None


def test_carry_reads_the_new_timing() -> None:
    old = _timeline(SECTIONED)
    coda = next(o for o in old.schedule() if o.scene.name == "coda")
    edited = copy.deepcopy(SECTIONED)
    _scene(edited, "coda")["duration"] = 5
    carried = carry_occurrence(coda, _timeline(edited))
    assert carried is not None and carried.scene.duration == 5.0


def test_state_delta_prompts_go_through_the_scene_transition() -> None:
    """docs/scope.md §8-G: new prompts go as a `transition`, with the scene's own length."""
    old = _timeline(BASE)
    edited = copy.deepcopy(BASE)
    _scene(edited, "outro").update(prompts="a city at dawn", noise_scale=0.5)
    new = _timeline(edited)
    scene = new.scene("outro")
    steps, method = transition_for(new, scene)
    assert steps == seconds_to_steps(2.0, scene.chunk_interval)
    message = state_delta(
        old.state_at_scene("outro", 1.0), new.state_at_scene("outro", 1.0),
        steps=steps, method=method,
    )
    assert message == {
        "transition": {
            "target_prompts": [{"text": "a city at dawn", "weight": 1.0}],
            "num_steps": steps,
            "temporal_interpolation_method": method,
        },
        "noise_scale": 0.5,
    }


def test_state_delta_of_equal_states_is_empty() -> None:
    state = _timeline(BASE).state_at_scene("middle", 1.0)
    assert state_delta(state, state, steps=3, method="linear") == {}


def test_state_delta_resends_vace_refs_after_a_cache_reset() -> None:
    """docs/scope.md §4.4: VACE references are one-shot and must follow every cache reset."""
    base: Data = {
        "title": "Refs",
        "assets": {"images": {"ref": {"server_path": "/srv/ref.png"}}},
        "defaults": {"manage_cache": True},
        "scenes": [{"name": "a", "prompts": "x", "duration": 4, "vace": {"refs": ["ref"]}}],
    }
    edited = copy.deepcopy(base)
    edited["scenes"][0]["denoising_steps"] = [1000, 500]
    old, new = _timeline(base), _timeline(edited)
    message = state_delta(old.state_at_scene("a", 1), new.state_at_scene("a", 1), steps=0,
                          method="linear")
    assert message["denoising_step_list"] == [1000, 500]
    assert message["vace_ref_images"] == ["@asset:ref"]
    same = old.state_at_scene("a", 1)
    refreshed = state_delta(same, same, steps=0, method="linear", refresh_refs=True)
    assert refreshed == {"vace_ref_images": ["@asset:ref"]}


def test_scene_change_of_one_scene() -> None:
    old = _timeline(BASE)
    edited = copy.deepcopy(BASE)
    _scene(edited, "middle")["prompts"] = "fog"
    new = _timeline(edited)
    change = scene_change(old, new, "middle")
    assert change is not None and change.fields == ("prompts",)
    assert scene_change(old, new, "intro") is None
    assert scene_change(old, new, "nowhere") is None
