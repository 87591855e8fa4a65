"""ScopeClient and ScopeSession against the Scope simulator over 127.0.0.1.

Each test names the docs/scope.md section whose behaviour it checks. Failures are injected only
through the simulator's fault knobs (or, in ``tests/scope/test_client.py``, httpx.MockTransport).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from showrunner.errors import (
    ScopeError,
    ScopeLoadError,
    ScopeProtocolError,
    ScopeTimeoutError,
)
from showrunner.scope.client import (
    ClientTimeouts,
    Prepared,
    ScopeClient,
    ScopeEvent,
    ScopeSession,
)
from showrunner.sim import Simulator, serve_sim
from showrunner.testing import FakeClock

QUICK = ClientTimeouts(request=2.0, offer=5.0, first_frame=5.0)
SMALL = {"height": 64, "width": 64}
FIRST_SCENE = {"prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}], "manage_cache": True}


@pytest.fixture
async def sim(anyio_backend: str) -> AsyncIterator[Simulator]:
    async with serve_sim(host="127.0.0.1", port=0, load_time=0.05) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[ScopeClient]:
    async with ScopeClient(sim.url, timeouts=QUICK) as scope_client:
        yield scope_client


def http(sim: Simulator, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    return [
        r for r in sim.records
        if r["kind"] == "http"
        and (method is None or r["method"] == method)
        and (path is None or r["path"].startswith(path))
    ]


def data(sim: Simulator, session_id: str | None) -> list[Any]:
    return [r["message"] for r in sim.records if r["kind"] == "data" and r["session_id"] == session_id]


def transition(text: str, steps: int = 2) -> dict[str, Any]:
    return {"transition": {"target_prompts": [{"text": text, "weight": 1.0}], "num_steps": steps}}


# -- REST ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_health_schemas_and_models(client: ScopeClient, sim: Simulator) -> None:
    """Startup reads: /health's server_start_time, the schema map, model status (docs/scope.md §2.1,
    §2.4, §2.5, §9.1)."""
    health = await client.health()
    assert health.status == "healthy"
    assert health.server_start_time == sim.server_start_time
    schemas = await client.pipeline_schemas()
    assert {"controller-viz", "gray", "passthrough"} <= set(schemas)
    assert schemas["gray"]["id"] == "gray"
    assert (await client.models_status("gray"))["downloaded"] is True


@pytest.mark.anyio
async def test_load_waits_for_matching_id_and_params(client: ScopeClient, sim: Simulator) -> None:
    """Right after the POST the status still shows the previous load; `loaded` counts only
    with pipeline_id == the first key and load_params == what was sent (docs/scope.md §2.3)."""
    await client.load_pipeline(["gray"], {})
    sim.faults.stale_status = 0.3
    started = time.monotonic()
    await client.load_pipeline(["controller-viz"], SMALL)
    assert time.monotonic() - started >= 0.3
    status = await client.pipeline_status()
    assert (status["status"], status["pipeline_id"], status["load_params"]) == (
        "loaded", "controller-viz", SMALL)
    # The stale answer ("loaded", "gray") was seen and ignored.
    polls = http(sim, "GET", "/api/v1/pipeline/status")
    assert len(polls) >= 4


@pytest.mark.anyio
async def test_load_error_is_reported_once(client: ScopeClient, sim: Simulator) -> None:
    """A bad load answers 200, then `error` exactly once; the reason is only in the server
    log (docs/scope.md §2.3, §8-E, §10)."""
    sim.faults.fail_loads = {"gray"}
    with pytest.raises(ScopeLoadError) as info:
        await client.load_pipeline(["gray"], {})
    assert str(info.value) == (
        "loading pipeline gray failed: Scope reported status 'error' "
        "(the reason is only in the Scope server log)"
    )
    # We consumed the one `error`; the next reader sees nothing loaded.
    assert (await client.pipeline_status())["status"] == "not_loaded"


@pytest.mark.anyio
async def test_load_timeout(sim: Simulator) -> None:
    """Loads are reported only by polling, so the wait needs its own deadline (docs/scope.md §2.3)."""
    sim.faults.load_time = 5.0
    timeouts = ClientTimeouts(load=0.3, poll_interval=0.05)
    async with ScopeClient(sim.url, timeouts=timeouts) as client:
        started = time.monotonic()
        with pytest.raises(ScopeTimeoutError) as info:
            await client.load_pipeline(["gray"], {})
    assert time.monotonic() - started < 1.5
    assert str(info.value).startswith(
        "loading pipeline gray did not finish within 0.3 s (last status 'loading'")


@pytest.mark.anyio
async def test_same_load_twice_skips_the_post(client: ScopeClient, sim: Simulator) -> None:
    """Same id and dict-equal load_params is a no-op on the server, so the client does not
    even POST; any other params load again (docs/scope.md §2.2 reuse rule)."""
    loads = lambda: len(http(sim, "POST", "/api/v1/pipeline/load"))  # noqa: E731
    await client.load_pipeline(["controller-viz"], SMALL)
    await client.load_pipeline(["controller-viz"], dict(SMALL))
    assert loads() == 1
    await client.load_pipeline(["controller-viz"], {})
    assert loads() == 2
    assert http(sim, "POST", "/api/v1/pipeline/load")[-1]["json"] == {
        "pipeline_ids": ["controller-viz"], "load_params": {}}
    # A chain: the status names only its first element, so the client remembers the rest.
    await client.load_pipeline(["gray", "controller-viz"], SMALL)
    await client.load_pipeline(["gray", "controller-viz"], SMALL)
    assert loads() == 3
    await client.load_pipeline(["gray", "passthrough"], SMALL)
    assert loads() == 4


@pytest.mark.anyio
async def test_upload_asset_returns_the_server_path(
    client: ScopeClient, sim: Simulator, tmp_path: Path
) -> None:
    """Assets go up as raw bytes with ?filename=; the answer's absolute `path` is what
    parameters must carry (docs/scope.md §2.9)."""
    image = tmp_path / "ref.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    server_path = await client.upload_asset(image)
    assert Path(server_path).is_absolute() and server_path.endswith("ref.png")
    upload = http(sim, "POST", "/api/v1/assets")[-1]
    assert upload["query"] == {"filename": "ref.png"}
    assert upload["body_size"] == 72
    assert upload["headers"]["content-type"] == "application/octet-stream"

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(ScopeProtocolError, match=r"^Scope asset upload: POST .* answered HTTP 400"):
        await client.upload_asset(notes)
    with pytest.raises(ScopeError, match="cannot read asset"):
        await client.upload_asset(tmp_path / "missing.png")


@pytest.mark.anyio
async def test_resolve_lora(client: ScopeClient) -> None:
    """LoRAs are named by absolute path, file name or stem; loads need the server path
    (docs/scope.md §2.10, §9.1)."""
    loras = await client.list_loras()
    watercolor = next(f["path"] for f in loras if f["path"].endswith("sim-watercolor.safetensors"))
    assert await client.resolve_lora(watercolor) == watercolor
    assert await client.resolve_lora("sim-watercolor.safetensors") == watercolor
    assert await client.resolve_lora("sim-watercolor") == watercolor
    with pytest.raises(ScopeError) as info:
        await client.resolve_lora("oil-paint")
    assert str(info.value) == (
        "LoRA 'oil-paint' is not on the Scope server "
        "(it has: sim-neon-noir.safetensors, sim-watercolor.safetensors)")


@pytest.mark.anyio
async def test_auth_header_reaches_the_server(sim: Simulator) -> None:
    """Scope has no auth, but a proxy in front of it may want a bearer token (docs/scope.md §1)."""
    async with ScopeClient(sim.url, headers={"Authorization": "Bearer tok"}) as client:
        await client.health()
        await client.load_pipeline(["gray"], {})
    requests = http(sim)
    assert requests and all(r["headers"].get("authorization") == "Bearer tok" for r in requests)


# -- the live session ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_loopback_only_defaults_from_the_url(client: ScopeClient) -> None:
    """A Scope on this machine needs no ICE servers and only loopback candidates (docs/scope.md
    §10: ignore the public STUN fallback)."""
    assert ScopeSession(client).loopback_only is True
    async with ScopeClient("http://localhost:8000") as local, \
            ScopeClient("https://scope.example.org") as remote:
        assert ScopeSession(local).loopback_only is True
        assert ScopeSession(remote).loopback_only is False
        assert ScopeSession(remote, loopback_only=True).loopback_only is True


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_offer_carries_pipeline_ids_and_first_scene(client: ScopeClient, sim: Simulator) -> None:
    """initialParameters = {pipeline_ids: chain, **first scene}; without pipeline_ids Scope
    never sends video (docs/scope.md §2.6, §8-A, §9.3)."""
    async with ScopeSession(client) as session:
        gap = await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        assert gap > 0
        assert session.connected
        assert session.server_start_time == sim.server_start_time
        sim_session = sim.sessions[session.session_id]  # type: ignore[index]
        offer = http(sim, "POST", "/api/v1/webrtc/offer")[-1]["json"]
        assert offer["type"] == "offer"
        assert offer["initialParameters"] == {"pipeline_ids": ["controller-viz"], **FIRST_SCENE}
        assert next(iter(offer["initialParameters"])) == "pipeline_ids"
        # The server's Parameters model adds its defaults (docs/scope.md §2.6, §8-I).
        assert sim_session.initial_parameters == {
            "pipeline_ids": ["controller-viz"], **FIRST_SCENE,
            "prompt_interpolation_method": "linear", "vace_context_scale": 1.0}
        with pytest.raises(ScopeError, match="differ from the loaded chain"):
            await ScopeSession(client).open(["gray"], {}, {"pipeline_ids": ["passthrough"]})


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_frames_arrive_on_a_receive_only_session(client: ScopeClient, sim: Simulator) -> None:
    """A sendrecv video transceiver with no outgoing track still gets Scope's output
    (docs/scope.md §4.1, §8-N)."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        await session.wait_first_frame()
        first = session.frames_received
        await asyncio.sleep(0.3)
        assert session.frames_received > first > 0
        assert session.last_frame_at is not None
        assert time.monotonic() - session.last_frame_at < 0.5
        assert await session.liveness() is None
        assert sim.sessions[session.session_id].frames_sent >= session.frames_received  # type: ignore[index]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_latest_frame_is_available_as_jpeg(client: ScopeClient, sim: Simulator) -> None:
    """The operator preview shows the frames the runner receives (docs/scope.md §4.1)."""
    async with ScopeSession(client) as session:
        assert session.latest_jpeg() is None
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        await session.wait_first_frame()
        jpeg = session.latest_jpeg()
        assert jpeg is not None and jpeg[:2] == b"\xff\xd8"
        from PIL import Image

        with Image.open(io.BytesIO(jpeg)) as image:
            assert image.size == (SMALL["width"], SMALL["height"])


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_updates_are_applied_on_the_chunk_cadence(client: ScopeClient, sim: Simulator) -> None:
    """The chunk interval comes from /session/metrics pipeline_fps and the pipeline's
    frames per chunk; the server applies one queued update per chunk (docs/scope.md §2.7, §3.2,
    §3.3)."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        sim_session = sim.sessions[session.session_id]  # type: ignore[index]
        assert session.chunk_interval == pytest.approx(sim_session.chunk_interval)
        sent = [await session.send({"noise_scale": v}) for v in (0.1, 0.2, 0.3)]
        await sim.wait_for(lambda s: len(sim_session.applied) == 3, timeout=2.0)
        chunks = [a["chunk"] for a in sim_session.applied]
        assert chunks == sorted(set(chunks))
        assert [a["update"] for a in sim_session.applied] == [m for _, m in sent]
        times = [at for at, _ in sent]
        assert all(b - a >= session.chunk_interval for a, b in itertools.pairwise(times))
        assert sim_session.params["noise_scale"] == 0.3


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_prompts_go_out_as_a_cut_transition(client: ScopeClient, sim: Simulator) -> None:
    """A bare `prompts` equal to the last received one is silently ignored, so scene
    changes go out as a 0-step transition (docs/scope.md §8-G, §3.3)."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        prompts = [{"text": "the same lighthouse", "weight": 1.0}]
        _, went_out = await session.send({"prompts": prompts, "noise_scale": 0.4})
        assert went_out == {"noise_scale": 0.4,
                            "transition": {"target_prompts": prompts, "num_steps": 0}}
        _, kept = await session.send({"prompts": prompts, **transition("x", 3)})
        assert kept == {"prompts": prompts, **transition("x", 3)}
        await sim.wait_for(lambda s: len(data(s, session.session_id)) == 2)
        assert data(sim, session.session_id) == [went_out, kept]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_bad_keys_never_reach_the_channel(client: ScopeClient, sim: Simulator) -> None:
    """Keys outside the runtime whitelist can clobber pipeline state and nothing on the
    server validates them, so they are refused before sending (docs/scope.md §3.2 step 6, §3.3)."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        for bad in ({"height": 512}, {"current_start_frame": 0, "noise_scale": 0.2},
                    {"pipeline_ids": ["gray"]}):
            with pytest.raises(ScopeError):
                await session.send(bad)
        await session.send({"ctrl_input": {"button": ["KeyW"], "mouse": [1, 0]}})
        await sim.wait_for(lambda s: data(s, session.session_id))
        assert data(sim, session.session_id) == [{"ctrl_input": {"button": ["KeyW"], "mouse": [1, 0]}}]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_prepared_updates_go_out_as_prepared(client: ScopeClient, sim: Simulator) -> None:
    """An update checked and serialised ahead of its moment arrives exactly as a plain one
    would; merged behind a busy line it is re-serialised with what it merged with."""
    async with ScopeSession(client, chunk_interval=0.3) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        prompts = [{"text": "a harbour in fog", "weight": 1.0}]
        ready = session.prepare({"prompts": prompts, "noise_scale": 0.3})
        assert isinstance(ready, Prepared)
        assert ready == {"noise_scale": 0.3, "transition": {"target_prompts": prompts, "num_steps": 0}}
        assert json.loads(ready.wire) == ready
        with pytest.raises(TypeError):
            ready["noise_scale"] = 0.9  # the wire text would no longer match
        with pytest.raises(ScopeError, match="height"):
            session.prepare({"height": 512})
        _, first = await session.send(ready)
        assert first == ready
        # The line is busy now: two prepared updates wait and merge into one message.
        later = await asyncio.gather(
            session.send(session.prepare({"noise_scale": 0.5})),
            session.send(session.prepare({"kv_cache_attention_bias": 0.2})),
        )
        merged = {"noise_scale": 0.5, "kv_cache_attention_bias": 0.2}
        assert [m for _, m in later] == [merged, merged]
        await sim.wait_for(lambda s: len(data(s, session.session_id)) == 2)
        assert data(sim, session.session_id) == [dict(ready), merged]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_burst_never_overruns_the_queue(client: ScopeClient, sim: Simulator) -> None:
    """50 updates fired at once: the first goes out at once, the other 49 wait for the next
    chunk merged into one message in which the latest target of every key wins (the newest
    transition, the newest VACE reference, the last noise scale). Nothing is dropped by the
    8-deep queue and nothing goes out after the next slot (docs/scope.md §3.2 step 5, §8-F, §8-L)."""
    burst: list[dict[str, Any]] = []
    for i in range(50):
        if i % 5 == 0:
            burst.append(transition(f"scene {i}"))
        elif i % 7 == 0:
            burst.append({"vace_ref_images": [f"/assets/ref{i}.png"], "noise_scale": i / 100})
        elif i % 11 == 0:
            burst.append({"prompts": [{"text": f"cut {i}", "weight": 1.0}]})
        else:
            burst.append({"noise_scale": i / 100, "kv_cache_attention_bias": 0.3})
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        sim_session = sim.sessions[session.session_id]  # type: ignore[index]
        results = await asyncio.gather(*(session.send(m) for m in burst))
        await sim.wait_for(lambda s: len(sim_session.applied) == 2)
        received = data(sim, session.session_id)

    assert sim_session.dropped == []
    assert received == [burst[0], {
        **transition("scene 45"), "noise_scale": 0.49, "kv_cache_attention_bias": 0.3,
        "vace_ref_images": ["/assets/ref49.png"],
    }]
    assert [sent.carries for _, sent in results[:2]] == [1, 49]  # type: ignore[attr-defined]
    assert all(sent is results[1][1] for _, sent in results[1:])
    spacing = results[1][0] - results[0][0]
    # One per chunk, give or take the loop's timer jitter; the 8-deep queue absorbs that.
    assert spacing >= session.chunk_interval - 0.01
    assert sim_session.params["noise_scale"] == 0.49


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_send_on_an_idle_line_goes_out_at_once(client: ScopeClient, sim: Simulator) -> None:
    """An update on an idle line is written at once instead of waiting for the next chunk
    slot: the send path sits on the show's timing path (docs/scope.md §3.2: pacing matters only
    when updates outrun chunks). Its cost is measured by bench/bench_cue_timing.py."""
    interval = 0.4
    async with ScopeSession(client, chunk_interval=interval) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        for i in range(4):
            await asyncio.sleep(interval + 0.02)
            started = time.time()
            sent_at, sent = await session.send({"noise_scale": i / 10})
            # Waiting for a slot would take most of an interval; at once is far below half.
            assert sent_at - started < interval / 2
            assert sent == {"noise_scale": i / 10}


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_a_session_reads_the_clock_it_is_given(client: ScopeClient, sim: Simulator) -> None:
    """Gaps and write times come from the session's clock, so a whole live run (player and
    session) can go on one fake clock."""
    clock = FakeClock()
    async with ScopeSession(client, clock=clock) as session:
        assert await session.open(["controller-viz"], SMALL, FIRST_SCENE) == 0.0
        sent_at, sent = await session.send({"noise_scale": 0.2})
        assert (sent_at, sent) == (clock.time(), {"noise_scale": 0.2})
        await sim.wait_for(lambda s: {"noise_scale": 0.2} in data(sim, session.session_id))


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_switch_closes_loads_and_reopens(
    client: ScopeClient, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An open session never follows a load, so a pipeline change is DELETE → load → new
    offer, and the gap is reported (docs/scope.md §4.2, §9.5)."""
    caplog.set_level(logging.INFO, logger="showrunner.scope.client")
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        old = session.session_id
        mark = len(sim.records)
        gap = await session.switch(["gray"], {}, {"noise_scale": 0.5})
        new = session.session_id
        assert new != old and session.connected
        assert sim.sessions[old].closed  # type: ignore[index]
        assert sim.sessions[new].pipeline_ids == ["gray"]  # type: ignore[index]
    steps = [(r["method"], r["path"]) for r in sim.records[mark:] if r["kind"] == "http"]
    delete = steps.index(("DELETE", f"/api/v1/webrtc/offer/{old}"))
    load = steps.index(("POST", "/api/v1/pipeline/load"))
    offer = steps.index(("POST", "/api/v1/webrtc/offer"))
    assert delete < load < offer
    assert 0 < gap < 5
    assert f"switched pipelines controller-viz -> gray: gap {gap:.2f} s" in caplog.text


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_liveness_sees_a_server_restart(client: ScopeClient, sim: Simulator) -> None:
    """A changed server_start_time means every session and pipeline is gone (docs/scope.md §2.1, §9.6)."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        assert await session.liveness() is None
        await sim.restart()
        assert await session.liveness() == "server restarted"
        await sim.crash()
        assert await session.liveness() == "server unreachable"
        await session.close()  # a dead server must not make close() raise
        await session.close()
        assert session.session_id is None and not session.connected


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_liveness_sees_a_dropped_data_channel(client: ScopeClient, sim: Simulator) -> None:
    """No acknowledgements exist, so a dead channel shows only in its state (docs/scope.md §3.4, §10)."""
    events: list[ScopeEvent] = []
    async with ScopeSession(client, on_event=events.append) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        await sim.drop_data_channel()
        deadline = time.monotonic() + 3
        while await session.liveness() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await session.liveness() == "data channel closed"
        assert any(e.kind == "channel_closed" for e in events)
        with pytest.raises(ScopeError, match="data channel is closed"):
            await session.send({"noise_scale": 0.1})


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_server_messages_become_events(client: ScopeClient, sim: Simulator) -> None:
    """Server → client messages ({"type": …}) surface as ScopeEvents, and a stopped session
    shows in liveness (docs/scope.md §3.4)."""
    events: list[ScopeEvent] = []
    async with ScopeSession(client, on_event=events.append) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        await sim.drop_peer_connection()
        deadline = time.monotonic() + 3
        while await session.liveness() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # The simulator says `stream_stopped` before it closes: that is the reason given.
        assert await session.liveness() == "Scope stopped the stream"
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["connection_state", "connection_state"]
    assert events[1].payload == {"state": "connected"}
    assert "stream_stopped" in kinds
    assert all(isinstance(e.at, float) for e in events)


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_stream_stopped_is_an_outage_at_once(client: ScopeClient, sim: Simulator) -> None:
    """docs/scope.md §3.4, §10: `stream_stopped` means the server's processing ended (a pipeline
    error, a shutdown) even while the peer connection still stands: the session stops counting
    as connected and liveness says why without a request, so the watchdog reconnects at once.
    A new connection clears it."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        await session.wait_first_frame()
        health_reads = len(http(sim, "GET", "/health"))
        assert await sim.notify({"type": "stream_stopped", "error_message": "CUDA out of memory"}) == 1
        deadline = time.monotonic() + 2
        while session.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not session.connected
        assert await session.liveness() == "Scope stopped the stream (CUDA out of memory)"
        assert len(http(sim, "GET", "/health")) == health_reads  # told, not asked
        assert [p.pc.connectionState for p in sim.live_peers()] == ["connected"]
        await session.switch(["controller-viz"], SMALL, FIRST_SCENE)
        assert session.connected and await session.liveness() is None


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_a_shutdown_says_stream_stopped_first(client: ScopeClient, sim: Simulator) -> None:
    """The simulator's SIGTERM shutdown sends `stream_stopped` before closing (§10): that, not
    the closed connection or the unreachable server, is what liveness reports."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        await sim.shutdown()
        assert not session.connected
        assert await session.liveness() == "Scope stopped the stream"


@pytest.mark.webrtc
@pytest.mark.slow
@pytest.mark.anyio
async def test_writes_a_hung_server_never_acknowledged_are_reported_lost(tmp_path: Path) -> None:
    """A message written just as the server stops answering is on no one's side: Scope sends
    no acknowledgement (§3.1), but SCTP does, and a stopped server acknowledges nothing. At
    close such writes are reported by `take_lost` (the journal's `lost`), the others are not;
    the frames' age grows meanwhile (what the watchdog calls a stall)."""
    from sim_process import sim_process

    with sim_process() as server:
        async with ScopeClient(server.url, timeouts=ClientTimeouts(request=1.0, connect=1.0)) as client:
            session = ScopeSession(client)
            await session.open(["controller-viz"], SMALL, FIRST_SCENE)
            await session.wait_first_frame()
            await session.send({"noise_scale": 0.1})
            rtc = session._rtc
            assert rtc is not None
            deadline = time.monotonic() + 10
            while rtc.unacknowledged() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert rtc.unacknowledged() == 0  # delivered and acknowledged
            server.stop()
            await asyncio.sleep(session.chunk_interval + 0.05)
            sent_at, _ = await session.send({"noise_scale": 0.2})
            await asyncio.sleep(0.5)
            assert rtc.unacknowledged() == 1
            age = session.frame_age()
            assert age is not None and age >= 0.3
            await session.close()  # the DELETE times out against the stopped server: no matter
            assert session.take_lost() == [(2, sent_at, {"noise_scale": 0.2})]
            assert session.take_lost() == []
            server.cont()


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_listeners_get_tempo_updates_and_the_tempo_endpoints(
    client: ScopeClient, sim: Simulator
) -> None:
    """`listen` hands out the data channel's messages (tempo_update ~15 Hz once tempo sync is
    on, docs/scope.md §3.4) beside `on_event`; `stop()` ends it. The tempo endpoints (§6,
    §10.1): enable, set_tempo, status, disable; a source the server lacks is a ScopeError."""
    async with ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST_SCENE)
        heard: list[ScopeEvent] = []
        stop = session.listen(heard.append)
        answer = await client.tempo_enable("link", 100.0, 3)
        assert (answer["enabled"], answer["beats_per_bar"]) == (True, 3)
        await _until(lambda: len([e for e in heard if e.kind == "tempo_update"]) >= 3)
        update = next(e for e in heard if e.kind == "tempo_update")
        assert update.payload["bpm"] == 100.0 and 0 <= update.payload["beat_phase"] < 1
        assert (await client.tempo_set(110.0))["beat_state"]["bpm"] == 110.0
        assert (await client.tempo_status())["source"]["type"] == "link"
        stop()
        count = len(heard)
        await asyncio.sleep(0.2)
        assert len(heard) == count
        await client.tempo_disable()
        assert (await client.tempo_status())["enabled"] is False
        with pytest.raises(ScopeError, match="answered HTTP 400: Failed to create midi_clock"):
            await client.tempo_enable("midi_clock", 120.0, 4)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)
