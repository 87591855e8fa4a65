"""How well does the tempo reach the rig? OSC beat lateness, and two Ableton Link peers.

    .venv/bin/python bench/bench_tempo_sources.py [--seconds 20] [--bpm 128]

- OSC out: a tempo set over OSC (source ``osc``) and ``OscControl`` sending to a python-osc
  receiver on 127.0.0.1; lateness = arrival of each new ``/showrunner/beat`` minus the moment
  the beat fell (by the tempo's own reading) — goal p95 <= 40 ms (a frame and a bit at 30 fps).
- Link: two `LinkTempo` peers in a network namespace with only loopback (the script runs
  itself again under ``unshare --net``; needs root, else this part is skipped): how long they
  take to find each other, how far apart their beats are at one moment (goal <= 1 ms at the
  tempo), and how long a tempo proposed by one takes to reach the other (goal median <= 100 ms,
  what Scope takes to follow a Link peer, docs/scope.md §10.1).

The machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, cast

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer

from showrunner.control.gate import Commands
from showrunner.control.osc import OscControl
from showrunner.sync.link import LinkTempo
from showrunner.sync.runner import TempoRunner
from showrunner.sync.sources import SourceContext, SourceOptions

SETUP = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec "$@"'


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def osc_beats(seconds: float, bpm: float) -> None:
    arrivals: list[tuple[float, int]] = []
    dispatcher = Dispatcher()
    dispatcher.map("/showrunner/beat", lambda _a, *args: arrivals.append((time.monotonic(), args[0])))
    loop = asyncio.get_running_loop()
    server = AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, cast(asyncio.BaseEventLoop, loop))
    transport, _ = await server.create_serve_endpoint()
    runner = TempoRunner(SourceOptions("osc", bpm=bpm), SourceContext(time.monotonic))
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.05)
    out = ("127.0.0.1", transport.get_extra_info("sockname")[1])
    async with OscControl(Commands(None), port=None, out=out) as osc:  # no show: tempo only
        osc.tempo = runner
        await asyncio.sleep(seconds)
    task.cancel()
    transport.close()
    reading = runner.latest.reading
    late: list[float] = []
    previous = None
    for at, value in arrivals:
        if value != previous and previous is not None:  # a new beat, not a refresh
            beat = reading.beat + (at - reading.at) * reading.bpm / 60.0
            late.append(((beat + 0.25) % 1.0 - 0.25) * 60.0 / reading.bpm * 1000.0)
        previous = value
    print(f"OSC beat lateness at {bpm:g} bpm, {len(late)} beats: median "
          f"{statistics.median(late):.1f} ms, p95 {pct(late, 95):.1f} ms, max {max(late):.1f} ms "
          f"(goal p95 <= 40 ms)")


async def link_peers(rounds: int) -> dict[str, Any]:
    a = LinkTempo(120.0, 4, time.monotonic)
    b = LinkTempo(120.0, 4, time.monotonic)
    last: dict[str, Any] = {}
    tasks = [asyncio.create_task(p.run(lambda r, n=n: last.__setitem__(n, r)))
             for n, p in (("a", a), ("b", b))]
    started = time.monotonic()
    while not (a.peers and b.peers):
        await asyncio.sleep(0.005)
    found = time.monotonic() - started
    await asyncio.sleep(1.0)
    gaps, follows = [], []
    for i in range(rounds):
        now = time.monotonic()
        ra, rb = last["a"], last["b"]
        beat_a = ra.beat + (now - ra.at) * ra.bpm / 60.0
        beat_b = rb.beat + (now - rb.at) * rb.bpm / 60.0
        gaps.append(abs(beat_a - beat_b) * 60.0 / ra.bpm * 1000.0)
        target = 100.0 + 5 * (i % 10)
        proposed = time.monotonic()
        await b.propose(target)
        while abs(last["a"].bpm - target) > 0.01 and time.monotonic() - proposed < 5:
            await asyncio.sleep(0.001)
        follows.append((time.monotonic() - proposed) * 1000.0)
        await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"found_s": found, "gaps_ms": gaps, "follows_ms": follows}


def link_part(rounds: int) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("Link: skipped (needs root and unshare for a loopback-only network namespace)")
        return
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", SETUP, "sh", sys.executable, __file__, "--link-inside",
         "--rounds", str(rounds)], capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        print(f"Link: failed: {done.stderr.strip()[-300:]}")
        return
    result = json.loads(done.stdout.splitlines()[-1])
    gaps, follows = result["gaps_ms"], result["follows_ms"]
    print(f"Link: peers found in {result['found_s'] * 1000:.0f} ms; beat gap between the peers "
          f"median {statistics.median(gaps):.3f} ms, max {max(gaps):.3f} ms (goal <= 1 ms); a "
          f"proposed tempo reached the other peer in median {statistics.median(follows):.1f} ms, "
          f"p95 {pct(follows, 95):.1f} ms, {len(follows)} changes (goal median <= 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bpm", type=float, default=128.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--link-inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.link_inside:
        print(json.dumps(asyncio.run(link_peers(args.rounds))))
        return
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    asyncio.run(osc_beats(args.seconds, args.bpm))
    link_part(args.rounds)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
