"""One reading of `--at` for `report` and `run`: show times, scenes, SCENE+OFFSET, bars."""

from __future__ import annotations

import pytest

from showrunner.errors import PositionError, UnknownSceneError
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.start import StartPoint, parse_position, start_point, state_at_point
from showrunner.plan.timeline import Timeline
from showrunner.show.model import Show


def make(**top: object) -> Timeline:
    data = {
        "title": "positions",
        "hours": {"open": [{"days": "daily", "start": "09:00", "end": "17:00"}], "closed": "shut"},
        **top,
        "scenes": [
            {"name": "intro", "prompts": "red", "duration": 8},
            {"name": "outro", "prompts": "blue", "duration": 8},
            {"name": "shut", "prompts": "grey"},
        ],
    }
    return compile_timeline(Show.model_validate(data, context={"bpm": top.get("bpm")}))


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("90", StartPoint(at=90.0)),
        ("1:30", StartPoint(at=90.0)),
        ("2 bars", StartPoint(at=4.0)),
        ("outro", StartPoint(scene=1)),
        ("outro+3", StartPoint(scene=1, offset=3.0)),
        (" outro + 0:03 ", StartPoint(scene=1, offset=3.0)),
        ("outro+1 bar", StartPoint(scene=1, offset=2.0)),
        ("outro+2 beats", StartPoint(scene=1, offset=1.0)),
    ],
)
def test_positions_read_the_same_for_report_and_run(text: str, point: StartPoint) -> None:
    timeline = make(bpm=120)
    assert parse_position(timeline, text) == point
    assert start_point(timeline, at=text) == point


def test_the_closed_hours_scene_can_be_reported_but_not_started_at() -> None:
    timeline = make()
    assert state_at_point(timeline, parse_position(timeline, "shut+1")).prompts[0].text == "grey"
    with pytest.raises(UnknownSceneError, match="plays only while the show is closed"):
        start_point(timeline, at="shut+1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "--at 'soon': 'soon' is not a time"),
        ("2 bars", "--at '2 bars': '2 bars' needs `bpm`"),
        ("outro+1 bar", "--at 'outro+1 bar': '1 bar' needs `bpm`"),
        ("outro+later", "--at 'outro+later': 'later' is not a time"),
        ("outor+3", "--at 'outor+3': unknown scene 'outor'; did you mean 'outro'?"),
    ],
)
def test_text_that_cannot_be_read_is_a_position_error(text: str, message: str) -> None:
    timeline = make()
    for read in (lambda: parse_position(timeline, text), lambda: start_point(timeline, at=text)):
        with pytest.raises(PositionError) as exc:
            read()
        assert str(exc.value).startswith(message)
