"""Benchmark: compile a show and render the text report, for 1k, 10k and 100k scenes.

Each size runs in a fresh subprocess so that its peak RSS (VmHWM) is its own. The show is built
in memory and validated once (not timed); then compile + render_text is timed three times and
the median reported. Targets: 10k scenes in <= 1 s and <= 200 MB, growth no worse than n log n.

    .venv/bin/python bench/bench_compile.py            # 1k, 10k, 100k
    .venv/bin/python bench/bench_compile.py 1000 5000  # chosen sizes
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (1_000, 10_000, 100_000)
RUNS = 3


def make_show(n: int) -> dict[str, Any]:
    """A realistic show of `n` scenes: prompts, transitions, keyframes, switches, a section."""
    words = ("harbour", "neon", "fog", "forest", "city", "desert", "ocean", "aurora", "storm")
    scenes: list[dict[str, Any]] = []
    for i in range(n):
        scene: dict[str, Any] = {
            "name": f"s{i:06d}",
            "duration": 8 + i % 5,
            "prompts": [
                {"text": f"a {words[i % 9]} at dusk, cinematic, scene {i}", "weight": 1.0},
                {"text": f"{words[(i + 3) % 9]} textures", "weight": 0.4},
            ],
            "transition": "2s" if i % 3 else "cut",
        }
        if i % 4 == 1:
            scene["keyframes"] = {
                "noise_scale": [{"at": 0, "value": 0.3}, {"at": 6, "value": 0.7, "ease": "ease-in-out"}]
            }
        if i % 10 == 5:
            scene["keyframes"] = {"lora.style": [{"at": 1, "value": 0.2}, {"at": 5, "value": 0.9}]}
        if i % 7 == 3:
            scene["travel"] = [{"at": 4, "prompts": f"{words[(i + 5) % 9]} close-up"}]
        if i % 250 == 200:  # a few pipeline switches, and back
            scene["pipeline"] = "krea-realtime-video"
        elif i % 250 == 201:
            scene["pipeline"] = "longlive"
        if i % 500 == 0 and i:
            scene["cue"] = True
        if i % 50 == 10:
            scene["vace"] = {"refs": ["ref"]}
        scenes.append(scene)
    return {
        "title": f"bench {n}",
        "defaults": {
            "pipeline": "longlive",
            "manage_cache": True,
            "load": {"loras": [{"lora": "style", "merge_mode": "runtime_peft"}]},
        },
        "assets": {"images": {"ref": "ref.png"}, "loras": {"style": "style.safetensors"}},
        "scenes": scenes,
        "sections": [{"name": "chorus", "start": "s000010", "end": "s000019", "repeat": 3}],
    }


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(n: int) -> dict[str, Any]:
    """Run one size in this process; returns the measurements."""
    from showrunner.plan.compiler import compile_timeline
    from showrunner.report.text import render_text
    from showrunner.show.model import Show

    show = Show.model_validate(make_show(n))
    base_mb = _hwm_mb()
    compile_s: list[float] = []
    total_s: list[float] = []
    cpu_s: list[float] = []
    lines = 0
    for _ in range(RUNS):
        c0 = time.process_time()
        t0 = time.perf_counter()
        timeline = compile_timeline(show)
        t1 = time.perf_counter()
        text = render_text(timeline)
        t2 = time.perf_counter()
        cpu_s.append(time.process_time() - c0)
        compile_s.append(t1 - t0)
        total_s.append(t2 - t0)
        lines = text.count("\n")
        del timeline, text
    return {
        "scenes": n,
        "compile": statistics.median(compile_s),
        "total": statistics.median(total_s),
        "cpu": statistics.median(cpu_s),
        "peak_mb": _hwm_mb(),
        "show_mb": base_mb,
        "lines": lines,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(int(argv[1]))))
        return 0
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: bench_compile.py [SCENES ...]   (default: {' '.join(map(str, SIZES))})")
        return 0
    sizes = [int(a) for a in argv] or list(SIZES)
    results = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    heads = ("compile s", "+render s", "cpu s", "peak MB", "show MB", "x per 10x", "n log n x")
    print(f"{'scenes':>8} " + " ".join(f"{h:>10}" for h in heads))
    prev: dict[str, Any] | None = None
    for r in results:
        ratio = nlogn = ""
        if prev is not None:
            ratio = f"{r['total'] / prev['total']:.1f}"
            grow = r["scenes"] / prev["scenes"]
            nlogn = f"{grow * math.log(r['scenes']) / math.log(prev['scenes']):.1f}"
        print(
            f"{r['scenes']:>8} {r['compile']:>10.3f} {r['total']:>10.3f} {r['cpu']:>10.3f} "
            f"{r['peak_mb']:>10.0f} {r['show_mb']:>10.0f} {ratio:>10} {nlogn:>10}"
        )
        prev = r
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"median of {RUNS} runs (wall: perf_counter, cpu: process_time); x per 10x = +render ratio; "
        f"peak MB = VmHWM of the size's own process, which includes the validated show (show MB); "
        f"load average {load:.2f} on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
