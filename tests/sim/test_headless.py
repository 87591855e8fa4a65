"""The headless session (`/api/v1/session/*` without WebRTC), as a real server answers it
(docs/scope.md §2.8, §10.1; Scope mcp_router.py, headless.py). Everything over loopback with httpx."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from showrunner.sim import Simulator

pytestmark = pytest.mark.anyio

Connect = Callable[..., Awaitable[Any]]
START = "/api/v1/session/start"
STOP = "/api/v1/session/stop"
PARAMS = "/api/v1/session/parameters"
FRAME = "/api/v1/session/frame"
METRICS = "/api/v1/session/metrics"
FAILED = {"detail": "FrameProcessor failed to start (check logs for details)"}
NO_HEADLESS = {"detail": "No active headless session"}
CAT = [{"text": "a cat", "weight": 1.0}]


async def load(sim: Simulator, pipeline_id: str = "controller-viz", **params: Any) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(
            "/api/v1/pipeline/load", json={"pipeline_ids": [pipeline_id], "load_params": params}
        )
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")


async def first_frame(client: httpx.AsyncClient, timeout: float = 5.0, **params: Any) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(FRAME, params=params)
        if response.status_code == 200 or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.01)


async def test_start_frame_metrics_and_stop(sim: Simulator) -> None:
    """docs/scope.md §10.1: start → 200 with the observed body; a JPEG of the last output soon
    after; metrics keyed "headless" with `headless: true`; output is not paced (many more
    frames than the 60 fps `pipeline_fps`); stop → 200, again → 404; then frame 404, parameters
    `{}`, metrics `{"sessions":{},"gpu":{}}`, POST parameters 200."""
    await load(sim, height=48, width=64)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        started = await client.post(
            START, json={"pipeline_id": "controller-viz", "input_mode": "text", "prompts": CAT}
        )
        assert started.status_code == 200
        assert started.json() == {
            "status": "ok", "input_mode": "text", "cloud_mode": False, "pipeline_id": "controller-viz"
        }
        frame = await first_frame(client)
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(frame.content)).size == (64, 48)
        await asyncio.sleep(0.5)
        metrics = (await client.get(METRICS)).json()
        assert list(metrics["sessions"]) == ["headless"] and metrics["gpu"] == {}
        stats = metrics["sessions"]["headless"]
        assert stats["headless"] is True and stats["pipeline_fps"] == 60.0
        assert stats["frames_out"] > 120  # ~1,000 frames/s on the real CPU server
        assert stats["fps_out"] > 100

        stopped = await client.post(STOP)
        again = await client.post(STOP)
        assert (stopped.status_code, stopped.json()) == (
            200, {"status": "ok", "message": "Headless session stopped"})
        assert (again.status_code, again.json()) == (404, NO_HEADLESS)
        assert (await client.get(FRAME)).status_code == 404
        assert (await client.get(PARAMS)).json() == {"parameters": {}}
        assert (await client.get(METRICS)).json() == {"sessions": {}, "gpu": {}}
        assert (await client.post(PARAMS, json={"noise_scale": 0.2})).status_code == 200


async def test_start_defaults_to_text_mode(sim: Simulator) -> None:
    """docs/scope.md §10.1: `input_mode` defaults to text."""
    await load(sim, height=16, width=16)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        body = (await client.post(START, json={"pipeline_id": "controller-viz"})).json()
        await client.post(STOP)
    assert body["input_mode"] == "text"


async def test_start_refusals(sim: Simulator) -> None:
    """docs/scope.md §2.8 / §10.1: not loaded or unknown id → 500 and no session afterwards;
    `{}` (no pipeline_id, no graph) → 422; an empty graph → 400."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        not_loaded = await client.post(START, json={"pipeline_id": "controller-viz"})
        await load(sim, height=16, width=16)
        unknown = await client.post(START, json={"pipeline_id": "longlive"})
        empty = await client.post(START, json={})
        graph = await client.post(START, json={"graph": {"nodes": [], "edges": []}})
        frame = await client.get(FRAME)
        metrics = (await client.get(METRICS)).json()
        stop = await client.post(STOP)
    assert (not_loaded.status_code, not_loaded.json()) == (500, FAILED)
    assert (unknown.status_code, unknown.json()) == (500, FAILED)
    assert empty.status_code == 422
    assert graph.status_code == 400
    assert graph.json() == {"detail": "Invalid graph: Graph must have at least one sink node"}
    assert frame.status_code == 404 and metrics["sessions"] == {}
    assert stop.status_code == 404


async def test_start_body_is_stored_as_sent(sim: Simulator) -> None:
    """docs/scope.md §10.1: the start body is stored without validation or defaults; keys under
    `parameters` that the body already sets are dropped."""
    await load(sim, height=16, width=16)
    body = {
        "pipeline_id": "controller-viz",
        "prompts": CAT,
        "parameters": {"noise_scale": 7, "prompts": [{"text": "a dog"}], "input_mode": "video",
                       "pipeline_ids": ["x"], "custom": {"a": 1}},
    }
    async with httpx.AsyncClient(base_url=sim.url) as client:
        assert (await client.post(START, json=body)).status_code == 200
        params = (await client.get(PARAMS)).json()["parameters"]
        await client.post(STOP)
    assert params == {
        "pipeline_ids": ["controller-viz"],
        "input_mode": "text",
        "prompts": CAT,
        "noise_scale": 7,
        "custom": {"a": 1},
    }


async def test_parameters_are_validated_and_kept(sim: Simulator) -> None:
    """docs/scope.md §10.1: POST is validated (422 for bad values) and adds the two defaults; GET
    shows changes at once and keeps one-shot and control keys forever; `_quantized` over HTTP
    is a plain key that applies at once (no tempo for headless)."""
    await load(sim, height=16, width=16)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(START, json={"pipeline_id": "controller-viz"})
        bad = [
            await client.post(PARAMS, json=body)
            for body in (
                {"prompts": [{"text": "a", "weight": -1}]},
                {"noise_scale": 5},
                {"prompt_interpolation_method": "cubic"},
                {"transition": {"num_steps": 2}},
            )
        ]
        ok = await client.post(
            PARAMS,
            json={"reset_cache": True, "paused": False, "_quantized": True,
                  "transition": {"target_prompts": CAT, "num_steps": 2},
                  "ctrl_input": {"button": ["KeyW"], "mouse": [1, 0]}},
        )
        await asyncio.sleep(0.2)
        params = (await client.get(PARAMS)).json()["parameters"]
        assert sim.headless is not None
        # The update reached the pipeline at once (it drew the pressed key).
        assert sim.headless.session.ctrl["button"] == ["KeyW"]
        await client.post(STOP)
    assert [r.status_code for r in bad] == [422, 422, 422, 422]
    assert ok.status_code == 200
    applied = ok.json()["applied_parameters"]
    assert applied["prompt_interpolation_method"] == "linear" and applied["vace_context_scale"] == 1.0
    assert applied["transition"]["num_steps"] == 2
    for key in ("reset_cache", "paused", "transition", "_quantized", "ctrl_input"):
        assert key in params, key


async def test_paused_stops_production_and_freezes_the_frame(sim: Simulator) -> None:
    """docs/scope.md §10.1: `paused: true` stops production; `/session/frame` returns the same
    JPEG bytes until `paused: false`; changes sent meanwhile render only after it."""
    await load(sim, height=32, width=32)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(START, json={"pipeline_id": "controller-viz"})
        await first_frame(client)
        await client.post(PARAMS, json={"paused": True})
        await asyncio.sleep(0.05)
        frozen = (await client.get(METRICS)).json()["sessions"]["headless"]["frames_out"]
        first = (await client.get(FRAME)).content
        await client.post(PARAMS, json={"ctrl_input": {"button": ["KeyW"], "mouse": [0, 0]}})
        await asyncio.sleep(0.3)
        second = (await client.get(FRAME)).content
        still = (await client.get(METRICS)).json()["sessions"]["headless"]["frames_out"]
        assert sim.headless is not None
        assert sim.headless.session.ctrl["button"] == []  # not rendered while paused
        await client.post(PARAMS, json={"paused": False})
        await asyncio.sleep(0.1)
        moving = (await client.get(METRICS)).json()["sessions"]["headless"]["frames_out"]
        assert sim.headless.session.ctrl["button"] == ["KeyW"]
        await client.post(STOP)
    assert first == second and still == frozen
    assert moving > frozen


async def test_a_second_start_replaces_the_first_without_stopping_it(sim: Simulator) -> None:
    """docs/scope.md §2.8 / §10.1: a second start → 200 and the GET endpoints follow the new
    session, but the old one keeps running (only a restart clears it)."""
    await load(sim, height=16, width=16)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(START, json={"pipeline_id": "controller-viz", "prompts": CAT})
        second = await client.post(
            START, json={"pipeline_id": "controller-viz", "prompts": [{"text": "a dog"}]}
        )
        params = (await client.get(PARAMS)).json()["parameters"]
        assert second.status_code == 200 and params["prompts"] == [{"text": "a dog"}]
        assert len(sim.headless_orphans) == 1 and sim.headless_orphans[0].running
        await client.post(STOP)
    assert sim.headless_orphans[0].running  # stop ends only the current one
    await sim.restart()
    assert sim.headless_orphans == []


async def test_frame_quality_and_sink_node_id(sim: Simulator) -> None:
    """docs/scope.md §10.1: `quality` 1–100 (else 422); an unknown `sink_node_id` → 200 with the
    same frame."""
    await load(sim, height=16, width=16)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(START, json={"pipeline_id": "controller-viz"})
        await first_frame(client)
        await client.post(PARAMS, json={"paused": True})
        await asyncio.sleep(0.05)
        plain = await client.get(FRAME, params={"quality": 80})
        sink = await client.get(FRAME, params={"quality": 80, "sink_node_id": "nope"})
        low = await client.get(FRAME, params={"quality": 0})
        high = await client.get(FRAME, params={"quality": 101})
        await client.post(STOP)
    assert sink.status_code == 200 and sink.content == plain.content
    assert (low.status_code, high.status_code) == (422, 422)


async def test_output_ts_streams_h264_at_30_fps_and_ends_on_stop(sim: Simulator, tmp_path: Path) -> None:
    """docs/scope.md §2.8 / §10.1: `output.ts` is H.264 MPEG-TS, video only, timestamps at 30 fps
    whatever the real rate, a clean end on stop; 404 without a headless session."""
    await load(sim, height=48, width=64)
    data = bytearray()
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        missing = await client.get("/api/v1/session/output.ts")
        assert (missing.status_code, missing.json()) == (404, NO_HEADLESS)
        await client.post(START, json={"pipeline_id": "controller-viz"})

        async def read() -> httpx.Response:
            async with client.stream("GET", "/api/v1/session/output.ts") as response:
                async for chunk in response.aiter_bytes():
                    data.extend(chunk)
            return response

        reader = asyncio.get_running_loop().create_task(read())
        deadline = asyncio.get_running_loop().time() + 10
        while len(data) < 188 * 20:
            assert asyncio.get_running_loop().time() < deadline, len(data)
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=sim.url) as other:
            await other.post(STOP)
        response = await asyncio.wait_for(reader, 5)  # the stream ends by itself
    assert response.headers["content-type"] == "video/mp2t"
    assert data[0] == 0x47 and len(data) % 188 == 0
    path = tmp_path / "out.ts"
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video"]
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert (video.codec_context.width, video.codec_context.height) == (64, 48)
        times = [float(f.time) for f in container.decode(video) if f.time is not None][:5]
    assert len(times) >= 3
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [
        round(1 / 30, 3)] * (len(times) - 1)


@pytest.mark.webrtc
async def test_webrtc_session_comes_first_and_both_get_post_parameters(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §10.1: with a WebRTC session open too, the GET endpoints show only the WebRTC
    one; POST /session/parameters reaches both (the data channel gets `parameters_updated`)."""
    await load(sim, height=16, width=16)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await asyncio.wait_for(peer.opened.wait(), 5)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(START, json={"pipeline_id": "controller-viz", "prompts": CAT})
        metrics = (await client.get(METRICS)).json()
        params = (await client.get(PARAMS)).json()["parameters"]
        await client.post(PARAMS, json={"noise_scale": 0.25})
        await sim.wait_for(lambda s: any(m.get("type") == "parameters_updated" for m in peer.messages))
        assert sim.headless is not None
        headless = sim.headless.session
        await sim.wait_for(lambda s: headless.params.get("noise_scale") == 0.25)
        await client.post(STOP)
    assert list(metrics["sessions"]) == [peer.session_id]
    assert "prompts" not in params


async def test_graph_start_loads_its_pipelines(sim: Simulator, tmp_path: Path) -> None:
    """docs/scope.md §2.8: the graph form loads its pipeline nodes itself, then starts; the answer
    lists the graph's pipeline, sink and source node ids. A video_file source node feeds it."""
    clip = tmp_path / "clip.mp4"
    container = av.open(str(clip), "w")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    for i in range(6):
        frame = av.VideoFrame.from_image(Image.new("RGB", (32, 32), (200, 30, 30 + i)))
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    graph = {
        "nodes": [
            {"id": "input", "type": "source", "source_mode": "video_file", "source_name": str(clip)},
            {"id": "main", "type": "pipeline", "pipeline_id": "passthrough"},
            {"id": "output", "type": "sink"},
        ],
        "edges": [
            {"from": "input", "from_port": "video", "to_node": "main", "to_port": "video"},
            {"from": "main", "from_port": "video", "to_node": "output", "to_port": "video"},
        ],
    }
    async with httpx.AsyncClient(base_url=sim.url) as client:
        started = await client.post(START, json={"graph": graph, "input_mode": "video"})
        frame = await first_frame(client)
        await client.post(STOP)
    assert started.status_code == 200
    assert started.json() == {
        "status": "ok", "input_mode": "video", "cloud_mode": False, "graph": True,
        "pipeline_ids": ["passthrough"], "sink_node_ids": ["output"], "source_node_ids": ["input"],
    }
    assert "main" in sim.loads.loaded()
    image = Image.open(io.BytesIO(frame.content)).convert("RGB")
    assert image.size == (32, 32)
    red, green, _ = image.getpixel((16, 16))
    assert red > 150 and green < 80  # the file's red, not the canvas


@pytest.mark.webrtc
async def test_headless_gets_no_tempo(sim: Simulator) -> None:
    """docs/scope.md §10.1: a headless session gets no tempo: `_quantized` applies at once."""
    await load(sim, height=16, width=16)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post("/api/v1/tempo/enable", json={"source": "link", "bpm": 30})
        await client.post(START, json={"pipeline_id": "controller-viz"})
        await client.post(PARAMS, json={"quantize_mode": "bar"})
        await client.post(PARAMS, json={"_quantized": True, "ctrl_input": {"button": ["KeyA"]}})
        assert sim.headless is not None
        session = sim.headless.session
        await sim.wait_for(lambda s: session.ctrl["button"] == ["KeyA"], timeout=1.0)
        await client.post(STOP)


async def test_output_ts_sends_nothing_while_paused(sim: Simulator) -> None:
    """docs/scope.md §10.1: output.ts carries nothing while the headless session is paused."""
    await load(sim, height=32, width=32)
    data = bytearray()
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        await client.post(START, json={"pipeline_id": "controller-viz", "parameters": {"paused": True}})

        async def read() -> None:
            async with client.stream("GET", "/api/v1/session/output.ts") as response:
                async for chunk in response.aiter_bytes():
                    data.extend(chunk)

        reader = asyncio.get_running_loop().create_task(read())
        await asyncio.sleep(0.5)
        assert len(data) == 0
        async with httpx.AsyncClient(base_url=sim.url) as other:
            await other.post(PARAMS, json={"paused": False})
            deadline = asyncio.get_running_loop().time() + 10
            while not data:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            await other.post(STOP)
        await asyncio.wait_for(reader, 5)
    assert data[0] == 0x47
