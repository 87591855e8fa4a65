"""How close to plan do messages leave, and reach Scope?

Generates a show of many short scenes with keyframes (>= 1,000 data-channel messages), plays it
with `run_show` against the simulator in a process of its own (as a real Scope server is), with
a journal and the simulator's record, and prints:

- send lateness: journal ``sent_at - planned_at`` (when the message was written to the data
  channel, or its POST started over the headless transport, against its planned time) —
  target p99 <= 1 ms;
- end-to-end lateness: simulator ``received_at - planned_at`` — target p99 <= 5 ms.

    .venv/bin/python bench/bench_cue_timing.py [--scenes 260] [--scene-seconds 0.25] [--sim-thread]
        [--transport webrtc|headless|both]

``--transport both`` (the default) plays the show over WebRTC and then over the headless
transport (``POST /api/v1/session/parameters``, docs/scope.md §2.8) and prints both figures.

Two references show what the machine itself allows during the same run: a bare process that
does nothing but wake at planned times with the player's clock (its lateness is the floor no
player can beat), and the share of CPU time the hypervisor stole from this VM (/proc/stat).

With ``--sim-thread`` the simulator runs on a thread of the player's process (what
`showrunner run` does with no Scope URL): it renders and encodes video under the same GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from showrunner.app import run_show
from showrunner.live.clock import SystemClock
from showrunner.show.model import Transport
from showrunner.sim import SimThread

# The simulator's controller-viz runs 1 frame per chunk at 60 fps (16.7 ms per chunk), as a real
# CPU server does. The show plans at 16 fps (62.5 ms), so planned messages
# never have to wait for the server's one-update-per-chunk intake.
PIPELINE = "controller-viz"
SHOW_FPS = 16


def make_show(scenes: int, seconds: float) -> str:
    lines = [
        "title: Cue timing benchmark",
        f"fps: {SHOW_FPS}",
        "end: stop",
        "defaults:",
        f"  pipeline: {PIPELINE}",
        # Small frames: the simulator renders and encodes on a thread of this process, and
        # the picture is not what is measured.
        "  load: {height: 128, width: 128}",
        "scenes:",
    ]
    for i in range(scenes):
        low, high = (0.2, 0.8) if i % 2 == 0 else (0.8, 0.2)
        lines += [
            f"  - name: s{i:04d}",
            f"    prompts: benchmark look number {i}",
            "    transition: cut",
            f"    duration: {seconds}",
            "    keyframes:",
            "      noise_scale:",
            f"        - {{at: 0, value: {low}}}",
            f"        - {{at: {seconds}, value: {high}}}",
        ]
    return "\n".join(lines) + "\n"


def _reference(conn: Any, seconds: float) -> None:
    # A second process waking every 20 ms for as long as the show plays.
    conn.send(asyncio.run(clock_floor(int(seconds / 0.02), 0.02)))


def _cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine so far; (0, 0) where /proc/stat is missing."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return fields[7], sum(fields)


async def clock_floor(count: int = 500, spacing: float = 0.02) -> list[float]:
    """Lateness (ms) of a bare loop that only wakes at planned times with the player's clock.

    Whatever this shows (timer slack, a busy or virtual machine) no player can do better than.
    """
    clock = SystemClock()
    origin = clock.monotonic() + 0.05
    late = []
    for i in range(count):
        deadline = origin + i * spacing
        await clock.approach(deadline)
        await clock.sleep_until(deadline)
        late.append((clock.monotonic() - deadline) * 1000)
    return late


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def delivered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The updates Scope received, as {received_at, message}: data-channel messages, or the
    bodies of ``POST /api/v1/session/parameters`` (the headless transport)."""
    out = []
    for r in records:
        if r.get("kind") == "data":
            out.append({"received_at": r["received_at"], "message": r["message"]})
        elif (r.get("kind") == "http" and r.get("method") == "POST"
              and r.get("path") == "/api/v1/session/parameters"):
            out.append({"received_at": r["received_at"], "message": r["json"]})
    return out


def _carries(sent: dict[str, Any], got: Any) -> bool:
    # A headless POST also restates vace_context_scale and prompt_interpolation_method.
    return isinstance(got, dict) and all(got.get(k) == v for k, v in sent.items())


def analyse(journal: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    sends = [json.loads(line) for line in journal.read_text().splitlines()]
    sends = [r for r in sends if r["kind"] == "send"]
    sends.sort(key=lambda r: r["sent_at"])
    data = delivered(records)
    send_late = [(r["sent_at"] - r["planned_at"]) * 1000 for r in sends]
    matched = [(s, d) for s, d in zip(sends, data, strict=False) if _carries(s["message"], d["message"])]
    e2e_late = [(d["received_at"] - s["planned_at"]) * 1000 for s, d in matched]
    entries = [(r["sent_at"] - r["planned_at"]) * 1000 for r in sends if r.get("label") == "enter"]
    others = [(r["sent_at"] - r["planned_at"]) * 1000 for r in sends if r.get("label") != "enter"]
    return {
        "entries": percentiles(entries) if entries else (float("nan"),) * 3,
        "entry_count": len(entries),
        "keyframes": percentiles(others) if others else (float("nan"),) * 3,
        "messages": len(sends),
        "received": len(data),
        "matched": len(matched),
        "send": percentiles(send_late),
        "e2e": percentiles(e2e_late) if e2e_late else (float("nan"),) * 3,
        "early": sum(1 for v in send_late if v < 0),
    }


def _serve_sim(conn: Any, record: str) -> None:
    from showrunner.sim import serve_forever

    asyncio.run(serve_forever("127.0.0.1", 0, record_path=Path(record), load_time=0.05, fps=None,
                              on_ready=lambda sim: conn.send(sim.url)))


def play(show: Path, journal: Path, folder: Path, separate: bool,
         transport: Transport) -> tuple[int, list[dict[str, Any]]]:
    """Run the show against a simulator; return run_show's code and the simulator's record."""
    record = folder / f"sim-{transport}.jsonl"
    record.unlink(missing_ok=True)
    state = folder / "state.json"
    if separate:
        parent, child = mp.get_context("spawn").Pipe()
        process = mp.get_context("spawn").Process(target=_serve_sim, args=(child, str(record)),
                                                  daemon=True)
        process.start()
        try:
            code = asyncio.run(run_show(show, scope_url=parent.recv(), journal_path=journal,
                                        stdin_tty=False, state_file=state,
                                        transport=transport))
        finally:
            process.terminate()
            process.join(10)
        return code, [json.loads(line) for line in record.read_text().splitlines() if line]
    sim_thread = SimThread("127.0.0.1", 0, record_path=record)
    sim = sim_thread.start()
    try:
        code = asyncio.run(run_show(show, scope_url=sim.url, journal_path=journal,
                                    stdin_tty=False, state_file=state,
                                    transport=transport))
    finally:
        records = list(sim.records)
        sim_thread.stop()
    return code, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=260)
    parser.add_argument("--scene-seconds", type=float, default=0.25)
    parser.add_argument("--keep", type=Path, default=None, help="keep the show/journal/record here")
    parser.add_argument("--sim-thread", action="store_true",
                        help="run the simulator on a thread of this process, as the embedded one")
    parser.add_argument("--transport", choices=["webrtc", "headless", "both"], default="both",
                        help="play over WebRTC, over the headless transport, or both in turn")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="showrunner-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    # The show sits in a folder of its own: the run watches the show's folder for edits, and
    # the journal and the simulator's record change a thousand times.
    show = folder / "show" / "bench.yaml"
    show.parent.mkdir(exist_ok=True)
    show.write_text(make_show(args.scenes, args.scene_seconds))
    where = "a thread of this process (SimThread)" if args.sim_thread else "its own process"
    print(f"simulator in {where}; {args.scenes} scenes of {args.scene_seconds:g} s")
    transports: list[Transport] = ["webrtc", "headless"] if args.transport == "both" else [args.transport]
    for transport in transports:
        code = measure(args, show, folder, transport)
        if code != 0:
            return code
    print(f"files: {folder}")
    return 0


def measure(args: argparse.Namespace, show: Path, folder: Path, transport: Transport) -> int:
    """Play the show once over `transport` and print its figures."""
    journal = folder / f"journal-{transport}.jsonl"
    journal.unlink(missing_ok=True)
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    reference = spawn.Process(target=_reference, args=(child, args.scenes * args.scene_seconds),
                              daemon=True)
    reference.start()
    steal0, total0 = _cpu_ticks()
    code, records = play(show, journal, folder, not args.sim_thread, transport)
    steal1, total1 = _cpu_ticks()
    floor = percentiles(parent.recv()) if parent.poll(60) else (float("nan"),) * 3
    reference.join(10)
    stolen = 100 * (steal1 - steal0) / max(1, total1 - total0)
    if code != 0:
        print(f"run_show returned {code}", file=sys.stderr)
        return code
    result = analyse(journal, records)
    s50, s99, smax = result["send"]
    e50, e99, emax = result["e2e"]
    print(f"-- transport {transport}")
    print(f"reference, same time: bare wake-ups p50 {floor[0]:.3f} ms  p99 {floor[1]:.3f} ms  "
          f"max {floor[2]:.3f} ms; CPU stolen by the hypervisor {stolen:.1f} %")
    print(f"messages sent {result['messages']}, received {result['received']}, "
          f"matched {result['matched']}, sent early {result['early']}")
    print(f"send lateness (sent_at - planned_at):     p50 {s50:.3f} ms  p99 {s99:.3f} ms  "
          f"max {smax:.3f} ms   target p99 <= 1 ms: {'ok' if s99 <= 1 else 'MISSED'}")
    print(f"end-to-end (received_at - planned_at):    p50 {e50:.3f} ms  p99 {e99:.3f} ms  "
          f"max {emax:.3f} ms   target p99 <= 5 ms: {'ok' if e99 <= 5 else 'MISSED'}")
    n50, n99, nmax = result["entries"]
    k50, k99, kmax = result["keyframes"]
    chunk_ms = 1000 / SHOW_FPS
    print(f"scene entries ({result['entry_count']}), send lateness: p50 {n50:.3f} ms  p99 {n99:.3f} ms  "
          f"max {nmax:.3f} ms   target p99 <= one chunk ({chunk_ms:.1f} ms): "
          f"{'ok' if n99 <= chunk_ms else 'MISSED'}")
    print(f"keyframe updates, send lateness:    p50 {k50:.3f} ms  p99 {k99:.3f} ms  max {kmax:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
