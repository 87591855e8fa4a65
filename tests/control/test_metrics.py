"""`GET /metrics` of a real run against the simulator over loopback, through a scripted outage:
the simulator dies and comes back, and the metrics follow (connection 1 → 0 → 1, one more
reconnect, the seconds without picture growing while it is away)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from showrunner.app import RunOptions, StreamOutput, run
from showrunner.control.metrics import Metrics
from showrunner.control.monitor import Health
from showrunner.live.player import Player
from showrunner.sim import Simulator
from showrunner.testing import until

pytestmark = [pytest.mark.webrtc, pytest.mark.anyio]

LOOP = """
title: metrics
defaults: {pipeline: controller-viz, load: {height: 64, width: 64}}
loop: forever
scenes:
  - {name: one, prompts: look one, duration: 1}
  - {name: two, prompts: look two, duration: 1}
"""


def values(text: str) -> dict[str, float]:
    """Every sample of the exposition as ``name{label="v"}`` → value (parsed the way
    Prometheus does)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def control_url(err: io.StringIO) -> str | None:
    match = re.search(r"control: (http://[^/\s]+)/", err.getvalue())
    return match.group(1) if match else None


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_metrics_follow_an_outage_of_the_simulator(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    show = tmp_path / "show.yaml"
    show.write_text(LOOP)
    out, err = io.StringIO(), io.StringIO()
    players: list[Player] = []
    stop = asyncio.Event()
    options = RunOptions(show, scope_url=sim_thread.url, stdin_tty=False, control_port=0,
                         state_file=tmp_path / "s.json")
    task = asyncio.create_task(run(options, output=StreamOutput(out, err), stop_event=stop,
                                   on_player=players.append))
    base = await until(lambda: control_url(err), 20)
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:

        async def scrape() -> dict[str, float]:
            answer = await http.get("/metrics")
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            return values(answer.text)

        async def scrape_until(check: Callable[[dict[str, float]], bool],
                               timeout: float) -> dict[str, float]:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                got = await scrape()
                if check(got):
                    return got
                assert asyncio.get_running_loop().time() < deadline, (check, got)
                await asyncio.sleep(0.2)

        try:
            before = await scrape_until(lambda m: m.get("showrunner_connected") == 1
                                        and m.get("showrunner_frames_received_total", 0) > 5, 30)
            assert before["showrunner_reconnects_total"] == 0
            assert before['showrunner_link_state{state="connected"}'] == 1
            assert before["showrunner_seconds_without_picture"] < 2
            await until(lambda: players and players[0].status().scene == "two", 10)
            # A hook record, as the player's event log writes it (the journal and the listeners).
            players[0].log.record("hook", name="on_open", ok=True)
            players[0].log.record("hook", name="alert", ok=False)

            await sim_thread.crash()
            down = await scrape_until(lambda m: m.get("showrunner_connected") == 0, 15)
            await asyncio.sleep(1.5)
            later = await scrape()
            assert later["showrunner_connected"] == 0
            assert later["showrunner_seconds_without_picture"] >= (
                down["showrunner_seconds_without_picture"] + 1.0)
            await sim_thread.start()
            back = await scrape_until(lambda m: m.get("showrunner_connected") == 1
                                      and m.get("showrunner_seconds_without_picture", 9) < 1, 40)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 20) == 0

    assert back["showrunner_reconnects_total"] == before["showrunner_reconnects_total"] + 1
    assert back["showrunner_frames_received_total"] > before["showrunner_frames_received_total"]
    assert back["showrunner_scene_changes_total"] >= 2
    assert back["showrunner_send_lateness_seconds_count"] >= 2
    assert back['showrunner_send_lateness_seconds_bucket{le="+Inf"}'] == (
        back["showrunner_send_lateness_seconds_count"])
    assert back['showrunner_hook_runs_total{hook="on_open"}'] == 1
    assert back['showrunner_hook_runs_total{hook="alert"}'] == 1
    assert back.get('showrunner_hook_failures_total{hook="on_open"}', 0) == 0
    assert back['showrunner_hook_failures_total{hook="alert"}'] == 1
    assert back["showrunner_uptime_seconds"] > later["showrunner_uptime_seconds"]


def test_each_metrics_has_its_own_registry() -> None:
    """Two runs in one process count apart (no global registry)."""
    first, second = Metrics(), Metrics()
    first.observe({"kind": "scene"})
    first.observe({"kind": "reconnect", "label": "failed"})
    first.observe({"kind": "reload_error"})
    health = Health(ready=False, connection="down", frame_age=None, without_picture=3.0,
                    frames_received=None, scene=None, mode="playing", reload_errors=("x",),
                    uptime=1.0, problems=("Scope is down",))
    one = values(first.render(health).decode())
    two = values(second.render(health).decode())
    assert one["showrunner_scene_changes_total"] == 1
    assert one["showrunner_reconnect_failures_total"] == 1
    assert one["showrunner_reload_errors_total"] == 1
    assert one["showrunner_reload_errors_pending"] == 1
    assert two["showrunner_scene_changes_total"] == 0
    assert "showrunner_frames_received_total" not in one  # no session: not reported
