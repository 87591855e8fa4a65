"""What does the runner cost while it holds one scene, beyond receiving the video at all?

Starts the Scope simulator in its own process, then measures, each in a fresh process:

1. the runner (`run_show`) holding a one-scene show (`end: hold`), and
2. a bare aiortc client that loads the same pipeline, offers, and consumes the same stream,

as CPU time (user + system, all threads) over N seconds once the stream is up, reported as
% of one core, and the difference (target <= 1 %).

    .venv/bin/python bench/bench_hold_cpu.py [--seconds 60] [--pipeline longlive]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SETTLE = 2.0  # seconds after the first frame before measuring
PROMPT = "a lighthouse on a cliff at night, slow waves"


def _serve_sim(conn: Connection) -> None:
    from showrunner.sim import serve_forever

    asyncio.run(
        serve_forever("127.0.0.1", 0, record_path=None, load_time=0.05, fps=None,
                      on_ready=lambda sim: conn.send(sim.url))
    )


def _measure(seconds: float) -> tuple[float, float]:
    return time.process_time(), time.monotonic()


def _runner(url: str, show: str, seconds: float, conn: Connection) -> None:
    from showrunner.app import run_show
    from showrunner.live.player import Player

    async def main() -> float:
        stop = asyncio.Event()
        players: list[Player] = []
        run = asyncio.create_task(run_show(show, scope_url=url, stdin_tty=False, stop_event=stop,
                                           on_player=players.append,
                                           state_file=Path(show).with_suffix(".state.json")))
        while not (players and players[0].status().connection == "connected"):
            await asyncio.sleep(0.05)
        await asyncio.sleep(SETTLE)
        cpu0, t0 = _measure(seconds)
        await asyncio.sleep(seconds)
        cpu1, t1 = _measure(seconds)
        stop.set()
        await run
        return (cpu1 - cpu0) / (t1 - t0)

    conn.send(asyncio.run(main()))


def _bare(url: str, pipeline: str, seconds: float, conn: Connection) -> None:
    import httpx
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from showrunner.scope.rtc import restrict_ice_to_loopback

    async def main() -> float:
        frames = 0
        consumers: set[asyncio.Future[None]] = set()

        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            await http.post("/api/v1/pipeline/load", json={"pipeline_ids": [pipeline]})
            while (await http.get("/api/v1/pipeline/status")).json().get("status") != "loaded":
                await asyncio.sleep(0.05)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.createDataChannel("parameters", ordered=True)
            pc.addTransceiver("video", direction="sendrecv")
            first = asyncio.get_running_loop().create_future()

            @pc.on("track")
            def on_track(track: Any) -> None:
                async def consume() -> None:
                    nonlocal frames
                    while True:
                        try:
                            await track.recv()
                        except MediaStreamError:
                            return  # the connection closed
                        frames += 1
                        if not first.done():
                            first.set_result(None)

                consumers.add(asyncio.ensure_future(consume()))

            restrict_ice_to_loopback(pc)
            await pc.setLocalDescription(await pc.createOffer())
            answer = (await http.post("/api/v1/webrtc/offer", json={
                "sdp": pc.localDescription.sdp, "type": "offer",
                "initialParameters": {"pipeline_ids": [pipeline], "prompts": [
                    {"text": PROMPT, "weight": 1.0}]},
            })).json()
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.wait_for(first, 15)
            await asyncio.sleep(SETTLE)
            cpu0, t0 = _measure(seconds)
            await asyncio.sleep(seconds)
            cpu1, t1 = _measure(seconds)
            await pc.close()
            await http.delete(f"/api/v1/webrtc/offer/{answer['sessionId']}")
        return (cpu1 - cpu0) / (t1 - t0)

    conn.send(asyncio.run(main()))


def _child(target: Any, *args: Any) -> float:
    parent, child = mp.Pipe()
    process = mp.Process(target=target, args=(*args, child))
    process.start()
    value = parent.recv()
    process.join(30)
    return float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pipeline", default="longlive")
    args = parser.parse_args(argv)
    mp.set_start_method("spawn")
    folder = Path(tempfile.mkdtemp(prefix="showrunner-cpu-"))
    show = folder / "hold.yaml"
    show.write_text(
        f"title: hold\nend: hold\ndefaults: {{pipeline: {args.pipeline}}}\n"
        f"scenes:\n  - {{name: only, prompts: '{PROMPT}'}}\n"
    )
    parent, child = mp.Pipe()
    sim = mp.Process(target=_serve_sim, args=(child,), daemon=True)
    sim.start()
    url = parent.recv()
    try:
        bare = _child(_bare, url, args.pipeline, args.seconds)
        runner = _child(_runner, url, str(show), args.seconds)
    finally:
        sim.terminate()
        sim.join(10)
    print(f"pipeline {args.pipeline}, {args.seconds:g} s each, simulator in its own process")
    print(f"bare aiortc client:   {bare * 100:6.2f} % of one core")
    print(f"showrunner runner:    {runner * 100:6.2f} % of one core")
    diff = (runner - bare) * 100
    print(f"difference:           {diff:+6.2f} %   target <= 1 %: {'ok' if diff <= 1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
