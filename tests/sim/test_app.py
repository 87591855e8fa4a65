"""The simulator's REST surface beyond loads and sessions (docs/scope.md §2.1, §2.5, §2.6)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from showrunner.sim import Simulator, serve_sim
from showrunner.sim.app import RecordingMiddleware
from showrunner.sim.record import Recorder

pytestmark = pytest.mark.anyio


async def test_hardware_info_and_cloud_status(sim: Simulator) -> None:
    """docs/scope.md §1 / §2.1: hardware info shape; cloud mode is off."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        hardware = (await client.get("/api/v1/hardware/info")).json()
        cloud = (await client.get("/api/v1/cloud/status")).json()
    assert set(hardware) == {"vram_gb", "spout", "ndi", "syphon"}
    assert hardware["ndi"]["available"] is False
    assert cloud["connected"] is False


async def test_ice_servers_answers_the_setting_empty_by_default(sim: Simulator) -> None:
    """docs/scope.md §2.6 / §10: Scope answers `{"iceServers": [...]}` (a public STUN server
    without TURN credentials); the simulator answers its `ice_servers` setting in Scope's shape
    (`urls` a list, `username`/`credential` present), empty by default so nothing it hands out
    leads off the machine."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        assert (await client.get("/api/v1/webrtc/ice-servers")).json() == {"iceServers": []}
    turn = {"urls": "turn:127.0.0.1:3478", "username": "u", "credential": "c"}
    async with serve_sim(port=0, ice_servers=[turn, {"urls": ["stun:127.0.0.1:3479"]}]) as other, \
            httpx.AsyncClient(base_url=other.url) as client:
        body = (await client.get("/api/v1/webrtc/ice-servers")).json()
    assert body == {"iceServers": [
        {"urls": ["turn:127.0.0.1:3478"], "username": "u", "credential": "c"},
        {"urls": ["stun:127.0.0.1:3479"], "username": None, "credential": None},
    ]}
    with pytest.raises(ValueError, match="needs urls"):
        Simulator(ice_servers=[{"urls": []}])


async def test_models_status_and_download_409(sim: Simulator) -> None:
    """docs/scope.md §2.5: status per pipeline; a second download while one runs is 409."""
    sim.faults.download_time = 0.3
    async with httpx.AsyncClient(base_url=sim.url) as client:
        status = (await client.get("/api/v1/models/status", params={"pipeline_id": "longlive"})).json()
        assert status == {"downloaded": True, "progress": None}
        first = await client.post("/api/v1/models/download", json={"pipeline_id": "longlive"})
        second = await client.post("/api/v1/models/download", json={"pipeline_id": "memflow"})
        running = (await client.get("/api/v1/models/status", params={"pipeline_id": "longlive"})).json()
        unknown = await client.post("/api/v1/models/download", json={"pipeline_id": "nope"})
        await asyncio.sleep(0.4)
        done = (await client.get("/api/v1/models/status", params={"pipeline_id": "longlive"})).json()
    assert first.status_code == 200 and second.status_code == 409
    assert running["downloaded"] is False and running["progress"]["is_downloading"] is True
    assert unknown.status_code == 404
    assert done == {"downloaded": True, "progress": None}


async def test_unknown_route_and_method_answer_json(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        missing = await client.get("/api/v1/nope")
        wrong = await client.put("/health")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    assert wrong.status_code == 405 and wrong.json() == {"detail": "Method Not Allowed"}


async def test_handler_errors_become_logged_500s() -> None:
    """Errors inside handlers never kill the server: a 500, recorded, and the next request works."""
    calls = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    recorder = Recorder()
    transport = httpx.ASGITransport(app=RecordingMiddleware(app, recorder))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        failed = await client.post("/x", json={"a": 1})
        ok = await client.get("/y")
    assert failed.status_code == 500 and failed.json() == {"detail": "Internal Server Error"}
    assert ok.status_code == 200
    assert [(r["path"], r["status"], r["json"]) for r in recorder.records] == [
        ("/x", 500, {"a": 1}),
        ("/y", 200, None),
    ]


async def test_app_is_usable_in_process(sim: Simulator) -> None:
    """`sim.app` is a plain ASGI app (httpx.ASGITransport works without sockets)."""
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        body = (await client.get("/health")).json()
    assert body["version"] == "0.2.4"
    assert sim.records[-1]["path"] == "/health"
