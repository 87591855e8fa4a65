"""Do scene starts written in bars, and quantized GOs, stay on the bar grid while the tempo moves?

Plays a show against the simulator (in a process of its own, as a real Scope server is) with
`run_show`, and acts as a tempo source beside it: from the middle of the timed part the tempo
ramps from 120 to 128 bpm over four seconds, reported to the player 20 times a second
(`Player.tempo_reading`, as a Link or MIDI-clock source does). The show:

- a timed part: scenes of one bar each (``duration: 1 bar``, a keyframe on beat 2);
- a cued part with ``quantize: bar``: the benchmark presses GO at random moments (0.2-2.2 s
  after the previous scene came on) and each scene must enter on the next bar line.

For every scene entry it takes the journal's ``send`` line (when the entry was written to the
data channel) and measures, against the source's own tempo clock (its exact beat function, not
the player's map), the distance between the moment the change shows (``sent_at`` + the lead, one
chunk interval) and the bar line it belongs to: the bar a timed scene was written on, or the
first bar line at least one lead after the GO press. Goal: p99 <= 5 ms for both. It also
counts GOs that entered on another bar than the next one (goal: none).

    .venv/bin/python bench/bench_tempo.py [--bars 24] [--gos 16] [--seed 17] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_cue_timing import clock_floor

from showrunner.app import run_show
from showrunner.live.player import Player
from showrunner.music.reading import TempoReading

BPM_FROM, BPM_TO, RAMP_SECONDS = 120.0, 128.0, 4.0
BEATS_PER_BAR = 4
READINGS_PER_SECOND = 20
GOAL_MS = 5.0


def make_show(bars: int, gos: int) -> str:
    lines = [
        "title: Tempo benchmark",
        f"bpm: {BPM_FROM:g}",
        "quantize: bar",
        "fps: 16",
        "end: stop",
        "defaults:",
        "  pipeline: controller-viz",
        "  load: {height: 128, width: 128}",
        "scenes:",
    ]
    for i in range(bars):
        lines += [
            f"  - name: s{i:03d}",
            f"    prompts: bar {i}",
            "    transition: cut",
            "    duration: 1 bar",
            "    keyframes:",
            f"      noise_scale: [{{at: 0, value: 0.3}}, {{at: 2 beats, value: {0.5 + 0.01 * (i % 20)}}}]",
        ]
    for k in range(gos):
        lines += [f"  - name: g{k:03d}", f"    prompts: go {k}", "    transition: cut", "    cue: true"]
    if gos:
        lines.append("    duration: 1 bar")  # the last one ends the show a bar after its GO
    return "\n".join(lines) + "\n"


@dataclass
class Source:
    """The tempo source's exact clock: 120 bpm from `origin` (beat 0), a linear ramp to 128
    from `ramp_at` over RAMP_SECONDS, then 128."""

    origin: float
    ramp_at: float

    def bpm(self, t: float) -> float:
        u = min(max((t - self.ramp_at) / RAMP_SECONDS, 0.0), 1.0)
        return BPM_FROM + (BPM_TO - BPM_FROM) * u

    def beat(self, t: float) -> float:
        before = min(t, self.ramp_at) - self.origin
        beats = before * BPM_FROM / 60.0
        if t > self.ramp_at:
            ramp = min(t - self.ramp_at, RAMP_SECONDS)
            beats += (BPM_FROM * ramp + (BPM_TO - BPM_FROM) * ramp * ramp / (2 * RAMP_SECONDS)) / 60.0
            beats += max(0.0, t - self.ramp_at - RAMP_SECONDS) * BPM_TO / 60.0
        return beats

    def time_of(self, beat: float) -> float:
        lo, hi = self.origin - 1.0, self.origin + 1.0
        while self.beat(hi) < beat:
            hi += 2 * (hi - self.origin)
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.beat(mid) < beat else (lo, mid)
        return (lo + hi) / 2


@dataclass
class Driver:
    """Feeds the readings and presses the GOs (on the run's event loop)."""

    bars: int
    gos: int
    rng: random.Random
    source: Source | None = None
    presses: list[tuple[str, float]] = field(default_factory=list)  # (scene, monotonic press)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def attach(self, player: Player) -> None:
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._run(player)))

    async def _run(self, player: Player) -> None:
        tempo = player.beat.tempo
        while tempo.empty:  # the show's clock starts with its first scene
            await asyncio.sleep(0.002)
        origin = tempo.segments[0].at
        self.source = Source(origin, origin + (self.bars / 2) * 2.0 + 0.7)
        self.tasks.append(asyncio.get_running_loop().create_task(self._feed(player)))
        player.subscribe(lambda event: self._on_event(player, event))

    def _on_event(self, player: Player, event: dict[str, Any]) -> None:
        """A scene came on: when the next one waits for GO, press it a random while later."""
        k = len(self.presses)
        if event.get("kind") != "scene" or k >= self.gos:
            return
        if event.get("scene") not in (f"s{self.bars - 1:03d}", f"g{k - 1:03d}"):
            return
        asyncio.get_running_loop().call_later(self.rng.uniform(0.2, 2.2), self._press, player, k)

    def _press(self, player: Player, k: int) -> None:
        self.presses.append((f"g{k:03d}", time.monotonic()))
        player.go()

    async def _feed(self, player: Player) -> None:
        source = self.source
        assert source is not None
        while True:
            now = time.monotonic()
            player.tempo_reading(TempoReading(source.bpm(now), source.beat(now), now, source="bench"))
            await asyncio.sleep(1.0 / READINGS_PER_SECOND)


def _serve_sim(conn: Any, record: str) -> None:
    from showrunner.sim import serve_forever

    asyncio.run(serve_forever("127.0.0.1", 0, record_path=Path(record), load_time=0.05, fps=None,
                              on_ready=lambda sim: conn.send(sim.url)))


def _reference(conn: Any, seconds: float) -> None:
    # A second process waking every 20 ms meanwhile: what the machine allows any player.
    conn.send(asyncio.run(clock_floor(int(seconds / 0.02), 0.02)))


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def analyse(journal: Path, driver: Driver, offset: float) -> dict[str, Any]:
    """Distances (ms) from the bar lines; `offset` = unix - monotonic of this machine."""
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    source = driver.source
    assert source is not None
    enters = [r for r in records if r["kind"] == "send" and r.get("label") == "enter"]
    sent = {r["scene"]: r["sent_at"] - offset for r in enters}
    planned = {r["scene"]: r["planned_at"] - offset for r in enters}
    leads = {r["scene"]: r.get("lead_ms", 0.0) / 1000.0 for r in records if r["kind"] == "scene"}
    timed, gos, plan, wrong_bar = [], [], [], 0
    for i in range(1, driver.bars):
        name = f"s{i:03d}"
        if name in sent:
            bar_line = source.time_of(i * BEATS_PER_BAR)
            timed.append((sent[name] + leads.get(name, 0.0) - bar_line) * 1000)
            plan.append((planned[name] + leads.get(name, 0.0) - bar_line) * 1000)
    for name, pressed in driver.presses:
        if name not in sent:
            continue
        lead = leads.get(name, 0.0)
        shows = sent[name] + lead
        wanted = math.ceil(source.beat(pressed + lead) / BEATS_PER_BAR) * BEATS_PER_BAR
        landed = round(source.beat(shows) / BEATS_PER_BAR) * BEATS_PER_BAR
        wrong_bar += landed != wanted
        gos.append((shows - source.time_of(wanted)) * 1000)
        plan.append((planned[name] + lead - source.time_of(wanted)) * 1000)
    on_beat = [r.get("on_beat") for r in records if r["kind"] == "scene" and "on_beat" in r]
    return {"timed": timed, "gos": gos, "plan": plan, "wrong_bar": wrong_bar,
            "lead_ms": 1000 * statistics.median(leads.values()) if leads else 0.0,
            "journal_late": sum(1 for v in on_beat if v != "on time"), "journal_count": len(on_beat)}


def line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no entries measured"
    p50, p99, worst = percentiles([abs(v) for v in values])
    verdict = "ok" if p99 <= GOAL_MS else "MISSED"
    within = sum(1 for v in values if abs(v) <= GOAL_MS)
    return (f"{label} ({len(values)}): |distance| p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {worst:.3f} ms"
            f"  within {GOAL_MS:g} ms: {within}   goal p99 <= {GOAL_MS:g} ms: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=24, help="timed one-bar scenes")
    parser.add_argument("--gos", type=int, default=16, help="quantized GOs pressed at random")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--keep", type=Path, default=None, help="keep the show and journal here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="showrunner-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    show = folder / "show" / "tempo.yaml"
    show.parent.mkdir(exist_ok=True)
    show.write_text(make_show(args.bars, args.gos))
    journal = folder / "journal.jsonl"
    journal.unlink(missing_ok=True)
    offset = statistics.median(time.time() - time.monotonic() for _ in range(101))
    driver = Driver(args.bars, args.gos, random.Random(args.seed))
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_serve_sim, args=(child, str(folder / "sim.jsonl")), daemon=True)
    process.start()
    load0 = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    floor_in, floor_out = spawn.Pipe()
    reference = spawn.Process(target=_reference, args=(floor_out, args.bars * 2.0 + args.gos * 2.0),
                              daemon=True)
    reference.start()
    try:
        code = asyncio.run(run_show(show, scope_url=parent.recv(), journal_path=journal, stdin_tty=False,
                                    state_file=folder / "state.json", on_player=driver.attach))
    finally:
        process.terminate()
        process.join(10)
    if code != 0:
        print(f"run_show returned {code}", file=sys.stderr)
        return code
    result = analyse(journal, driver, offset)
    floor = percentiles(floor_in.recv()) if floor_in.poll(60) else (math.nan,) * 3
    reference.join(10)
    print(f"tempo {BPM_FROM:g} -> {BPM_TO:g} bpm over {RAMP_SECONDS:g} s mid-show, "
          f"{READINGS_PER_SECOND} readings/s; lead (chunk interval) {result['lead_ms']:.1f} ms; "
          f"load average at start {load0}")
    print(f"reference, same time: bare wake-ups late p50 {floor[0]:.3f} ms  p99 {floor[1]:.3f} ms  "
          f"max {floor[2]:.3f} ms")
    print(line("scene starts in bars", result["timed"]))
    print(line("quantized GOs       ", result["gos"]))
    print(line("planned moments, all", result["plan"]) + "  (the tempo map alone, before sending)")
    print(f"GOs that entered on another bar than the next: {result['wrong_bar']} (goal 0); "
          f"journal entries not 'on time': {result['journal_late']} of {result['journal_count']}")
    print(f"files: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
