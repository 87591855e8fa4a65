"""One truth for check, report and run: `check` compiles the show too, and every problem of a
file is reported at once, at the text that causes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from showrunner.cli import main
from showrunner.errors import ShowErrors
from showrunner.plan.preflight import compile_result, parse_key_path
from showrunner.show.load import load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
EXAMPLES = sorted((ROOT / "shows").glob("*.yaml"))

OPEN_ENDED = """\
title: a
scenes:
  - {name: one, prompts: x}
  - {name: two, prompts: y, duration: 2}
"""
CUE_OPENER = """\
title: b
scenes:
  - {name: one, prompts: x, cue: true}
  - {name: two, prompts: y, duration: 2}
"""
PROMPT_WEIGHT = """\
title: c
scenes:
  - name: one
    prompts: [x, y]
    duration: 4
    keyframes:
      prompt.5.weight: [{at: 0, value: 0.1}, {at: 2, value: 1}]
"""
MANY = """\
title: d
scenes:
  - {name: one, prompts: "", duration: -1}
  - {name: one, prompts: y, duration: 2, goto: nowhere}
"""
SHOWS = {"open_ended": OPEN_ENDED, "cue_opener": CUE_OPENER, "prompt_weight": PROMPT_WEIGHT,
         "many": MANY}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES + corpus(), ids=lambda p: p.name)
def test_check_and_report_agree(path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path.parent)
    check = run(capsys, "check", path.name)
    report = run(capsys, "report", path.name)
    assert (check[0] == 0) == (report[0] == 0), (check, report)
    if report[0]:  # every error report prints, check prints too (at the same place)
        assert set(report[2].splitlines()) <= set(check[2].splitlines())


@pytest.mark.parametrize("name", sorted(SHOWS))
def test_check_and_report_agree_on_compile_problems(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(f"{name}.yaml").write_text(SHOWS[name], "utf-8")
    check = run(capsys, "check", f"{name}.yaml")
    report = run(capsys, "report", f"{name}.yaml")
    assert (check[0] == 0) == (report[0] == 0), (check, report)


def test_an_open_ended_scene_before_a_timed_one_is_an_error_at_its_scene(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(OPEN_ENDED, "utf-8")
    Path("b.yaml").write_text(CUE_OPENER, "utf-8")
    code, out, err = run(capsys, "check", "a.yaml", "b.yaml")
    assert code == 1
    assert err.splitlines() == [
        "a.yaml:3:5: scenes[0].duration: scene 'one' has no duration, so 'two' (which starts when "
        "it ends) would never start; give 'one' a `duration`, or 'two' an `at`, `after` or `cue`",
        "b.yaml:3:5: scenes[0].duration: scene 'one' has no duration, so 'two' (which starts when "
        "it ends) would never start; give 'one' a `duration`, or 'two' an `at`, `after` or `cue`",
    ]
    assert out == "a.yaml: 1 error, 0 warnings\nb.yaml: 1 error, 0 warnings\n"
    # report and run say the same, at the same place (no more 1:1)
    with pytest.raises(ShowErrors) as caught:
        compile_result(load("a.yaml"))
    assert [e.format() for e in caught.value.errors] == err.splitlines()[:1]


def test_compile_warnings_are_check_warnings_at_their_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text(PROMPT_WEIGHT, "utf-8")
    code, out, err = run(capsys, "check", "c.yaml")
    assert (code, out) == (0, "c.yaml: 0 errors, 1 warning\n")
    assert err == ("c.yaml:7:7: warning: scenes[0].keyframes['prompt.5.weight']: keyframes "
                   "'prompt.5.weight' ignored: there are only 2 prompts\n")


def test_one_bad_value_does_not_hide_the_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("d.yaml").write_text(MANY, "utf-8")
    code, _out, err = run(capsys, "check", "d.yaml")
    assert code == 1
    assert err.splitlines() == [
        "d.yaml:3:26: scenes[0].prompts[0].text: prompt text is empty",
        "d.yaml:3:40: scenes[0].duration: must be a time >= 0",
        "d.yaml:4:12: scenes[1].name: duplicate scene name 'one' (first used by scenes[0])",
        "d.yaml:4:48: scenes[1].goto.scene: unknown scene 'nowhere'",
    ]


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ("scenes[2].duration", ("scenes", 2, "duration")),
        ("scenes[0].keyframes['lora.x']", ("scenes", 0, "keyframes", "lora.x")),
        ("hours.closed", ("hours", "closed")),
        ("loop", ("loop",)),
        ("sections[1].end", ("sections", 1, "end")),
    ],
)
def test_parse_key_path(text: str, loc: tuple[str | int, ...]) -> None:
    assert parse_key_path(text) == loc
