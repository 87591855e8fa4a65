"""Endurance: the gallery example played by the real command against the simulator, sampled.

`showrunner run shows/gallery.yaml` runs in a process of its own (as a service runs it), against
`showrunner sim` in another, with a journal, a state file and the control server. Every 10 s
this script samples the run's process: resident memory (RSS), open file descriptors and threads
(from /proc), the simulator's RSS, and ``GET /api/health`` (its HTTP status, the frame age and
the scene). At the end it prints the samples (one a minute), start, end and the fitted growth
per hour (least squares over the samples after `--warmup` minutes (5), and over the second
half) of the run and, apart, of the simulator, the run's beside the goal, how often the run
was ready, and how the sends kept to plan (from the journal).

    .venv/bin/python bench/bench_soak.py [--minutes 30] [--every 10] [--hours cycle|file]
                                         [--show SHOW.yaml] [--warmup 5]
                                         [--runner-env NAME=VALUE ...] [--scope URL]

`--runner-env` sets a variable for the run's process only, to compare allocators:
`MALLOC_ARENA_MAX=2`, or `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2`.
`--scope URL` plays against a server already running (a real Scope, or a simulator started
by hand) instead of starting `showrunner sim`; the simulator's column is then empty.

`--hours cycle` (the default) replaces the example's opening hours with windows of
`--cycle` minutes (10) that open and close in turn from the start of the run, in UTC, so a
half-hour run plays the open scenes, closes into the holding scene and opens again at the
wall-clock-correct scene. `--hours file` keeps the example's own hours (Europe/Berlin).

Goals: the run's RSS growth under 1 MB per hour after the warm-up, flat descriptors and threads, ready
(200) at every sample outside the few seconds of a scene's session switch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "shows" / "gallery.yaml"
GOAL_MB_PER_HOUR = 1.0
_SIM_READY = re.compile(r"Scope simulator on (http://\S+)")
_CONTROL = re.compile(r"control: (http://[^/\s]+)/")


@dataclass
class Sample:
    at: float  # seconds since the run started
    rss_mb: float
    fds: int
    threads: int
    sim_rss_mb: float
    health: int  # HTTP status of /api/health (0: no answer)
    frame_age: float | None
    scene: str | None


def _proc_status(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return math.nan


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def _health(base: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{base}/api/health", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(exc.read())
        return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def _cycled_hours(minutes: float, cycle: float, start: datetime) -> str:
    """Opening hours (UTC) that open at `start` and close and open every `cycle` minutes."""
    lines = ["hours:", "  timezone: UTC", "  open:"]
    t = start.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes + cycle)
    opened = 0
    while t < end:
        stop = t + timedelta(minutes=cycle)
        if stop.date() == t.date():  # a window that crosses midnight is left closed
            lines += [f"    - start: \"{t:%H:%M}\"", f"      end: \"{stop:%H:%M}\""]
            opened += 1
        t = stop + timedelta(minutes=cycle)
    if not opened:
        lines += ["    - start: \"00:00\"", "      end: \"24:00\""]
    lines.append("  closed: night")
    return "\n".join(lines) + "\n"


def _show(source: Path, folder: Path, mode: str, minutes: float, cycle: float) -> Path:
    text = source.read_text("utf-8")
    if mode == "cycle" and re.search(r"^hours:", text, re.M):
        hours = _cycled_hours(minutes, cycle, datetime.now(UTC))
        text = re.sub(r"^hours:\n(?:(?:  .*)?\n)*", hours + "\n", text, count=1, flags=re.M)
    path = folder / source.name
    path.write_text(text, "utf-8")
    return path


def _start(command: list[str], pattern: re.Pattern[str], env: dict[str, str],
           log: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `command`; its stderr goes to `log` once `pattern` (the ready line) was read."""
    with log.with_suffix(".out").open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE,
                                   text=True, env=env, cwd=ROOT)
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if match := pattern.search(line):
            threading.Thread(target=_drain, args=(process.stderr, seen, log), daemon=True).start()
            return process, match.group(1)
    process.kill()
    raise RuntimeError(f"{command[2:4]} did not start: {''.join(seen)[-2000:]}")


def _drain(stream: IO[str], seen: list[str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.writelines(seen)
        for rest in stream:
            out.write(rest)
            out.flush()


def _stop(process: subprocess.Popen[str]) -> int | None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return None


def _slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    points = [(t, v) for t, v in points if math.isfinite(v)]
    if len(points) < 2:
        return math.nan
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return math.nan
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600


def _lateness(journal: Path) -> tuple[int, list[float], int]:
    """(sends, their lateness in ms, error records) from the journal (rotated parts too)."""
    late: list[float] = []
    errors = 0
    for part in sorted(journal.parent.glob(journal.name + "*")):
        with part.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("kind") == "error":
                    errors += 1
                if record.get("kind") == "send" and record.get("planned_at") and record.get("sent_at"):
                    late.append((record["sent_at"] - record["planned_at"]) * 1000)
    return len(late), late, errors


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(samples: list[Sample], journal: Path, minutes: float, warmup: float,
            code: int | None) -> None:
    print(f"\n{'min':>6}{'RSS MB':>9}{'fds':>6}{'threads':>8}{'sim MB':>8}{'health':>7}"
          f"{'frame age':>10}  scene")
    last_minute = -1
    for s in samples:
        if int(s.at // 60) != last_minute or s is samples[-1]:
            last_minute = int(s.at // 60)
            age = f"{s.frame_age:.2f}" if s.frame_age is not None else "-"
            print(f"{s.at / 60:6.1f}{s.rss_mb:9.1f}{s.fds:6d}{s.threads:8d}{s.sim_rss_mb:8.1f}"
                  f"{s.health:7d}{age:>10}  {s.scene or '-'}")
    warm = [s for s in samples if s.at >= warmup * 60] or samples
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores); {len(samples)} samples over {minutes:g} min")
    for name, key in (("run RSS MB", "rss_mb"), ("fds", "fds"), ("threads", "threads"),
                      ("sim RSS MB", "sim_rss_mb")):
        first, last = getattr(warm[0], key), getattr(samples[-1], key)
        slope = _slope_per_hour([(s.at, float(getattr(s, key))) for s in warm])
        late = _slope_per_hour([(s.at, float(getattr(s, key))) for s in samples
                                if s.at >= samples[-1].at / 2])
        print(f"{name:>11}: start {getattr(samples[0], key):8.1f}  after {warmup:g} min {first:8.1f}  "
              f"end {last:8.1f}  fitted growth {slope:+8.2f}/h, second half {late:+8.2f}/h")
        if key == "rss_mb":
            verdict = "met" if slope < GOAL_MB_PER_HOUR else "NOT met"
            print(f"{'':>11}  the run's RSS after the warm-up: {slope:+.2f} MB/h against the goal "
                  f"< {GOAL_MB_PER_HOUR:g} MB/h: {verdict}")
    ready = sum(1 for s in samples if s.health == 200)
    print(f"     health: {ready}/{len(samples)} samples ready (200); "
          f"not ready at min {[round(s.at / 60, 1) for s in samples if s.health != 200][:20]}")
    sends, late, errors = _lateness(journal)
    print(f"      sends: {sends}, lateness p50 {_quantile(late, 0.5):.2f} ms, "
          f"p99 {_quantile(late, 0.99):.2f} ms, max {max(late, default=math.nan):.2f} ms; "
          f"error records {errors}; exit code {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--hours", choices=["cycle", "file"], default="cycle")
    parser.add_argument("--cycle", type=float, default=10.0, help="minutes open, then closed")
    parser.add_argument("--show", type=Path, default=GALLERY, help="another show (default: the gallery)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="minutes left out of the fitted growth (default 5)")
    parser.add_argument("--runner-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for the run's process only (repeatable)")
    parser.add_argument("--scope", metavar="URL", help="a server already running (no simulator started)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    extra = dict(item.split("=", 1) for item in args.runner_env if "=" in item)
    if len(extra) != len(args.runner_env):
        parser.error("--runner-env takes NAME=VALUE")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="showrunner-soak-") as tmp:
        folder = Path(tmp)
        show = _show(args.show.resolve(), folder, args.hours, args.minutes, args.cycle)
        journal = folder / "journal.jsonl"
        sim: subprocess.Popen[str] | None = None
        if args.scope:
            sim_url = args.scope
        else:
            sim, sim_url = _start([python, "-m", "showrunner", "sim", "--port", "0", "--load-time",
                                   "0.5"], _SIM_READY, env, folder / "sim.log")
        code: int | None = None
        samples: list[Sample] = []
        try:
            run, control = _start(
                [python, "-m", "showrunner", "run", str(show), "--scope", sim_url,
                 "--journal", str(journal), "--state-file", str(folder / "state.json"),
                 "--control-port", "0"], _CONTROL, {**env, **extra}, folder / "run.log")
            print(f"run pid {run.pid} on {sim_url}, control {control}, {args.minutes:g} min, "
                  f"hours: {args.hours}, run's environment: {extra or 'as is'}", flush=True)
            started = time.monotonic()
            try:
                while (elapsed := time.monotonic() - started) < args.minutes * 60:
                    if run.poll() is not None:
                        print(f"the run ended early with {run.returncode}", flush=True)
                        break
                    status, body = _health(control)
                    samples.append(Sample(
                        elapsed, _proc_status(run.pid, "VmRSS") / 1024, _fds(run.pid),
                        int(_proc_status(run.pid, "Threads")),
                        _proc_status(sim.pid, "VmRSS") / 1024 if sim else math.nan, status,
                        body.get("frame_age"), body.get("scene"),
                    ))
                    time.sleep(max(0.0, args.every - (time.monotonic() - started - elapsed)))
            finally:
                code = _stop(run)
        finally:
            if sim is not None:
                _stop(sim)
        if samples:
            _report(samples, journal, args.minutes, args.warmup, code)
        tail = [line for name in ("run.out", "run.log")
                for line in (folder / name).read_text("utf-8", errors="replace").splitlines()[-5:]]
        print("run log (last lines):", *tail, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
