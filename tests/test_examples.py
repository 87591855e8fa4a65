"""Every example show loads and passes `showrunner check` with no errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from showrunner.show.lint import check_paths, lint
from showrunner.show.load import load

ROOT = Path(__file__).resolve().parents[1]
SHOWS = ROOT / "shows"
EXAMPLES = sorted(SHOWS.glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/show.schema.json"


def test_the_five_examples_exist() -> None:
    assert [p.name for p in EXAMPLES] == [
        "club.yaml", "gallery.yaml", "minimal.yaml", "performance.yaml", "rehearsal.yaml"
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_checks(path: Path) -> None:
    assert path.read_text("utf-8").splitlines()[0] == MODELINE
    result = load(path)
    assert [f for f in lint(result) if f.severity == "error"] == []
    code, out, err = check_paths([str(path)])
    assert code == 0, err
    assert out.startswith(f"{path}: 0 errors")


def test_minimal_is_short_and_stops() -> None:
    """The README quick start plays it on the simulator and exits."""
    show = load(SHOWS / "minimal.yaml").show
    assert len(show.scenes) == 3
    assert sum(s.duration or 0 for s in show.scenes) <= 12
    assert show.end == "stop" and show.scope.url is None and show.loop_count == 1


def test_gallery_is_an_installation() -> None:
    show = load(SHOWS / "gallery.yaml").show
    assert show.loop_count is None and show.hours is not None
    assert show.hours.closed in {s.name for s in show.scenes}
    assert {w.days for w in show.hours.open} == {"weekdays", "weekends"}
    assert any("noise_scale" in s.keyframes for s in show.scenes)
    assert any(s.travel for s in show.scenes)


def test_performance_features() -> None:
    result = load(SHOWS / "performance.yaml")
    show = result.show
    assert show.bpm == 120 and show.end == "hold"
    assert {s.cue_name for s in show.scenes} >= {"go", "drop"}
    assert show.sections and show.sections[0].repeat == 2
    assert "ndi" in show.defaults.output_sinks
    assert all(a.filename for a in show.assets.loras.values())
    image = SHOWS / "assets" / "neon-ref.png"
    assert image.resolve() in result.files and image.stat().st_size < 8192
    assert any(s.first_frame for s in show.scenes) and any(s.last_frame for s in show.scenes)
    wash = show.scenes[show.scene_index("wash")]
    assert wash.manage_cache is False and "lora.watercolor" in wash.keyframes
    # the one warning is the planned pipeline switch
    assert [(f.code, f.message.split(":")[0]) for f in lint(result)] == [
        ("pipeline-switch", "switches pipeline longlive -> krea-realtime-video")
    ]


def test_rehearsal_templates_and_includes() -> None:
    result = load(SHOWS / "rehearsal.yaml")
    names = [s.name for s in result.show.scenes]
    assert names == ["warmup", "line-check", "mood-1-rain", "mood-2-fog", "mood-3-neon", "finale"]
    assert result.show.title == "Greenhouse (Studio B rehearsal)"
    assert {p.name for p in result.files} == {"rehearsal.yaml", "prompts.yaml", "warmup.yaml"}


def test_club_plays_to_a_controller_and_the_beat() -> None:
    show = load(SHOWS / "club.yaml").show
    assert show.midi is not None and show.bpm
    assert show.tempo.source == "link" and show.quantize == "bar"  # tempo sync, quantized GO
    assert {c.do for c in show.controls if c.do} == {"go", "back", "hold", "resume", "panic"}
    assert any(c.goto for c in show.controls) and any(c.input for c in show.controls)
    lfos = {name for name, spec in show.inputs.items() if spec.lfo is not None}
    assert lfos and any(m is not None and m.input in lfos
                        for s in show.scenes for m in s.modulate.values())
