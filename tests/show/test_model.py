"""The show model: time parsing, shorthands, derived properties and cross-field problems."""

from __future__ import annotations

import pickle
from typing import Any

import pydantic
import pytest

from showrunner.show.model import (
    MusicalTime,
    Scene,
    Show,
    Window,
    is_musical,
    parse_time,
    quantize_beats,
    semantic_problems,
)


def show(**fields: Any) -> Show:
    data: dict[str, Any] = {"title": "t", "scenes": [{"name": "a"}], **fields}
    return Show.model_validate(data, context={"bpm": fields.get("bpm")})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (12.5, 12.5),
        (3, 3.0),
        ("12.5", 12.5),
        ("1:30", 90.0),
        ("1:02:03", 3723.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("8 bars", 16.0),
        ("1 bar", 2.0),
        ("16 beats", 8.0),
        (" 4 Beats ", 2.0),
    ],
    ids=str,
)
def test_parse_time(text: object, seconds: float) -> None:
    assert parse_time(text, bpm=120) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8 bars", "'8 bars' needs `bpm` at the top of the show"),
        ("1:75", "'1:75': seconds must be below 60 in 'mm:ss'"),
        ("soon", "'soon' is not a time"),
        (-1, "must be a time >= 0"),
        (10**400, "is longer than ten years"),
        (float("nan"), "must be a time >= 0"),
        (True, "expected a time"),
        (None, "expected a time"),
    ],
    ids=str,
)
def test_parse_time_errors(text: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_time(text)


def test_bars_with_invalid_bpm_say_why() -> None:
    with pytest.raises(pydantic.ValidationError, match="because `bpm` is invalid"):
        Show.model_validate(
            {"title": "t", "bpm": -5, "scenes": [{"name": "a", "duration": "2 bars"}]},
            context={"bpm": None, "bpm_invalid": True},
        )


def test_beats_per_bar_from_context() -> None:
    s = Show.model_validate(
        {"title": "t", "bpm": 60, "beats_per_bar": 3, "scenes": [{"name": "a", "duration": "2 bars"}]},
        context={"bpm": 60, "beats_per_bar": 3},
    )
    assert s.scenes[0].duration == 6.0


def test_shorthands() -> None:
    scene = Scene.model_validate(
        {"name": "a", "prompts": ["x", {"text": "y", "weight": 2}], "transition": "cut",
         "after": "b", "goto": "c"}
    )
    assert [(p.text, p.weight) for p in scene.prompts or []] == [("x", 1.0), ("y", 2.0)]
    assert scene.transition is not None and scene.transition.is_cut
    assert scene.after is not None and scene.after.scene == "b" and scene.after.offset == 0
    assert scene.goto is not None and scene.goto.scene == "c" and scene.goto.times is None
    fade = Scene.model_validate({"name": "a", "transition": "2s"}).transition
    assert fade is not None and fade.duration == 2.0 and not fade.is_cut


def test_cue_names_and_loop_counts() -> None:
    assert Scene(name="a").cue_name is None
    assert Scene.model_validate({"name": "a", "cue": True}).cue_name == "go"
    assert Scene.model_validate({"name": "a", "cue": "GO"}).cue_name == "go"
    assert Scene.model_validate({"name": "a", "cue": "drop"}).cue_name == "drop"
    assert show().loop_count == 1
    assert show(loop=True).loop_count is None
    assert show(loop="forever").loop_count is None
    assert show(loop=3).loop_count == 3
    with pytest.raises(pydantic.ValidationError, match="loop count must be >= 1"):
        show(loop=0)


def test_window_days() -> None:
    assert Window(start="10:00", end="18:00").weekdays == tuple(range(7))
    assert Window(days="weekends", start="10:00", end="18:00").weekdays == (5, 6)
    late = Window.model_validate({"days": ["fri", "mon"], "start": "22:00", "end": "02:00"})
    assert late.weekdays == (0, 4)
    with pytest.raises(pydantic.ValidationError, match="are the same time"):
        Window(start="10:00", end="10:00")


def test_models_are_frozen_and_strict_about_keys() -> None:
    s = show()
    with pytest.raises(pydantic.ValidationError):
        s.scenes[0].name = "b"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        Scene.model_validate({"name": "a", "duraton": 3})


def test_unknown_time_zone() -> None:
    with pytest.raises(pydantic.ValidationError, match="unknown time zone 'Mars/Olympus'"):
        show(hours={"timezone": "Mars/Olympus", "open": [{"start": "10:00", "end": "11:00"}]})


def test_semantic_problems_locations() -> None:
    """Wan sizes divide by 16 (docs/scope.md §2.2); empty prompts and zero weights are unsafe (§3.3)."""
    s = show(
        scenes=[
            {"name": "a", "prompts": [], "goto": "zz"},
            {"name": "a", "prompts": [{"text": " ", "weight": 0}]},
            {"name": "c", "travel": [{"at": 1, "prompts": "x"}, {"at": 0, "prompts": "y"}],
             "duration": 0.5},
        ],
        defaults={"load": {"height": 100}},
    )
    assert semantic_problems(s) == [
        (("scenes", 1, "name"), "duplicate scene name 'a' (first used by scenes[0])"),
        (("scenes", 0, "goto", "scene"), "unknown scene 'zz'"),
        (("scenes", 2, "travel", 0, "at"), "is after the end of the scene"),
        (("scenes", 2, "travel", 1, "at"), "travel stops must be in time order"),
        (("defaults", "load", "height"), "100 is not divisible by 16 (longlive needs it)"),
        (("scenes", 0, "prompts"), "is an empty prompt list; give at least one prompt"),
        (("scenes", 1, "prompts", 0, "text"), "prompt text is empty"),
        (("scenes", 1, "prompts"), "all prompt weights are 0; at least one must be above 0"),
    ]


def test_sizes_track_across_scenes() -> None:
    s = show(scenes=[{"name": "a", "load": {"width": 500}}, {"name": "b", "pipeline": "passthrough",
                                                               "load": {"width": 501}}])
    assert semantic_problems(s) == [
        (("scenes", 0, "load", "width"), "500 is not divisible by 16 (longlive needs it)")
    ]


def test_musical_times_keep_their_beats() -> None:
    s = Show.model_validate(
        {"title": "t", "bpm": 120, "scenes": [
            {"name": "a", "duration": "8 bars",
             "keyframes": {"noise_scale": [{"at": "6 beats", "value": 0.5}]}},
            {"name": "b", "duration": 12, "at": "16 bars"},
        ]},
        context={"bpm": 120, "beats_per_bar": 4},
    )
    a, b = s.scenes
    assert a.duration == 16.0 and is_musical(a.duration)
    assert isinstance(a.duration, MusicalTime) and a.duration.beats == 32.0
    assert is_musical(a.keyframes["noise_scale"][0].at)
    assert b.duration == 12.0 and not is_musical(b.duration)
    assert is_musical(b.at)
    assert pickle.loads(pickle.dumps(a.duration)).beats == 32.0


@pytest.mark.parametrize(
    ("text", "beats"), [("beat", 1.0), ("bar", 4.0), ("2 bars", 8.0), ("3 beats", 3.0), ("off", None)]
)
def test_quantize_grids(text: str, beats: float | None) -> None:
    s = show(bpm=120, quantize=text)
    assert quantize_beats(s.quantize, s.beats_per_bar) == beats


def test_quantize_rejects_other_values_and_needs_bpm() -> None:
    with pytest.raises(pydantic.ValidationError, match="expected 'beat', 'bar'"):
        show(bpm=120, quantize="half")
    with pytest.raises(pydantic.ValidationError, match="at least 1"):
        show(bpm=120, quantize="0 bars")
    problems = semantic_problems(show(quantize="bar", scenes=[{"name": "a", "quantize": "beat"}]))
    assert (("quantize",), "'bar' needs `bpm` at the top of the show") in problems
    assert (("scenes", 0, "quantize"), "'beat' needs `bpm` at the top of the show") in problems


def test_cost_hooks_and_alerts() -> None:
    show = Show.model_validate({
        "title": "t", "scenes": [{"name": "a", "prompts": "p"}],
        "cost": {"per_hour": 0.95},
        "hooks": {
            "before_open": {"command": ["start-gpu", "--pod", "x"], "lead": "10 min"},
            "after_close": {"command": "stop-gpu && echo done", "shell": True, "timeout": "2m"},
            "on_outage": {"http": {"url": "https://api.example.org/${POD}/restart",
                                   "headers": {"Authorization": "Bearer ${TOKEN}"},
                                   "json": {"why": "outage"}, "retries": 2}},
        },
        "alerts": {"webhook": "http://127.0.0.1:9/hook", "after": "45s"},
    })
    assert show.cost is not None and show.cost.per_hour == 0.95 and show.cost.currency == "USD"
    before = show.hooks.before_open
    assert before is not None and before.lead == 600.0 and before.timeout == 60.0
    assert show.hooks.after_close is not None and show.hooks.after_close.timeout == 120.0
    call = show.hooks.on_outage.http if show.hooks.on_outage else None
    assert call is not None and call.json_body == {"why": "outage"} and call.method == "POST"
    assert show.hooks.on_recover is None
    assert show.alerts.webhook == "http://127.0.0.1:9/hook" and show.alerts.after == 45.0


def test_no_hooks_by_default() -> None:
    show = Show.model_validate({"title": "t", "scenes": [{"name": "a", "prompts": "p"}]})
    assert show.cost is None and show.hooks.before_open is None and show.alerts.webhook is None
    assert show.alerts.after == 30.0
