"""The behaviour fingerprint: every observation of a real Scope 0.2.4 server in docs/scope.md §10
(and §10.1), replayed against the simulator over loopback, one test per observation.

The client here is deliberately not showrunner's: plain HTTP (httpx) and a minimal aiortc offerer
(`LoopbackPeer` in conftest.py), as the observations were made. Where the simulator differs on
purpose, the test says so and asserts what it does instead.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from showrunner.sim import Simulator, serve_sim

pytestmark = [pytest.mark.anyio, pytest.mark.webrtc]

Connect = Callable[..., Awaitable[Any]]
WEIGHT_FREE = ["controller-viz", "gray", "passthrough"]  # what the simulator knows of a CPU host's list


async def get(sim: Simulator, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        return await client.get(path, params=params)


async def post(sim: Simulator, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        if isinstance(body, (bytes, str)):
            return await client.post(path, content=body, **kwargs)
        return await client.post(path, json=body, **kwargs)


async def load(sim: Simulator, pipeline_id: str = "controller-viz", **params: Any) -> None:
    body = {"pipeline_ids": [pipeline_id], "load_params": params}
    answer = await post(sim, "/api/v1/pipeline/load", body)
    assert answer.status_code == 200
    await sim.wait_for(lambda s: s.loads.combined() == "loaded", timeout=10)


async def parameters(sim: Simulator) -> dict[str, Any]:
    body: dict[str, Any] = (await get(sim, "/api/v1/session/parameters")).json()
    return body


async def test_health_and_a_restart_changes_server_start_time(sim: Simulator) -> None:
    """§10: a healthy `/health`; a restart changes `server_start_time` (§2.1)."""
    before = (await get(sim, "/health")).json()
    assert before["status"] == "healthy" and before["version"] == "0.2.4"
    await sim.restart()
    after = (await get(sim, "/health")).json()
    assert after["server_start_time"] != before["server_start_time"]


async def test_without_a_gpu_only_weight_free_pipelines_are_listed() -> None:
    """§10: a CPU host lists only weight-free pipelines (§2.4). The simulator lists a GPU host's
    pipelines by default (so Wan shows can be rehearsed); `pipelines=` gives the CPU list (it
    has no rife or scribble)."""
    async with serve_sim(port=0, pipelines=WEIGHT_FREE) as cpu:
        listed = (await get(cpu, "/api/v1/pipelines/schemas")).json()["pipelines"]
    assert sorted(listed) == WEIGHT_FREE
    assert all(meta.get("estimated_vram_gb") is None for meta in listed.values())


async def test_a_weight_free_load_reads_loading_or_loaded_at_the_first_poll(sim: Simulator) -> None:
    """§10: `loaded` on the first poll after milliseconds; the first poll after a POST reads
    `loading` (or the new `loaded`), never the previous status."""
    await load(sim, "controller-viz", height=64, width=64)
    await post(sim, "/api/v1/pipeline/load", {"pipeline_ids": ["passthrough"], "load_params": {}})
    first = (await get(sim, "/api/v1/pipeline/status")).json()
    assert first["status"] == "loading" or (
        (first["status"], first["pipeline_id"]) == ("loaded", "passthrough"))
    started = time.monotonic()
    while (await get(sim, "/api/v1/pipeline/status")).json()["status"] != "loaded":
        await asyncio.sleep(0.005)
    assert time.monotonic() - started < 1.0


async def test_an_unknown_id_is_200_then_error_once(sim: Simulator) -> None:
    """§10: unknown id → 200, then one `{"status": "error", "pipeline_id": null, "error": null}`,
    then `not_loaded` (the reason only in the log)."""
    assert (await post(sim, "/api/v1/pipeline/load", {"pipeline_ids": ["nonesuch"]})).status_code == 200
    once = (await get(sim, "/api/v1/pipeline/status")).json()
    assert (once["status"], once["pipeline_id"], once["error"]) == ("error", None, None)
    assert (await get(sim, "/api/v1/pipeline/status")).json()["status"] == "not_loaded"


async def test_load_without_ids_is_400_and_a_malformed_body_422(sim: Simulator) -> None:
    """§10: load with `{}` → 400 with Scope's detail; malformed body → 422."""
    empty = await post(sim, "/api/v1/pipeline/load", {})
    assert empty.status_code == 400
    assert empty.json() == {"detail": "Either 'pipelines' or 'pipeline_ids' must be provided"}
    bad = await post(sim, "/api/v1/pipeline/load", "{not json",
                     headers={"content-type": "application/json"})
    assert bad.status_code == 422


async def test_offer_status_codes_and_delete(sim: Simulator, sim_peer: Connect) -> None:
    """§10: offer before a load → 400 "Pipeline not loaded…"; without `sdp` → 422; garbage SDP →
    500; DELETE → 204, also after the peer connection closed."""
    early = await post(sim, "/api/v1/webrtc/offer", {"sdp": "v=0", "type": "offer"})
    assert (early.status_code, early.json()) == (
        400, {"detail": "Pipeline not loaded. Please load pipeline first."})
    await load(sim)
    assert (await post(sim, "/api/v1/webrtc/offer", {"type": "offer"})).status_code == 422
    assert (await post(sim, "/api/v1/webrtc/offer", {"sdp": "garbage", "type": "offer"})).status_code == 500
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await peer.close()
    async with httpx.AsyncClient(base_url=sim.url) as client:
        assert (await client.delete(f"/api/v1/webrtc/offer/{peer.session_id}")).status_code == 204
        assert (await client.delete(f"/api/v1/webrtc/offer/{peer.session_id}")).status_code == 204


async def test_ice_servers(sim: Simulator) -> None:
    """§10: Scope answers a public STUN server without TURN credentials. The simulator answers
    its `ice_servers` setting in the same shape, empty by default, so nothing it hands out
    leads off the machine (a deliberate difference)."""
    assert (await get(sim, "/api/v1/webrtc/ice-servers")).json() == {"iceServers": []}


async def test_no_pipeline_ids_connects_but_no_frame_ever_comes(sim: Simulator, sim_peer: Connect) -> None:
    """§10 (§2.6, §8-A): without `initialParameters.pipeline_ids` the offer is 200, the connection
    and data channel come up, and no frame ever comes."""
    await load(sim)
    peer = await sim_peer(sim.url, {"prompts": [{"text": "x", "weight": 1}]})
    assert peer.response.status_code == 200
    await asyncio.wait_for(peer.opened.wait(), 5)
    await asyncio.sleep(1.0)
    assert peer.frames == 0


async def test_with_pipeline_ids_the_channel_opens_then_frames_come(
    sim: Simulator, sim_peer: Connect
) -> None:
    """§10: the data channel opens (0.1–0.3 s after the offer there), then the first frame
    comes (0.5–0.9 s); asserted here: both come, the channel first (timings belong in bench/)."""
    await load(sim, height=64, width=64)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    opened_at = framed_at = None
    deadline = time.monotonic() + 5
    while (opened_at is None or framed_at is None) and time.monotonic() < deadline:
        now = time.monotonic()
        if opened_at is None and peer.opened.is_set():
            opened_at = now
        if framed_at is None and peer.frames > 0:
            framed_at = now
        await asyncio.sleep(0.002)
    assert opened_at is not None and framed_at is not None
    assert opened_at <= framed_at


async def test_paused_keeps_sending_the_last_frame(sim: Simulator, sim_peer: Connect) -> None:
    """§10: `paused: true` does not stop the video track: the last frame keeps coming at the
    track's rate, nothing new is produced; `paused: false` brings new frames back at once."""
    await load(sim, height=64, width=64)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: peer.frames > 5, timeout=5)
    session = sim.sessions[peer.session_id]
    await peer.send({"paused": True})
    await sim.wait_for(lambda s: session.paused, timeout=2)
    produced, received = session.frames_sent, peer.frames
    await asyncio.sleep(1.0)
    assert peer.frames - received > 20  # still arriving (about 56/s on the observed CPU)
    assert session.frames_sent == produced and session.frames_repeated > 20
    await peer.send({"paused": False})
    await sim.wait_for(lambda s: session.frames_sent > produced, timeout=2)


async def test_parameters_without_a_session_and_unvalidated_updates(
    sim: Simulator, sim_peer: Connect
) -> None:
    """§10: with no session `/session/parameters` is 200 `{"parameters": {}}`; data-channel
    updates show there within about 0.2 s, unvalidated (unknown keys, negative weights); malformed
    JSON is dropped and the session goes on."""
    assert (await parameters(sim)) == {"parameters": {}}
    await load(sim, height=64, width=64)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await peer.send("{broken")
    await peer.send({"mystery_key": 7, "prompts": [{"text": "x", "weight": -2}]})
    started = time.monotonic()
    while (await parameters(sim))["parameters"].get("mystery_key") != 7:
        assert time.monotonic() - started < 2
        await asyncio.sleep(0.02)
    stored = (await parameters(sim))["parameters"]
    assert stored["prompts"] == [{"text": "x", "weight": -2}]
    assert sim.sessions[peer.session_id].closed is False


async def test_no_message_in_an_ordinary_run_and_stream_stopped_on_sigterm(
    sim: Simulator, sim_peer: Connect
) -> None:
    """§10: no server message in an ordinary run; on SIGTERM a `stream_stopped` before closing."""
    await load(sim, height=64, width=64)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await peer.send({"prompts": [{"text": "a", "weight": 1}]})
    await sim.wait_for(lambda s: peer.frames > 5, timeout=5)
    assert peer.messages == []
    await sim.shutdown()
    await asyncio.wait_for(peer.closed.wait(), 5)
    assert peer.messages == [{"type": "stream_stopped"}]


async def test_a_second_load_leaves_the_session_on_the_old_pipeline(
    sim: Simulator, sim_peer: Connect
) -> None:
    """§10 (§4.2): a load while a session streams succeeds and the status shows the new
    pipeline, but the session keeps producing frames from the old one."""
    await load(sim, height=64, width=64)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: peer.frames > 2, timeout=5)
    await load(sim, "passthrough")
    status = (await get(sim, "/api/v1/pipeline/status")).json()
    assert (status["status"], status["pipeline_id"]) == ("loaded", "passthrough")
    session = sim.sessions[peer.session_id]
    assert session.stream is not None and session.stream.pipeline_id == "controller-viz"
    before = peer.frames
    await sim.wait_for(lambda s: peer.frames > before + 5, timeout=5)


def _clip(path: Path) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for _ in range(6):
        image = Image.new("RGB", (64, 48), (200, 30, 30))
        for packet in stream.encode(av.VideoFrame.from_image(image)):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


async def test_a_video_file_input_source_gives_frames_and_is_stripped(
    sim: Simulator, sim_peer: Connect, tmp_path: Path
) -> None:
    """§10: `initialParameters.input_source` with a `video_file` gives frames on passthrough;
    the server strips `input_source` from `/session/parameters`."""
    clip = _clip(tmp_path / "clip.mp4")
    await load(sim, "passthrough")
    source = {"enabled": True, "source_type": "video_file", "source_name": str(clip)}
    peer = await sim_peer(sim.url, {"pipeline_ids": ["passthrough"], "input_mode": "video",
                                    "input_source": source})
    await sim.wait_for(lambda s: peer.frames > 0, timeout=5)
    assert peer.frame_size == (64, 48)
    assert "input_source" not in (await parameters(sim))["parameters"]


async def test_controller_viz_at_its_loaded_size_and_cpu_metrics(sim: Simulator, sim_peer: Connect) -> None:
    """§10: controller-viz (text mode, no input) over a sendrecv transceiver gives frames at the
    loaded size, `pipeline_fps` 60.0; on a CPU `/session/metrics` has `gpu: {}`."""
    await load(sim, height=320, width=576)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: peer.frames > 3, timeout=5)
    assert peer.frame_size == (576, 320)
    metrics = (await get(sim, "/api/v1/session/metrics")).json()
    assert metrics["gpu"] == {}
    assert metrics["sessions"][peer.session_id]["pipeline_fps"] == 60.0


async def test_assets_answer_an_absolute_server_path(sim: Simulator) -> None:
    """§2.9 (observed with the upload of §10's runs): the answer's `path` is absolute on the
    server; a disallowed extension is 400."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    ok = await post(sim, "/api/v1/assets", buffer.getvalue(), params={"filename": "ref.png"},
                    headers={"content-type": "application/octet-stream"})
    assert ok.status_code == 200 and Path(ok.json()["path"]).is_absolute()
    bad = await post(sim, "/api/v1/assets", b"x", params={"filename": "notes.txt"},
                     headers={"content-type": "application/octet-stream"})
    assert bad.status_code == 400


async def test_loras_are_listed_with_absolute_paths(sim: Simulator) -> None:
    """§2.10: `GET /api/v1/loras` → `lora_files` of `.safetensors` with absolute `path`;
    `/api/v1/lora/list` does not exist (§8-C)."""
    files = (await get(sim, "/api/v1/loras")).json()["lora_files"]
    assert files
    assert all(Path(f["path"]).is_absolute() and f["path"].endswith(".safetensors") for f in files)
    assert (await get(sim, "/api/v1/lora/list")).status_code == 404


async def test_headless_start_stop_and_replacement(sim: Simulator) -> None:
    """§10.1: start → 200; not loaded → 500 "FrameProcessor failed to start"; `{}` → 422; a second
    start leaves the first running; stop → 200, again → 404, then parameters `{}`."""
    not_loaded = await post(sim, "/api/v1/session/start", {"pipeline_id": "controller-viz"})
    assert not_loaded.status_code == 500 and "FrameProcessor failed to start" in not_loaded.text
    assert (await post(sim, "/api/v1/session/start", {})).status_code == 422
    await load(sim, height=64, width=64)
    assert (await post(sim, "/api/v1/session/start", {"pipeline_id": "controller-viz"})).status_code == 200
    first = sim.headless
    assert (await post(sim, "/api/v1/session/start", {"pipeline_id": "controller-viz"})).status_code == 200
    assert first is not None and first in sim.headless_orphans
    assert (await post(sim, "/api/v1/session/stop")).status_code == 200
    assert (await post(sim, "/api/v1/session/stop")).status_code == 404
    assert (await parameters(sim)) == {"parameters": {}}


async def test_headless_parameters_are_validated(sim: Simulator) -> None:
    """§10.1: `POST /session/parameters` is validated: 422 for a negative weight, `noise_scale`
    5, method "cubic"."""
    await load(sim, height=64, width=64)
    await post(sim, "/api/v1/session/start", {"pipeline_id": "controller-viz"})
    for bad in ({"prompts": [{"text": "x", "weight": -1}]}, {"noise_scale": 5},
                {"prompt_interpolation_method": "cubic"}):
        assert (await post(sim, "/api/v1/session/parameters", bad)).status_code == 422, bad
    good = await post(sim, "/api/v1/session/parameters", {"noise_scale": 0.5})
    assert good.status_code == 200
    assert (await parameters(sim))["parameters"]["noise_scale"] == 0.5


async def test_tempo_set_before_enabling_is_400(sim: Simulator) -> None:
    """§10.1: `set_tempo` before enabling → 400; a bad source → 422."""
    assert (await post(sim, "/api/v1/tempo/set_tempo", {"bpm": 120})).status_code == 400
    assert (await post(sim, "/api/v1/tempo/enable", {"source": "nonesuch"})).status_code == 422


async def test_headless_output_is_not_paced_and_pause_stops_it(sim: Simulator) -> None:
    """§10.1: headless output is not paced (about 900–1,000 frames/s from controller-viz, where a
    WebRTC track runs at 60); `paused: true` stops headless production (the WebRTC track repeats
    its last frame instead)."""
    await load(sim, height=64, width=64)
    assert (await post(sim, "/api/v1/session/start", {"pipeline_id": "controller-viz"})).status_code == 200
    run = sim.headless
    assert run is not None
    start, began = run.session.frames_sent, time.monotonic()
    await asyncio.sleep(0.5)
    rate = (run.session.frames_sent - start) / (time.monotonic() - began)
    assert rate > 120, f"{rate:.0f} frames/s"  # well above any paced rate
    await post(sim, "/api/v1/session/parameters", {"paused": True})
    await sim.wait_for(lambda s: run.session.paused, timeout=2)
    await asyncio.sleep(0.1)
    frozen = run.session.frames_sent
    await asyncio.sleep(0.3)
    assert run.session.frames_sent == frozen


# The first words of each observation of §10 and §10.1, and the test that replays it.
OBSERVATIONS = {
    "Startup to a healthy": test_health_and_a_restart_changes_server_start_time,
    "Without a GPU, the schema list": test_without_a_gpu_only_weight_free_pipelines_are_listed,
    "Weight-free load": test_a_weight_free_load_reads_loading_or_loaded_at_the_first_poll,
    "Unknown id": test_an_unknown_id_is_200_then_error_once,
    "Load with `{}`": test_load_without_ids_is_400_and_a_malformed_body_422,
    "Offer before any load": test_offer_status_codes_and_delete,
    "`/api/v1/webrtc/ice-servers`": test_ice_servers,
    "Offer without `initialParameters.pipeline_ids`": test_no_pipeline_ids_connects_but_no_frame_ever_comes,
    "The data channel opens": test_with_pipeline_ids_the_channel_opens_then_frames_come,
    "`paused: true` **does not stop": test_paused_keeps_sending_the_last_frame,
    "Data-channel updates appear": test_parameters_without_a_session_and_unvalidated_updates,
    "No message arrives": test_no_message_in_an_ordinary_run_and_stream_stopped_on_sigterm,
    "A second load while a session streams": test_a_second_load_leaves_the_session_on_the_old_pipeline,
    "`initialParameters.input_source`": test_a_video_file_input_source_gives_frames_and_is_stripped,
    "`controller-viz` (text mode": test_controller_viz_at_its_loaded_size_and_cpu_metrics,
    "`POST /session/start`": test_headless_start_stop_and_replacement,
    "Headless output is **not paced**": test_headless_output_is_not_paced_and_pause_stops_it,
    "`POST /session/parameters` must be JSON": test_headless_parameters_are_validated,
    "`paused: true` **stops** headless": test_headless_output_is_not_paced_and_pause_stops_it,
    "`POST /session/stop`": test_headless_start_stop_and_replacement,
    "Tempo:": test_tempo_set_before_enabling_is_400,
}


def test_every_observation_has_a_test() -> None:
    """Each bullet of docs/scope.md §10 and §10.1 is replayed above: a new observation in the
    docs fails here until a test replays it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "scope.md").read_text("utf-8")
    section = text[text.index("## 10. Observed"):text.index("## 11.")]
    bullets = [line[2:] for line in section.splitlines() if line.startswith("- ")]
    unmatched = [b for b in bullets if not any(b.startswith(prefix) for prefix in OBSERVATIONS)]
    assert not unmatched
    assert len(bullets) == len(OBSERVATIONS)
