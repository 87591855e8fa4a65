"""The simulator's recorder: every HTTP request and data-channel message, as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from showrunner.sim import serve_sim
from showrunner.sim.record import Recorder

pytestmark = pytest.mark.anyio


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def test_http_records_are_flushed_as_they_arrive(tmp_path: Path) -> None:
    """Each request is on disk (one JSON line) while the simulator still runs."""
    path = tmp_path / "out" / "records.jsonl"
    async with serve_sim(record_path=path) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            await client.get("/health", headers={"Authorization": "Bearer s3cret"})
            await client.post(
                "/api/v1/pipeline/load",
                params={"trace": "1"},
                json={"pipeline_ids": ["controller-viz"], "load_params": {"height": 64}},
            )
            await client.post("/api/v1/pipeline/load", json={})
        on_disk = lines(path)
        assert on_disk == sim.records
    first, load, empty = on_disk
    assert first["kind"] == "http" and isinstance(first["received_at"], float)
    assert (first["method"], first["path"], first["status"]) == ("GET", "/health", 200)
    assert first["headers"]["authorization"] == "Bearer s3cret"
    assert first["json"] is None and first["body_size"] == 0
    assert load["query"] == {"trace": "1"}
    assert load["json"] == {"pipeline_ids": ["controller-viz"], "load_params": {"height": 64}}
    assert empty["status"] == 400
    assert first["received_at"] <= load["received_at"] <= empty["received_at"]


@pytest.mark.webrtc
async def test_offer_and_data_messages_are_recorded(tmp_path: Path, sim_peer: Any) -> None:
    """The offer keeps initialParameters (not the SDP); data messages carry the session id."""
    path = tmp_path / "records.jsonl"
    async with serve_sim(record_path=path, load_time=0.01) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            await client.post("/api/v1/pipeline/load", json={"pipeline_ids": ["controller-viz"]})
        await sim.wait_for(lambda s: s.loads.combined() == "loaded")
        peer = await sim_peer(sim.url, {"pipeline_ids": ["controller-viz"], "noise_scale": 0.5})
        await peer.send({"prompts": [{"text": "a fox", "weight": 1}]})
        await sim.wait_for(lambda s: any(r["kind"] == "data" for r in s.records))
        on_disk = lines(path)
    offer = next(r for r in on_disk if r.get("path") == "/api/v1/webrtc/offer")
    assert "sdp" not in offer["json"]
    assert offer["json"]["initialParameters"] == {"pipeline_ids": ["controller-viz"], "noise_scale": 0.5}
    data = next(r for r in on_disk if r["kind"] == "data")
    assert data["session_id"] == peer.session_id
    assert data["message"] == {"prompts": [{"text": "a fox", "weight": 1}]}


def test_recorder_without_a_path_keeps_memory_only() -> None:
    recorder = Recorder()
    recorder.add({"kind": "data", "message": "x"})
    recorder.close()
    assert recorder.records == [{"kind": "data", "message": "x"}]
