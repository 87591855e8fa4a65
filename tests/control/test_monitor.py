"""`GET /api/health` of a real run against the simulator over loopback: 200 while connected
with a fresh picture, 503 (with the reason) while Scope is away, a failed edit reported without
making the run unready."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from showrunner.app import RunOptions, StreamOutput, run
from showrunner.sim import Simulator
from showrunner.testing import until

pytestmark = [pytest.mark.webrtc, pytest.mark.anyio]

LOOP = """
title: health
defaults: {pipeline: controller-viz, load: {height: 64, width: 64}}
loop: forever
scenes:
  - {name: one, prompts: look one, duration: 1}
  - {name: two, prompts: look two, duration: 1}
"""


def control_url(err: io.StringIO) -> str | None:
    match = re.search(r"control: (http://[^/\s]+)/", err.getvalue())
    return match.group(1) if match else None


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_health_is_ready_only_while_connected_with_a_fresh_picture(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    show = tmp_path / "show.yaml"
    show.write_text(LOOP)
    out, err = io.StringIO(), io.StringIO()
    stop = asyncio.Event()
    options = RunOptions(show, scope_url=sim_thread.url, stdin_tty=False, control_port=0,
                         state_file=tmp_path / "s.json")
    task = asyncio.create_task(run(options, output=StreamOutput(out, err), stop_event=stop))
    base = await until(lambda: control_url(err), 20)
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:

        async def health_until(code: int, timeout: float, *, errors: bool = False,
                               mode: str | None = None) -> dict[str, Any]:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                answer = await http.get("/api/health")
                body = answer.json()
                if answer.status_code == code and (not errors or body["reload_errors"]) and (
                        mode is None or body["mode"] == mode):
                    found: dict[str, Any] = body
                    return found
                assert asyncio.get_running_loop().time() < deadline, answer.text
                await asyncio.sleep(0.1)

        try:
            ready = await health_until(200, 30)
            assert ready["live"] is ready["ready"] is ready["connected"] is True
            assert ready["connection"] == "connected"
            assert ready["scene"] in ("one", "two")
            assert 0 <= ready["frame_age"] < 5
            assert ready["problems"] == [] and ready["reload_errors"] == []
            assert ready["uptime"] > 0 and ready["frames_received"] > 0

            # PANIC freezes the picture on purpose: no frames expected, still ready.
            assert (await http.post("/api/panic")).status_code == 200
            frozen = await health_until(200, 10, mode="panic")
            assert frozen["frame_age"] is None and frozen["problems"] == []
            assert (await http.post("/api/resume")).status_code == 200
            await health_until(200, 10, mode="playing")

            show.write_text(LOOP.replace("duration: 1}", "duration: one second}", 1))
            failed = await health_until(200, 10, errors=True)
            assert "duration" in failed["reload_errors"][0]

            await sim_thread.crash()
            down = await health_until(503, 15)
            assert down["ready"] is down["connected"] is False
            assert down["live"] is True
            assert down["problems"] and down["problems"][0].startswith("Scope is ")
            await asyncio.sleep(1.0)
            later = await health_until(503, 5)
            assert later["seconds_without_picture"] >= down["seconds_without_picture"] + 0.9
            await sim_thread.start()
            back = await health_until(200, 40)
            assert back["frame_age"] < 5
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 20) == 0
