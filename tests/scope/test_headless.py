"""HeadlessSession against the Scope simulator over 127.0.0.1 (docs/scope.md §2.8, §10.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from showrunner.errors import ScopeError, ScopeProtocolError
from showrunner.live.sink import PacedSink
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession
from showrunner.scope.headless import HeadlessSession, start_body
from showrunner.sim import Simulator, serve_sim
from showrunner.testing import until

QUICK = ClientTimeouts(request=2.0, offer=5.0, first_frame=5.0)
SMALL = {"height": 64, "width": 64}
FIRST = {"input_mode": "text", "prompts": [{"text": "a lighthouse at dusk", "weight": 1.0}],
         "manage_cache": True, "vace_context_scale": 0.4}


@pytest.fixture
async def sim(anyio_backend: str) -> AsyncIterator[Simulator]:
    async with serve_sim(host="127.0.0.1", port=0, load_time=0.05) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[ScopeClient]:
    async with ScopeClient(sim.url, timeouts=QUICK) as scope_client:
        yield scope_client


def http(sim: Simulator, method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in sim.records if r["kind"] == "http" and r["method"] == method and r["path"] == path]


@pytest.mark.anyio
async def test_it_is_a_paced_sink(client: ScopeClient) -> None:
    sink: PacedSink = HeadlessSession(client)  # and mypy checks the shape
    assert isinstance(sink, PacedSink)


def test_the_start_body_puts_each_key_where_scope_reads_it() -> None:
    body = start_body("longlive", {"pipeline_ids": ["longlive"], **FIRST, "input_source": {"enabled": True}})
    assert body == {"pipeline_id": "longlive", "input_mode": "text", "prompts": FIRST["prompts"],
                    "input_source": {"enabled": True},
                    "parameters": {"manage_cache": True, "vace_context_scale": 0.4}}


@pytest.mark.anyio
async def test_open_starts_a_headless_session_without_any_offer(client: ScopeClient, sim: Simulator) -> None:
    """Stop (a start would leave a running one going), load, start; never a WebRTC offer."""
    async with HeadlessSession(client) as session:
        gap = await session.open(["controller-viz"], SMALL, FIRST)
        assert session.connected and 0 < gap < 5
        assert sim.headless is not None and sim.headless.running
        assert sim.headless.session.received["prompts"] == FIRST["prompts"]
        assert sim.headless.session.received["vace_context_scale"] == 0.4
        await until(lambda: session.frames_out, 5)
        assert await session.liveness() is None
    steps = [(r["method"], r["path"]) for r in sim.records if r["kind"] == "http"
             and r["path"].startswith("/api/v1/")]
    load = steps.index(("POST", "/api/v1/pipeline/load"))
    assert steps.index(("POST", "/api/v1/session/stop")) > load
    assert steps.index(("POST", "/api/v1/session/start")) > load
    assert steps[-1] == ("POST", "/api/v1/session/stop")
    assert not [s for s in steps if "webrtc" in s[1]]
    assert sim.headless is None and not sim.peers


@pytest.mark.anyio
async def test_updates_are_posted_in_order_and_restate_the_values_in_force(
    client: ScopeClient, sim: Simulator
) -> None:
    """The HTTP model re-adds vace_context_scale 1.0 to every update (§8-I): each POST carries
    the show's value instead, so the session keeps it."""
    async with HeadlessSession(client, chunk_interval=0.01) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        sent = [await session.send({"prompts": [{"text": f"look {i}", "weight": 1.0}]}) for i in range(5)]
        times = [at for at, _ in sent]
        assert times == sorted(times) and len(set(times)) == 5
        written = sent[-1][1]
        assert written == {"transition": {"target_prompts": [{"text": "look 4", "weight": 1.0}],
                                          "num_steps": 0}}
        await session.send({"vace_context_scale": 0.7, "noise_scale": 0.3})
        await session.send({"base_seed": 7})
        assert sim.headless is not None
        received = sim.headless.session.received
        assert received["vace_context_scale"] == 0.7 and received["base_seed"] == 7
    posts = [r["json"] for r in http(sim, "POST", "/api/v1/session/parameters")]
    texts = [p["transition"]["target_prompts"][0]["text"] for p in posts if "transition" in p]
    assert texts == [f"look {i}" for i in range(5)]
    assert [p["vace_context_scale"] for p in posts] == [0.4] * 5 + [0.7, 0.7]
    assert all(p["prompt_interpolation_method"] == "linear" for p in posts)


@pytest.mark.anyio
async def test_a_value_the_server_refuses_fails_its_send(client: ScopeClient, sim: Simulator) -> None:
    """Unlike the data channel, the HTTP path validates (§10.1): the 422 reaches the sender."""
    async with HeadlessSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        with pytest.raises(ScopeProtocolError, match="HTTP 422"):
            await session.send({"noise_scale": 5})
        with pytest.raises(ScopeError, match="not a runtime parameter"):
            await session.send({"height": 5})
        await session.send({"noise_scale": 0.5})


@pytest.mark.anyio
async def test_a_chain_is_refused(client: ScopeClient, sim: Simulator) -> None:
    async with HeadlessSession(client) as session:
        with pytest.raises(ScopeError, match="one pipeline per session"):
            await session.open(["controller-viz", "gray"], SMALL, FIRST)
    assert not http(sim, "POST", "/api/v1/session/start")


@pytest.mark.anyio
async def test_switch_stops_loads_and_starts_again(client: ScopeClient, sim: Simulator) -> None:
    async with HeadlessSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        mark = len(sim.records)
        await session.switch(["gray"], {}, {"noise_scale": 0.5})
        assert sim.headless is not None and sim.headless.session.pipeline_ids == ["gray"]
        assert not sim.headless_orphans  # the old one was stopped, not replaced
    steps = [(r["method"], r["path"]) for r in sim.records[mark:] if r["kind"] == "http"]
    assert steps.index(("POST", "/api/v1/session/stop")) < steps.index(("POST", "/api/v1/pipeline/load")) < (
        steps.index(("POST", "/api/v1/session/start")))


@pytest.mark.anyio
async def test_liveness_sees_a_restart_a_crash_and_a_stopped_session(
    client: ScopeClient, sim: Simulator
) -> None:
    async with HeadlessSession(client, watch_period=0.05) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        await until(lambda: session.frames_out, 5)
        assert await session.liveness() is None
        await client.stop_headless()  # someone else stopped it
        await until(lambda: not session.connected, 5)
        assert await session.liveness() == "the headless session is gone"
        await session.switch(["controller-viz"], SMALL, FIRST)
        await sim.restart()
        assert await session.liveness() == "server restarted"
        await sim.crash()
        assert await session.liveness() == "server unreachable"
        await session.close()
        await session.close()


@pytest.mark.anyio
async def test_a_paused_session_is_not_stalled_and_frames_out_shows_progress(
    client: ScopeClient, sim: Simulator
) -> None:
    async with HeadlessSession(client, watch_period=0.05) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        await until(lambda: session.frame_age() is not None, 5)
        assert session.frame_age() < 1.0  # type: ignore[operator]
        await session.send({"paused": True})
        assert session.frame_age() is None
        await asyncio.sleep(0.3)
        assert await session.liveness() is None
        await session.send({"paused": False})
        await until(lambda: (session.frame_age() or 9) < 0.2, 5)


@pytest.mark.anyio
async def test_the_preview_is_fetched_while_someone_looks(client: ScopeClient, sim: Simulator) -> None:
    async with HeadlessSession(client, watch_period=0.05, preview_period=0.1) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        await asyncio.sleep(0.3)
        assert not http(sim, "GET", "/api/v1/session/frame")  # nobody asked
        assert session.latest_jpeg() is None
        jpeg = await until(session.latest_jpeg, 5)
        assert jpeg[:2] == b"\xff\xd8"
        fetched = len(http(sim, "GET", "/api/v1/session/frame"))
        await asyncio.sleep(0.5)
        assert len(http(sim, "GET", "/api/v1/session/frame")) - fetched <= 6  # at most every 0.1 s


@pytest.mark.anyio
async def test_a_post_a_hung_server_never_answered_is_reported_lost() -> None:
    """SIGSTOP: a POST written to the stopped server gets no answer. Its send went out (as a
    data-channel write does); when the session closes it is reported by `take_lost` (the
    journal's `lost`), the update behind it fails, and the frames' age grows meanwhile."""
    from sim_process import sim_process

    with sim_process() as server:
        async with ScopeClient(server.url, timeouts=ClientTimeouts(request=5.0, connect=1.0)) as client:
            session = HeadlessSession(client, watch_period=0.05)
            await session.open(["controller-viz"], SMALL, FIRST)
            await session.send({"noise_scale": 0.1})
            await until(lambda: session.frame_age() is not None, 5)
            server.stop()
            await asyncio.sleep(session.chunk_interval + 0.05)
            hung = asyncio.create_task(session.send({"noise_scale": 0.2}))
            await asyncio.sleep(0.5)
            assert not hung.done()
            behind = asyncio.create_task(session.send({"noise_scale": 0.3}))
            await asyncio.sleep(0.05)
            age = session.frame_age()
            assert age is not None and age >= 0.3
            await session.close()  # the stop times out against the stopped server: no matter
            sent_at, written = await hung
            assert written == {"noise_scale": 0.2}
            assert session.take_lost() == [(2, sent_at, {"noise_scale": 0.2})]
            assert session.take_lost() == []
            with pytest.raises(ScopeError, match="closed before the update was sent"):
                await behind
            server.cont()


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_a_webrtc_session_beside_it_hides_the_frames_and_is_no_stall(
    client: ScopeClient, sim: Simulator
) -> None:
    """With a WebRTC session open (Scope's UI in a browser), /session/metrics shows only that
    one (§2.7): frames are not judged then, rather than taken for a stall; once it closes, they
    are watched again."""
    async with HeadlessSession(client, watch_period=0.05) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        await until(lambda: session.frame_age() is not None, 5)
        async with ScopeSession(client) as browser:
            await browser.open(["controller-viz"], SMALL, FIRST)
            await until(lambda: session.frame_age() is None, 5)
            await asyncio.sleep(0.3)
            assert session.frame_age() is None and session.connected
            assert await session.liveness() is None
        await until(lambda: (session.frame_age() or 9) < 0.5, 5)
        assert await session.liveness() is None


@pytest.mark.anyio
async def test_close_lets_the_updates_already_written_go_out_first(
    client: ScopeClient, sim: Simulator
) -> None:
    """The show's last update, written just before the run ends, still reaches Scope, before
    the stop (a data-channel write is on its way already too)."""
    async with HeadlessSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        last = asyncio.create_task(session.send({"noise_scale": 0.6}))
        await asyncio.sleep(0)
        await session.close()
        _, written = await last
        assert written == {"noise_scale": 0.6} and session.take_lost() == []
    steps = [(r["path"], r["json"]) for r in sim.records if r["kind"] == "http" and r["method"] == "POST"
             and r["path"] in ("/api/v1/session/parameters", "/api/v1/session/stop")]
    assert steps[-2][0] == "/api/v1/session/parameters" and steps[-2][1]["noise_scale"] == 0.6
    assert steps[-1][0] == "/api/v1/session/stop"
