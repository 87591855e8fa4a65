"""Session observation endpoints as a real Scope 0.2.4 server answers them (docs/scope.md §2.7, §10)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from showrunner.sim import Simulator, serve_sim

pytestmark = pytest.mark.anyio

Connect = Callable[..., Awaitable[Any]]
VIZ = {"pipeline_ids": ["controller-viz"]}
DEFAULTS = {"prompt_interpolation_method": "linear", "vace_context_scale": 1.0}
METRIC_KEYS = {
    "frames_in", "frames_out", "elapsed_seconds", "fps_in", "fps_out", "pipeline_fps",
    "output_sinks", "input_source_enabled", "input_source_type", "relay_mode",
}


async def load(sim: Simulator, pipeline_id: str = "controller-viz", **params: Any) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(
            "/api/v1/pipeline/load", json={"pipeline_ids": [pipeline_id], "load_params": params}
        )
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")


async def test_session_parameters_without_a_session(sim: Simulator) -> None:
    """docs/scope.md §10: with no session, GET answers 200 `{"parameters":{}}` and POST 200
    `{"status":"ok",…}` (stored nowhere), not 404; POST still validates (422)."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        got = await client.get("/api/v1/session/parameters")
        posted = await client.post("/api/v1/session/parameters", json={"noise_scale": 0.4})
        bad = await client.post("/api/v1/session/parameters", json={"noise_scale": 5})
        again = await client.get("/api/v1/session/parameters")
    assert (got.status_code, got.json()) == (200, {"parameters": {}})
    assert posted.status_code == 200
    assert posted.json() == {"status": "ok", "applied_parameters": {"noise_scale": 0.4, **DEFAULTS}}
    assert bad.status_code == 422
    assert again.json() == {"parameters": {}}


async def test_post_session_parameters_must_be_json(sim: Simulator) -> None:
    """docs/scope.md §10.1: `POST /session/parameters` must be application/json; text/plain → 422
    (FastAPI reads a non-JSON body as bytes, which fails the model)."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        plain = await client.post(
            "/api/v1/session/parameters",
            content=b'{"noise_scale": 0.4}',
            headers={"content-type": "text/plain"},
        )
        empty = await client.post("/api/v1/session/parameters", json={})
    assert plain.status_code == 422
    assert plain.json()["detail"][0]["loc"] == ["body"]
    assert (empty.status_code, empty.json()) == (200, {"status": "ok", "applied_parameters": DEFAULTS})


@pytest.mark.webrtc
async def test_metrics_have_the_shape_of_a_real_cpu_server(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.7 / §10: `gpu: {}` and `input_source_type: ""` on a CPU server; `fps_out` is
    a cumulative average of frames_out over elapsed_seconds."""
    await load(sim, height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await sim.wait_for(lambda s: peer.frames >= 5)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        metrics = (await client.get("/api/v1/session/metrics")).json()
        hardware = (await client.get("/api/v1/hardware/info")).json()
    assert set(metrics) == {"sessions", "gpu"}
    assert metrics["gpu"] == {}
    stats = metrics["sessions"][peer.session_id]
    assert set(stats) == METRIC_KEYS
    assert stats["input_source_type"] == "" and stats["input_source_enabled"] is False
    assert stats["relay_mode"] is False and stats["output_sinks"] == {}
    assert stats["pipeline_fps"] == 60.0
    assert stats["fps_out"] == pytest.approx(stats["frames_out"] / stats["elapsed_seconds"], rel=0.2)
    assert hardware["vram_gb"] is None  # what a CPU host reports (docs/scope.md §2.1)


async def test_gpu_option_presents_a_cuda_device() -> None:
    """Simulator option `gpu=True`: metrics carry the CUDA block of a GPU host (mcp_router.py)
    and hardware info a VRAM size."""
    async with serve_sim(gpu=True) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            metrics = (await client.get("/api/v1/session/metrics")).json()
            hardware = (await client.get("/api/v1/hardware/info")).json()
    assert set(metrics["gpu"]) == {"vram_allocated_mb", "vram_reserved_mb", "vram_total_mb"}
    assert metrics["gpu"]["vram_total_mb"] > 0
    assert hardware["vram_gb"] == 24.0


@pytest.mark.webrtc
async def test_observation_follows_the_first_live_session(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.7: GET parameters, frame and metrics all describe the first live session
    (webrtc.py `get_frame_processor`); POST parameters reaches every session."""
    await load(sim, height=32, width=32)
    first = await sim_peer(sim.url, {**VIZ, "base_seed": 1})
    second = await sim_peer(sim.url, {**VIZ, "base_seed": 2})
    await sim.wait_for(lambda s: first.frames >= 2 and second.frames >= 2)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        metrics = (await client.get("/api/v1/session/metrics")).json()
        params = (await client.get("/api/v1/session/parameters")).json()["parameters"]
        await client.post("/api/v1/session/parameters", json={"noise_scale": 0.3})
    assert list(metrics["sessions"]) == [first.session_id]
    assert params["base_seed"] == 1
    for peer in (first, second):
        session = sim.sessions[peer.session_id]
        await sim.wait_for(lambda s, session=session: session.params.get("noise_scale") == 0.3)


@pytest.mark.webrtc
async def test_session_without_video_reports_the_default_fps(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.6 / §2.7: a session without `pipeline_ids` has no pipeline; Scope's
    FrameProcessor then reports its default 30 fps and no frames."""
    await load(sim, height=32, width=32)
    peer = await sim_peer(sim.url, {"prompts": [{"text": "a cat", "weight": 1}]})
    await asyncio.wait_for(peer.opened.wait(), 5)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        stats = (await client.get("/api/v1/session/metrics")).json()["sessions"][peer.session_id]
    assert stats["frames_out"] == 0 and stats["pipeline_fps"] == 30.0


async def test_frame_404_names_what_is_missing(sim: Simulator) -> None:
    """docs/scope.md §2.7 (mcp_router.py): 404 without a frame, with Scope's detail text."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        plain = await client.get("/api/v1/session/frame")
        sink = await client.get("/api/v1/session/frame", params={"sink_node_id": "out"})
        bad = await client.get("/api/v1/session/frame", params={"quality": 0})
    assert plain.status_code == 404
    assert plain.json() == {"detail": "No frame available (no active session or pipeline not running)"}
    assert sink.json() == {
        "detail": "No frame available for sink node 'out' (no active session or pipeline not running)"
    }
    assert bad.status_code == 422
