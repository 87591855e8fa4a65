"""OSC input to Scope: how many messages reach the server, and how late, however fast inputs come.

Plays a one-scene show on the simulator (controller-viz: 16.7 ms chunks, a thread of this
process, as `showrunner run` does with no Scope URL) with `kv_cache_attention_bias` mapped
linearly from an OSC input, sends `/showrunner/input/level` at `--rate` messages a second for
`--seconds`, each a distinct value, and prints:

- messages written per chunk interval (goal: at most 1; the journal's ``sent_at``), the
  smallest spacing between two writes (goal >= one chunk interval - 3 ms timer tolerance) and
  how many input messages each write carries;
- input-to-Scope latency: for every value the simulator received, ``received_at`` minus when
  that value was sent over OSC — p50 / p99 / max (goal p99 <= 2 chunk intervals: one tick of
  the modulator plus one slot of the session's pacing);
- that the last value received is the mapped last input (goal: equal);
- the machine's load average while it ran.

    .venv/bin/python bench/bench_modulation.py [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder

from showrunner.app import RunOptions, run
from showrunner.live.journal import read_journal
from showrunner.live.player import Player
from showrunner.sim import SimThread

SHOW = """
title: modulation benchmark
defaults: {pipeline: controller-viz, kv_cache_attention_bias: 0.5}
inputs:
  level: {}
scenes:
  - name: only
    prompts: a pulsing light
    modulate:
      kv_cache_attention_bias: {input: level, range: [0.01, 1.0]}
"""


def _port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _mapped(x: float) -> float:
    return round(0.01 + x * 0.99, 4)


async def bench(rate: float, seconds: float) -> None:
    thread = SimThread("127.0.0.1", 0, load_time=0.02)
    sim = thread.start()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        show, journal = Path(tmp) / "show.yaml", Path(tmp) / "run.jsonl"
        show.write_text(SHOW)
        osc = _port()
        players: list[Player] = []
        stop = asyncio.Event()
        options = RunOptions(show, scope_url=sim.url, osc_port=osc, stdin_tty=False,
                             journal_path=journal)
        runner = asyncio.create_task(run(options, stop_event=stop, on_player=players.append))
        while not (players and players[0].status().connection == "connected"):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        interval = float(players[0].sink.chunk_interval)  # type: ignore[attr-defined]
        count = int(rate * seconds)
        sent_at: dict[float, float] = {}
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        started = time.time()
        t0 = time.monotonic()
        for i in range(count):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            value = (i + 1) / count  # distinct after mapping and rounding
            builder = OscMessageBuilder(address="/showrunner/input/level")
            builder.add_arg(value)
            sock.sendto(builder.build().dgram, ("127.0.0.1", osc))
            sent_at.setdefault(_mapped(value), time.time())
        sock.close()
        await asyncio.sleep(10 * interval)
        stop.set()
        await asyncio.wait_for(runner, 20)
        records = read_journal(journal)
    thread.stop()
    load_after = os.getloadavg()
    received = [(r["received_at"], r["message"]["kv_cache_attention_bias"]) for r in sim.records
                if r["kind"] == "data" and r["received_at"] >= started
                and "kv_cache_attention_bias" in r["message"]]
    writes = [r for r in records if r["kind"] == "send" and r["sent_at"] >= started]
    spacing = [b["sent_at"] - a["sent_at"] for a, b in itertools.pairwise(writes)]
    span = writes[-1]["sent_at"] - writes[0]["sent_at"]
    latencies = sorted(at - sent_at[v] for at, v in received if v in sent_at)
    p = statistics.quantiles(latencies, n=100)
    print(f"input: {count} OSC messages in {seconds:g} s ({rate:g}/s); chunk {interval * 1000:.1f} ms")
    print(f"written: {len(writes)} messages in {span:.2f} s = {len(writes) * interval / span:.2f} "
          f"per chunk interval (goal <= 1); smallest spacing {min(spacing) * 1000:.1f} ms "
          f"(goal >= {(interval - 0.003) * 1000:.1f} ms); {count / len(writes):.1f} inputs per write")
    print(f"latency input -> Scope: p50 {p[49] * 1000:.1f} ms, p99 {p[98] * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms (goal p99 <= {2 * interval * 1000:.1f} ms)")
    print(f"last received {received[-1][1]} = mapped last input {_mapped(1.0)}: "
          f"{received[-1][1] == _mapped(1.0)}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(bench(args.rate, args.seconds))


if __name__ == "__main__":
    main()
