"""Show files at real scale: an imported 10,000-segment timeline checks and reports; bombs in a
50 MB file are refused quickly by counting, with a positioned error."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

import pytest

from showrunner.cli import main
from showrunner.errors import ShowErrors
from showrunner.show.load import load

_WORDS = ("harbour", "neon", "fog", "forest", "city", "desert", "ocean", "aurora", "storm")


def scope_timeline(segments: int) -> dict[str, object]:
    """A Scope UI timeline export (v2.0) of `segments` segments."""
    prompts = []
    t = 0.0
    for i in range(segments):
        length = 6 + (i % 5) * 1.3
        texts = [{"text": f"a {_WORDS[i % 9]} at dusk, cinematic, scene {i}", "weight": 100}]
        if i % 3 == 0:
            texts.append({"text": f"{_WORDS[(i + 3) % 9]} textures", "weight": 40})
        segment: dict[str, object] = {"startTime": round(t, 2), "endTime": round(t + length, 2),
                                      "prompts": texts}
        if i % 4 == 1:
            segment["transitionSteps"] = 4
            segment["temporalInterpolationMethod"] = "slerp"
        prompts.append(segment)
        t += length
    return {
        "prompts": prompts,
        "settings": {"pipelineId": "krea-realtime-video", "resolution": {"height": 480, "width": 832},
                     "seed": 42, "denoisingSteps": [1000, 750], "manageCache": True,
                     "loras": [], "loraMergeStrategy": "permanent_merge"},
        "version": "2.0",
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_import_of_10000_segments_checks_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`import` never writes a file that `check` refuses (it used to refuse any file over 1 MB)."""
    source = tmp_path / "big.json"
    source.write_text(json.dumps(scope_timeline(10_000)), "utf-8")
    show = tmp_path / "big.yaml"
    assert main(["import", str(source), "-o", str(show)]) == 0
    assert show.stat().st_size > 1_000_000
    capsys.readouterr()
    assert main(["check", str(show)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{show}: 0 errors, 0 warnings\n" and err == ""
    assert main(["report", str(show)]) == 0
    out, err = capsys.readouterr()
    assert "seg-10000" in out and err == ""
    assert len(load(show).show.scenes) == 10_000


def _padded(tmp_path: Path, head: str) -> Path:
    """`head` followed by comments up to 50 MB: the size alone must not be what refuses it."""
    path = tmp_path / "bomb.yaml"
    line = "# " + "padding " * 12 + "\n"
    with path.open("w", encoding="utf-8") as out:
        out.write(head)
        out.write(line * (50_000_000 // len(line)))
    assert path.stat().st_size > 50_000_000
    return path


def _refused(path: Path) -> list[str]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ShowErrors) as caught:
        load(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 1500, f"peak memory grew by {grown_mb:.0f} MB"
    return [e.format().replace(str(path.parent) + os.sep, "") for e in caught.value.errors]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_alias_bomb_in_a_50_mb_file(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    head = "title: t\nvars:\n" + "".join(f"  {line}\n" for line in lines) + "scenes: []\n"
    errors = _refused(_padded(tmp_path, head))
    assert len(errors) == 1
    assert errors[0].startswith("bomb.yaml:3:21: too many values (more than ")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_deep_nesting_in_a_50_mb_file(tmp_path: Path) -> None:
    head = "title: t\nscenes: []\nvars:\n  deep: " + "[" * 5000 + "]" * 5000 + "\n"
    assert _refused(_padded(tmp_path, head)) == ["bomb.yaml:4:107: nesting is deeper than 100 levels"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_deep_nesting_bomb_of_50_mb(tmp_path: Path) -> None:
    """50 MB of `[`: never handed to rapidyaml (it would need gigabytes); ruamel stops at 101."""
    path = tmp_path / "bomb.yaml"
    path.write_text("title: t\nx: " + "[" * 50_000_000 + "\n", "utf-8")
    assert _refused(path) == ["bomb.yaml:2:103: nesting is deeper than 100 levels"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_huge_template_expansion_in_a_50_mb_file(tmp_path: Path) -> None:
    head = ("title: t\nvars:\n  big: \"{{ 'x' * 100000000 }}\"\n  many: \"{{ range(10000000) | list }}\"\n"
            "scenes: []\n")
    errors = _refused(_padded(tmp_path, head))
    assert errors[0].startswith("bomb.yaml:3:8: vars.big: template not allowed")
    assert errors[1].startswith("bomb.yaml:4:9: vars.many: ")


class _Terminal:
    """A stderr that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_progress_only_on_a_terminal_and_only_when_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import time

    from showrunner import cli

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with cli._progress("loading big.yaml"):
        pass  # quick: nothing shown
    assert terminal.text == ""
    monkeypatch.setattr(cli, "_PROGRESS_AFTER_S", 0.01)
    with cli._progress("loading big.yaml"):
        time.sleep(0.3)
    assert "loading big.yaml" in terminal.text
    plain = _Terminal()
    monkeypatch.setattr(plain, "isatty", lambda: False)
    monkeypatch.setattr(sys, "stderr", plain)
    with cli._progress("loading big.yaml"):
        time.sleep(0.05)
    assert plain.text == ""
