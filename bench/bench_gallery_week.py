"""A gallery week on a fake clock: does the installation keep to the wall clock, day after day?

Plays shows/gallery.yaml (a loop of three 6-minute scenes during opening hours, Europe/Berlin,
weekdays 10-18 and weekends 11-20, and the `night` scene while closed) for a simulated week
on `showrunner.testing.FakeClock`, into a recording sink (no Scope, no network: the player and
its scheduling are what is measured). It prints, per simulated day:

- scene starts and their error against the wall clock: a looping show without cues keeps its
  place as if it had played all along since its origin, so every scene occurrence must start at
  origin + k x 18 min + the scene's place in the loop (an entry at opening comes in mid-scene:
  its start is taken as entry time minus its offset);
- closings and openings and their error against the opening hours, and how often the closed
  scene (`night`) was entered;
- messages written, and the process's memory (RSS, Python objects) at the end of the day.

    .venv/bin/python bench/bench_gallery_week.py [--days 7] [--start 2026-03-23]

The default week starts on Monday 23 March 2026 and crosses the change to summer time
(Sunday 29 March, 02:00 -> 03:00 in Berlin).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from showrunner.live.hours import OpeningHours  # noqa: E402
from showrunner.live.player import Player  # noqa: E402
from showrunner.plan.compiler import compile_timeline  # noqa: E402
from showrunner.show.load import load  # noqa: E402
from showrunner.testing import FakeClock  # noqa: E402

SHOW = ROOT / "shows" / "gallery.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
KEPT = frozenset({"scene", "closed", "open", "error", "watchdog", "start"})


class Sink:
    """Notes every write (clock time); sessions open at once."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.writes = 0
        self.opens = 0

    @property
    def connected(self) -> bool:
        return True

    async def open(self, chain: Sequence[str], load_params: Mapping[str, Any],
                   initial_parameters: Mapping[str, Any]) -> float:
        self.opens += 1
        return 0.0

    async def switch(self, chain: Sequence[str], load_params: Mapping[str, Any],
                     initial_parameters: Mapping[str, Any]) -> float:
        self.opens += 1
        return 0.0

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return dict(message)

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        self.writes += 1
        return self.clock.time(), dict(message)

    async def close(self) -> None:
        return None

    async def liveness(self) -> str | None:
        return None


class Records:
    """Keeps the records the analysis needs; counts the rest (a week of sends is large)."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.counted = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self.counted += 1
        if record.get("kind") in KEPT:
            self.kept.append(dict(record))


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def wrap(error: float, period: float) -> float:
    """`error` folded into (-period/2, period/2]."""
    return (error + period / 2) % period - period / 2


def boundaries(hours: OpeningHours, day: date) -> tuple[datetime, datetime]:
    weekend = day.weekday() >= 5
    opens, closes = (time(11), time(20)) if weekend else (time(10), time(18))
    return datetime.combine(day, opens, BERLIN), datetime.combine(day, closes, BERLIN)


async def play(days: int, start: date) -> None:
    result = load(SHOW)
    timeline = compile_timeline(result.show, source=str(SHOW))
    assert result.show.hours is not None
    hours = OpeningHours(result.show.hours)
    clock = FakeClock(datetime.combine(start, time(0), BERLIN))
    clock_start = clock.time()
    sink, records = Sink(clock), Records()
    player = Player(timeline, sink, clock=clock, journal=records, hours=hours, watchdog_period=3600)
    loop_scenes = [s for s in timeline.scenes if not s.closed_only]
    period = sum(float(s.duration or 0) for s in loop_scenes)
    place = {}
    at = 0.0
    for scene in loop_scenes:
        place[scene.name] = at
        at += float(scene.duration or 0)
    run = asyncio.create_task(player.run())
    await clock.advance(1)
    origin = player.position.show_origin_unix
    print(f"{SHOW.name}: loop of {len(loop_scenes)} scenes, {period / 60:g} min; origin "
          f"{datetime.fromtimestamp(origin or 0, BERLIN):%a %Y-%m-%d %H:%M:%S %Z}")
    print(f"{'day':<15}{'starts':>7}{'max err ms':>11}{'closed':>7}{'opened':>7}{'night':>6}"
          f"{'hours err ms':>13}{'writes':>8}{'RSS MB':>8}{'objects':>9}")
    problems: list[dict[str, Any]] = []
    worst_start = worst_hours = 0.0
    for d in range(days):
        day = start + timedelta(days=d)
        end = datetime.combine(day + timedelta(days=1), time(0), BERLIN).timestamp()
        writes_before = sink.writes
        await clock.advance_to(end)
        new, records.kept = records.kept, []  # analysed day by day: the bench keeps nothing
        problems += [r for r in new if r["kind"] in ("error", "watchdog")]
        nights = sum(1 for r in new if r["kind"] == "scene" and r["scene"] not in place)
        errors = []
        for r in new:
            if r["kind"] == "scene" and r["scene"] in place and origin is not None:
                implied = r["planned_at"] - (r.get("offset") or 0.0)
                errors.append(wrap(implied - origin - place[r["scene"]], period))
        opened, closed = boundaries(hours, day)
        hours_errors = [r["at"] - opened.timestamp() for r in new if r["kind"] == "open"]
        # A run started while closed closes at once (its first record), not at a boundary.
        closings = [r["at"] - closed.timestamp() for r in new if r["kind"] == "closed"
                    and r["at"] != clock_start]
        hours_all = hours_errors + closings
        worst = max((abs(e) for e in errors), default=0.0)
        worst_h = max((abs(e) for e in hours_all), default=0.0)
        worst_start, worst_hours = max(worst_start, worst), max(worst_hours, worst_h)
        gc.collect()
        print(f"{day:%a %Y-%m-%d} {len(errors):>6}{worst * 1000:>11.3f}{len(closings):>7}"
              f"{len(hours_errors):>7}{nights:>6}{worst_h * 1000:>13.3f}{sink.writes - writes_before:>8}"
              f"{rss_mb():>8.1f}{len(gc.get_objects()):>9}")
    player.quit()
    await asyncio.wait_for(run, 30)
    print(f"records {records.counted}, errors {len(problems)}; worst scene-start error "
          f"{worst_start * 1000:.3f} ms, worst opening/closing error {worst_hours * 1000:.3f} ms "
          f"(goal: 0 on a fake clock, nothing drifts)")
    if problems:
        print("first error:", problems[0].get("error") or problems[0].get("label"))
    if math.isnan(rss_mb()):
        print("(RSS unavailable here)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 23))
    args = parser.parse_args(argv)
    asyncio.run(play(args.days, args.start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
