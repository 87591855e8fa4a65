"""`showrunner check`: server-free preflight findings, each pointing at the text that causes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from showrunner.plan.preflight import plan_findings
from showrunner.show.lint import Finding, check_paths, lint
from showrunner.show.load import load

HEAD = "title: t\nend: stop\n"
SWITCH = "Scope reloads and reconnects, so the output stops for the load time"
ENDLESS = "fine for an installation (add `hours:` to say so), dangerous on stage"


def findings(tmp_path: Path, text: str) -> list[str]:
    """Formatted findings of a show, with the tmp folder stripped from paths."""
    path = tmp_path / "show.yaml"
    path.write_text(text, "utf-8")
    return [f.format().replace(str(tmp_path) + "/", "") for f in lint(load(path))]


def test_clean_show_has_no_findings(tmp_path: Path) -> None:
    assert findings(tmp_path, HEAD + "scenes:\n  - name: a\n    prompts: x\n    duration: 4\n") == []


def test_finding_format() -> None:
    error = Finding("error", "invalid", "bad", "a.yaml", 3, 5, "scenes[0].at")
    warning = Finding("warning", "unreachable", "never", "a.yaml", 1, 2, "")
    assert error.format() == "a.yaml:3:5: scenes[0].at: bad"
    assert warning.format() == "a.yaml:1:2: warning: never"


# ---------------------------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------------------------


def test_unknown_pipelines_are_warnings(tmp_path: Path) -> None:
    """Plugins are allowed, their facts are unknown (docs/scope.md §2.4)."""
    text = HEAD + "defaults:\n  pipeline: longlife\nscenes:\n  - name: a\n    pipeline: [depth, x]\n"
    assert findings(tmp_path, text) == [
        "show.yaml:4:13: warning: defaults.pipeline: unknown pipeline 'longlife'; did you mean "
        "'longlive'? If it is a plugin, checks that need its facts are skipped",
        "show.yaml:7:16: warning: scenes[0].pipeline[0]: unknown pipeline 'depth'; a plugin? "
        "checks that need its facts are skipped",
        "show.yaml:7:23: warning: scenes[0].pipeline[1]: unknown pipeline 'x'; a plugin? "
        "checks that need its facts are skipped",
    ]


def test_pipeline_switches_and_reloads(tmp_path: Path) -> None:
    """Every switch or load change is a teardown, load and reconnect: a gap (docs/scope.md §4.2)."""
    text = HEAD + """\
scenes:
  - name: a
  - name: b
    pipeline: krea-realtime-video
    goto: {scene: a, times: 1}
  - name: c
    load: {height: 320, width: 576}
"""
    assert findings(tmp_path, text) == [
        f"show.yaml:6:15: warning: scenes[1].pipeline: switches pipeline longlive -> "
        f"krea-realtime-video: {SWITCH}",
        f"show.yaml:7:11: warning: scenes[1].goto: the jump to 'a' switches pipeline "
        f"krea-realtime-video -> longlive: {SWITCH}",
        "show.yaml:9:11: warning: scenes[2].load: changes load settings (height, width): Scope "
        "reloads the pipeline and reconnects, so the output stops for the load time",
    ]


def test_switch_when_looping_back_and_repeating_sections(tmp_path: Path) -> None:
    text = """\
title: t
loop: 2
scenes:
  - name: a
  - name: b
    pipeline: memflow
sections:
  - {name: s, start: a, end: b}
"""
    found = findings(tmp_path, text)
    assert found == [
        f"show.yaml:2:7: warning: loop: looping back switches pipeline memflow -> longlive: {SWITCH}",
        f"show.yaml:6:15: warning: scenes[1].pipeline: switches pipeline longlive -> memflow: "
        f"{SWITCH}",
        f"show.yaml:8:5: warning: sections[0]: repeating section 's' switches pipeline memflow -> "
        f"longlive: {SWITCH}",
    ]


# ---------------------------------------------------------------------------------------------
# LoRA (docs/scope.md §4.3)
# ---------------------------------------------------------------------------------------------

LORAS = HEAD + """\
assets:
  loras:
    glow: a.safetensors
    soft: b.safetensors
    grain: c.safetensors
defaults:
  load:
    loras:
      - {lora: glow}
      - {lora: soft, merge_mode: runtime_peft}
scenes:
  - name: a
    loras: {glow: 0.5, grain: 1}
    keyframes:
      lora.soft:
        - {at: 0, value: 0}
        - {at: 4, value: 1}
    duration: 4
  - name: b
    manage_cache: false
    keyframes:
      lora.soft:
        - {at: 0, value: 0}
        - {at: 4, value: 1}
      lora.glow:
        - {at: 0, value: 1}
    duration: 4
"""


def test_lora_scale_changes(tmp_path: Path) -> None:
    """Scales change only with runtime_peft; each update is a cut under manage_cache (docs/scope.md §4.3)."""
    assert findings(tmp_path, LORAS) == [
        "show.yaml:15:19: warning: scenes[0].loras.glow: LoRA 'glow' is loaded with "
        "permanent_merge: Scope silently ignores runtime scale changes (load it with merge_mode: "
        "runtime_peft)",
        "show.yaml:15:31: warning: scenes[0].loras.grain: LoRA 'grain' is not in `load.loras` "
        "here, so its scale cannot change",
        "show.yaml:28:9: warning: scenes[1].keyframes['lora.glow']: LoRA 'glow' is loaded with "
        "permanent_merge: Scope silently ignores runtime scale changes (load it with merge_mode: "
        "runtime_peft)",
    ]


def test_global_runtime_peft_allows_scales(tmp_path: Path) -> None:
    text = LORAS.replace("  load:\n", "  load:\n    lora_merge_mode: runtime_peft\n")
    assert [f.split(": warning: ")[1].split(":")[0] for f in findings(tmp_path, text)] == [
        "scenes[0].loras.grain",
    ]


def test_a_lora_fade_under_manage_cache_is_warned_once(tmp_path: Path) -> None:
    """One behaviour, one warning: the fade runs with manage_cache off (the compiler does it
    and says so); the linter no longer calls it a string of hard cuts."""
    path = tmp_path / "show.yaml"
    path.write_text(LORAS.replace("  load:\n", "  load:\n    lora_merge_mode: runtime_peft\n"),
                    "utf-8")
    found = [f.format().replace(str(tmp_path) + "/", "") for f in lint(load(path), plan_findings)]
    fades = [f for f in found if "lora.soft" in f]
    assert fades == [
        "show.yaml:18:7: warning: scenes[0].keyframes['lora.soft']: LoRA fade 0:00.75-0:03.75 runs "
        "with manage_cache off (the next scene turns it back on): every lora_scales message resets "
        "the cache while it is on (docs/scope.md §4.3)"
    ]
    assert not any("hard cut" in f for f in found)


# ---------------------------------------------------------------------------------------------
# VACE, prompts, noise (docs/scope.md §4.4, §2.4, §3.3)
# ---------------------------------------------------------------------------------------------

VACE_AND_NOISE = HEAD + """\
assets:
  images:
    ref: {server_path: /x.png}
defaults:
  load: {vace_enabled: false}
  noise_scale: 0.5
scenes:
  - name: a
    vace: {refs: [ref]}
    noise_controller: true
    keyframes:
      noise_scale: [{at: 0, value: 0.2}]
  - name: b
    pipeline: passthrough
    prompts: hello
    first_frame: ref
    input_mode: video
    noise_scale: 0.5
"""


def test_vace_prompts_and_noise(tmp_path: Path) -> None:
    """VACE needs vace_enabled and a VACE pipeline (docs/scope.md §4.4); noise is video-only (§3.3)."""
    assert findings(tmp_path, VACE_AND_NOISE) == [
        "show.yaml:8:16: warning: defaults.noise_scale: noise_scale only works in video mode; "
        "Scope ignores it in text mode",
        "show.yaml:11:11: warning: scenes[0].vace: VACE is used but `vace_enabled` is false in the "
        "load settings; Scope drops VACE inputs",
        "show.yaml:12:23: warning: scenes[0].noise_controller: noise_controller only works in "
        "video mode; Scope ignores it in text mode",
        "show.yaml:14:20: warning: scenes[0].keyframes.noise_scale: noise_scale only works in "
        "video mode; Scope ignores it in text mode",
        f"show.yaml:16:15: warning: scenes[1].pipeline: switches pipeline longlive -> passthrough: "
        f"{SWITCH}",
        "show.yaml:17:14: warning: scenes[1].prompts: pipeline 'passthrough' does not take "
        "prompts; they are ignored",
        "show.yaml:18:18: warning: scenes[1].first_frame: pipeline 'passthrough' has no VACE; "
        "Scope drops VACE inputs",
    ]


def test_video_mode_noise_is_fine(tmp_path: Path) -> None:
    text = HEAD + "defaults:\n  input_mode: video\nscenes:\n  - name: a\n    noise_scale: 0.4\n"
    assert findings(tmp_path, text) == []


SOURCES = HEAD + """defaults:
  pipeline: longlive
  input_source: {source_type: video_file, source_name: a.mp4}
scenes:
  - {name: a, prompts: x, duration: 1}
  - {name: b, prompts: y, duration: 1, input_source: {source_type: video_file, source_name: b.mp4}}
  - {name: c, prompts: z, duration: 1, input_mode: video, input_source: {source_type: ndi, source_name: cam}}
"""


def test_an_input_source_for_a_text_mode_scene_is_warned_where_it_is_set(tmp_path: Path) -> None:
    """Only a video-mode session reads an input source (docs/scope.md §10); it is not sent to a
    text-mode one, so setting it there is a warning at the key (the video-mode scene is fine)."""
    said = ("the scene plays in text mode, where the input source is not sent (only a video-mode "
            "session reads it)")
    assert findings(tmp_path, SOURCES) == [
        f"show.yaml:5:17: warning: defaults.input_source: {said}",
        f"show.yaml:8:54: warning: scenes[1].input_source: {said}",
    ]


def test_empty_prompts_and_zero_weights_fail_check(tmp_path: Path) -> None:
    """An empty prompt list is unsafe and all-zero weights cannot be normalised (docs/scope.md §3.3)."""
    path = tmp_path / "show.yaml"
    path.write_text(HEAD + "scenes:\n  - name: a\n    prompts: [{text: x, weight: 0}]\n", "utf-8")
    code, _, err = check_paths([str(path)])
    assert code == 1
    assert err == (f"{path}:5:14: scenes[0].prompts: all prompt weights are 0; at least one must "
                   "be above 0\n")


# ---------------------------------------------------------------------------------------------
# Flow: unreachable scenes, endless loops
# ---------------------------------------------------------------------------------------------


def test_unreachable_after_unconditional_goto(tmp_path: Path) -> None:
    """A closed-hours scene is played outside the sequence, so it is not reported."""
    text = """\
title: t
hours:
  open: [{start: "10:00", end: "18:00"}]
  closed: night
scenes:
  - name: a
    goto: c
  - name: b
  - name: c
    goto: {scene: a}
  - name: night
"""
    # `night` is the closed-hours scene: never in the sequence, but not unreachable.
    assert findings(tmp_path, text) == [
        "show.yaml:8:11: warning: scenes[1].name: scene 'b' is never reached (scene 'a' always "
        "jumps to 'c')"
    ]


def test_counted_goto_falls_through(tmp_path: Path) -> None:
    text = HEAD + "scenes:\n  - name: a\n  - name: b\n    goto: {scene: a, times: 2}\n  - name: c\n"
    assert findings(tmp_path, text) == []


def test_endless_loop_without_hours(tmp_path: Path) -> None:
    text = "title: t\nloop: forever\nscenes:\n  - name: a\n"
    assert findings(tmp_path, text) == [
        f"show.yaml:2:7: warning: loop: the show loops forever; {ENDLESS}"
    ]
    text = "title: t\nscenes:\n  - name: a\n  - name: b\n    goto: a\n"
    assert findings(tmp_path, text) == [
        f"show.yaml:5:11: warning: scenes[1].goto: jumps back to 'a' every time, so the show "
        f"never ends; {ENDLESS}"
    ]


def test_endless_loop_with_hours_is_fine(tmp_path: Path) -> None:
    text = "title: t\nloop: true\nhours:\n  open: [{start: '10:00', end: '18:00'}]\nscenes:\n  - name: a\n"
    assert findings(tmp_path, text) == []


def test_generated_scene_findings_name_the_iteration(tmp_path: Path) -> None:
    text = HEAD + "scenes:\n  - each: [text, video]\n    scene:\n      name: 's-{{ item }}'\n" \
        "      input_mode: '{{ item }}'\n      noise_scale: 0.5\n"
    assert findings(tmp_path, text) == [
        "show.yaml:8:20: warning: scenes[0].noise_scale: noise_scale only works in video mode; "
        "Scope ignores it in text mode (each item='text')"
    ]


# ---------------------------------------------------------------------------------------------
# check_paths: exit codes, --strict, --json, summaries
# ---------------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return str(path)


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, "loop.yaml", "title: t\nloop: forever\nscenes:\n  - name: a\n")
    code, out, err = check_paths([path])
    assert code == 0
    assert err == f"{path}:2:7: warning: loop: the show loops forever; {ENDLESS}\n"
    assert out == f"{path}: 0 errors, 1 warning\n"
    code, out, err = check_paths([path], strict=True)
    assert code == 1 and "warning" in err


def test_clean_file_passes_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, "ok.yaml", HEAD + "scenes:\n  - name: a\n")
    assert check_paths([path], strict=True) == (0, f"{path}: 0 errors, 0 warnings\n", "")


def test_json_output(tmp_path: Path) -> None:
    good = _write(tmp_path, "a.yaml", "title: t\nloop: forever\nscenes:\n  - name: a\n")
    bad = _write(tmp_path, "b.yaml", "title: t\nscenes:\n  - name: a\n    noise_scale: 5\n")
    code, out, err = check_paths([good, bad], as_json=True)
    assert code == 1 and err == ""
    assert json.loads(out) == [
        {"severity": "warning", "code": "endless-loop", "path": good, "line": 2, "col": 7,
         "key_path": "loop", "message": f"the show loops forever; {ENDLESS}"},
        {"severity": "error", "code": "invalid", "path": bad, "line": 4, "col": 18,
         "key_path": "scenes[0].noise_scale", "message": "must be <= 1 (got 5)"},
    ]


def test_directory_and_summary_per_file(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", HEAD + "scenes:\n  - name: a\n")
    _write(tmp_path, "b.yml", "title: t\n")
    (tmp_path / "notes.txt").write_text("not a show", "utf-8")
    code, out, err = check_paths([str(tmp_path)])
    assert code == 1
    assert out == f"{tmp_path}/a.yaml: 0 errors, 0 warnings\n{tmp_path}/b.yml: 1 error, 0 warnings\n"
    assert err == f"{tmp_path}/b.yml:1:1: missing required key 'scenes'\n"


def test_missing_path(tmp_path: Path) -> None:
    code, _out, err = check_paths([str(tmp_path / "nope.yaml")])
    assert code == 1
    assert err == f"{tmp_path}/nope.yaml:1:1: file not found\n"


@pytest.mark.parametrize("strict", [False, True])
def test_errors_always_fail(tmp_path: Path, strict: bool) -> None:
    path = _write(tmp_path, "bad.yaml", "title: t\nscenes: []\n")
    code, _, err = check_paths([path], strict=strict)
    assert code == 1
    assert err == f"{path}:2:9: scenes: needs at least 1 item\n"


def test_live_inputs_warnings(tmp_path: Path) -> None:
    got = findings(tmp_path, """\
title: t
inputs:
  w: {lfo: {every: 4}}
controls:
  - {note: 1, do: go}
assets:
  loras: {glow: g.safetensors}
defaults:
  load:
    loras: [{lora: glow}]
scenes:
  - name: a
    prompts: x
    modulate:
      noise_scale: {input: w, range: [0, 1]}
      lora.glow: {input: w, range: [0, 1]}
""")
    assert [f.split(": ", 2)[1:] for f in got] == [
        ["warning", "inputs.w.lfo: the show has no `bpm`: this LFO runs at 120 bpm"],
        ["warning", "controls: no `midi: {device: …}` names the controller, so these controls never fire"],
        ["warning", "scenes[0].modulate.noise_scale: noise_scale only works in video mode; Scope ignores "
                    "it in text mode"],
        ["warning", "scenes[0].modulate['lora.glow']: LoRA 'glow' is loaded with permanent_merge: Scope "
                    "silently ignores runtime scale changes (load it with merge_mode: runtime_peft)"],
    ]
