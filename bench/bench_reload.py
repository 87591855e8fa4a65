"""Benchmark: edit -> air latency of hot reload.

A real `run_show` plays a show against the simulator (in this process, on its own thread). The
prompt of the playing scene is edited N times; each latency runs from just before the file is
written (`time.time()`) to the arrival of the changed message at the simulator (`received_at`
of its record). Edits are spaced so that each is its own reload. Both save styles are measured:
writing the file in place, and writing a temporary file renamed over it (an atomic save).
Target: p95 <= 150 ms.

    .venv/bin/python bench/bench_reload.py              # 30 edits per save style
    .venv/bin/python bench/bench_reload.py --edits 100
    .venv/bin/python bench/bench_reload.py --step-ms 10  # the watch's quiet step (run: 25)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import showrunner.reload.apply  # noqa: E402
from showrunner.app import run_show  # noqa: E402
from showrunner.live.player import Player  # noqa: E402
from showrunner.sim import SimThread, Simulator  # noqa: E402

SHOW = """\
title: Reload latency
fps: 16
defaults: {{pipeline: controller-viz}}
scenes:
  - name: playing
    prompts: "{prompt}"
    duration: 3600
  - name: later
    prompts: the next look
    duration: 60
"""
SPACING = 0.25  # seconds between edits: longer than a reload, so each edit is measured alone
TIMEOUT = 5.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _arrival(sim: Simulator, marker: str, seen: int) -> float | None:
    records = sim.records
    for record in records[seen:]:
        if record["kind"] == "data" and marker in str(record.get("message")):
            return float(record["received_at"])
    return None


async def _edit_once(sim: Simulator, path: Path, marker: str, atomic: bool) -> float:
    text = SHOW.format(prompt=marker)
    seen = len(sim.records)
    if atomic:
        tmp = path.with_name(f".{path.name}.{marker}.tmp")
        tmp.write_text(text, "utf-8")
        written = time.time()
        os.replace(tmp, path)
    else:
        written = time.time()
        path.write_text(text, "utf-8")
    deadline = time.monotonic() + TIMEOUT
    while (arrived := _arrival(sim, marker, seen)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"edit {marker!r} never reached the simulator")
        await asyncio.sleep(0.001)
    return arrived - written


async def measure(edits: int) -> dict[str, list[float]]:
    thread = SimThread("127.0.0.1", 0, load_time=0.02)
    sim = thread.start()
    results: dict[str, list[float]] = {"in place": [], "atomic rename": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "show.yaml"
            path.write_text(SHOW.format(prompt="take 0"), "utf-8")
            stop = asyncio.Event()
            players: list[Player] = []
            quiet = io.StringIO()
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                run = asyncio.create_task(
                    run_show(path, scope_url=sim.url, stdin_tty=False, stop_event=stop,
                             on_player=players.append, state_file=Path(folder) / "state.json")
                )
                while not players or players[0].status().connection != "connected":
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.5)
                for style, atomic in (("in place", False), ("atomic rename", True)):
                    for i in range(edits):
                        marker = f"take {style} {i}"
                        results[style].append(await _edit_once(sim, path, marker, atomic))
                        await asyncio.sleep(SPACING)
                stop.set()
                code = await run
            if code != 0:
                raise RuntimeError(f"the run ended with {code}:\n{quiet.getvalue()}")
    finally:
        thread.stop()
    return results


def report(results: dict[str, list[float]]) -> str:
    header = ("save style", "edits", "p50 ms", "p95 ms", "max ms", "mean ms")
    lines = ["{:<15} {:>5} {:>8} {:>8} {:>8} {:>8}".format(*header)]
    for style, values in [*results.items(), ("all", [v for vs in results.values() for v in vs])]:
        ms = [v * 1000 for v in values]
        lines.append(
            f"{style:<15} {len(ms):>5} {percentile(ms, 50):>8.1f} {percentile(ms, 95):>8.1f} "
            f"{max(ms):>8.1f} {statistics.fmean(ms):>8.1f}"
        )
    everything = [v for vs in results.values() for v in vs]
    verdict = "met" if percentile(everything, 95) <= 0.150 else "MISSED"
    lines.append(f"target p95 <= 150 ms: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30, help="edits per save style (>= 20)")
    parser.add_argument("--step-ms", type=int, default=None,
                        help=f"the watch's step (default {showrunner.reload.apply.RELOAD_STEP_MS})")
    args = parser.parse_args(argv)
    if args.step_ms is not None:
        showrunner.reload.apply.RELOAD_STEP_MS = args.step_ms
        showrunner.reload.apply.RELOAD_DEBOUNCE_MS = max(args.step_ms * 4, 30)
    results: Any = asyncio.run(measure(max(1, args.edits)))
    print(f"watch step {showrunner.reload.apply.RELOAD_STEP_MS} ms, "
          f"debounce {showrunner.reload.apply.RELOAD_DEBOUNCE_MS} ms")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
