"""Simulator lifecycle: restart on the same port, crash, SimThread, serve_forever."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from showrunner.sim import SimThread, Simulator, serve_forever, serve_sim
from showrunner.sim.simulator import SESSION_HISTORY

pytestmark = pytest.mark.anyio


async def health(url: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_health_reports_version_and_start_time(sim: Simulator) -> None:
    """docs/scope.md §2.1 / §10: /health shape, version 0.2.4."""
    body = await health(sim.url)
    assert body["status"] == "healthy" and body["version"] == "0.2.4"
    assert body["server_start_time"] == sim.server_start_time
    assert isinstance(body["timestamp"], str) and "git_commit" in body
    assert sim.url == f"http://127.0.0.1:{sim.port}" and sim.port > 0


async def test_restart_changes_start_time_on_the_same_port(sim: Simulator) -> None:
    """docs/scope.md §2.1 / §9.6: a restart changes server_start_time and forgets every load."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    port, started = sim.port, sim.server_start_time
    await sim.restart(down_for=0.2)
    assert sim.port == port
    assert sim.server_start_time > started
    assert (await health(sim.url))["server_start_time"] == sim.server_start_time
    assert sim.loaded == {"status": "not_loaded", "pipelines": {}}


async def test_crash_refuses_connections_until_start(sim: Simulator) -> None:
    """The two halves of restart: down means connection refused, then back on the same port."""
    await sim.crash()
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        await health(sim.url)
    await sim.start()
    await health(sim.url)


@pytest.mark.webrtc
async def test_restart_closes_sessions(
    sim: Simulator, sim_peer: Callable[..., Awaitable[Any]]
) -> None:
    """A crash closes every peer connection abruptly."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: peer.frames > 0)
    await sim.restart()
    assert sim.sessions[peer.session_id].closed
    assert sim.live_peers() == []
    assert {"type": "stream_stopped"} not in peer.messages


async def test_wait_for_times_out(sim: Simulator) -> None:
    with pytest.raises(TimeoutError):
        await sim.wait_for(lambda s: False, timeout=0.05)
    assert await sim.wait_for(lambda s: s.port) == sim.port


async def test_faults_are_live_knobs(sim: Simulator) -> None:
    sim.faults.fail_loads = {"gray"}
    sim.faults.load_time = 0.0
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["gray"]})
    await sim.wait_for(lambda s: s.loads.combined() == "error")


def test_sim_thread_runs_on_its_own_loop() -> None:
    """SimThread: its own event loop in a daemon thread; usable from plain sync code."""
    runner = SimThread(port=0, load_time=0.01)
    sim = runner.start()
    try:
        assert runner.url == sim.url and runner.port == sim.port
        response = httpx.get(f"{sim.url}/health")
        assert response.json()["version"] == "0.2.4"
        threads = [t for t in threading.enumerate() if t.name == "scope-simulator"]
        assert threads and threads[0].daemon
    finally:
        runner.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.url}/health")
    with pytest.raises(RuntimeError):
        _ = runner.url


async def test_sim_thread_controls_work_from_another_loop() -> None:
    """Simulator control methods hop onto the simulator's own loop."""
    with SimThread(port=0) as sim:
        started = sim.server_start_time
        await sim.restart()
        assert sim.server_start_time > started
        await health(sim.url)


def test_sim_thread_reports_a_port_in_use() -> None:
    with SimThread(port=0) as first, pytest.raises(OSError):
        SimThread(port=first.port).start()


async def test_serve_forever_runs_until_cancelled() -> None:
    """`showrunner sim` runs serve_forever until Ctrl-C (cancellation)."""
    ready: asyncio.Queue[Simulator] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(
        serve_forever(
            "127.0.0.1", 0, record_path=None, load_time=None, fps=None, on_ready=ready.put_nowait
        )
    )
    sim = await asyncio.wait_for(ready.get(), 5)
    await health(sim.url)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(httpx.ConnectError):
        await health(sim.url)


async def test_closed_simulator_cannot_start_again() -> None:
    async with serve_sim() as sim:
        pass
    with pytest.raises(RuntimeError):
        await sim.start()


@pytest.mark.webrtc
async def test_shutdown_sends_stream_stopped_then_closes(
    sim: Simulator, sim_peer: Callable[..., Awaitable[Any]]
) -> None:
    """docs/scope.md §10 / §3.4: on SIGTERM the real server sends `{"type":"stream_stopped"}` on
    each open session's data channel before it closes; `shutdown()` does the same."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
    await asyncio.wait_for(peer.opened.wait(), 5)
    started = sim.server_start_time
    await sim.shutdown()
    assert not sim.running and sim.live_peers() == []
    await sim.wait_for(lambda s: {"type": "stream_stopped"} in peer.messages)
    assert sim.loaded == {"status": "not_loaded", "pipelines": {}}
    await sim.start()  # back, like a restarted server
    assert sim.server_start_time > started


@pytest.mark.webrtc
async def test_leaving_serve_sim_with_open_sessions_sends_stream_stopped(
    sim_peer: Callable[..., Awaitable[Any]],
) -> None:
    """docs/scope.md §10: stopping the simulator (end of `serve_sim`, `SimThread.stop()`, Ctrl-C of
    `showrunner sim`) is a graceful shutdown: open sessions get `stream_stopped` first."""
    async with serve_sim(load_time=0.01) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["controller-viz"]})
        await sim.wait_for(lambda s: s.loads.combined() == "loaded")
        peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
        await asyncio.wait_for(peer.opened.wait(), 5)
    deadline = asyncio.get_running_loop().time() + 5
    while {"type": "stream_stopped"} not in peer.messages:
        assert asyncio.get_running_loop().time() < deadline, peer.messages
        await asyncio.sleep(0.02)


async def test_serve_forever_keeps_no_records_in_memory(tmp_path: Path) -> None:
    """`showrunner sim` runs for days: its records go to the file only, none stay in memory
    (they grew by every request and message, about 2 MB an hour under a playing show)."""
    path = tmp_path / "records.jsonl"
    ready: asyncio.Queue[Simulator] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(
        serve_forever("127.0.0.1", 0, record_path=path, load_time=None, fps=None,
                      on_ready=ready.put_nowait)
    )
    sim = await asyncio.wait_for(ready.get(), 5)
    async with httpx.AsyncClient(base_url=sim.url) as client:
        for _ in range(300):
            assert (await client.get("/health")).status_code == 200
    assert sim.records == []
    assert len(path.read_text("utf-8").splitlines()) == 300
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.webrtc
async def test_a_long_session_keeps_bounded_histories(
    sim_peer: Callable[..., Awaitable[Any]]
) -> None:
    """Without kept records a session keeps its last SESSION_HISTORY updates, drops and
    transitions however many it took, and a closed session is forgotten."""
    async with serve_sim(load_time=0.01, keep_records=False) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["controller-viz"]})
        await sim.wait_for(lambda s: s.loads.combined() == "loaded")
        peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"]})
        await asyncio.wait_for(peer.opened.wait(), 5)
        (session,) = sim.sessions.values()
        for burst in range(SESSION_HISTORY // 4):
            for i in range(12):  # 8 fit the queue, 4 are dropped
                step = burst * 12 + i
                await peer.send({"transition": {"target_prompts": [{"text": f"p{step}", "weight": 1}],
                                                "num_steps": 0}, "reset_cache": True})
            await sim.wait_for(lambda s, n=(burst + 1) * 8: session.resets >= n and session.queued == 0)
        assert session.resets > 2 * SESSION_HISTORY  # it did take that many (one reset each)
        assert len(session.applied) == len(session.transitions) == SESSION_HISTORY
        assert len(session.cache_resets) == SESSION_HISTORY
        assert 0 < len(session.dropped) <= SESSION_HISTORY
        assert session.applied[-1]["update"]["transition"]["target_prompts"][0]["text"].startswith("p")
        await peer.close()
        await sim.wait_for(lambda s: not s.sessions)
