"""Pipeline load and status on the simulator, traps included (docs/scope.md §2.2-§2.3)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from showrunner.sim import Simulator
from showrunner.sim.loads import WAN_STAGES

pytestmark = pytest.mark.anyio


async def post_load(sim: Simulator, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        return await client.post("/api/v1/pipeline/load", json=body)


async def status(sim: Simulator) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/api/v1/pipeline/status")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def settled(sim: Simulator) -> str:
    """Wait for the background load to end, then past the stale window."""
    await sim.wait_for(lambda s: s.loads.combined() != "loading")
    await asyncio.sleep(sim.faults.stale_status + 0.01)
    return sim.loads.combined()


async def test_load_answers_at_once_and_loads_in_background(sim: Simulator) -> None:
    """docs/scope.md §2.2: 200 immediately, loading happens later."""
    sim.faults.load_time = 0.3
    response = await post_load(sim, {"pipeline_ids": ["controller-viz"]})
    assert response.json() == {"message": "Pipeline loading initiated successfully"}
    assert sim.loaded["status"] == "loading"
    assert await settled(sim) == "loaded"
    assert sim.loaded["pipelines"]["controller-viz"]["status"] == "loaded"


async def test_status_is_stale_right_after_the_post(sim: Simulator) -> None:
    """docs/scope.md §2.3: right after a POST the status can still show the previous state."""
    sim.faults.stale_status = 0.5
    await post_load(sim, {"pipeline_ids": ["controller-viz"], "load_params": {"height": 64}})
    assert await settled(sim) == "loaded"
    await post_load(sim, {"pipeline_ids": ["passthrough"], "load_params": {"height": 32}})
    stale = await status(sim)
    assert stale["status"] == "loaded"
    assert stale["pipeline_id"] == "controller-viz"
    assert stale["load_params"] == {"height": 64}
    await settled(sim)
    fresh = await status(sim)
    assert (fresh["status"], fresh["pipeline_id"], fresh["load_params"]) == (
        "loaded",
        "passthrough",
        {"height": 32},
    )


async def test_error_is_reported_once_then_not_loaded(sim: Simulator) -> None:
    """docs/scope.md §2.3 / §8-E: an unknown id gives 200, then `error` once, `error` field null."""
    response = await post_load(sim, {"pipeline_ids": ["no-such-pipeline"]})
    assert response.status_code == 200
    assert await settled(sim) == "error"
    first = await status(sim)
    assert first["status"] == "error"
    assert first["pipeline_id"] is None
    assert first["error"] is None
    second = await status(sim)
    assert second["status"] == "not_loaded"


async def test_load_without_pipelines_is_400(sim: Simulator) -> None:
    """docs/scope.md §2.2 / §10: `{}` → 400 with Scope's message."""
    response = await post_load(sim, {})
    assert response.status_code == 400
    assert response.json() == {"detail": "Either 'pipelines' or 'pipeline_ids' must be provided"}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"pipeline_ids": "longlive"}', b'{"pipelines": [{"pipeline_id": "x"}]}'],
    ids=["not-json", "ids-not-a-list", "entry-without-node-id"],
)
async def test_malformed_load_is_422(sim: Simulator, body: bytes) -> None:
    """docs/scope.md §2.2: a malformed body is 422 (FastAPI detail list)."""
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.post("/api/v1/pipeline/load", content=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_wan_size_not_divisible_by_16_ends_in_error(sim: Simulator) -> None:
    """docs/scope.md §2.2: Wan pipelines reject sizes not divisible by 16 → status `error` later."""
    sim.faults.stale_status = 0.0
    response = await post_load(
        sim, {"pipeline_ids": ["longlive"], "load_params": {"height": 330, "width": 576}}
    )
    assert response.status_code == 200
    assert await settled(sim) == "error"
    # Weight-free pipelines take any size.
    await post_load(sim, {"pipeline_ids": ["controller-viz"], "load_params": {"height": 330}})
    assert await settled(sim) == "loaded"


async def test_unknown_lora_path_ends_in_error_known_one_loads(sim: Simulator) -> None:
    """docs/scope.md §2.2 / §2.3: a LoRA path not on the server → `error`; a listed one is reported."""
    sim.faults.stale_status = 0.0
    await post_load(
        sim,
        {"pipeline_ids": ["longlive"], "load_params": {"loras": [{"path": "/nope.safetensors"}]}},
    )
    assert await settled(sim) == "error"
    path = sim.assets.lora_paths()[0]
    params = {"loras": [{"path": path, "scale": 0.8}], "lora_merge_mode": "runtime_peft"}
    await post_load(sim, {"pipeline_ids": ["longlive"], "load_params": params})
    assert await settled(sim) == "loaded"
    adapters = (await status(sim))["loaded_lora_adapters"]
    assert adapters == [
        {"path": path, "scale": 0.8, "merge_mode": "runtime_peft",
         "adapter_name": adapters[0]["adapter_name"]}
    ]


async def test_pipelines_form_reports_first_key_and_first_params(sim: Simulator) -> None:
    """docs/scope.md §2.2-§2.3: `pipelines[]` stores by node_id; pipeline_id = first instance key."""
    body = {
        "pipelines": [
            {"node_id": "pre", "pipeline_id": "gray", "load_params": {"height": 48}},
            {"node_id": "main", "pipeline_id": "passthrough"},
        ]
    }
    await post_load(sim, body)
    assert await settled(sim) == "loaded"
    result = await status(sim)
    assert result["pipeline_id"] == "pre"
    assert result["load_params"] == {"height": 48}
    assert set(sim.loaded["pipelines"]) == {"pre", "main"}


async def test_legacy_form_sends_the_same_params_to_every_pipeline(sim: Simulator) -> None:
    """docs/scope.md §2.2: legacy `load_params` go to every listed pipeline."""
    await post_load(sim, {"pipeline_ids": ["gray", "passthrough"], "load_params": {"height": 64}})
    assert await settled(sim) == "loaded"
    loaded = sim.loaded["pipelines"]
    assert loaded["gray"]["load_params"] == loaded["passthrough"]["load_params"] == {"height": 64}


async def test_reuse_rule_dict_equal_params_is_a_no_op(sim: Simulator) -> None:
    """docs/scope.md §2.2: dict-equal params keep the instance; `{}` and real params differ."""
    sim.faults.load_time = 0.2
    await post_load(sim, {"pipeline_ids": ["controller-viz"], "load_params": {"height": 64}})
    await settled(sim)
    instance = sim.loads.instances["controller-viz"]
    await post_load(sim, {"pipeline_ids": ["controller-viz"], "load_params": {"height": 64}})
    assert sim.loads.combined() == "loaded"  # nothing to load
    assert sim.loads.instances["controller-viz"] is instance
    await post_load(sim, {"pipeline_ids": ["controller-viz"], "load_params": {}})
    assert sim.loads.combined() == "loading"
    await settled(sim)
    assert sim.loads.instances["controller-viz"] is not instance


async def test_fail_loads_knob(sim: Simulator) -> None:
    """Fault knob: listed pipeline ids end in `error` (True = all)."""
    sim.faults.fail_loads = {"passthrough"}
    await post_load(sim, {"pipeline_ids": ["passthrough"]})
    assert await settled(sim) == "error"
    await status(sim)
    await post_load(sim, {"pipeline_ids": ["gray"]})
    assert await settled(sim) == "loaded"
    sim.faults.fail_loads = True
    await post_load(sim, {"pipeline_ids": ["gray"], "load_params": {"height": 16}})
    assert await settled(sim) == "error"


async def test_loading_stage_and_params_while_loading(sim: Simulator) -> None:
    """docs/scope.md §2.3: `loading_stage` while loading; `load_params` set as soon as it starts."""
    sim.faults.load_time = 0.8
    sim.faults.stale_status = 0.0
    params = {"height": 320, "width": 576, "base_seed": 7}
    await post_load(sim, {"pipeline_ids": ["longlive"], "load_params": params})
    await asyncio.sleep(0.05)
    result = await status(sim)
    assert result["status"] == "loading"
    assert result["loading_stage"] in WAN_STAGES
    assert result["load_params"] == params
    assert await settled(sim) == "loaded"
    assert (await status(sim))["loading_stage"] is None


async def test_realistic_load_times_when_not_given() -> None:
    """load_time=None: weight-free pipelines load in ~0.02 s (docs/scope.md §10)."""
    from showrunner.sim import serve_sim

    async with serve_sim(load_time=None) as sim:
        await post_load(sim, {"pipeline_ids": ["controller-viz"]})
        await asyncio.sleep(0.1)
        assert sim.loads.combined() == "loaded"
        await post_load(sim, {"pipeline_ids": ["longlive"]})
        await asyncio.sleep(0.1)
        assert sim.loads.combined() == "loading"  # Wan loads take about 2 s


async def test_unread_error_is_not_served_stale_to_the_next_load(sim: Simulator) -> None:
    """docs/scope.md §2.3: the race window shows the previous state, but never a stale `error`."""
    sim.faults.stale_status = 0.5
    await post_load(sim, {"pipeline_ids": ["no-such-pipeline"]})
    await sim.wait_for(lambda s: s.loads.combined() == "error")
    await post_load(sim, {"pipeline_ids": ["gray"]})
    assert (await status(sim))["status"] == "not_loaded"
    assert await settled(sim) == "loaded"


# -- what a real 0.2.4 server showed right after the POST (docs/scope.md §10) -------------------


async def test_first_poll_after_a_load_reads_loading_not_the_previous_status(sim: Simulator) -> None:
    """docs/scope.md §10: the first poll after `POST /pipeline/load` already reads `loading`, never
    the previous status; only loaded instances count for `pipeline_id` (pipeline_manager.py)."""
    await post_load(sim, {"pipeline_ids": ["controller-viz"], "load_params": {"height": 64}})
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    assert (await status(sim))["status"] == "loaded"
    sim.faults.load_time = 2.0  # long enough that a loaded machine still polls before the end
    await post_load(sim, {"pipeline_ids": ["passthrough"], "load_params": {"height": 32}})
    first = await status(sim)
    assert (first["status"], first["pipeline_id"], first["load_params"]) == (
        "loading", None, {"height": 32})
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    done = await status(sim)
    assert (done["status"], done["pipeline_id"]) == ("loaded", "passthrough")


async def test_unknown_id_reads_error_at_the_first_poll_then_not_loaded(sim: Simulator) -> None:
    """docs/scope.md §10 / §2.3: an unknown id → 200, the very first poll reads `error` (with
    `pipeline_id` null), the next one `not_loaded`: error → not_loaded, nothing before it."""
    await post_load(sim, {"pipeline_ids": ["controller-viz"]})
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")
    response = await post_load(sim, {"pipeline_ids": ["no-such-pipeline"]})
    assert response.status_code == 200
    first = await status(sim)
    assert (first["status"], first["pipeline_id"], first["error"]) == ("error", None, None)
    second = await status(sim)
    assert (second["status"], second["pipeline_id"]) == ("not_loaded", None)
    assert sim.loads.loaded() == {}  # the old pipeline was unloaded first (docs/scope.md §2.3)


async def test_a_failed_entry_leaves_the_request_not_loaded_after_the_error_is_read(
    sim: Simulator,
) -> None:
    """docs/scope.md §2.3 (pipeline_manager.py): the other entries still load, the failed one is
    reported once and then counts as not loaded, so the combined status stays `not_loaded` and
    an offer is refused until a new load."""
    await post_load(sim, {"pipeline_ids": ["gray", "no-such-pipeline"]})
    await sim.wait_for(lambda s: s.loads.combined() != "loading")
    assert (await status(sim))["status"] == "error"
    after = await status(sim)
    assert (after["status"], after["pipeline_id"]) == ("not_loaded", "gray")
    assert "gray" in sim.loads.loaded()
    async with httpx.AsyncClient(base_url=sim.url) as client:
        offer = await client.post("/api/v1/webrtc/offer", json={"sdp": "v=0", "type": "offer"})
    assert offer.status_code == 400


async def test_an_offer_reads_the_status_and_so_consumes_an_error(sim: Simulator) -> None:
    """docs/scope.md §2.3 / §2.6: the offer's status check is a status read (app.py), so an unread
    `error` is gone after a refused offer."""
    await post_load(sim, {"pipeline_ids": ["no-such-pipeline"]})
    async with httpx.AsyncClient(base_url=sim.url) as client:
        offer = await client.post("/api/v1/webrtc/offer", json={"sdp": "v=0", "type": "offer"})
    assert offer.status_code == 400
    assert (await status(sim))["status"] == "not_loaded"


async def test_stale_status_is_an_opt_in_knob(sim: Simulator) -> None:
    """The race window of docs/scope.md §2.3 is off by default (a real server never showed it, §10)."""
    assert sim.faults.stale_status == 0.0
