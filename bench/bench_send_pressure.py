"""Does sending keep up under pressure? GO every 0.5 s for 30 s and 200 saves in 10 s.

A real `showrunner run` (library: `showrunner.app.run`, with its control page on a free port)
plays a cue-driven show against the simulator in a process of its own, as a real Scope server
runs. The show's scenes each wait for GO and carry keyframes (a noise ramp and a LoRA fade,
sampled at twice the rate the server takes updates), so the line is always busy. Meanwhile:

- GO is pressed over the HTTP control API (``POST /api/go``) every 0.5 s for 30 s;
- the show file is saved 200 times in 10 s (every 50 ms, from 10 s in), each save changing
  every scene's prompts (a new `take` number), so each reload sends a transition.

Then the show is held, and the benchmark prints:

- lateness of every planned update (``sent_at - planned_at`` of each item a journal ``send``
  line carries) and of every message (its leading item): p50, p95, p99, max. Goal: nothing later
  than 0.5 s (docs/operating.md: an update more than 0.5 s late is not sent late);
- journal lines against messages the simulator received (one line per message written);
- every scene entry reached the simulator (a message whose prompts are that scene's);
- the simulator's state after merging everything it received against the plan's state at the
  moment the show was held (``Timeline.state_at_scene``): they must be equal.

    .venv/bin/python bench/bench_send_pressure.py [--pipeline streamdiffusionv2] [--keep DIR]

The default pipeline is streamdiffusionv2 (4 frames per chunk at 16 fps: the server takes one
update per 0.25 s). With longlive (12 frames per chunk: 0.75 s) two GOs fall into one chunk and
the older entry is merged into the newer one; the script says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from showrunner.app import RunOptions, run  # noqa: E402
from showrunner.live.journal import read_journal  # noqa: E402
from showrunner.plan.compiler import compile_timeline  # noqa: E402
from showrunner.plan.timeline import resolve_refs  # noqa: E402
from showrunner.show.load import load  # noqa: E402

LIMIT = 0.5  # docs/operating.md, "Timing"
GO_EVERY, GO_FOR = 0.5, 30.0
SAVES, SAVES_FOR, SAVES_FROM = 200, 10.0, 10.0
SCENES = 8  # looped: GO goes round them
ONE_SHOT = ("reset_cache", "vace_ref_images", "first_frame_image", "last_frame_image", "lora_scales")


def make_show(take: int, pipeline: str) -> str:
    lines = [
        "title: Send pressure",
        "loop: forever",
        "fps: 32",  # keyframe samples at twice the rate the server takes updates
        f"vars: {{take: {take}}}",
        "defaults:",
        f"  pipeline: {pipeline}",
        "  input_mode: text",
        "  manage_cache: false",
        "  load:",
        "    height: 128",
        "    width: 128",
        "    lora_merge_mode: runtime_peft",
        "    loras: [{lora: watercolor, scale: 0}]",
        "assets:",
        "  loras: {watercolor: sim-watercolor.safetensors}",
        "scenes:",
    ]
    for i in range(SCENES):
        lines += [
            f"  - name: s{i:02d}",
            f'    prompts: "look {i}, take {{{{ take }}}}"',
            "    transition: cut",
            "    duration: 60",
            "    keyframes:",
            "      noise_scale: [{at: 0, value: 0.1}, {at: 60, value: 0.9}]",
            "      lora.watercolor: [{at: 0, value: 0}, {at: 60, value: 1.2}]",
            "    cue: true",
        ]
    return "\n".join(lines) + "\n"


class Lines:
    """The run's user-facing lines (the control page's address among them)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)

    def warn(self, line: str) -> None:
        self.lines.append(line)

    def control_url(self) -> str | None:
        for line in self.lines:
            if line.startswith("control: http"):
                return line.split()[1].rstrip("/")
        return None


def _serve_sim(conn: Any, record: str) -> None:
    from showrunner.sim import serve_forever

    asyncio.run(serve_forever("127.0.0.1", 0, record_path=Path(record), load_time=0.05, fps=None,
                              on_ready=lambda sim: conn.send(sim.url)))


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    return (f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p95 {rank(95) * 1000:7.1f} ms  "
            f"p99 {rank(99) * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms")


async def press_go(client: httpx.AsyncClient, t0: float) -> list[dict[str, Any]]:
    answers = []
    for k in range(int(GO_FOR / GO_EVERY)):
        await asyncio.sleep(max(0.0, t0 + k * GO_EVERY - time.monotonic()))
        answers.append((await client.post("/api/go")).json())
    return answers


async def save_often(show: Path, pipeline: str, t0: float) -> int:
    for k in range(SAVES):
        await asyncio.sleep(max(0.0, t0 + SAVES_FROM + k * SAVES_FOR / SAVES - time.monotonic()))
        show.write_text(make_show(k + 1, pipeline))
    return SAVES


async def drive(show: Path, journal: Path, state: Path, url: str, pipeline: str) -> dict[str, Any]:
    lines = Lines()
    stop = asyncio.Event()
    options = RunOptions(show, scope_url=url, journal_path=journal, state_file=state, control_port=0,
                         min_go_interval=0.3, stdin_tty=False)
    runner = asyncio.create_task(run(options, output=lines, stop_event=stop))
    deadline = time.monotonic() + 30
    while lines.control_url() is None or not journal.exists() or "scene" not in journal.read_text():
        if runner.done() or time.monotonic() > deadline:
            raise RuntimeError(f"the run did not start: {lines.lines}")
        await asyncio.sleep(0.05)
    base = lines.control_url()
    assert base is not None
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await asyncio.sleep(1.0)
        t0 = time.monotonic() + 0.1
        answers, _ = await asyncio.gather(press_go(client, t0), save_often(show, pipeline, t0))
        await asyncio.sleep(3.0)  # the last reloads land
        await client.post("/api/hold")
        await asyncio.sleep(1.5)  # whatever waits for a slot goes out
        status = (await client.get("/api/status")).json()
    stop.set()
    code = await asyncio.wait_for(runner, 30)
    return {"code": code, "status": status, "answers": answers}


def fold(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The last session's parameters after merging everything the simulator received."""
    offers = [i for i, r in enumerate(records) if r.get("kind") == "http"
              and r.get("path") == "/api/v1/webrtc/offer" and r.get("method") == "POST"]
    last = offers[-1]
    state = dict(records[last]["json"]["initialParameters"])
    state.pop("pipeline_ids", None)
    session = None
    for record in records[last + 1:]:
        if record.get("kind") != "data":
            continue
        if session is None:
            session = record["session_id"]
        if record["session_id"] != session or not isinstance(record["message"], dict):
            continue
        message = dict(record["message"])
        if "transition" in message:
            message["prompts"] = message.pop("transition")["target_prompts"]
        if "lora_scales" in message:
            scales = {s["path"]: s["scale"] for s in state.get("lora_scales", [])}
            scales.update({s["path"]: s["scale"] for s in message.pop("lora_scales")})
            state["lora_scales"] = [{"path": p, "scale": v} for p, v in scales.items()]
        state.update(message)
    return state


def plan_state(show: Path, scene: str, offset: float, loras: dict[str, str]) -> dict[str, Any]:
    timeline = compile_timeline(load(show).show, source=str(show))
    state = timeline.state_at_scene(scene, offset)
    message = resolve_refs(state.resync_message(), {}, loras)
    message["prompts"] = message.pop("transition")["target_prompts"]
    return message


def compare(plan: dict[str, Any], sim: dict[str, Any]) -> list[str]:
    differences = []
    for key, want in plan.items():
        have = sim.get(key)
        if key == "prompts":
            want = [(p["text"], p.get("weight", 1.0)) for p in want]
            have = [(p["text"], p.get("weight", 1.0)) for p in have or []]
        elif key == "lora_scales":
            want = {s["path"]: s["scale"] for s in want}
            have = {s["path"]: s["scale"] for s in have or []}
        elif key in ONE_SHOT:
            continue
        if want != have:
            differences.append(f"{key}: plan {want!r}, simulator {have!r}")
    return differences


def analyse(folder: Path, show: Path, outcome: dict[str, Any], pipeline: str) -> bool:
    records = [json.loads(line) for line in (folder / "sim.jsonl").read_text().splitlines() if line]
    journal = read_journal(folder / "journal.jsonl")
    sends = [r for r in journal if r["kind"] == "send"]
    lost = [r for r in journal if r["kind"] == "lost"]
    errors = [r for r in journal if r["kind"] == "error"]
    data = [r for r in records if r.get("kind") == "data"]
    items = [(r, item) for r in sends for item in (r.get("items") or [r])]
    item_late = [r["sent_at"] - i["planned_at"] for r, i in items]
    message_late = [r["sent_at"] - r["planned_at"] for r in sends]
    entry_late = [r["sent_at"] - i["planned_at"] for r, i in items if i["label"] in ("enter", "cue")]
    applied = sum(1 for a in outcome["answers"] if a.get("applied"))
    scenes = [r["scene"] for r in journal if r["kind"] == "scene"]
    received = [(m["received_at"], m["message"]) for m in data if isinstance(m["message"], dict)]
    opened = [(r["received_at"], r["json"]["initialParameters"]) for r in records
              if r.get("kind") == "http" and r.get("path") == "/api/v1/webrtc/offer"
              and r.get("method") == "POST"]
    looks = sorted(
        [(at, p["text"].split(",")[0]) for at, m in received if "transition" in m
         for p in m["transition"]["target_prompts"]]
        + [(at, p["text"].split(",")[0]) for at, m in opened for p in m.get("prompts", [])]
    )
    # Each occurrence: the limit after its start, the simulator has its look (the latest it got).
    occurrences = [(r["planned_at"], r["scene"]) for r in journal if r["kind"] == "scene"]
    missing = [name for start, name in occurrences
               if [text for at, text in looks if at <= start + LIMIT][-1:] != [f"look {int(name[1:])}"]]
    scenes = [name for _, name in occurrences]
    status = outcome["status"]
    loras = {"watercolor": next(
        s["path"] for _, m in received for s in m.get("lora_scales", []) if "watercolor" in s["path"]
    )} if any("lora_scales" in m for _, m in received) else {}
    # The moment of the held scene's last planned update: keyframes go out as samples, so the
    # plan's state is taken where the last sample was planned, not between two samples.
    last = max((i for _, i in items if i["scene"] == status["scene"]), key=lambda i: i["planned_at"])
    moment = last["offset"] if last["offset"] is not None else status["position"]
    differences = compare(plan_state(show, status["scene"], moment, loras), fold(records))
    reloads = sum(1 for r in journal if r["kind"] == "reload")
    merged = sum(1 for r in sends if r.get("items"))
    print(f"pipeline {pipeline}; GO every {GO_EVERY:g} s for {GO_FOR:g} s ({applied} applied), "
          f"{SAVES} saves in {SAVES_FOR:g} s; simulator in its own process")
    print(f"{reloads} reloads; planned updates {len(items)} in {len(sends)} messages ({merged} merged), "
          f"not sent {len(errors)}, lost {len(lost)}")
    print(f"update lateness  (sent_at - planned_at, every item): {percentiles(item_late)}")
    print(f"message lateness (its leading item):                 {percentiles(message_late)}")
    print(f"entry lateness   (scene entries, GO-fired):          {percentiles(entry_late)}")
    worst = max(item_late, default=0.0)
    ok_late = worst <= LIMIT
    print(f"goal: nothing later than {LIMIT:g} s: {'met' if ok_late else 'MISSED'} "
          f"(max {worst * 1000:.1f} ms)")
    ok_lines = len(sends) == len(data)
    print(f"journal send lines {len(sends)}, messages received {len(data)}: "
          f"{'equal' if ok_lines else 'DIFFERENT'}")
    ok_entries = not missing and len(scenes) >= applied
    print(f"scene entries {len(scenes)} ({applied} GOs), reached the simulator within {LIMIT:g} s: "
          f"{len(scenes) - len(missing)}" + (f"; MISSING {missing}" if missing else ""))
    print(f"held at {status['scene']} (last update planned at +{moment:.3f} s): simulator state "
          + ("equals the plan's" if not differences else f"DIFFERS: {differences}"))
    return ok_late and ok_lines and ok_entries and not differences and outcome["code"] == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="streamdiffusionv2")
    parser.add_argument("--keep", type=Path, default=None, help="keep the show, journal and record here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="showrunner-pressure-"))
    folder.mkdir(parents=True, exist_ok=True)
    show = folder / "show" / "pressure.yaml"  # a folder of its own: the run watches it
    show.parent.mkdir(exist_ok=True)
    show.write_text(make_show(0, args.pipeline))
    journal, record, state = folder / "journal.jsonl", folder / "sim.jsonl", folder / "state.json"
    for path in (journal, state):
        path.unlink(missing_ok=True)
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_serve_sim, args=(child, str(record)), daemon=True)
    process.start()
    try:
        url = parent.recv()
        outcome = asyncio.run(drive(show, journal, state, url, args.pipeline))
    finally:
        process.terminate()
        process.join(10)
    with contextlib.suppress(KeyboardInterrupt):
        ok = analyse(folder, show, outcome, args.pipeline)
    print(f"files: {folder}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
