"""plan/state.py: the `input_source` a session starts with and the message that changes it
(docs/scope.md §3.3, §10; Scope's server/frame_processor.py `_update_input_source`)."""

from __future__ import annotations

from typing import Any

from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.show.model import Show


def make(scenes: list[dict[str, Any]], **defaults: Any) -> Timeline:
    show = Show.model_validate({"title": "t", "defaults": defaults, "scenes": scenes})
    return compile_timeline(show, source="test.yaml")


def file(name: str, **extra: Any) -> dict[str, Any]:
    return {"source_type": "video_file", "source_name": name, **extra}


def entry(timeline: Timeline, index: int) -> dict[str, Any]:
    action = timeline.scenes[index].entry
    assert action is not None
    return dict(action.message)


def test_a_text_mode_session_never_gets_the_input_source() -> None:
    """Sent to a text-mode session it still starts a decoder on the server (§10): not sent."""
    timeline = make(
        [{"name": "a", "duration": 1}, {"name": "b", "duration": 1, "input_source": file("b.mp4")}],
        pipeline=["longlive"], input_mode="text", input_source=file("a.mp4"),
    )
    first = entry(timeline, 0)
    assert first["input_mode"] == "text" and "input_source" not in first
    assert timeline.scenes[1].entry is None  # the source alone changed: nothing to send
    assert timeline.scenes[1].state_in.input_source == {"enabled": True, **file("b.mp4")}


def test_per_scene_sources_track_and_change_with_reconnect() -> None:
    """A scene's `input_source` holds for later scenes; another file of the same type goes with
    `reconnect: true` (Scope ignores it otherwise), another type without, and a video-mode
    session starts with the source in force."""
    timeline = make(
        [
            {"name": "a", "duration": 1},
            {"name": "b", "duration": 1, "input_source": file("b.mp4")},
            {"name": "c", "duration": 1, "prompts": "still b"},
            {"name": "d", "duration": 1, "input_source": {"source_type": "ndi", "source_name": "cam"}},
            {"name": "e", "duration": 1, "input_source": {"source_type": "ndi", "source_name": "cam",
                                                          "enabled": False}},
        ],
        pipeline=["passthrough"], input_mode="video", input_source=file("a.mp4"),
    )
    assert entry(timeline, 0)["input_source"] == {"enabled": True, **file("a.mp4")}
    assert entry(timeline, 1)["input_source"] == {"enabled": True, **file("b.mp4"), "reconnect": True}
    assert "input_source" not in entry(timeline, 2)
    assert timeline.scenes[2].state_in.input_source == {"enabled": True, **file("b.mp4")}
    ndi = {"source_type": "ndi", "source_name": "cam"}
    assert entry(timeline, 3)["input_source"] == {"enabled": True, **ndi}
    assert entry(timeline, 4)["input_source"] == {"enabled": False, **ndi}


def test_switching_from_text_to_video_starts_the_session_with_the_source() -> None:
    timeline = make(
        [
            {"name": "a", "duration": 1},
            {"name": "b", "duration": 1, "input_mode": "video", "input_source": file("b.mp4")},
        ],
        pipeline=["longlive"], input_mode="text",
    )
    assert timeline.scenes[1].reconnect
    start = entry(timeline, 1)
    assert start["input_mode"] == "video" and start["input_source"] == {"enabled": True, **file("b.mp4")}
