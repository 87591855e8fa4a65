"""How fast does the control API answer on one keep-alive connection?

Plays a held one-scene show with `showrunner run` (embedded simulator, control API on a free
port) in a child process, then sends GET /api/status and POST /api/hold + /api/resume on one
keep-alive HTTP connection from this process and prints the latency percentiles beside the
goal (under 5 ms). Nagle's algorithm left on for accepted sockets made every keep-alive
request wait for a delayed ACK (about 44 ms).

    .venv/bin/python bench/bench_control_latency.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 5.0
SHOW = """title: held
end: hold
scenes:
  - name: one
    prompts: a quiet sea at night
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start(show: Path) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "showrunner", "run", str(show), "--control-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"control: http://127\.0\.0\.1:(\d+)", line)
        if found:
            return proc, int(found.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the run did not announce its control page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        show = Path(tmp) / "held.yaml"
        show.write_text(SHOW)
        proc, port = _start(show)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            times: dict[str, list[float]] = {"GET /api/status": [], "POST /api/hold|resume": []}
            for i in range(args.requests):
                start = time.perf_counter()
                conn.request("GET", "/api/status")
                conn.getresponse().read()
                times["GET /api/status"].append((time.perf_counter() - start) * 1000)
                path = "/api/hold" if i % 2 == 0 else "/api/resume"
                start = time.perf_counter()
                conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
                conn.getresponse().read()
                times["POST /api/hold|resume"].append((time.perf_counter() - start) * 1000)
            conn.close()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"{args.requests} requests of each kind on one keep-alive connection")
    for name, values in times.items():
        p50 = statistics.median(values)
        p99 = _percentile(values, 0.99)
        verdict = "met" if p99 < GOAL_MS else "MISSED"
        print(f"{name:24s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {max(values):7.2f} ms"
              f"   goal p99 < {GOAL_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
