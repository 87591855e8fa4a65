"""The simulator's pipeline schemas carry Scope 0.2.4's facts (docs/scope.md §2.4, §11)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from showrunner.sim import Simulator, catalog

pytestmark = pytest.mark.anyio

ALL = [
    "controller-viz",
    "gray",
    "krea-realtime-video",
    "longlive",
    "memflow",
    "passthrough",
    "reward-forcing",
    "streamdiffusionv2",
]


async def fetch(sim: Simulator) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/api/v1/pipelines/schemas")
    assert response.status_code == 200
    pipelines: dict[str, Any] = response.json()["pipelines"]
    return pipelines


async def test_every_pipeline_is_listed_as_on_a_gpu_host(sim: Simulator) -> None:
    """docs/scope.md §2.4 / §11: the simulator pretends a GPU exists, so Wan pipelines are listed."""
    pipelines = await fetch(sim)
    assert sorted(pipelines) == ALL
    for pipeline_id, meta in pipelines.items():
        assert meta["id"] == pipeline_id
        assert meta["plugin_name"] is None
        assert meta["produces_video"] is True and meta["produces_audio"] is False


async def test_schema_facts(sim: Simulator) -> None:
    """docs/scope.md §2.4: defaults, ranges, flags and mode_defaults as Scope serves them."""
    p = await fetch(sim)
    longlive = p["longlive"]
    props = longlive["config_schema"]["properties"]
    assert (props["height"]["default"], props["width"]["default"]) == (320, 576)
    assert props["base_seed"] == {**props["base_seed"], "default": 42, "minimum": 0}
    assert props["denoising_steps"]["default"] == [1000, 750, 500, 250]
    assert (props["noise_scale"]["minimum"], props["noise_scale"]["maximum"]) == (0.0, 1.0)
    assert props["vace_context_scale"]["maximum"] == 2.0
    assert props["noise_scale"]["ui"]["is_load_param"] is False
    assert props["lora_merge_strategy"]["default"] == "permanent_merge"
    assert longlive["config_schema"]["$defs"]["VaeType"]["enum"] == ["wan", "lightvae", "tae", "lighttae"]
    assert longlive["mode_defaults"]["video"] == {
        "denoising_steps": [1000, 750],
        "height": 512,
        "noise_controller": True,
        "noise_scale": 0.7,
        "width": 512,
    }
    assert longlive["estimated_vram_gb"] == 20.0 and longlive["min_dimension"] == 16
    assert longlive["default_temporal_interpolation_method"] == "slerp"

    krea = p["krea-realtime-video"]
    assert krea["supports_kv_cache_bias"] is True
    assert krea["default_temporal_interpolation_method"] == "linear"
    assert krea["default_temporal_interpolation_steps"] == 4
    assert krea["mode_defaults"]["video"]["default_temporal_interpolation_steps"] == 0
    assert krea["recommended_quantization_vram_threshold"] == 40.0
    assert krea["estimated_vram_gb"] == 32.0

    sdv2 = p["streamdiffusionv2"]
    assert sdv2["default_mode"] == "video"
    assert sdv2["config_schema"]["properties"]["denoising_steps"]["default"] == [750, 250]
    assert sdv2["mode_defaults"] == {
        "text": {"denoising_steps": [1000, 750], "height": 512, "width": 512}
    }

    for wan in ("longlive", "streamdiffusionv2", "krea-realtime-video", "reward-forcing", "memflow"):
        meta = p[wan]
        assert meta["supports_lora"] and meta["supports_vace"] and meta["supports_prompts"]
        assert meta["supports_cache_management"] and meta["requires_models"]
    assert [k for k, m in p.items() if m["supports_kv_cache_bias"]] == ["krea-realtime-video"]

    viz = p["controller-viz"]
    assert viz["supported_modes"] == ["text"] and viz["estimated_vram_gb"] is None
    assert viz["supports_prompts"] is False and viz["min_dimension"] == 1
    assert "ctrl_input" in viz["config_schema"]["properties"]
    assert p["gray"]["usage"] == ["preprocessor"]
    assert p["passthrough"]["default_mode"] == "video"


def test_runtime_facts() -> None:
    """docs/scope.md §3.3 / §7 / §10: frames per chunk, frame rate and default size per pipeline.

    controller-viz renders 1 frame per call at the 60 fps cap a real CPU server reports
    (§10: `pipeline_fps` 60.0, 50–60 frames/s); passthrough (chunks of 4) and gray (1) follow
    their input, 30 fps without a file of their own; the Wan pipelines make 12 frames per call
    (streamdiffusionv2 4) at 16 fps.
    """
    expected = {
        "longlive": (12, 16.0, 320, 576),
        "krea-realtime-video": (12, 16.0, 512, 512),  # 512² when height/width are omitted (§8-D)
        "reward-forcing": (12, 16.0, 320, 576),
        "memflow": (12, 16.0, 320, 576),
        "streamdiffusionv2": (4, 16.0, 512, 512),
        "passthrough": (4, 30.0, 512, 512),
        "controller-viz": (1, 60.0, 512, 512),
        "gray": (1, 30.0, 512, 512),
    }
    for pipeline_id, (fpc, fps, height, width) in expected.items():
        info = catalog.info(pipeline_id)
        assert info is not None
        assert (info.frames_per_chunk, info.fps, info.default_height, info.default_width) == (
            fpc,
            fps,
            height,
            width,
        ), pipeline_id
    assert catalog.info("nope") is None


def test_schemas_returns_a_copy() -> None:
    first = catalog.schemas()
    first["pipelines"]["longlive"]["id"] = "changed"
    assert catalog.schemas()["pipelines"]["longlive"]["id"] == "longlive"
