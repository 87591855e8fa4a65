"""`showrunner import`: Scope's own timeline files become shows that play the same looks at the
same moments (docs/scope.md §5.1 legacy export, §5.2 workflow file, §5.3 how the UI plays them)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from showrunner.errors import ShowErrors
from showrunner.importer.convert import ImportResult, import_data, import_file
from showrunner.show.model import Show, Transition

FIXTURES = Path(__file__).parents[1] / "fixtures" / "scope"
HAS_LOAD = importlib.util.find_spec("showrunner.show.load") is not None
HAS_TIMELINE = importlib.util.find_spec("showrunner.plan.timeline") is not None


def _parse(result: ImportResult) -> Show:
    data = YAML(typ="safe", pure=True).load(result.yaml_text)
    return Show.model_validate(data)


def _starts(show: Show) -> list[float]:
    """Scene start times as the model defines them: `at`, else the previous scene's end."""
    starts: list[float] = []
    clock = 0.0
    for scene in show.scenes:
        start = scene.at if scene.at is not None else clock
        starts.append(start)
        clock = start + (scene.duration or 0.0)
    return starts


def _end(show: Show) -> float:
    last = show.scenes[-1]
    assert last.duration is not None
    return _starts(show)[-1] + last.duration


def _boundaries(name: str) -> tuple[list[float], float]:
    data = json.loads((FIXTURES / name).read_text("utf-8"))
    if "prompts" in data and "format" not in data:
        segments = data["prompts"]
        return [s["startTime"] for s in segments], segments[-1]["endTime"]
    entries = data["timeline"]["entries"]
    return [e["start_time"] for e in entries], entries[-1]["end_time"]


def _transitions(show: Show) -> list[tuple[int | None, str | None]]:
    out: list[tuple[int | None, str | None]] = []
    for scene in show.scenes:
        assert isinstance(scene.transition, Transition)
        out.append((scene.transition.steps, scene.transition.method))
    return out


def _error(excinfo: pytest.ExceptionInfo[ShowErrors]) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------------------------------------
# The example-shaped files (docs/scope.md §5.4)
# ---------------------------------------------------------------------------------------------


def test_krea_v20_without_transition_steps_blends_linear_4() -> None:
    """A v2.0 krea file has no transitionSteps: the UI plays krea text mode as a 4-step linear
    transition, and the first block as a cut (docs/scope.md §5.3, §5.4)."""
    result = import_file(FIXTURES / "timeline-krea-shapes.json")
    show = _parse(result)
    starts, end = _boundaries("timeline-krea-shapes.json")
    assert result.kind == "timeline-2.0"
    assert [s.name for s in show.scenes] == ["seg-01", "seg-02", "seg-03"]
    assert _starts(show) == starts == [0, 18.4, 37.9]
    assert _end(show) == pytest.approx(end)
    assert _transitions(show) == [(0, None), (4, "linear"), (4, "linear")]
    assert show.end == "stop"
    assert show.title == "timeline-krea-shapes"


def test_krea_settings_map_to_defaults() -> None:
    """settings → load params and runtime defaults per lib/workflowSettings.ts (docs/scope.md §5.1, §8-B)."""
    show = _parse(import_file(FIXTURES / "timeline-krea-shapes.json"))
    d = show.defaults
    assert d.pipeline == ["krea-realtime-video"]
    assert (d.load.height, d.load.width, d.load.base_seed) == (480, 832, 42)
    assert d.load.quantization is None  # null is Scope's default
    assert d.load.lora_merge_mode == "permanent_merge"
    assert d.denoising_steps == [1000, 750]
    assert d.manage_cache is True
    assert d.kv_cache_attention_bias == 0.3
    assert show.scenes[0].prompts is not None
    assert show.scenes[0].prompts[0].weight == 100


def test_noise_settings_in_text_mode_are_dropped_with_a_warning() -> None:
    """Scope clears noise_scale in text mode (docs/scope.md §3.3): say so instead of carrying it."""
    result = import_file(FIXTURES / "timeline-krea-shapes.json")
    show = _parse(result)
    assert show.defaults.noise_scale is None and show.defaults.noise_controller is None
    assert any("settings.noiseScale: not imported" in w for w in result.warnings)
    assert any("settings.noiseController: not imported" in w for w in result.warnings)


def test_memflow_v21_steps_zero_are_cuts() -> None:
    """v2.1 files store transitionSteps 0 on every segment: hard prompt switches (docs/scope.md §5.3)."""
    result = import_file(FIXTURES / "timeline-memflow-kitchen.json")
    show = _parse(result)
    starts, end = _boundaries("timeline-memflow-kitchen.json")
    assert result.kind == "timeline-2.1"
    assert result.warnings == ()
    assert _starts(show) == starts
    assert _end(show) == pytest.approx(end)
    assert all(scene.transition is not None and scene.transition.is_cut for scene in show.scenes)
    assert "transition: cut" in result.yaml_text
    assert show.defaults.input_mode == "text"
    assert show.defaults.load.base_seed == 7
    assert show.defaults.kv_cache_attention_bias == 0.3


def test_sdv2_v20_steps_noise_and_cache() -> None:
    """sdv2 (video mode by default) keeps denoisingSteps [700,500], noise 0.8, manageCache false;
    its default transition is 0 steps, so every segment cuts (docs/scope.md §5.3, §5.4)."""
    result = import_file(FIXTURES / "timeline-sdv2-animals.json")
    show = _parse(result)
    starts, end = _boundaries("timeline-sdv2-animals.json")
    d = show.defaults
    assert d.pipeline == ["streamdiffusionv2"]
    assert d.denoising_steps == [700, 500]
    assert d.noise_scale == 0.8 and d.noise_controller is True
    assert d.manage_cache is False
    assert (d.load.height, d.load.width) == (512, 512)
    assert _starts(show) == starts
    assert _end(show) == pytest.approx(end)
    assert all(scene.transition is not None and scene.transition.is_cut for scene in show.scenes)
    assert result.warnings == ()


def test_durations_carry_no_float_noise() -> None:
    """16.9 - 11.0 is 5.8999999999999995 in floats; the file says 5.9."""
    text = import_file(FIXTURES / "timeline-sdv2-animals.json").yaml_text
    assert "duration: 5.9\n" in text
    assert "9999" not in text and "0000" not in text


def test_gap_holds_previous_look_and_is_explained() -> None:
    """Between segments the UI keeps the last active one (docs/scope.md §5.3): the scene before a gap
    lasts until the next segment starts, with a warning and a comment."""
    result = import_file(FIXTURES / "timeline-gaps-blends.json")
    show = _parse(result)
    assert _starts(show) == [0, 4, 12]
    assert [s.duration for s in show.scenes] == [4, 8, 8.25]
    assert _end(show) == 20.25
    assert any("prompts[1]: gap 9.5-12 s" in w for w in result.warnings)
    assert "# The file has a gap at 9.5-12 s" in result.yaml_text
    assert len(result.warnings) == 1  # the editor-internal `color`/`isLive` fields are known


def test_blended_prompts_keep_ui_weights() -> None:
    """Weights stay 0-100 as the UI wrote them; Scope normalises them (docs/scope.md §3.3, §8-J)."""
    show = _parse(import_file(FIXTURES / "timeline-gaps-blends.json"))
    prompts = show.scenes[1].prompts
    assert prompts is not None
    assert [(p.text, p.weight) for p in prompts] == [
        ("a foggy harbour at night", 70),
        ("a lighthouse beam sweeping the water", 30),
    ]


def test_per_segment_transition_and_default() -> None:
    """A segment's own transitionSteps/method win; one without falls back to the pipeline default
    (longlive: 0 = cut) (docs/scope.md §5.3)."""
    show = _parse(import_file(FIXTURES / "timeline-gaps-blends.json"))
    assert _transitions(show) == [(0, None), (6, "linear"), (0, None)]


def test_legacy_loras_seed_override_and_quantization() -> None:
    """loras[].path/scale/mergeMode → a LoRA asset by path plus a load entry; the seed from
    schemaFieldOverrides.base_seed (docs/scope.md §5.1, §2.2)."""
    show = _parse(import_file(FIXTURES / "timeline-gaps-blends.json"))
    load = show.defaults.load
    assert load.base_seed == 1234
    assert load.quantization == "fp8_e4m3fn"
    assert load.loras is not None
    [lora] = load.loras
    assert (lora.lora, lora.scale, lora.merge_mode) == ("harbour_style", 0.8, "runtime_peft")
    asset = show.assets.loras["harbour_style"]
    assert asset.path == "/root/.daydream-scope/models/lora/harbour_style.safetensors"


def test_workflow_chain_loras_and_transitions() -> None:
    """A workflow's pipelines become an ordered chain [pre…, main, post…], LoRAs by filename with
    weight → scale, and the top-level transition_steps is the default (docs/scope.md §5.2, §8-K)."""
    result = import_file(FIXTURES / "garden.scope-workflow.json")
    show = _parse(result)
    starts, end = _boundaries("garden.scope-workflow.json")
    assert result.kind == "scope-workflow-1.0"
    assert result.warnings == ()
    assert show.title == "Night garden"
    d = show.defaults
    assert d.pipeline == ["gray", "longlive"]
    assert (d.load.height, d.load.width, d.load.base_seed, d.load.vace_enabled) == (480, 832, 99, False)
    assert d.denoising_steps == [1000, 750, 500]
    assert d.prompt_interpolation == "linear"
    assert d.load.loras is not None
    assert [(x.lora, x.scale, x.merge_mode) for x in d.load.loras] == [
        ("moonlight_v2", 0.75, "runtime_peft"),
        ("ink-wash", 1.2, "permanent_merge"),
    ]
    assert show.assets.loras["moonlight_v2"].filename == "moonlight_v2.safetensors"
    assert show.assets.loras["ink-wash"].filename == "ink-wash.safetensors"
    assert _starts(show) == starts
    assert _end(show) == pytest.approx(end)
    assert _transitions(show) == [(0, None), (8, "slerp"), (0, None), (3, "linear")]


def test_newer_and_unknown_fields_warn_but_import() -> None:
    """A newer format_version, graph/nodes and unknown keys are warnings, never a crash (§8-P)."""
    result = import_file(FIXTURES / "future.scope-workflow.json")
    show = _parse(result)
    joined = "\n".join(result.warnings)
    for expected in (
        "format_version: version 1.1 is newer than 1.0",
        "graph: graph workflows are not imported",
        "nodes: graph workflows are not imported",
        "tempo: unknown field",
        "pipelines[0].capabilities: unknown field",
        "pipelines[0].params.motion_blur: not imported",
        "pipelines[1].params: not imported",
        "timeline.entries[0].mood: unknown field",
        "pipelines[1].source: 'sharpen-pro' comes from a pypi plugin (scope-sharpen==1.2)",
        "pipelines[1].pipeline_id: 'sharpen-pro' is not a pipeline showrunner knows",
    ):
        assert expected in joined
    path = str(FIXTURES / "future.scope-workflow.json")
    assert all(w.startswith(f"{path}:") for w in result.warnings)
    assert show.defaults.pipeline == ["krea-realtime-video", "sharpen-pro"]
    # krea in video mode defaults to 0 steps (docs/scope.md §5.3): cuts, and noise_scale is kept.
    assert show.defaults.input_mode == "video" and show.defaults.noise_scale == 0.6
    assert _transitions(show) == [(0, None), (0, None)]


def test_warnings_point_at_the_json_text() -> None:
    result = import_file(FIXTURES / "future.scope-workflow.json")
    path = FIXTURES / "future.scope-workflow.json"
    [warning] = [w for w in result.warnings if ": tempo:" in w]  # not the folder names
    assert warning == f"{path}:29:12: tempo: unknown field, not imported"


def test_hold_keeps_the_last_look() -> None:
    """The UI keeps the last segment live after the end (docs/scope.md §5.3): --hold does the same."""
    assert _parse(import_file(FIXTURES / "timeline-memflow-kitchen.json", hold=True)).end == "hold"


def test_yaml_layout() -> None:
    text = import_file(FIXTURES / "garden.scope-workflow.json").yaml_text
    lines = text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../schemas/show.schema.json"
    order = [ln.split(":")[0] for ln in lines if ln and not ln.startswith((" ", "#"))]
    assert order == ["title", "defaults", "assets", "scenes", "end"]
    custom = import_file(FIXTURES / "garden.scope-workflow.json", schema_ref="show.schema.json")
    assert custom.yaml_text.startswith("# yaml-language-server: $schema=show.schema.json\n")


# ---------------------------------------------------------------------------------------------
# Odd but valid input
# ---------------------------------------------------------------------------------------------


def _legacy(*segments: Any, **settings: Any) -> dict[str, Any]:
    return {
        "prompts": list(segments),
        "settings": {"pipelineId": "longlive", **settings},
        "version": "2.1",
    }


def _seg(start: Any, end: float, text: str = "a cat", **extra: Any) -> dict[str, Any]:
    return {"startTime": start, "endTime": end, "prompts": [{"text": text, "weight": 100}], **extra}


def test_unsorted_zero_length_and_overlapping_segments() -> None:
    """Segments out of order are sorted; zero-length ones dropped (as the UI does on export);
    an overlap cuts the earlier one short (docs/scope.md §5.1)."""
    data = _legacy(_seg(5, 9, "b"), _seg(0, 6, "a"), _seg(9, 9, "empty"), _seg(9, 12, "c"))
    result = import_data(data, source="odd.json")
    show = _parse(result)
    assert _starts(show) == [0, 5, 9]
    assert [s.duration for s in show.scenes] == [5, 4, 3]
    joined = "\n".join(result.warnings)
    assert "not in time order" in joined
    assert "prompts[2]: zero-length segment dropped" in joined
    assert "prompts[0]: starts at 5 s, before prompts[1] ends (6 s)" in joined


def test_late_first_segment_starts_the_show_late() -> None:
    result = import_data(_legacy(_seg(2.5, 4)), source="late.json")
    assert _starts(_parse(result)) == [2.5]
    assert any("first segment starts at 2.5 s" in w for w in result.warnings)


def test_missing_version_is_inferred() -> None:
    data = _legacy(_seg(0, 4))
    del data["version"]
    result = import_data(data, source="x.json")
    assert result.kind == "timeline-2.0"
    assert any("no `version`" in w for w in result.warnings)


def test_newer_legacy_version_reads_as_21() -> None:
    data = {**_legacy(_seg(0, 4)), "version": "2.3"}
    result = import_data(data, source="x.json")
    assert result.kind == "timeline-2.1"
    assert any("version 2.3 is newer than 2.1" in w for w in result.warnings)


def test_unknown_settings_warn() -> None:
    result = import_data(_legacy(_seg(0, 4), vaeBlend=3, inputMode="text"), source="x.json")
    assert result.warnings == ("x.json:1:1: settings.vaeBlend: not imported: a show has no setting for it",)


def test_workflow_without_format_key_and_legacy_without_settings() -> None:
    workflow = {"pipelines": [{"pipeline_id": "memflow"}], "timeline": {"entries": [_ENTRY]}}
    result = import_data(workflow, source="w.json")
    assert result.kind == "scope-workflow-1.0"
    assert any("no `format`" in w for w in result.warnings)
    legacy = {"prompts": [_seg(0, 3)], "settings": None, "version": "2.0"}
    result = import_data(legacy, source="l.json")
    assert _parse(result).defaults.pipeline == ["longlive"]
    assert result.warnings == ("l.json:1:1: settings.pipelineId: missing: the show uses longlive",)


def test_header_comments_stay_comments() -> None:
    """Text from the file that lands in comments cannot break out of them."""
    workflow = {
        **_WF,
        "metadata": {"name": "x", "scope_version": "0.2.4\ntitle: injected"},
        "pipelines": [{"pipeline_id": "longlive"}],
        "timeline": {"entries": [_ENTRY]},
    }
    result = import_data(workflow, source="bad\nname.json")
    assert _parse(result).title == "x"
    header = result.yaml_text.split("\n\n")[0].splitlines()
    assert all(line.startswith("# ") for line in header)


def test_title_from_source_or_default() -> None:
    assert _parse(import_data(_legacy(_seg(0, 4)), source="shows/My set.json")).title == "My set"
    assert _parse(import_data(_legacy(_seg(0, 4)), source="<stdin>")).title == "Imported timeline"


@pytest.mark.parametrize(
    "text",
    [
        'she said "hi" \\ then left',
        "line one\nline two\ttabbed",
        "neon café, 夜の街 🌃",
        "odd\u2028separator\u0085and\x07bell",
        "yes",
        "123",
        "- a list? # no: a prompt",
    ],
    ids=["quotes-backslash", "newline-tab", "unicode", "control-chars", "yaml-bool", "number", "yaml-syntax"],
)
def test_prompt_text_round_trips(text: str) -> None:
    show = _parse(import_data(_legacy(_seg(0, 4, text)), source="x.json"))
    assert show.scenes[0].prompts is not None
    assert show.scenes[0].prompts[0].text == text


def test_template_markers_stay_literal() -> None:
    """The show loader renders `{{ }}` in strings; a prompt that contains them is protected."""
    text = "a sign that reads {{ open }}"
    result = import_data(_legacy(_seg(0, 4, text)), source="x.json")
    show = _parse(result)
    assert show.scenes[0].prompts is not None
    assert show.scenes[0].prompts[0].text == "{% raw %}" + text + "{% endraw %}"
    assert any("template markers" in w for w in result.warnings)
    if HAS_LOAD:
        from showrunner.show.load import load_text

        loaded = load_text(result.yaml_text, path="x.yaml").show
        assert loaded.scenes[0].prompts is not None
        assert loaded.scenes[0].prompts[0].text == text


def test_workflow_without_timeline_is_one_held_scene() -> None:
    data = {
        "format": "scope-workflow",
        "format_version": "1.0",
        "pipelines": [{"pipeline_id": "longlive", "role": "main", "params": {}}],
        "timeline": None,
        "prompts": [{"text": "a quiet lake", "weight": 100}],
    }
    result = import_data(data, source="lake.scope-workflow.json")
    show = _parse(result)
    assert show.title == "lake"
    assert len(show.scenes) == 1 and show.scenes[0].duration is None
    assert show.end == "hold"
    assert any("no timeline" in w for w in result.warnings)


def test_workflow_vace_input_video_goes_to_first_scene() -> None:
    data = {
        "format": "scope-workflow",
        "format_version": "1.0",
        "pipelines": [
            {"pipeline_id": "longlive", "params": {"vace_use_input_video": True, "input_mode": "video"}}
        ],
        "timeline": {"entries": [{"start_time": 0, "end_time": 3, "prompts": [{"text": "x", "weight": 1}]}]},
    }
    show = _parse(import_data(data, source="v.json"))
    assert show.scenes[0].vace is not None and show.scenes[0].vace.use_input_video is True


# ---------------------------------------------------------------------------------------------
# Malformed files: one clear line naming the file, the JSON path and the position
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("not-json.json", "2:49: not valid JSON: Expecting ',' delimiter"),
        ("top-level-list.json", "1:1: expected a JSON object at the top level (got a list)"),
        ("missing-start.json", "5:5: prompts[2].startTime: missing"),
        ("end-before-start.json", "4:33: prompts[1].endTime: ends before it starts (3.5 < 4)"),
        (
            "negative-weight.json",
            "6:111: timeline.entries[0].prompts[1].weight: must be >= 0 (got -40)",
        ),
        (
            "unknown-format.json",
            "1:12: format: unknown format \"comfy-workflow\" (expected 'scope-workflow')",
        ),
        ("bad-size.json", "3:67: settings.resolution.height: 500 is not divisible by 16 (longlive needs it)"),
    ],
    ids=lambda v: v.removesuffix(".json") if v.endswith(".json") else "",
)
def test_malformed_file(name: str, expected: str) -> None:
    path = FIXTURES / "bad" / name
    with pytest.raises(ShowErrors) as excinfo:
        import_file(path)
    assert _error(excinfo) == f"{path}:{expected}"


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ShowErrors, match=r"nope\.json:1:1: cannot read the file: No such file"):
        import_file(missing)
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    with pytest.raises(ShowErrors, match=r"empty\.json:1:1: the file is empty$"):
        import_file(empty)
    binary = tmp_path / "junk.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ShowErrors, match=r"junk\.json:1:1: not UTF-8 text \(byte 0x89 at offset 0\)"):
        import_file(binary)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ShowErrors, match=r"deep\.json:1:1: "):
        import_file(deep)


_WF = {"format": "scope-workflow", "format_version": "1.0"}
_ENTRY = {"start_time": 0, "end_time": 4, "prompts": [{"text": "x", "weight": 100}]}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("just text", "expected a JSON object at the top level (got a string)"),
        ({"hello": 1}, "unknown format: expected a Scope timeline export"),
        ({**_legacy(_seg(0, 4)), "version": "3.0"}, 'version: unknown timeline version "3.0"'),
        (_legacy("nope"), 'prompts[0]: must be an object (got "nope")'),
        (
            _legacy({"startTime": 0, "endTime": 2, "prompts": []}),
            "prompts[0].prompts: must be a non-empty list",
        ),
        (_legacy({"startTime": 0, "endTime": 2}), "prompts[0].prompts: missing"),
        (_legacy(_seg(0, 2, transitionSteps=-1)), "prompts[0].transitionSteps: must be a whole number >= 0"),
        (_legacy(_seg(0, 2, temporalInterpolationMethod="cubic")), "must be 'linear' or 'slerp'"),
        (_legacy(_seg("0", 2)), 'prompts[0].startTime: must be a number of seconds >= 0 (got "0")'),
        (_legacy(), "prompts: no segments: a show needs at least one"),
        (_legacy(_seg(0, 2), seed="abc"), 'settings.seed: must be an integer (got "abc")'),
        (
            _legacy(_seg(0, 2), inputMode="audio"),
            "settings.inputMode: expected 'text' or 'video' (got \"audio\")",
        ),
        (_legacy(_seg(0, 2), kvCacheAttentionBias=5), "settings.kvCacheAttentionBias: must be <= 1 (got 5)"),
        ({**_WF, "format_version": "2.0"}, 'format_version: unsupported workflow version "2.0"'),
        ({**_WF, "pipelines": []}, "pipelines: needs a list with at least one pipeline"),
        (
            {**_WF, "pipelines": [{"pipeline_id": "gray", "role": "preprocessor"}]},
            "pipelines: no pipeline has role 'main'",
        ),
        (
            {
                **_WF,
                "pipelines": [{"pipeline_id": "a", "role": "main"}, {"pipeline_id": "b", "role": "main"}],
                "timeline": {"entries": [_ENTRY]},
            },
            "pipelines[1].role: a second main pipeline (pipelines[0] is main)",
        ),
        (
            {**_WF, "pipelines": [{"pipeline_id": "longlive", "role": "boss"}]},
            'pipelines[0].role: unknown role "boss"',
        ),
        (
            {
                **_WF,
                "pipelines": [{"pipeline_id": "longlive", "loras": [{"weight": 1}]}],
                "timeline": {"entries": [_ENTRY]},
            },
            "pipelines[0].loras[0].filename: missing",
        ),
        ({**_WF, "pipelines": [{"pipeline_id": "longlive"}]}, "timeline: no timeline entries and no prompts"),
    ],
    ids=[
        "string", "no-format", "legacy-v3", "segment-not-object", "empty-prompts", "no-prompts",
        "negative-steps", "bad-method", "string-time", "no-segments", "bad-seed", "bad-mode",
        "bias-range", "workflow-v2", "no-pipelines", "no-main", "two-mains", "bad-role",
        "lora-no-file", "nothing-to-play",
    ],
)
def test_malformed_data(data: Any, expected: str) -> None:
    with pytest.raises(ShowErrors) as excinfo:
        import_data(data, source="in.json")
    message = _error(excinfo)
    assert message.startswith("in.json:1:1: ")
    assert expected in message
    assert "\n" not in message


def test_all_problems_are_reported() -> None:
    data = _legacy({"endTime": 2, "prompts": [{"text": "a"}]}, _seg(2, 1))
    with pytest.raises(ShowErrors) as excinfo:
        import_data(data, source="in.json")
    assert [e.key_path for e in excinfo.value.errors] == ["prompts[0].startTime", "prompts[1].endTime"]


# ---------------------------------------------------------------------------------------------
# The show loader and the compiled timeline agree (skipped until those modules exist)
# ---------------------------------------------------------------------------------------------

ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json"))


@pytest.mark.skipif(not HAS_LOAD, reason="showrunner.show.load is not present")
@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_loader_accepts_imported_show(name: str) -> None:
    from showrunner.show.load import load_text

    result = import_file(FIXTURES / name)
    loaded = load_text(result.yaml_text, path=f"{name}.yaml")
    assert loaded.show == _parse(result)
    if importlib.util.find_spec("showrunner.show.lint") is not None:
        from showrunner.show.lint import lint

        errors = [f for f in lint(loaded) if f.severity == "error"]
        assert errors == []


@pytest.mark.skipif(not HAS_TIMELINE, reason="showrunner.plan.timeline is not present")
@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_compiled_starts_equal_segment_boundaries(name: str) -> None:
    """What plays is what the file says: compiled start times are the segment starts (§5.3)."""
    from showrunner.plan.compiler import compile_timeline

    show = _parse(import_file(FIXTURES / name))
    starts, end = _boundaries(name)
    items = list(compile_timeline(show).schedule())
    assert [item.start for item in items] == pytest.approx(starts)
    assert items[-1].end == pytest.approx(end)


@pytest.mark.skipif(not HAS_TIMELINE, reason="showrunner.plan.timeline is not present")
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timeline-krea-shapes.json", [(4, "linear"), (4, "linear")]),
        ("timeline-memflow-kitchen.json", [(0, "slerp")]),
        ("garden.scope-workflow.json", [(8, "slerp"), (0, "slerp"), (3, "linear")]),
    ],
    ids=["krea-default-4-linear", "memflow-steps-0", "workflow-global-default"],
)
def test_compiled_messages_transition_like_the_ui(name: str, expected: list[tuple[int, str]]) -> None:
    """Each later scene enters with the `transition` the UI would send (docs/scope.md §5.3, §8-G)."""
    from showrunner.plan.compiler import compile_timeline

    timeline = compile_timeline(_parse(import_file(FIXTURES / name)))
    got = []
    for scene in timeline.scenes[1:]:
        transition = scene.actions[0].message["transition"]
        got.append((transition["num_steps"], transition["temporal_interpolation_method"]))
    assert got == expected
