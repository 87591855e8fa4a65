"""Edits of a big show: only what changed is rebuilt, recompiled and diffed, and the result is
the same as a full load and compile."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from showrunner.plan.compiler import Compiler, compile_timeline
from showrunner.plan.diff import _COMPILED_PARTS, diff_timelines
from showrunner.plan.timeline import CompiledScene
from showrunner.show.load import load


def show_text(scenes: int, prompt: str = "first look", bpm: str = "") -> str:
    lines = ["title: edits", bpm, "defaults: {pipeline: longlive}", "scenes:"]
    lines += ["  - name: playing", f'    prompts: "{prompt}"', "    duration: 30", ""]
    for i in range(1, scenes):
        lines += [f"  - name: s{i}", f"    prompts: look {i}", f"    duration: {4 + i % 3}",
                  "    transition: {steps: 4}" if i % 4 == 1 else "    transition: cut", ""]
    return "\n".join(lines)


def test_compiled_parts_name_every_field() -> None:
    fields = {f.name for f in dataclasses.fields(CompiledScene)} - {"index", "_later"}
    assert set(_COMPILED_PARTS) == fields


def test_reload_reuses_unchanged_scenes_and_matches_a_full_load(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    path.write_text(show_text(200), "utf-8")
    first = load(path)
    compiler = Compiler()
    before = compiler.compile(first.show)
    assert compiler.compiled == 200 and compiler.reused == 0

    path.write_text(show_text(200, prompt="second look"), "utf-8")
    again = load(path, previous=first)
    assert again.show == load(path).show  # the same show as a load from scratch
    reused = sum(a is b for a, b in zip(first.show.scenes, again.show.scenes, strict=True))
    assert reused == 199  # every scene but the edited one is the validated model it was
    after = compiler.compile(again.show)
    # the edited scene, and the next one (it enters from what the edited one left on the wire)
    assert compiler.compiled == 2 and compiler.reused == 198
    full = compile_timeline(again.show)
    assert [s.state_out for s in after.scenes] == [s.state_out for s in full.scenes]
    assert [s.actions for s in after.scenes] == [s.actions for s in full.scenes]
    diff = diff_timelines(before, after)
    assert [c.name for c in diff.changed] == ["playing"]


def test_a_change_that_carries_on_recompiles_the_scenes_it_reaches(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    # noise_scale is touched (in s40) from the start, so every state already carries it
    text = show_text(50).replace("  - name: s40\n", "  - name: s40\n    noise_scale: 0.6\n")
    path.write_text(text, "utf-8")
    first = load(path)
    compiler = Compiler()
    compiler.compile(first.show)
    # A noise_scale set in scene s10 is tracked into every later scene.
    path.write_text(text.replace("  - name: s10\n", "  - name: s10\n    noise_scale: 0.5\n"), "utf-8")
    again = load(path, previous=first)
    timeline = compiler.compile(again.show)
    # s10 to s40 carry the new value (s40 sets its own): 31 recompiled, the rest re-used
    assert compiler.compiled == 31 and compiler.reused == 19
    full = compile_timeline(again.show)
    assert [s.state_in for s in timeline.scenes] == [s.state_in for s in full.scenes]


def test_a_value_touched_for_the_first_time_recompiles_every_scene(tmp_path: Path) -> None:
    """Every state carries every value the show touches, so the scenes before the edit change too."""
    path = tmp_path / "show.yaml"
    text = show_text(50)
    path.write_text(text, "utf-8")
    first = load(path)
    compiler = Compiler()
    compiler.compile(first.show)
    path.write_text(text.replace("  - name: s10\n", "  - name: s10\n    noise_scale: 0.5\n"), "utf-8")
    again = load(path, previous=first)
    timeline = compiler.compile(again.show)
    assert compiler.compiled == 50 and compiler.reused == 0
    full = compile_timeline(again.show)
    assert [s.state_in for s in timeline.scenes] == [s.state_in for s in full.scenes]
    assert timeline.scenes[0].state_in.params["noise_scale"] == 0.7  # Scope's default, explicit


def test_inserting_a_scene_shifts_the_rest_without_recompiling_them(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    text = show_text(30)
    path.write_text(text, "utf-8")
    first = load(path)
    compiler = Compiler()
    before = compiler.compile(first.show)
    path.write_text(text.replace("  - name: s1\n", "  - name: new\n    prompts: fresh\n"
                                 "    duration: 2\n\n  - name: s1\n"), "utf-8")
    again = load(path, previous=first)
    after = compiler.compile(again.show)
    assert [s.index for s in after.scenes] == list(range(31))
    assert after.scene("s5").index == 6
    diff = diff_timelines(before, after)
    assert diff.added == ("new",)


def test_a_bad_edit_is_reported_exactly_even_with_reuse(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    text = show_text(20)
    path.write_text(text, "utf-8")
    first = load(path)
    path.write_text(text.replace("    duration: 5\n", "    duration: soon\n", 1), "utf-8")
    import pytest

    from showrunner.errors import ShowErrors

    with pytest.raises(ShowErrors) as with_reuse:
        load(path, previous=first)
    with pytest.raises(ShowErrors) as fresh:
        load(path)
    assert str(with_reuse.value) == str(fresh.value)


def test_a_changed_bpm_revalidates_every_scene(tmp_path: Path) -> None:
    path = tmp_path / "show.yaml"
    path.write_text(show_text(10, bpm="bpm: 120").replace("duration: 4", "duration: 8 beats"), "utf-8")
    first = load(path)
    path.write_text(show_text(10, bpm="bpm: 60").replace("duration: 4", "duration: 8 beats"), "utf-8")
    again = load(path, previous=first)
    assert again.show == load(path).show
    assert not any(a is b for a, b in zip(first.show.scenes, again.show.scenes, strict=True))


def test_successive_edits_compile_as_a_full_compile_does(tmp_path: Path) -> None:
    """Edits one after another (a prompt, a value that carries on, a duration, a cue, a LoRA
    scale, a scene inserted and deleted), each loaded and compiled against the last: every
    plan equals a compile from scratch, scene by scene, messages included."""
    path = tmp_path / "show.yaml"
    text = show_text(40).replace("  - name: s30\n", "  - name: s30\n    noise_scale: 0.6\n")
    path.write_text(text, "utf-8")
    previous = load(path)
    compiler = Compiler()
    compiler.compile(previous.show)
    edits = [
        ("    prompts: look 7\n", "    prompts: look seven\n"),
        ("  - name: s12\n", "  - name: s12\n    noise_scale: 0.4\n"),
        ("    duration: 5\n", "    duration: 9\n"),
        ("  - name: s20\n", "  - name: s20\n    cue: true\n"),
        ("  - name: s3\n", "  - name: s3\n    manage_cache: false\n"),
        ("  - name: s25\n", "  - name: inserted\n    prompts: new\n    duration: 2\n\n  - name: s25\n"),
        ("    prompts: look seven\n", "    prompts: look 7\n"),
        ("  - name: inserted\n    prompts: new\n    duration: 2\n\n", ""),
        ("    noise_scale: 0.4\n", ""),
    ]
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
        path.write_text(text, "utf-8")
        result = load(path, previous=previous)
        timeline = compiler.compile(result.show)
        full = compile_timeline(load(path).show)
        if (old, new) == edits[0]:  # a prompt: that scene and the next one are compiled again
            assert (compiler.compiled, compiler.reused) == (2, 38)
        assert [s.name for s in timeline.scenes] == [s.name for s in full.scenes]
        assert [s.index for s in timeline.scenes] == list(range(len(full.scenes)))
        for mine, theirs in zip(timeline.scenes, full.scenes, strict=True):
            assert (mine.state_in, mine.state_out, mine.actions, mine.at, mine.end, mine.cue) == (
                theirs.state_in, theirs.state_out, theirs.actions, theirs.at, theirs.end, theirs.cue
            ), (old, mine.name)
        previous = result
