"""Does a long run stay flat? A looping show against the simulator, sampled every 10 s.

A real `run_show` plays a looping show (six 20-second scenes with transitions, a travel stop and
a LoRA fade sampled once per chunk) against the simulator in a process of its own, as a real
Scope server runs, with a journal and a state file. Every 10 s it samples this process: resident
memory (RSS), open file descriptors, threads (the OS's count, aiortc's and the scheduler's
included) and Python objects; the simulator's RSS beside it. At the end it prints the samples,
the growth per hour (least squares over the samples after the first minute) and how the
messages kept to plan.

    .venv/bin/python bench/bench_long_run.py [--minutes 30] [--every 10]

Goals: no growth that a week of running would feel (RSS well under 1 MB per hour once warm,
flat descriptors and threads), every message on time (p99 under 5 ms), nothing lost or unsent.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from showrunner.app import run_show  # noqa: E402
from showrunner.live.journal import read_journal  # noqa: E402

SHOW = """\
title: Long run
loop: forever
defaults:
  pipeline: longlive
  load:
    height: 128
    width: 128
    lora_merge_mode: runtime_peft
    loras: [{lora: watercolor, scale: 0}]
  transition: 2s
assets:
  loras: {watercolor: sim-watercolor.safetensors}
scenes:
  - {name: dawn, prompts: a misty pine forest at dawn, duration: 20}
  - name: noon
    prompts: the pine forest at noon
    duration: 20
    travel: [{at: 10, prompts: sun rays through the branches}]
  - name: wash
    manage_cache: false
    prompts: the forest dissolving into watercolor
    duration: 20
    keyframes:
      lora.watercolor: [{at: 0, value: 0}, {at: 20, value: 1.0}]
  - {name: dusk, prompts: "the forest at dusk, orange sky", duration: 20, loras: {watercolor: 0}}
  - {name: night, prompts: the forest at night under stars, duration: 20}
  - {name: fog, prompts: fog rolling through the dark forest, duration: 20}
"""


def _proc(pid: int | str, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def sample(sim_pid: int | None) -> dict[str, float]:
    return {
        "rss_mb": _proc("self", "VmRSS") / 1024,
        "fds": float(len(os.listdir("/proc/self/fd"))) if Path("/proc/self/fd").exists() else math.nan,
        "threads": _proc("self", "Threads"),
        # The run freezes what survives its start-up (gc.freeze): count those too.
        "objects": float(len(gc.get_objects()) + gc.get_freeze_count()),
        "sim_rss_mb": _proc(sim_pid, "VmRSS") / 1024 if sim_pid else math.nan,
    }


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 2:
        return math.nan
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


def _serve_sim(conn: Any, record: str) -> None:
    from showrunner.sim import serve_forever

    asyncio.run(serve_forever("127.0.0.1", 0, record_path=None, load_time=0.05, fps=None,
                              on_ready=lambda sim: conn.send(sim.url)))


async def play(show: Path, folder: Path, url: str, sim_pid: int, minutes: float,
               every: float) -> list[tuple[float, dict[str, float]]]:
    stop = asyncio.Event()
    runner = asyncio.create_task(run_show(show, scope_url=url, journal_path=folder / "journal.jsonl",
                                          state_file=folder / "state.json", stdin_tty=False,
                                          stop_event=stop))
    started = time.monotonic()
    samples = []
    print(f"{'min':>6}{'RSS MB':>9}{'fds':>6}{'threads':>8}{'objects':>9}{'sim RSS MB':>11}", flush=True)
    while time.monotonic() - started < minutes * 60:
        await asyncio.sleep(max(0.0, started + (len(samples) + 1) * every - time.monotonic()))
        if runner.done():
            break
        now = sample(sim_pid)
        samples.append((time.monotonic() - started, now))
        print(f"{samples[-1][0] / 60:6.1f}{now['rss_mb']:9.1f}{now['fds']:6.0f}{now['threads']:8.0f}"
              f"{now['objects']:9.0f}{now['sim_rss_mb']:11.1f}", flush=True)
    stop.set()
    code = await asyncio.wait_for(runner, 30)
    if code != 0:
        raise RuntimeError(f"run_show returned {code}")
    return samples


def report(samples: list[tuple[float, dict[str, float]]], journal: Path) -> None:
    warm = [(t, s) for t, s in samples if t >= 60] or samples
    print("growth per hour after the first minute (least squares):")
    for key, unit in (("rss_mb", "MB"), ("fds", ""), ("threads", ""), ("objects", ""), ("sim_rss_mb", "MB")):
        first, last = warm[0][1][key], warm[-1][1][key]
        slope = slope_per_hour([(t, s[key]) for t, s in warm])
        print(f"  {key:<11} {first:10.1f} -> {last:10.1f}   {slope:+10.2f} {unit}/h")
    records = read_journal(journal)
    sends = [r for r in records if r["kind"] == "send"]
    late = sorted((r["sent_at"] - i["planned_at"]) * 1000 for r in sends for i in (r.get("items") or [r]))
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    if late:
        p99 = late[max(0, math.ceil(0.99 * len(late)) - 1)]
        print(f"messages {len(sends)} carrying {len(late)} planned updates: lateness p50 "
              f"{statistics.median(late):.2f} ms, p99 {p99:.2f} ms, max {late[-1]:.2f} ms")
    print("journal:", json.dumps(dict(sorted(kinds.items()))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--keep", type=Path, default=None, help="keep the show and journal here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="showrunner-long-"))
    (folder / "show").mkdir(parents=True, exist_ok=True)
    show = folder / "show" / "long.yaml"
    show.write_text(SHOW)
    for name in ("journal.jsonl", "state.json"):
        (folder / name).unlink(missing_ok=True)
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_serve_sim, args=(child, ""), daemon=True)
    process.start()
    try:
        url = parent.recv()
        assert process.pid is not None
        samples = asyncio.run(play(show, folder, url, process.pid, args.minutes, args.every))
    finally:
        process.terminate()
        process.join(10)
    report(samples, folder / "journal.jsonl")
    print(f"files: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
