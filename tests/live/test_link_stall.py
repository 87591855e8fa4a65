"""A hung Scope server (SIGSTOP) against the real client (both transports), over loopback: the
simulator runs in a process of its own, the player on the real clock.

The FakeClock version of the same story, with every step checked, is in tests/live/test_link.py.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from showrunner.live.journal import Journal, read_journal
from showrunner.live.player import Player
from showrunner.plan.compiler import compile_timeline
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession
from showrunner.scope.headless import HeadlessSession
from showrunner.show.load import load_text
from showrunner.testing import until

pytestmark = [pytest.mark.webrtc, pytest.mark.slow, pytest.mark.anyio]

SCENE = 4.0
LOOP = """
title: stall
defaults: {pipeline: controller-viz, load: {height: 64, width: 64}}
loop: forever
scenes:
  - {name: one, prompts: look one, duration: 4}
  - {name: two, prompts: look two, duration: 4}
  - {name: three, prompts: look three, duration: 4}
"""
NAMES = ("one", "two", "three")


def scene_at(origin: float, unix: float) -> str:
    return NAMES[math.floor(((unix - origin) % (SCENE * 3)) / SCENE)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", ["webrtc", "headless"])
async def test_a_stopped_server_shows_as_stalled_and_the_show_goes_on_where_the_clock_says(
    tmp_path: Path, transport: str,
) -> None:
    """Over WebRTC the frames stop; over the headless transport `frames_out` in
    /session/metrics stops rising (docs/scope.md §2.7, §2.8). Either way: stalled, then back at
    the scene the wall clock says."""
    from sim_process import sim_process

    timeline = compile_timeline(load_text(LOOP, path="stall.yaml").show, source="stall.yaml")
    timeouts = ClientTimeouts(request=2.0, connect=2.0, offer=5.0, first_frame=5.0)
    statuses: list[tuple[float, str]] = []
    with sim_process() as server, Journal(tmp_path / "j.jsonl") as journal:
        async with ScopeClient(server.url, timeouts=timeouts) as client:
            session: ScopeSession | HeadlessSession = (
                HeadlessSession(client) if transport == "headless" else ScopeSession(client)
            )

            def producing() -> bool:
                if isinstance(session, HeadlessSession):
                    return (session.frames_out or 0) > 10
                return session.frames_received > 10

            player = Player(timeline, session, journal=journal)
            run = asyncio.create_task(player.run())

            async def watch() -> None:
                while True:
                    statuses.append((time.monotonic(), player.status().connection.value))
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            try:
                await until(lambda: player.status().connection == "connected" and producing(), 20)
                await asyncio.sleep(1.0)
                stopped = time.monotonic()
                server.stop()
                await until(lambda: player.status().connection == "stalled", 10)
                await asyncio.sleep(max(0.0, stopped + 6.0 - time.monotonic()))
                server.cont()
                await until(lambda: player.status().connection == "connected", 40)
                await asyncio.sleep(1.0)
            finally:
                watcher.cancel()
                player.quit()
                assert await asyncio.wait_for(run, 20) == 0
                await session.close()

    sequence = [s for i, (_, s) in enumerate(statuses) if i == 0 or statuses[i - 1][1] != s]
    assert sequence[sequence.index("connected"):] == ["connected", "stalled", "connected"], sequence
    seen = next(t for t, s in statuses if s == "stalled")
    back = next(t for t, s in statuses if s == "connected" and t > seen)
    print(f"\nstalled seen {seen - stopped:.2f} s after SIGSTOP; connected again "
          f"{back - stopped - 6.0:.2f} s after SIGCONT")
    assert seen - stopped < 3.0, f"stalled seen {seen - stopped:.2f} s after SIGSTOP"
    records = read_journal(tmp_path / "j.jsonl")
    origin = next(r for r in records if r["kind"] == "scene")["planned_at"]
    watchdog = [r for r in records if r["kind"] == "watchdog"]
    assert watchdog and watchdog[0]["label"].startswith("stalled: no frames for")
    reconnect = next(r for r in records if r["kind"] == "reconnect" and r["label"] == "ok")
    # The new session opened in the scene the wall clock said when the attempt began...
    assert reconnect["scene"] in {scene_at(origin, reconnect["sent_at"] + d) for d in (-0.05, 0.0, 0.05)}
    assert [p["text"] for p in reconnect["message"]["prompts"]] == [f"look {reconnect['scene']}"]
    # ... and what the show sent next names the scene the wall clock says then: a resync when
    # the show moved on while the session opened, else the next entry.
    after = [r for r in records if r["kind"] == "send" and r["sent_at"] >= reconnect["sent_at"]]
    assert after and after[0]["label"] in ("resync", "enter")
    assert after[0]["scene"] in {scene_at(origin, after[0]["sent_at"] + d) for d in (-0.05, 0.0, 0.05)}
    texts = [p["text"] for p in after[0]["message"]["transition"]["target_prompts"]]
    assert texts == [f"look {after[0]['scene']}"]
