"""Simulator WebRTC sessions, driven by a test-local aiortc peer over loopback (docs/scope.md §2.6, §3-4)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from showrunner.sim import Simulator, serve_sim
from showrunner.sim.webrtc import is_local_candidate, local_candidates_only

pytestmark = [pytest.mark.anyio, pytest.mark.webrtc]

Connect = Callable[..., Awaitable[Any]]
VIZ = {"pipeline_ids": ["controller-viz"]}


async def load(sim: Simulator, pipeline_id: str, **load_params: Any) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post(
            "/api/v1/pipeline/load", json={"pipeline_ids": [pipeline_id], "load_params": load_params}
        )
    assert response.status_code == 200
    await sim.wait_for(
        lambda s: s.loads.combined() == "loaded"
        and s.loads.loaded().get(pipeline_id) is not None
        and s.loads.loaded()[pipeline_id].load_params == load_params
    )


@pytest.fixture
async def fast_sim() -> AsyncIterator[Simulator]:
    """A simulator at 96 fps, so a 12-frame Wan chunk takes 0.125 s."""
    async with serve_sim(load_time=0.01, fps=96) as running:
        yield running


# -- signalling ----------------------------------------------------------------------------


async def test_offer_before_load_is_400(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.6 / §10: offer while status ≠ loaded → 400 with Scope's message."""
    status = await _offer_status(sim, sim_peer, VIZ)
    assert status == (400, {"detail": "Pipeline not loaded. Please load pipeline first."})
    assert sim.sessions == {}


async def _offer_status(sim: Simulator, sim_peer: Connect, initial: Any) -> tuple[int, Any]:
    peer = await sim_peer(sim.url, initial)
    return peer.response.status_code, peer.response.json()


@pytest.mark.parametrize(
    "initial",
    [
        {"prompts": [{"text": "a", "weight": -1}]},
        {"noise_scale": 1.5},
        {"vace_context_scale": 2.5},
        {"transition": {"target_prompts": [{"text": "a"}], "num_steps": -1}},
        {"prompt_interpolation_method": "cubic"},
        {"input_mode": "audio"},
    ],
    ids=["weight<0", "noise_scale>1", "vace_context_scale>2", "num_steps<0", "bad-enum", "bad-mode"],
)
async def test_offer_with_invalid_initial_parameters_is_422(
    sim: Simulator, sim_peer: Connect, initial: dict[str, Any]
) -> None:
    """docs/scope.md §2.6: initialParameters run through the Parameters model → 422."""
    await load(sim, "controller-viz")
    status, body = await _offer_status(sim, sim_peer, {**VIZ, **initial})
    assert status == 422
    assert body["detail"][0]["loc"][:2] == ["body", "initialParameters"]
    assert sim.sessions == {}


async def test_offer_without_sdp_is_422_and_garbage_sdp_is_500(sim: Simulator) -> None:
    """docs/scope.md §10: offer without `sdp` → 422; garbage SDP → 500."""
    await load(sim, "controller-viz")
    async with httpx.AsyncClient(base_url=sim.url) as client:
        missing = await client.post("/api/v1/webrtc/offer", json={"type": "offer"})
        garbage = await client.post(
            "/api/v1/webrtc/offer", json={"sdp": "this is not sdp", "type": "offer"}
        )
        health = await client.get("/health")
    assert missing.status_code == 422
    assert garbage.status_code == 500
    assert health.status_code == 200  # the server survives
    assert sim.sessions == {}


async def test_initial_parameters_get_the_model_defaults(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.6 / §8-I: defaults prompt_interpolation_method and vace_context_scale added."""
    await load(sim, "controller-viz")
    peer = await sim_peer(sim.url, {**VIZ, "manage_cache": False})
    session = sim.sessions[peer.session_id]
    assert session.initial_parameters == {
        "pipeline_ids": ["controller-viz"],
        "manage_cache": False,
        "prompt_interpolation_method": "linear",
        "vace_context_scale": 1.0,
    }
    assert session.pipeline_ids == ["controller-viz"]


async def test_answer_lists_only_loopback_candidates(sim: Simulator, sim_peer: Connect) -> None:
    """Loopback-only ICE: the answer's candidates are all 127.0.0.1 host candidates."""
    await load(sim, "controller-viz")
    peer = await sim_peer(sim.url, VIZ)
    candidates = re.findall(r"^a=candidate:.*$", peer.answer_sdp, flags=re.M)
    assert candidates
    for line in candidates:
        fields = line.split()
        assert fields[4] == "127.0.0.1" and fields[7] == "host", line
    assert "stun" not in peer.answer_sdp.lower()


def test_offer_candidates_beyond_this_host_are_ignored() -> None:
    """Loopback-only ICE: mDNS names and foreign addresses are stripped from offers."""
    sdp = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
            "a=candidate:2 1 udp 2130706431 0f3a2b1c-aaaa-bbbb-cccc-0123456789ab.local 5001 typ host",
            "a=candidate:3 1 udp 1694498815 203.0.113.9 5002 typ srflx raddr 0.0.0.0 rport 0",
            "a=end-of-candidates",
        ]
    )
    kept = local_candidates_only(sdp)
    assert "127.0.0.1 5000" in kept
    assert ".local" not in kept and "203.0.113.9" not in kept
    assert not is_local_candidate("candidate:3 1 udp 1 203.0.113.9 5002 typ host")


# -- video -----------------------------------------------------------------------------------


async def test_sendrecv_gets_frames_at_the_loaded_resolution(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §4.1 / §10: a sendrecv video m-line gets frames at the loaded height×width."""
    await load(sim, "controller-viz", height=96, width=128)
    peer = await sim_peer(sim.url, VIZ)
    await sim.wait_for(lambda s: peer.frames >= 5)
    assert peer.frame_size == (128, 96)
    session = sim.sessions[peer.session_id]
    assert session.frames_sent >= 5
    async with httpx.AsyncClient(base_url=sim.url) as client:
        metrics = (await client.get("/api/v1/session/metrics")).json()
        frame = await client.get("/api/v1/session/frame", params={"quality": 50})
    stats = metrics["sessions"][peer.session_id]
    assert stats["frames_out"] >= 5
    assert frame.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(frame.content)).size == (128, 96)


async def test_controller_viz_runs_at_the_rate_of_a_real_cpu_server(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §10: controller-viz delivers about 50–60 frames/s, one frame per call, and
    `/session/metrics` reports `pipeline_fps` 60.0; the client paces at chunk rate from it."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await sim.wait_for(lambda s: peer.frames >= 3)
    session = sim.sessions[peer.session_id]
    start = session.frames_sent
    await asyncio.sleep(1.0)
    assert session.frames_sent - start >= 36  # 60 nominal (24 before); a busy host loses some
    assert session.chunk_interval == pytest.approx(1 / 60)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        stats = (await client.get("/api/v1/session/metrics")).json()["sessions"][peer.session_id]
    assert stats["pipeline_fps"] == 60.0


async def test_fps_knob_overrides_every_pipeline(fast_sim: Simulator, sim_peer: Connect) -> None:
    """`--fps` / `fps=` still sets one rate for every pipeline (here 96 instead of 60)."""
    await load(fast_sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(fast_sim.url, VIZ)
    session = fast_sim.sessions[peer.session_id]
    assert session.stream is not None and session.stream.fps == 96.0


async def test_wan_default_resolution_and_fps(fast_sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.2: without height/width, the pipeline default (longlive 320×576)."""
    await load(fast_sim, "longlive")
    peer = await sim_peer(fast_sim.url, {"pipeline_ids": ["longlive"]})
    await fast_sim.wait_for(lambda s: peer.frames >= 1)
    assert peer.frame_size == (576, 320)
    assert fast_sim.sessions[peer.session_id].chunk_interval == pytest.approx(12 / 96)


async def test_no_video_without_pipeline_ids(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.6 / §8-A: no pipeline_ids → 200, data channel opens, frames never come."""
    await load(sim, "controller-viz")
    peer = await sim_peer(sim.url, {"prompts": [{"text": "a cat", "weight": 1}]})
    assert peer.response.status_code == 200
    await asyncio.wait_for(peer.opened.wait(), 5)
    await asyncio.sleep(0.5)
    session = sim.sessions[peer.session_id]
    assert peer.tracks == 1  # the answer carries a track; it just never sends
    assert peer.frames == 0 and session.frames_sent == 0
    assert session.no_video_reason == "No pipeline IDs provided, cannot start"


async def test_no_video_when_pipeline_ids_are_not_loaded(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.6 / §2.12: pipeline_ids naming something not loaded → 200, no video ever."""
    await load(sim, "controller-viz")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["longlive"]})
    assert peer.response.status_code == 200
    await asyncio.wait_for(peer.opened.wait(), 5)
    await asyncio.sleep(0.4)
    assert peer.frames == 0
    assert sim.sessions[peer.session_id].stream is None


async def test_recvonly_offer_gets_no_video(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §4.1 / §8-N: a recvonly video m-line gives no remote track and no video."""
    await load(sim, "controller-viz")
    peer = await sim_peer(sim.url, VIZ, video="recvonly")
    assert peer.response.status_code == 200
    await asyncio.wait_for(peer.opened.wait(), 5)
    await asyncio.sleep(0.5)
    session = sim.sessions[peer.session_id]
    assert peer.frames == 0 and session.frames_sent == 0
    assert session.no_video_reason == "video m-line is recvonly"


async def test_open_session_keeps_its_pipeline_after_a_new_load(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §4.2 / §10: a load while streaming succeeds, the session keeps the old pipeline."""
    await load(sim, "controller-viz", height=64, width=64)
    peer = await sim_peer(sim.url, VIZ)
    await sim.wait_for(lambda s: peer.frames >= 3)
    await load(sim, "passthrough", height=32, width=32)
    session = sim.sessions[peer.session_id]
    before = peer.frames
    await sim.wait_for(lambda s: peer.frames >= before + 5)
    assert session.stream is not None and session.stream.pipeline_id == "controller-viz"
    assert peer.frame_size == (64, 64)
    assert "controller-viz" not in sim.loaded["pipelines"]


async def test_paused_repeats_the_last_frame_at_the_track_rate(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §3.2 step 2 / §10: `paused` applies at once and freezes the picture, but the
    track keeps sending that last frame at its rate (Scope tracks.py); no new frame is produced,
    so metrics `frames_out` stays flat; `paused: false` brings new frames back at once."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await sim.wait_for(lambda s: peer.frames >= 3)
    session = sim.sessions[peer.session_id]
    assert session.stream is not None
    await peer.send({"paused": True})
    await sim.wait_for(lambda s: session.paused)
    await asyncio.sleep(0.1)
    produced, chunk, received = session.frames_sent, session.chunk, peer.frames
    async with httpx.AsyncClient(base_url=sim.url) as client:
        before = (await client.get("/api/v1/session/frame")).content
        await asyncio.sleep(0.5)
        after = (await client.get("/api/v1/session/frame")).content
        metrics = (await client.get("/api/v1/session/metrics")).json()
    repeated = peer.frames - received
    assert repeated >= 0.5 * 0.5 * session.stream.fps, repeated  # about fps × 0.5 s
    assert session.frames_sent == produced and session.chunk == chunk
    assert session.frames_repeated >= repeated
    assert metrics["sessions"][peer.session_id]["frames_out"] == produced
    assert before == after  # the same frozen picture
    await peer.send({"paused": False})
    await sim.wait_for(lambda s: session.frames_sent >= produced + 3)


async def test_paused_from_the_start_sends_nothing(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §10 / Scope tracks.py: paused before any frame exists: nothing to repeat."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, {**VIZ, "paused": True})
    await asyncio.wait_for(peer.opened.wait(), 5)
    await asyncio.sleep(0.4)
    assert peer.frames == 0
    await peer.send({"paused": False})
    await sim.wait_for(lambda s: peer.frames >= 3)


# -- data channel ----------------------------------------------------------------------------


async def test_burst_of_20_keeps_8_drops_the_newest_applies_one_per_chunk(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §3.2 step 5 / §8-F: queue of 8, newest dropped, one update applied per chunk."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    session = sim.sessions[peer.session_id]
    await sim.wait_for(lambda s: session.chunk >= 2)
    # While paused no chunk runs, so the whole burst meets a queue that is not draining.
    await peer.send({"paused": True})
    await sim.wait_for(lambda s: session.paused)
    for i in range(20):
        await peer.send({"seq": i})
    await sim.wait_for(lambda s: len(session.dropped) == 12)
    assert [u["seq"] for u in session.dropped] == list(range(8, 20))
    await peer.send({"paused": False})
    await sim.wait_for(lambda s: len(session.applied) == 8)
    await asyncio.sleep(0.2)
    applied = session.applied
    assert [a["update"]["seq"] for a in applied] == list(range(8))
    chunks = [a["chunk"] for a in applied]
    assert chunks == list(range(chunks[0], chunks[0] + 8))  # one per chunk
    assert session.params["seq"] == 7


async def test_bad_json_is_recorded_and_dropped(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §3.2 step 1 / §10: malformed JSON is logged and dropped; the session continues."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await peer.send("{not json")
    await peer.send({"noise_scale": 0.3})
    session = sim.sessions[peer.session_id]
    await sim.wait_for(lambda s: session.params.get("noise_scale") == 0.3)
    data = [r for r in sim.records if r["kind"] == "data"]
    assert [r["message"] for r in data] == ["{not json", {"noise_scale": 0.3}]
    assert data[0]["session_id"] == peer.session_id and data[0]["label"] == "parameters"


async def test_transition_over_num_steps_chunks(fast_sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §3.3: a transition spans `num_steps` chunks and leaves `prompts` alone (§8-G)."""
    await load(fast_sim, "longlive", height=64, width=64)
    cat = [{"text": "a cat", "weight": 1.0}]
    peer = await sim_peer(fast_sim.url, {"pipeline_ids": ["longlive"], "prompts": cat})
    session = fast_sim.sessions[peer.session_id]
    await fast_sim.wait_for(lambda s: session.chunk >= 2)
    dog = [{"text": "a dog", "weight": 1.0}]
    await peer.send({"transition": {"target_prompts": dog, "num_steps": 3}})
    await fast_sim.wait_for(lambda s: session.transitions and session.transitions[-1]["end_chunk"])
    record = session.transitions[-1]
    assert record["end_chunk"] - record["start_chunk"] + 1 == 3
    assert session.prompts == dog
    assert session.params["prompts"] == cat


async def test_one_shot_reference_image_is_consumed(
    fast_sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §3.3 / §4.4 / §8-L: vace_ref_images applies to one chunk, then is gone."""
    await load(fast_sim, "longlive", height=64, width=64)
    ref = fast_sim.assets.upload("ref.png", _png())["path"]
    peer = await sim_peer(fast_sim.url, {"pipeline_ids": ["longlive"]})
    session = fast_sim.sessions[peer.session_id]
    await peer.send({"vace_ref_images": [ref], "vace_context_scale": 1.5})
    await fast_sim.wait_for(lambda s: session.applied)
    applied_chunk = session.applied[0]["chunk"]
    await fast_sim.wait_for(lambda s: session.chunk > applied_chunk)
    assert "vace_ref_images" not in session.params
    assert session.params["vace_context_scale"] == 1.5
    assert session.vace_ref == ref  # the effect lives on until a cache reset


@pytest.mark.parametrize(
    ("mode", "expected"), [("permanent_merge", 1.0), ("runtime_peft", 0.25)], ids=str
)
async def test_lora_scales_follow_the_merge_mode(
    fast_sim: Simulator, sim_peer: Connect, mode: str, expected: float
) -> None:
    """docs/scope.md §4.3: lora_scales are ignored for permanent_merge, applied for runtime_peft."""
    path = fast_sim.assets.lora_paths()[0]
    await load(
        fast_sim,
        "longlive",
        height=64,
        width=64,
        loras=[{"path": path, "scale": 1.0}],
        lora_merge_mode=mode,
    )
    peer = await sim_peer(fast_sim.url, {"pipeline_ids": ["longlive"]})
    session = fast_sim.sessions[peer.session_id]
    await peer.send({"lora_scales": [{"path": path, "scale": 0.25}]})
    await fast_sim.wait_for(lambda s: session.applied)
    assert session.lora_scales == {path: expected}
    # Every lora_scales message is a hard cache reset while manage_cache is on.
    assert session.cache_resets[-1]["reason"] == "lora_scales"


async def test_post_session_parameters_validates_broadcasts_and_notifies(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §2.8 / §3.4: validated, broadcast, echoed as `parameters_updated`."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await asyncio.wait_for(peer.opened.wait(), 5)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        bad = await client.post("/api/v1/session/parameters", json={"noise_scale": 3})
        ok = await client.post("/api/v1/session/parameters", json={"noise_scale": 0.4})
        session = sim.sessions[peer.session_id]
        await sim.wait_for(lambda s: session.params.get("noise_scale") == 0.4)
        current = (await client.get("/api/v1/session/parameters")).json()["parameters"]
    assert bad.status_code == 422
    expected = {"noise_scale": 0.4, "prompt_interpolation_method": "linear", "vace_context_scale": 1.0}
    assert ok.json() == {"status": "ok", "applied_parameters": expected}
    await sim.wait_for(lambda s: peer.messages)
    assert peer.messages[0] == {"type": "parameters_updated", "parameters": expected}
    assert current["noise_scale"] == 0.4 and current["pipeline_ids"] == ["controller-viz"]


async def test_chunk_delay_slows_chunks(sim: Simulator, sim_peer: Connect) -> None:
    """Fault knob `chunk_delay`: extra seconds per chunk."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    session = sim.sessions[peer.session_id]
    await sim.wait_for(lambda s: session.chunk >= 2)
    start = session.chunk
    await asyncio.sleep(0.5)
    normal = session.chunk - start
    sim.faults.chunk_delay = 0.25
    await asyncio.sleep(0.05)
    start = session.chunk
    await asyncio.sleep(0.6)
    slow = session.chunk - start
    assert normal >= 6  # ~12 at 24 chunks/s
    assert slow <= 4


# -- connection faults and teardown ----------------------------------------------------------


async def test_drop_data_channel_keeps_the_connection(sim: Simulator, sim_peer: Connect) -> None:
    """Fault knob: the server closes the data channel; the peer connection stays up."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await asyncio.wait_for(peer.opened.wait(), 5)
    await sim.drop_data_channel(peer.session_id)
    await asyncio.wait_for(peer.closed.wait(), 5)
    before = peer.frames
    await sim.wait_for(lambda s: peer.frames > before)
    assert not sim.sessions[peer.session_id].closed


async def test_drop_peer_connection_sends_stream_stopped(
    sim: Simulator, sim_peer: Connect
) -> None:
    """docs/scope.md §3.4: the simulator stops the session on purpose, `stream_stopped` first."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await asyncio.wait_for(peer.opened.wait(), 5)
    await sim.drop_peer_connection()
    assert sim.sessions[peer.session_id].closed
    await sim.wait_for(lambda s: peer.pc.connectionState in ("closed", "failed") or peer.closed.is_set())
    assert {"type": "stream_stopped"} in peer.messages
    assert sim.live_peers() == []


async def test_patch_and_delete_offer(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §2.6: PATCH 204/404, DELETE 204 even for unknown sessions."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    base = f"/api/v1/webrtc/offer/{peer.session_id}"
    candidate = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0"}
    async with httpx.AsyncClient(base_url=sim.url) as client:
        ok = await client.patch(base, json={"candidates": [candidate]})
        bad = await client.patch(base, json={"candidates": [{"candidate": "nonsense"}]})
        malformed = await client.patch(base, json={"candidates": "x"})
        unknown = await client.patch("/api/v1/webrtc/offer/nope", json={"candidates": [candidate]})
        deleted = await client.delete(base)
        unknown_delete = await client.delete("/api/v1/webrtc/offer/nope")
        after = await client.patch(base, json={"candidates": [candidate]})
    assert (ok.status_code, bad.status_code, malformed.status_code) == (204, 404, 422)
    assert unknown.status_code == 404
    assert (deleted.status_code, unknown_delete.status_code) == (204, 204)
    assert after.status_code == 404
    assert sim.sessions[peer.session_id].closed


async def test_client_close_ends_the_session(sim: Simulator, sim_peer: Connect) -> None:
    """docs/scope.md §0: closing the pc ends the session on the server too."""
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(sim.url, VIZ)
    await sim.wait_for(lambda s: peer.frames > 0)
    await peer.close()
    session = sim.sessions[peer.session_id]
    await sim.wait_for(lambda s: session.closed)
    assert sim.live_peers() == []


async def test_session_endpoints_404_without_a_session(sim: Simulator) -> None:
    """docs/scope.md §2.7: `/session/frame` is 404 without a frame."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        frame = await client.get("/api/v1/session/frame")
        metrics = await client.get("/api/v1/session/metrics")
    assert frame.status_code == 404
    assert metrics.json()["sessions"] == {}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buffer, format="PNG")
    return buffer.getvalue()
