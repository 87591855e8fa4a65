"""Loading show files: positions, templates, includes, generators, and one clean error per problem."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from showrunner.errors import ShowError, ShowErrors
from showrunner.show.lint import check_paths
from showrunner.show.load import (
    LoadResult,
    allowed_folders,
    format_key_path,
    key_location,
    load,
    load_show,
    load_text,
    read_yaml,
    source_location,
)

CORPUS = Path(__file__).parents[1] / "corpus"
CASES = sorted(p.stem for p in CORPUS.glob("*.yaml") if p.with_suffix(".expected").exists())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def errors_of(text: str, tmp_path: Path, name: str = "show.yaml") -> list[str]:
    path = write(tmp_path, name, text)
    with pytest.raises(ShowErrors) as caught:
        load(path)
    return [e.format().replace(str(tmp_path) + "/", "") for e in caught.value.errors]


# ---------------------------------------------------------------------------------------------
# The bad-input corpus: exact messages, every error, exit 1, never a traceback
# ---------------------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize("name", CASES)
def test_corpus(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    code, out, err = check_paths([f"{name}.yaml"])
    expected = (CORPUS / f"{name}.expected").read_text("utf-8")
    assert code == 1
    assert "Traceback" not in err + out
    assert err == expected
    assert out == f"{name}.yaml: {len(expected.splitlines())} error" + (
        "s" if len(expected.splitlines()) != 1 else ""
    ) + ", 0 warnings\n"


def test_corpus_expected_files_are_positioned_lines() -> None:
    for name in CASES:
        for line in (CORPUS / f"{name}.expected").read_text("utf-8").splitlines():
            path, row, col, rest = line.split(":", 3)
            assert path.endswith(".yaml") and int(row) >= 1 and int(col) >= 1 and rest.strip()


# ---------------------------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------------------------

SHOW = """\
title: Positions
bpm: 120
scenes:
  - name: one
    prompts: a forest
    duration: 8 bars
  - name: two
    prompts:
      - text: a lake
        weight: 2
    transition:
      duration: 1 bar
"""


def test_source_location_points_at_values(tmp_path: Path) -> None:
    result = load(write(tmp_path, "show.yaml", SHOW))
    path = str(tmp_path / "show.yaml")
    assert source_location(result, ("scenes", 0, "duration")) == (path, 6, 15)
    assert source_location(result, ("scenes", 1, "prompts", 0, "weight")) == (path, 10, 17)
    assert source_location(result, ("scenes", 1, "transition", "duration")) == (path, 12, 17)
    # a path that was not written falls back to the nearest written parent
    assert source_location(result, ("scenes", 1, "transition", "steps")) == (path, 12, 7)
    assert source_location(result, ()) == (path, 1, 1)
    assert source_location(path, ("bpm",)) == (path, 2, 6)


def test_times_use_bpm_from_the_file(tmp_path: Path) -> None:
    show = load_show(write(tmp_path, "show.yaml", SHOW))
    assert show.scenes[0].duration == 16.0
    assert show.scenes[1].transition is not None
    assert show.scenes[1].transition.duration == 2.0


def test_all_errors_sorted_by_position(tmp_path: Path) -> None:
    text = SHOW.replace("weight: 2", "weight: -2").replace("bpm: 120", "bpm: 120\nfps: 0")
    text += "  - name: three\n    noise_scale: 9\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:3:6: fps: must be > 0 (got 0)",
        "show.yaml:11:17: scenes[1].prompts[0].weight: must be >= 0 (got -2)",
        "show.yaml:15:18: scenes[2].noise_scale: must be <= 1 (got 9)",
    ]


def test_unknown_key_points_at_the_key_with_a_hint(tmp_path: Path) -> None:
    text = "title: t\nscenes:\n  - name: a\n    transition:\n      durration: 2\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:5:7: scenes[0].transition: unknown key 'durration'; did you mean 'duration'?"
    ]


def test_unknown_top_level_key_hint(tmp_path: Path) -> None:
    text = "title: t\nscene:\n  - name: a\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:1:1: missing required key 'scenes'",
        "show.yaml:2:1: unknown key 'scene'; did you mean 'scenes'?",
    ]


def test_error_object_carries_position(tmp_path: Path) -> None:
    path = write(tmp_path, "show.yaml", "title: t\nscenes:\n  - name: a\n    paused: perhaps\n")
    with pytest.raises(ShowErrors) as caught:
        load(path)
    (error,) = caught.value.errors
    assert isinstance(error, ShowError)
    assert (error.path, error.line, error.col) == (str(path), 4, 13)
    assert error.key_path == "scenes[0].paused"
    assert error.message == "expected true or false (got 'perhaps')"
    assert str(caught.value) == error.format()


def test_format_key_path() -> None:
    assert format_key_path(("scenes", 2, "transition", "duration")) == "scenes[2].transition.duration"
    assert format_key_path(("scenes", 0, "keyframes", "lora.glow")) == "scenes[0].keyframes['lora.glow']"
    assert format_key_path(()) == ""


def test_semantic_problems_are_positioned(tmp_path: Path) -> None:
    text = "title: t\nscenes:\n  - name: a\n    goto: b\n  - name: c\n    after: a\n"
    assert errors_of(text, tmp_path) == ["show.yaml:4:11: scenes[0].goto.scene: unknown scene 'b'"]


def test_invalid_bpm_keeps_bar_errors_sensible(tmp_path: Path) -> None:
    text = "title: t\nbpm: 0\nscenes:\n  - name: a\n    duration: 4 bars\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:2:6: bpm: must be > 0 (got 0)",
        "show.yaml:5:15: scenes[0].duration: '4 bars' cannot be converted because `bpm` is invalid",
    ]


# ---------------------------------------------------------------------------------------------
# YAML safety
# ---------------------------------------------------------------------------------------------


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = """\
title: t
scenes:
  - &base
    name: a
    prompts: a forest
    duration: 4
  - <<: *base
    name: b
"""
    show = load_show(write(tmp_path, "show.yaml", text))
    assert [(s.name, s.duration) for s in show.scenes] == [("a", 4.0), ("b", 4.0)]


def test_yaml_12_scalars(tmp_path: Path) -> None:
    # YAML 1.2: `yes` is text and 1:30 is not a sexagesimal number; the time parser reads it.
    text = "title: yes\nscenes:\n  - name: a\n    duration: 1:30\n    notes: 2024-01-01\n"
    show = load_show(write(tmp_path, "show.yaml", text))
    assert show.title == "yes"
    assert show.scenes[0].duration == 90.0
    assert show.scenes[0].notes == "2024-01-01"


def test_all_duplicate_keys_are_reported(tmp_path: Path) -> None:
    text = "title: t\ntitle: u\nscenes:\n  - name: a\n    name: b\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:2:1: duplicate key 'title' (first set on line 1)",
        "show.yaml:5:5: scenes[0]: duplicate key 'name' (first set on line 4)",
    ]


def test_tags_never_construct_objects(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    text = (
        "title: !!python/object/apply:os.system ['touch " + str(marker) + "']\n"
        "scenes:\n  - name: a\n"
    )
    assert errors_of(text, tmp_path) == [
        "show.yaml:1:8: title: tag '!!python/object/apply:os.system' is not allowed; "
        "show files hold plain data"
    ]
    assert not marker.exists()


def test_standard_tags_are_fine(tmp_path: Path) -> None:
    text = "title: !!str 5\nscenes:\n  - name: a\n    duration: !!float 3\n"
    show = load_show(write(tmp_path, "show.yaml", text))
    assert show.title == "5" and show.scenes[0].duration == 3.0


def test_alias_bomb_is_stopped(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "title: t\nvars:\n" + "".join(f"  {line}\n" for line in lines) + "scenes: []\n"
    errors = errors_of(text, tmp_path)
    assert len(errors) == 1 and "too many values" in errors[0]


def test_a_big_file_is_checked_like_any_other(tmp_path: Path) -> None:
    """No size cap in the parse path (1 MB used to be refused): a 10 MB file gets its real errors."""
    path = tmp_path / "huge.yaml"
    path.write_text("title: big\nvars:\n  pad: '" + "x" * 10_000_000 + "'\n", "utf-8")
    with pytest.raises(ShowErrors) as caught:
        load(path)
    assert [e.format() for e in caught.value.errors] == [f"{path}:1:1: missing required key 'scenes'"]
    with pytest.raises(ShowErrors, match="missing required key 'scenes'"):
        load_text("title: big\nvars:\n  pad: '" + "x" * 2_000_000 + "'\n")


def test_invalid_utf8_is_positioned(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: t\nscenes:\n  - name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ShowErrors) as caught:
        load(path)
    assert caught.value.errors[0].format() == f"{path}:3:14: not a UTF-8 text file (invalid byte)"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ShowErrors, match=r"nope\.yaml:1:1: file not found"):
        load(tmp_path / "nope.yaml")
    with pytest.raises(ShowErrors, match="is a directory"):
        load(tmp_path)


def test_control_characters(tmp_path: Path) -> None:
    assert errors_of("title: a\x07b\nscenes: []\n", tmp_path) == [
        "show.yaml:1:9: control character U+0007 is not allowed in YAML"
    ]


def test_comment_only_file_is_empty(tmp_path: Path) -> None:
    assert errors_of("# nothing yet\n", tmp_path) == [
        "show.yaml:1:1: the file is empty; a show file is a mapping with at least `title` and "
        "`scenes`"
    ]


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def test_templates_render_and_keep_native_types(tmp_path: Path) -> None:
    text = """\
title: "{{ name | upper }} live"
bpm: "{{ tempo }}"
vars:
  name: forest
  tempo: 90
  steps: [1000, 500]
  long: "{{ name }} at dusk"
scenes:
  - name: a
    prompts: "{{ long }}"
    duration: "{{ tempo / 45 }}"
    denoising_steps: "{{ steps }}"
    notes: "{% if tempo > 60 %}fast{% else %}slow{% endif %}"
    paused: "{{ tempo < 60 }}"
"""
    show = load_show(write(tmp_path, "show.yaml", text))
    scene = show.scenes[0]
    assert show.title == "FOREST live"
    assert show.bpm == 90
    assert show.vars["long"] == "forest at dusk"
    assert scene.prompts is not None and scene.prompts[0].text == "forest at dusk"
    assert scene.duration == 2.0
    assert scene.denoising_steps == [1000, 500]
    assert scene.notes == "fast"
    assert scene.paused is False


def test_template_errors_point_at_the_value(tmp_path: Path) -> None:
    text = """\
title: t
vars:
  mood: rain
scenes:
  - name: a
    prompts: "{{ mod }}"
  - name: b
    prompts: "{{ 1 / 0 }}"
  - name: c
    prompts: "{{ mood.__class__.__base__ }}"
  - name: d
    prompts: "{{ range }}"
"""
    assert errors_of(text, tmp_path) == [
        "show.yaml:6:14: scenes[0].prompts: undefined template variable 'mod'; did you mean "
        "'mood'?",
        "show.yaml:8:14: scenes[1].prompts: template error: division by zero",
        "show.yaml:10:14: scenes[2].prompts: template not allowed: access to attribute "
        "'__class__' of 'str' object is unsafe",
        "show.yaml:12:14: scenes[3].prompts: template gives a function, not a value",
    ]


def test_template_memory_guards(tmp_path: Path) -> None:
    text = "title: t\nvars:\n  n: \"{{ 10 ** 100000 }}\"\nscenes:\n  - name: a\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:3:6: vars.n: template not allowed: exponent is too large"
    ]


def test_raw_blocks_keep_braces(tmp_path: Path) -> None:
    text = "title: t\nscenes:\n  - name: a\n    prompts: '{% raw %}a sign: {{ open }}{% endraw %}'\n"
    show = load_show(write(tmp_path, "show.yaml", text))
    assert show.scenes[0].prompts is not None
    assert show.scenes[0].prompts[0].text == "a sign: {{ open }}"


def test_keys_are_not_templates(tmp_path: Path) -> None:
    text = "title: t\nvars:\n  '{{ x }}': 1\nscenes:\n  - name: a\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:3:3: vars: '{{ x }}' cannot be a template variable name (use letters, "
        "digits, _)"
    ]


# ---------------------------------------------------------------------------------------------
# Includes and generators
# ---------------------------------------------------------------------------------------------


def test_library_include_and_scene_include(tmp_path: Path) -> None:
    write(tmp_path, "lib/prompts.yaml", "forest: a pine forest\nlakes: [a lake, a tarn]\n")
    write(tmp_path, "parts/more.yaml",
          "scenes:\n  - name: more\n    prompts: '{{ lib.lakes[1] }}'\n    duration: 2\n")
    show_path = write(tmp_path, "show.yaml", """\
title: t
include:
  lib: lib/prompts.yaml
scenes:
  - name: first
    prompts: "{{ lib.forest }}"
  - include: parts/more.yaml
""")
    result = load(show_path)
    assert [s.name for s in result.show.scenes] == ["first", "more"]
    assert result.show.scenes[1].prompts is not None
    assert result.show.scenes[1].prompts[0].text == "a tarn"
    assert result.files == (
        show_path.resolve(),
        (tmp_path / "lib/prompts.yaml").resolve(),
        (tmp_path / "parts/more.yaml").resolve(),
    )
    # values from the included file point into that file
    assert source_location(result, ("scenes", 1, "duration")) == (str(tmp_path / "parts/more.yaml"), 4, 15)


def test_included_scenes_may_be_a_plain_list_and_nest(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "- name: a\n- include: sub/b.yaml\n")
    write(tmp_path, "sub/b.yaml", "- name: b\n")
    show = load_show(write(tmp_path, "show.yaml", "title: t\nscenes:\n  - include: a.yaml\n"))
    assert [s.name for s in show.scenes] == ["a", "b"]


def test_error_in_included_file_points_into_it(tmp_path: Path) -> None:
    write(tmp_path, "parts/bad.yaml", "- name: ok\n- name: bad\n  steps: 3\n")
    errors = errors_of("title: t\nscenes:\n  - include: parts/bad.yaml\n", tmp_path)
    assert errors == ["parts/bad.yaml:3:3: scenes[1]: unknown key 'steps'; did you mean 'denoising_steps'?"]


def test_syntax_error_in_included_file(tmp_path: Path) -> None:
    write(tmp_path, "lib.yaml", "a: [1, 2\n")
    errors = errors_of("title: t\ninclude:\n  lib: lib.yaml\nscenes:\n  - name: a\n", tmp_path)
    assert errors == ["lib.yaml:2:1: expected ',' or ']', but got '<stream end>' (while parsing "
                      "a flow sequence started on line 1)"]


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    errors = errors_of("title: t\nscenes:\n  - include: show.yaml\n", tmp_path)
    assert errors == ["show.yaml:3:14: scenes[0].include: include cycle: show.yaml -> show.yaml"]


def test_include_item_takes_only_include(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "- name: a\n")
    errors = errors_of("title: t\nscenes:\n  - include: a.yaml\n    name: x\n", tmp_path)
    assert errors == ["show.yaml:4:5: scenes[0]: unknown key 'name' next to `include` (an include "
                      "item takes only `include: file.yaml`)"]


def test_each_generator(tmp_path: Path) -> None:
    text = """\
title: t
vars:
  moods: [rain, sun]
scenes:
  - name: intro
  - each: "{{ moods }}"
    as: mood
    scene:
      name: "m{{ loop.index }}-{{ mood }}"
      prompts: "{{ mood }} forest"
      duration: "{{ loop.index0 + 1 }}"
  - each: 2
    scene:
      name: "n{{ item }}"
  - each: [{name: x}, {name: y}]
    as: s
    scene:
      name: "{{ s.name }}{{ '-last' if loop.last else '' }}"
"""
    result = load(write(tmp_path, "show.yaml", text))
    names = [s.name for s in result.show.scenes]
    assert names == ["intro", "m1-rain", "m2-sun", "n0", "n1", "x", "y-last"]
    assert [s.duration for s in result.show.scenes[1:3]] == [1.0, 2.0]
    # generated scenes point at the template text
    assert source_location(result, ("scenes", 2, "prompts"))[1:] == (10, 16)


def test_each_error_names_the_iteration(tmp_path: Path) -> None:
    text = """\
title: t
scenes:
  - each: [4, -1]
    as: d
    scene:
      name: "s{{ loop.index }}"
      duration: "{{ d }}"
"""
    assert errors_of(text, tmp_path) == [
        "show.yaml:7:17: scenes[1].duration: must be a time >= 0 (each d=-1)"
    ]


def test_each_needs_a_scene_and_a_sequence(tmp_path: Path) -> None:
    text = "title: t\nscenes:\n  - each: 3\n    scne: {name: a}\n  - name: b\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:3:5: scenes[0]: an `each` block needs `scene:`, a mapping used as the scene "
        "template",
        "show.yaml:4:5: scenes[0]: unknown key 'scne' in an `each` block; did you mean 'scene'?",
    ]


def test_each_limit(tmp_path: Path) -> None:
    text = "title: t\nscenes:\n  - each: 5000\n    scene: {name: 's{{ item }}'}\n"
    assert errors_of(text, tmp_path) == [
        "show.yaml:3:11: scenes[0].each: `each` would make 5000 scenes; the limit is 1000"
    ]


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def test_load_text_uses_base_dir_for_assets(tmp_path: Path) -> None:
    (tmp_path / "ref.png").write_bytes(b"\x89PNG\r\n")
    text = "title: t\nassets:\n  images:\n    ref: ref.png\nscenes:\n  - name: a\n"
    result = load_text(text, path="inline.yaml", base_dir=tmp_path)
    assert isinstance(result, LoadResult)
    assert result.files == ((tmp_path / "ref.png").resolve(),)
    with pytest.raises(ShowErrors, match=r"inline.yaml:4:10: assets.images.ref: file not found"):
        load_text(text, path="inline.yaml", base_dir=tmp_path / "elsewhere")


def test_read_yaml_returns_plain_data(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "a: [1, 2.5, true, null, '{{ x }}']\n")
    assert read_yaml(path) == {"a": [1, 2.5, True, None, "{{ x }}"]}
    with pytest.raises(ShowErrors):
        read_yaml(write(tmp_path, "b.yaml", "a: !x 1\n"))


@pytest.mark.parametrize(
    ("key", "where", "hint"),
    [
        ("seed", "load", "; did you mean 'base_seed'?"),
        ("height", "scene", "; it belongs under `load` (load.height)"),
        ("steps", "scene", "; did you mean 'denoising_steps'?"),
        ("num_steps", "transition", "; did you mean 'steps'?"),
        ("colour", "scene", ""),
    ],
    ids=lambda v: str(v),
)
def test_unknown_key_hints(key: str, where: str, hint: str, tmp_path: Path) -> None:
    body = {
        "load": f"    load:\n      {key}: 1\n",
        "scene": f"    {key}: 1\n",
        "transition": f"    transition:\n      {key}: 1\n",
    }[where]
    errors = errors_of("title: t\nscenes:\n  - name: a\n" + body, tmp_path)
    assert len(errors) == 1 and errors[0].endswith(f"unknown key {key!r}{hint}")


def test_filters_that_return_generators_give_lists(tmp_path: Path) -> None:
    text = (
        "title: t\nvars:\n  moods: [rain, sun]\nscenes:\n"
        "  - each: \"{{ moods | map('upper') }}\"\n    scene: {name: \"{{ item }}\"}\n"
    )
    assert [s.name for s in load_show(write(tmp_path, "show.yaml", text)).scenes] == ["RAIN", "SUN"]


def test_unusable_file_names(tmp_path: Path) -> None:
    text = (
        'title: t\nassets:\n  images:\n    a: "x\\0y.png"\n    b: "' + "n" * 300 + '.png"\n'
        "scenes:\n  - include: \"" + "m" * 300 + '.yaml"\n'
    )
    errors = errors_of(text, tmp_path)
    assert errors[0] == "show.yaml:4:8: assets.images.a: 'x\\x00y.png' is not a valid file name"
    assert errors[1].startswith("show.yaml:5:8: assets.images.b: 'nnnn")
    assert errors[1].endswith("is not a valid file name")
    assert errors[2].startswith("show.yaml:7:14: scenes[0].include: 'mmm")


MESSAGES = {
    "sink-key": (
        "title: t\ndefaults:\n  output_sinks:\n    hdmi: {name: x}\nscenes:\n  - name: a\n",
        ["show.yaml:4:5: defaults.output_sinks: expected 'ndi', 'spout' or 'syphon' (got 'hdmi')"],
    ),
    "merge-scalar": (
        "title: t\nscenes:\n  - <<: 5\n    name: a\n",
        ["show.yaml:3:9: scenes[0]: `<<` merges a mapping (or a list of mappings)"],
    ),
    "complex-key": (
        "title: t\nscenes:\n  - name: a\n    ? [x]\n    : 1\n",
        ["show.yaml:4:7: scenes[0]: a key must be text, not a list"],
    ),
    "bad-bool": (
        "title: t\nscenes:\n  - name: a\n    paused: !!bool yes\n",
        ["show.yaml:4:13: scenes[0].paused: 'yes' is not true or false"],
    ),
    "hex-and-inf": (
        "title: t\nbpm: .inf\nscenes:\n  - name: a\n    load: {height: 0x1F0, width: 0o1000}\n",
        ["show.yaml:2:6: bpm: must be <= 999 (got inf)"],
    ),
    "undefined-alias": (
        "title: *nope\nscenes: []\n",
        ["show.yaml:1:8: undefined alias 'nope' (define it with &name first)"],
    ),
    "variable-names": (
        "title: t\ninclude:\n  lib-1: lib.yaml\n  lib: lib.yaml\nvars:\n  lib: 2\n"
        "scenes:\n  - name: a\n",
        ["show.yaml:3:3: include: 'lib-1' cannot be a template variable name",
         "show.yaml:6:3: vars: 'lib' is already an `include` name"],
    ),
    "wrong-shapes": (
        "title: t\nvars: [1, 2]\ninclude: x.yaml\nscenes:\n  - name: a\n",
        ["show.yaml:2:7: vars: expected a mapping (got a list)",
         "show.yaml:3:10: include: expected a mapping (got 'x.yaml')"],
    ),
    "include-not-a-name": (
        "title: t\nscenes:\n  - include: [a, b]\n",
        ["show.yaml:3:14: scenes[0].include: `include` needs a file name"],
    ),
    "include-not-scenes": (
        "title: t\nscenes:\n  - include: lib.yaml\n",
        ["show.yaml:3:14: scenes[0].include: an included scenes file must be a list of scenes or a "
         "mapping with `scenes:` (a list)"],
    ),
    "include-binary": (
        "title: t\nscenes:\n  - name: a\n  - include: bin.yaml\n",
        ["bin.yaml:1:1: not a text file (binary data)"],
    ),
    "asset-is-a-folder": (
        "title: t\nassets:\n  images:\n    a: folder\nscenes:\n  - name: a\n",
        ["show.yaml:4:8: assets.images.a: 'folder' is a directory, not an image file"],
    ),
    "name-too-long": (
        "title: t\nscenes:\n  - name: " + "a" * 201 + "\n",
        ["show.yaml:3:11: scenes[0].name: is too long (at most 200 characters)"],
    ),
    "template-too-long": (
        "title: t\nscenes:\n  - name: a\n    notes: \"{% for i in range(20000) %}abcdefgh{% endfor %}\"\n",
        ["show.yaml:4:12: scenes[0].notes: template result is too long"],
    ),
    "template-too-deep": (
        "title: t\nscenes:\n  - name: a\n    notes: \"{{ " + "(" * 400 + "1" + ")" * 400 + " }}\"\n",
        ["show.yaml:4:12: scenes[0].notes: template error: expression is nested too deeply"],
    ),
    "template-attribute": (
        "title: t\nvars:\n  m: {a: 1}\nscenes:\n  - name: \"{{ m.b }}\"\n",
        ["show.yaml:5:11: scenes[0].name: template error: 'dict object' has no attribute 'b'"],
    ),
    "each-over-mapping": (
        "title: t\nvars:\n  m: {a: 1, b: x}\nscenes:\n  - each: \"{{ m }}\"\n    as: kv\n    scene:\n"
        "      name: \"{{ kv.key }}\"\n      duration: \"{{ kv.value }}\"\n",
        ["show.yaml:9:17: scenes[1].duration: 'x' is not a time: seconds (12.5), 'mm:ss', '1m30s', "
         "'500ms', '8 bars' or '16 beats' (each kv #2)"],
    ),
    "each-error-once": (
        "title: t\nscenes:\n  - each: [a, b, c]\n    scene:\n      name: \"{{ item }}\"\n"
        "      paused: 3\n",
        ["show.yaml:6:15: scenes[0].paused: expected true or false (got 3) (each item='a')"],
    ),
    "shorthand-types": (
        "title: t\ndefaults:\n  pipeline: 0\nassets:\n  images:\n    a: 5\nscenes:\n  - name: a\n"
        "    prompts: 5\n    after: 3\n    transition: [1]\n",
        ["show.yaml:3:13: defaults.pipeline: expected a pipeline id or a list of pipeline ids "
         "(got 0)",
         "show.yaml:6:8: assets.images.a: expected a file path or {file | server_path} (got 5)",
         "show.yaml:9:14: scenes[0].prompts: expected a prompt (text) or a list of prompts (got 5)",
         "show.yaml:10:12: scenes[0].after: expected a scene name or {scene, offset} (got 3)",
         "show.yaml:11:17: scenes[0].transition: expected 'cut', a duration or {duration | steps, "
         "method} (got a list)"],
    ),
    "keyframe-nan": (
        "title: t\nscenes:\n  - name: a\n    keyframes:\n      noise_scale:\n"
        "        - {at: 0, value: .nan}\n",
        ["show.yaml:6:26: scenes[0].keyframes.noise_scale[0].value: must be between 0 and 1"],
    ),
}


@pytest.mark.parametrize("case", list(MESSAGES), ids=str)
def test_messages(case: str, tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text("a: 1\n", "utf-8")
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01")
    (tmp_path / "folder").mkdir()
    text, expected = MESSAGES[case]
    assert errors_of(text, tmp_path) == expected


# ---------------------------------------------------------------------------------------------
# Files: only regular files, only inside the show's folder (and --allow-path folders), bounded
# ---------------------------------------------------------------------------------------------


def _load_in_thread(path: Path, **kwargs: Any) -> list[str]:
    """The errors of loading `path`; fails (instead of hanging the suite) if the load blocks."""
    done = threading.Event()
    found: list[list[str]] = []

    def go() -> None:
        try:
            load(path, **kwargs)
            found.append([])
        except ShowErrors as exc:
            found.append([e.format() for e in exc.errors])
        finally:
            done.set()

    threading.Thread(target=go, daemon=True).start()
    if not done.wait(10):
        for fifo in path.parent.glob("*"):
            if fifo.is_fifo():  # unblock the reader so the thread can end
                with open(fifo, "wb"):
                    pass
        pytest.fail("loading blocked")
    return [line.replace(str(path.parent) + "/", "") for line in found[0]]


def test_a_fifo_show_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "show.yaml")
    assert _load_in_thread(tmp_path / "show.yaml") == [
        "show.yaml:1:1: is a FIFO, not a regular file"
    ]


def test_a_fifo_or_device_include_is_refused_at_the_include(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    show = write(tmp_path, "show.yaml", (
        "title: t\ninclude:\n  lib: pipe.yaml\nscenes:\n  - name: a\n  - include: zero.yaml\n"
    ))
    # /dev is allowed here, so that the device itself (not its folder) is what is refused.
    assert _load_in_thread(show, allow=["/dev"]) == [
        "show.yaml:3:8: include.lib: included file 'pipe.yaml' is a FIFO, not a regular file",
        "show.yaml:6:14: scenes[1].include: included file 'zero.yaml' is a device, not a regular "
        "file",
    ]


def test_a_show_file_linked_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "show.yaml").symlink_to("/dev/zero")
    assert _load_in_thread(tmp_path / "show.yaml") == [
        "show.yaml:1:1: is a device, not a regular file"
    ]


def test_an_include_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    assert errors_of("title: t\ninclude:\n  lib: lib\nscenes:\n  - name: a\n", tmp_path) == [
        "show.yaml:3:8: include.lib: included file 'lib' is a directory, not a file"
    ]


OUTSIDE = "is outside the show's folder (allow its folder with --allow-path DIR)"


def test_includes_outside_the_show_folder_are_refused(tmp_path: Path) -> None:
    show_dir = tmp_path / "show"
    show_dir.mkdir()
    (tmp_path / "secret.yaml").write_text("- name: stolen\n  prompts: secret\n")
    (show_dir / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    up = "../" * (len(show_dir.parts) + 2) + "etc/hostname"
    text = (
        f"title: t\ninclude:\n  host: {up}\n  pw: /etc/passwd\nscenes:\n  - name: a\n"
        "    prompts: \"{{ host }}\"\n  - include: link.yaml\n  - include: ../secret.yaml\n"
    )
    assert errors_of(text, show_dir) == [
        f"show.yaml:3:9: include.host: included file '{up}' {OUTSIDE}",
        f"show.yaml:4:7: include.pw: included file '/etc/passwd' {OUTSIDE}",
        f"show.yaml:8:14: scenes[1].include: included file 'link.yaml' {OUTSIDE}",
        f"show.yaml:9:14: scenes[2].include: included file '../secret.yaml' {OUTSIDE}",
    ]


def test_an_include_inside_an_include_is_confined_too(tmp_path: Path) -> None:
    write(tmp_path, "show/lib/scenes.yaml", "- include: ../../secret.yaml\n")
    write(tmp_path, "secret.yaml", "- name: stolen\n")
    errors = errors_of("title: t\nscenes:\n  - include: lib/scenes.yaml\n", tmp_path / "show")
    assert errors == [f"lib/scenes.yaml:1:12: scenes[0].include: included file "
                      f"'../../secret.yaml' {OUTSIDE}"]


def test_assets_outside_the_show_folder_are_refused_at_load(tmp_path: Path) -> None:
    show_dir = tmp_path / "show"
    show_dir.mkdir()
    (tmp_path / "secret.png").write_bytes(b"\x89PNG")
    (show_dir / "link.png").symlink_to(tmp_path / "secret.png")
    text = (
        "title: t\nassets:\n  images:\n    pw: /etc/passwd\n    link: link.png\n"
        "    up: {file: ../secret.png}\n    gone: ../missing.png\nscenes:\n  - name: a\n"
        "    vace: {refs: [pw, link, up]}\n"
    )
    assert errors_of(text, show_dir) == [
        f"show.yaml:4:9: assets.images.pw: image file '/etc/passwd' {OUTSIDE}",
        f"show.yaml:5:11: assets.images.link: image file 'link.png' {OUTSIDE}",
        f"show.yaml:6:16: assets.images.up.file: image file '../secret.png' {OUTSIDE}",
        # Outside the folder nothing is looked at: not even whether the file exists.
        f"show.yaml:7:11: assets.images.gone: image file '../missing.png' {OUTSIDE}",
    ]


def test_an_asset_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    text = "title: t\nassets:\n  images:\n    a: pipe.png\n    b: zero.png\nscenes:\n  - name: a\n"
    assert _load_in_thread(write(tmp_path, "show.yaml", text), allow=["/dev"]) == [
        "show.yaml:4:8: assets.images.a: 'pipe.png' is a FIFO, not an image file",
        "show.yaml:5:8: assets.images.b: 'zero.png' is a device, not an image file",
    ]


def test_allowed_folders_let_includes_and_assets_in(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    write(tmp_path, "shared/prompts.yaml", "base: a shared forest\n")
    (shared / "ref.png").write_bytes(b"\x89PNG")
    show = write(tmp_path, "show/show.yaml", (
        "title: t\ninclude:\n  lib: ../shared/prompts.yaml\nassets:\n  images:\n"
        "    ref: ../shared/ref.png\nscenes:\n  - name: a\n    prompts: \"{{ lib.base }}\"\n"
        "    vace: {refs: [ref]}\n"
    ))
    with pytest.raises(ShowErrors):
        load(show)
    result = load(show, allow=[shared])
    assert result.show.scenes[0].prompts is not None
    assert result.show.scenes[0].prompts[0].text == "a shared forest"
    assert (shared / "ref.png").resolve() in result.files
    # The hot reload loads in tasks and threads started by the run: it inherits the folders.
    with allowed_folders([str(shared)]):
        assert load(show).show.title == "t"
    with pytest.raises(ShowErrors):
        load(show)


def test_load_text_confines_reads_to_its_base_dir(tmp_path: Path) -> None:
    write(tmp_path, "lib.yaml", "a: 1\n")
    text = "title: t\ninclude:\n  lib: ../lib.yaml\nscenes:\n  - name: a\n"
    with pytest.raises(ShowErrors, match=f"included file '../lib.yaml' {re.escape(OUTSIDE)}"):
        load_text(text, path="inline.yaml", base_dir=tmp_path / "base")
    assert load_text(text, path="inline.yaml", base_dir=tmp_path / "base",
                     allow=[tmp_path]).show.title == "t"


def test_a_symlinked_show_file_reads_next_to_where_it_is_named(tmp_path: Path) -> None:
    write(tmp_path, "library/show.yaml", "title: t\ninclude:\n  lib: lib.yaml\nscenes:\n  - name: a\n")
    write(tmp_path, "stage/lib.yaml", "a: 1\n")
    (tmp_path / "stage" / "show.yaml").symlink_to(tmp_path / "library" / "show.yaml")
    assert load(tmp_path / "stage" / "show.yaml").show.title == "t"


@pytest.mark.anyio
async def test_the_hot_reload_reads_the_allowed_folders_too(tmp_path: Path) -> None:
    """`run` sets the folders once; the watch's loads (tasks, worker threads) inherit them."""
    import asyncio

    from showrunner.reload.watch import watch_show

    write(tmp_path, "shared/prompts.yaml", "base: a shared forest\n")
    show = write(tmp_path, "show/show.yaml", (
        "title: t\ninclude:\n  lib: ../shared/prompts.yaml\nscenes:\n  - name: a\n"
        "    prompts: \"{{ lib.base }}\"\n"
    ))
    stop = asyncio.Event()
    with allowed_folders([tmp_path / "shared"]):
        first = load(show)
        items = watch_show(show, stop_event=stop, initial=first, debounce_ms=20, step_ms=10)
        task = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0.2)
        show.write_text(show.read_text("utf-8").replace("title: t", "title: edited"), "utf-8")
        item = await asyncio.wait_for(task, 10)
    stop.set()
    await items.aclose()
    assert isinstance(item, LoadResult), item
    assert item.show.title == "edited"


# -- an edit inside one scene: that scene alone is read again ----------------------------------

EDITED = """\
title: one-scene edits
defaults: {pipeline: longlive}
assets:
  images: {ref: ref.png}
scenes:
  - name: a
    prompts: first look
    duration: 4
  # the second act
  - name: b
    prompts:
      - text: "a harbour, dusk"
        weight: 1
    duration: 5
    vace: {refs: [ref]}
  -   name: c
      prompts: third look
      duration: 6
      goto: {scene: a, times: 1}
  - name: d
    prompts: |
      a long prompt
      on two lines
    duration: 7
sections:
  - {name: middle, start: b, end: c}
"""

EDITS = [  # (old text, new text, the scene edited)
    ("    prompts: first look\n", "    prompts: a new look\n", 0),  # the same lines
    ("    duration: 5\n", "    duration: 5\n    noise_scale: 0.4\n", 1),  # a line more: later scenes move
    ("      duration: 6\n", "      duration: 6.5\n", 2),  # an odd indentation
    ("      on two lines\n", "      on three\n      lines\n", 3),  # the last scene, before `sections`
    ("    duration: 4\n", "    duration: 4\n  - name: new\n    duration: 1\n", 0),  # a scene more
    ("    duration: 5\n", "    duration: soon\n", 1),  # an error
    ("  - name: a\n", "  - name: renamed\n", 0),  # breaks the goto and the section
    ("    duration: 4\n", "    duration: 4\nextra: 1\n", 0),  # leaves the scene's mapping
    ("      weight: 1\n", "      weight: 0\n", 1),  # a cross-field problem (all weights 0)
    ("title: one-scene edits\n", "title: another title\n", None),  # outside the scenes
]


def _outcome(path: Path, previous: LoadResult | None, edited: int | None) -> tuple[Any, ...]:
    """What a load gives: the show, or its errors, and the positions a reload's errors use (of
    every scene, of the values outside the scenes and of every value of the edited scene)."""
    try:
        result = load(path, previous=previous)
    except ShowErrors as errors:
        return ("errors", str(errors))
    scenes = result.show.scenes
    positions = [source_location(result, ("scenes", k)) for k in range(len(scenes))]
    outside = [source_location(result, loc) for loc in (
        ("title",), ("sections", 0, "end"), ("assets", "images", "ref"), ("scenes",))]
    own = [] if edited is None or edited >= len(scenes) else [
        source_location(result, ("scenes", edited, key))
        for key in sorted(scenes[edited].model_fields_set)]
    return ("show", result.show, result.files, positions, outside, own)


@pytest.mark.parametrize("edit", EDITS, ids=[f"edit{i}" for i in range(len(EDITS))])
def test_an_edit_inside_one_scene_loads_as_a_full_load_does(
    tmp_path: Path, edit: tuple[str, str, int | None]
) -> None:
    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    path = write(tmp_path, "show.yaml", EDITED)
    first = load(path)
    old, new, edited = edit
    path.write_text(EDITED.replace(old, new), "utf-8")
    assert _outcome(path, first, edited) == _outcome(path, None, edited)


def test_an_edit_inside_one_scene_reads_only_that_scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    path = write(tmp_path, "show.yaml", EDITED)
    previous = load(path)
    import showrunner.show.load as loader

    parsed: list[str] = []
    real = loader.compose

    def compose(text: str, **kwargs: Any) -> Any:
        parsed.append(text)
        return real(text, **kwargs)

    monkeypatch.setattr(loader, "compose", compose)
    text = EDITED
    # successive edits, each against the last: every one is read alone and equals a full load
    for old, new, edited in [EDITS[0], EDITS[1], EDITS[3], ("    duration: 4\n", "    duration: 3\n", 0)]:
        text = text.replace(old, new)
        path.write_text(text, "utf-8")
        parsed.clear()
        result = load(path, previous=previous)
        assert len(parsed) == 1 and parsed[0].lstrip().startswith("name:")
        assert "title" not in parsed[0] and "sections" not in parsed[0]
        monkeypatch.setattr(loader, "compose", real)
        assert _outcome(path, previous, edited) == _outcome(path, None, edited)
        monkeypatch.setattr(loader, "compose", compose)
        previous = result
    untouched = load(path, previous=previous)  # the same text again (an asset changed): a full read
    assert untouched.show == previous.show


def test_random_edits_load_as_a_full_load_does(tmp_path: Path) -> None:
    """Characters typed or deleted anywhere in a plain show (300 edits, each against the last
    good version or the first): the load that re-uses it gives what a full load gives, the same
    show and positions or the same errors."""
    import random

    rng = random.Random(15)
    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    path = write(tmp_path, "show.yaml", EDITED)
    first = previous = load(path)
    text = EDITED
    typed = [" ", "  ", "\n", "\n    ", ":", "- ", "a", "7", "#", "'", '"', "[", "]", "{", "}",
             "\n  - name: x\n", "\n    duration: 2", "\n    noise_scale: 0.5", "\t", "|\n",
             "&x ", "*x", "{{ 1 }}", "<<: {}", "\n---\n",
             "\n...\n", "%", "\r\n", "\r", ">\n", "? ", "!!str ", "\u00e9", "\n      more",
             "\n    goto: a", "\n    after: b", "\n    cue: true", "\n  #", "\n\n"]
    for _ in range(300):
        if rng.random() < 0.3:  # from the first version again
            text, previous = EDITED, first
        at = rng.randrange(len(text))
        if rng.random() < 0.5:
            new_text = text[:at] + rng.choice(typed) + text[at:]
        else:
            new_text = text[:at] + text[at + rng.randint(1, 6):]
        path.write_text(new_text, "utf-8")
        # the scene the edit lands in (its values' positions are compared too)
        before = text[:at]
        edited = before.count("\n  - ") - 1 if "\nsections:" not in before else None
        edited = edited if edited is not None and edited >= 0 else None
        got, want = _outcome(path, previous, edited), _outcome(path, None, edited)
        if got[0] == want[0] == "show" and got[-1] != want[-1]:
            # an edit before a scene's first key leaves its text as it was: it is re-used, and
            # its values are placed at the scene (a reload's errors are positioned so)
            assert edited is not None
            scene_at = want[3][edited]
            assert all(g in (w, scene_at) for g, w in zip(got[-1], want[-1], strict=True))
            got, want = got[:-1], want[:-1]
        assert got == want, new_text
        if got[0] == "show":
            previous, text = load(path, previous=previous), new_text


# -- scenes built straight from the text: their positions are read when first asked for ---------

PLAIN_SCENES = EDITED + """\
more:
  - name: after the scenes
"""
PLAIN_SCENES = PLAIN_SCENES.replace("more:\n  - name: after the scenes\n", "") + (
    "# a comment at the end\n")
MIXED = """\
title: "mixed \u00e9"
scenes:
  - name: plain
    prompts: [{text: 'a quoted "one"', weight: 0.5}, {text: "caf\u00e9", weight: 1}]
    duration: 4
  - name: anchored
    prompts: &p a shared prompt
    duration: 4
  - name: alias
    prompts: *p
    duration: 0x10
  - name: templated
    prompts: "{{ 'x' ~ 'y' }}"
    duration: 4
  - name: empty-value
    prompts: a
    notes:
    duration: 4
  - name: before-a-dash-alone
    prompts: a
    duration: 4
  -
    name: below-its-dash
    prompts: b
    duration: 4
  - name: before-a-dash-and-a-comment
    prompts: a
    duration: 4
  # between
  -   # the next one
    name: below-its-dash-2
    prompts: >
      folded
      text
    duration: 1.5e1
bpm: 120
"""


def _written(node: Any, loc: tuple[Any, ...], values: dict[Any, Any], keys: dict[Any, Any]) -> None:
    """ruamel's line and column of every value and key under `node`, by key path."""
    from showrunner.show import yaml as Y

    values[loc] = (node.line, node.col)
    if node.kind == Y.MAP:
        for key, value in node.value:
            keys[(*loc, key.value)] = (key.line, key.col)
            _written(value, (*loc, key.value), values, keys)
    elif node.kind == Y.SEQ:
        for i, item in enumerate(node.value):
            _written(item, (*loc, i), values, keys)


@pytest.mark.parametrize("text", [EDITED, PLAIN_SCENES, MIXED, EDITED.replace("\n", "\r\n")],
                         ids=["plain", "comment at the end", "mixed", "crlf"])
def test_positions_in_scenes_are_exact(tmp_path: Path, text: str) -> None:
    """Every value and key inside the scenes is where the exact parser (ruamel) puts it, for
    scenes built straight into data as for the others, asked for in any order."""
    from showrunner.show import yaml as Y

    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    path = write(tmp_path, "show.yaml", text)
    built = Y.compose(text, plain="scenes").root
    assert built is not None and any(  # scenes built straight into data are among them
        item.tag == Y.PLAIN_TAG for k, v in built.value if k.value == "scenes" for item in v.value)
    root = Y.compose(text, fast=False).root
    scenes = next(v for k, v in root.value if k.value == "scenes")
    values: dict[Any, Any] = {}
    keys: dict[Any, Any] = {}
    _written(scenes, ("scenes",), values, keys)
    result = load(path)
    for loc in sorted(values, key=lambda loc: (-len(loc), str(loc))):  # the deepest first
        assert source_location(result, loc) == (str(path), *values[loc]), loc
    for loc in sorted(keys, key=str, reverse=True):
        assert key_location(result, loc) == (str(path), *keys[loc]), loc


def test_an_error_inside_a_plain_scene_is_positioned(tmp_path: Path) -> None:
    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    text = EDITED.replace("      weight: 1\n", "      weight: lots\n")
    assert errors_of(text, tmp_path) == [
        "show.yaml:13:17: scenes[1].prompts[0].weight: expected a number (got 'lots')"]


def test_random_texts_load_the_same_with_scenes_built_as_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Characters typed anywhere in two shows (400 texts): a load that builds plain scenes
    straight into data gives what building every scene as nodes gives, the same show or the
    same errors at the same positions."""
    import random

    import showrunner.show.load as loader

    rng = random.Random(16)
    (tmp_path / "ref.png").write_bytes(b"\x89PNG")
    path = tmp_path / "show.yaml"
    typed = [" ", "\n", "\n    ", "# c\n", "\n  -\n    name: z\n    duration: 1\n", "\r\n", "\u00e9",
             "\n  -   # k\n    name: w\n    duration: 3\n", "\n    noise_scale: 0.5", "'", '"',
             "[", "]", "{", "}", ":", "- ", "7", "-1", "\n    duration: soon", "\n    weight: x",
             "\t", "&x ", "*x", "{{ 1 }}", "!!str ", "\n    bogus: 1", "\n      more"]
    real = loader.compose

    def outcome(plain: bool) -> tuple[Any, ...]:
        monkeypatch.setattr(loader, "compose", real if plain else (
            lambda text, **kwargs: real(text, **{**kwargs, "plain": None})))
        try:
            return ("show", load(path).show)
        except ShowErrors as errors:
            return ("errors", str(errors))

    shows = errors = 0
    for _ in range(400):
        text = rng.choice([EDITED, MIXED])
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(typed) + text[at:]
        path.write_bytes(text.encode("utf-8"))
        got = outcome(plain=True)
        assert got == outcome(plain=False), text
        shows += got[0] == "show"
        errors += got[0] == "errors"
    assert shows > 20 and errors > 200  # both kinds of outcome were compared


def test_a_plain_scene_is_reused_whatever_characters_its_text_holds(tmp_path: Path) -> None:
    """`*` and `&` inside quotes are no alias or anchor: a plain scene is re-used by the next
    loads (edits outside the scenes) like any other, and gives what a full load gives."""
    text = ('title: t\nscenes:\n  - name: a\n    prompts: "a *bold* look & feel"\n    duration: 4\n'
            '  - name: b\n    prompts: x\n    duration: 2\n')
    path = write(tmp_path, "show.yaml", text)
    previous = load(path)
    for title in ("u", "v"):
        path.write_text(text.replace("title: t", f"title: {title}"), "utf-8")
        result = load(path, previous=previous)
        assert result.show.scenes[0] is previous.show.scenes[0]
        assert result.show == load(path).show
        previous = result
