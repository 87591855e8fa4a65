"""Benchmark: the whole path of a big show, file -> check and file -> report, each in its own process.

For 1k, 10k and 100k scenes a Scope timeline is generated and converted with `showrunner import`
(so the show is what import writes), then `showrunner check FILE` and `showrunner report FILE`
run as separate processes, as a user runs them: wall time (median of the runs) and peak RSS
(the process's own, from wait4), and CPU time (steadier than wall time on a loaded machine).
Goals: 10k scenes report <= 1.5 s and <= 200 MB, check <= 1 s; growth from 1k to 10k to 100k no
worse than n log n (the CPU time above the process floor, beside n log n).

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
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (1_000, 10_000, 100_000)
RUNS = 3
GOALS = {"report_s": 1.5, "report_mb": 200, "check_s": 1.0}  # at 10k scenes
_WORDS = ("harbour", "neon", "fog", "forest", "city", "desert", "ocean", "aurora", "storm")


def scope_timeline(segments: int) -> dict[str, Any]:
    """A Scope UI timeline export (v2.0): prompts (a second one every third segment), slerp
    transitions every fourth, one pipeline and its settings."""
    prompts = []
    t = 0.0
    for i in range(segments):
        length = 6 + (i % 5) * 1.3
        texts = [{"text": f"a {_WORDS[i % 9]} at dusk, cinematic, scene {i}", "weight": 100}]
        if i % 3 == 0:
            texts.append({"text": f"{_WORDS[(i + 3) % 9]} textures", "weight": 40})
        segment: dict[str, Any] = {"startTime": round(t, 2), "endTime": round(t + length, 2),
                                   "prompts": texts}
        if i % 4 == 1:
            segment["transitionSteps"] = 4
            segment["temporalInterpolationMethod"] = "slerp"
        prompts.append(segment)
        t += length
    return {
        "prompts": prompts,
        "settings": {"pipelineId": "krea-realtime-video", "resolution": {"height": 480, "width": 832},
                     "seed": 42, "denoisingSteps": [1000, 750], "manageCache": True,
                     "loras": [], "loraMergeStrategy": "permanent_merge"},
        "version": "2.0",
    }


# The show used by tests/test_timeline.py (a realistic in-memory show with keyframes, travel,
# pipeline switches, cues and a repeating section).
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


def _run(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one `showrunner ...`
    process; output discarded. On a loaded machine the CPU time is the steadier figure."""
    # As installed: with the bytecode caches Python keeps (a machine that forbids them, with
    # PYTHONDONTWRITEBYTECODE, would time compiling the package in every process).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    start = time.perf_counter()
    # In ROOT: `-m` looks in the working folder first, before PYTHONPATH.
    proc = subprocess.Popen([sys.executable, "-m", "showrunner", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"showrunner {' '.join(args)} failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def measure(n: int, folder: Path) -> dict[str, Any]:
    source = folder / f"timeline-{n}.json"
    source.write_text(json.dumps(scope_timeline(n)), "utf-8")
    show = folder / f"show-{n}.yaml"
    import_s, import_mb, _ = _run(["import", str(source), "-o", str(show)])
    runs = RUNS if n <= 10_000 else 1
    checks = [_run(["check", str(show)]) for _ in range(runs)]
    reports = [_run(["report", str(show)]) for _ in range(runs)]
    return {
        "scenes": n,
        "kb": show.stat().st_size / 1000,
        "import_s": import_s,
        "import_mb": import_mb,
        "check_s": statistics.median(w for w, _, _ in checks),
        "check_cpu": statistics.median(c for _, _, c in checks),
        "check_mb": max(m for _, m, _ in checks),
        "report_s": statistics.median(w for w, _, _ in reports),
        "report_cpu": statistics.median(c for _, _, c in reports),
        "report_min_s": min(w for w, _, _ in reports),
        "report_mb": max(m for _, m, _ in reports),
        "runs": runs,
    }


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: bench_compile.py [SCENES ...]   (default: {' '.join(map(str, SIZES))})")
        return 0
    sizes = [int(a) for a in argv] or list(SIZES)
    _run(["check", str(ROOT / "shows" / "minimal.yaml")])  # writes the bytecode caches
    floor, _, floor_cpu = _run(["--version"])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            results.append(measure(n, Path(tmp)))
    heads = ("file kB", "import s", "import MB", "check s", "check cpu", "check MB", "report s",
             "report cpu", "report MB", "check x", "report x", "n log n x")
    print(f"{'scenes':>7} " + " ".join(f"{h:>10}" for h in heads))
    prev: dict[str, Any] | None = None
    for r in results:
        check_x = report_x = nlogn = ""
        if prev is not None:  # growth of the work above the process floor, in CPU time
            check_x = f"{(r['check_cpu'] - floor_cpu) / (prev['check_cpu'] - floor_cpu):.1f}"
            report_x = f"{(r['report_cpu'] - floor_cpu) / (prev['report_cpu'] - floor_cpu):.1f}"
            grow = r["scenes"] / prev["scenes"]
            nlogn = f"{grow * math.log(r['scenes']) / math.log(prev['scenes']):.1f}"
        print(
            f"{r['scenes']:>7} {r['kb']:>10.0f} {r['import_s']:>10.2f} {r['import_mb']:>10.0f} "
            f"{r['check_s']:>10.2f} {r['check_cpu']:>10.2f} {r['check_mb']:>10.0f} "
            f"{r['report_s']:>10.2f} {r['report_cpu']:>10.2f} {r['report_mb']:>10.0f} "
            f"{check_x:>10} {report_x:>10} {nlogn:>10}"
        )
        prev = r
    load = os.getloadavg()[0]
    print(f"s: wall, median of {RUNS} processes (1 at 100k); cpu: user + system s; MB: peak RSS "
          f"of the process; growth x: CPU above the floor per step in size. Floor: "
          f"`showrunner --version` takes {floor:.2f} s ({floor_cpu:.2f} s CPU); load average "
          f"{load:.2f} on {os.cpu_count()} CPUs")
    ten = next((r for r in results if r["scenes"] == 10_000), None)
    if ten is not None:
        def verdict(ok: bool) -> str:
            return "met" if ok else "MISSED"

        report_ok = verdict(ten["report_s"] <= GOALS["report_s"])
        print(f"goal at 10k: report <= {GOALS['report_s']} s: {report_ok} "
              f"({ten['report_s']:.2f} s, fastest {ten['report_min_s']:.2f} s); "
              f"report <= {GOALS['report_mb']} MB: {verdict(ten['report_mb'] <= GOALS['report_mb'])}; "
              f"check <= {GOALS['check_s']} s: {verdict(ten['check_s'] <= GOALS['check_s'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
