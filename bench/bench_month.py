"""A simulated month of the gallery: opening hours, hooks, loops and one outage a day.

Plays shows/gallery.yaml (a loop of three 6-minute scenes during opening hours, Europe/Berlin,
weekdays 10-18 and weekends 11-20, the `night` scene while closed; `before_open` 10 min before
each opening and `after_close` at each closing, here the show's placeholder `["true"]`, plus an
`on_outage` and an `on_recover` hook and an alert webhook added for the bench) for 30 days on
`showrunner.testing.FakeClock`, into a recording sink that goes down every day at 14:00 for two
minutes (sends fail, sessions do not open, the watchdog sees it). The player, its watchdog,
and the installation (hooks, outage detector, alerts) run as in `showrunner run`; the hooks
are real subprocesses, the alerts go to an in-process recorder (no network).

Per simulated day it prints:

- scene starts and their worst error against the wall clock (each occurrence must start at
  origin + k x 18 min + its place in the loop; an entry in mid-scene counts from its offset);
- hooks run (`before_open`, `after_close`, `on_outage`, `on_recover`) and the worst error of
  their start against the schedule (opening - 10 min, closing, outage seen, picture back);
- outages and recoveries journaled, alerts posted;
- messages written, and the process's memory (RSS, Python objects) at the end of the day.

    .venv/bin/python bench/bench_month.py [--days 30] [--start 2026-03-02]

The default month starts on Monday 2 March 2026 and crosses the change to summer time
(Sunday 29 March, 02:00 -> 03:00 in Berlin).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time as wall
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_gallery_week import BERLIN, SHOW, Sink, boundaries, rss_mb, wrap  # noqa: E402

from showrunner.errors import ShowrunnerError  # noqa: E402
from showrunner.live.hooks import HookRunner  # noqa: E402
from showrunner.live.hours import OpeningHours  # noqa: E402
from showrunner.live.installation import Installation  # noqa: E402
from showrunner.live.player import Player  # noqa: E402
from showrunner.plan.compiler import compile_timeline  # noqa: E402
from showrunner.settings import Settings  # noqa: E402
from showrunner.show.load import load  # noqa: E402
from showrunner.show.model import Hook, Show  # noqa: E402
from showrunner.testing import FakeClock  # noqa: E402

KEPT = frozenset({"scene", "hook", "outage", "recovered", "alert", "error"})
OUTAGE_AT = time(14, 0)
OUTAGE_SECONDS = 120.0
WATCHDOG = 5.0  # seconds between the watchdog's checks (0.5 in a run; fewer wake-ups here)
TICK = 5.0  # seconds between the outage detector's looks (1 in a run)


class FailingSink(Sink):
    """The recording sink, down (not connected, refusing sessions and sends) while `down`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.down = False

    @property
    def connected(self) -> bool:
        return not self.down

    async def switch(self, chain: Sequence[str], load_params: Mapping[str, Any],
                     initial_parameters: Mapping[str, Any]) -> float:
        if self.down:
            raise ShowrunnerError("Scope is down")
        return await super().switch(chain, load_params, initial_parameters)

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        if self.down:
            raise ShowrunnerError("Scope is down")
        return await super().send(message)

    async def liveness(self) -> str | None:
        return "Scope is down" if self.down else None


class Chat:
    """Records alert posts (the webhook the installation would call)."""

    def __init__(self) -> None:
        self.posts = 0

    async def request(self, method: str, url: str, *, headers: Mapping[str, str], json_body: Any,
                      timeout: float) -> int:
        self.posts += 1
        return 200


class Records:
    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.counted = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self.counted += 1
        if record.get("kind") in KEPT:
            self.kept.append(dict(record))


def _show() -> Show:
    show = load(SHOW).show
    true = Hook(command=["true"], timeout=30)
    hooks = show.hooks.model_copy(update={"on_outage": true, "on_recover": true})
    alerts = show.alerts.model_copy(update={"webhook": "http://127.0.0.1:9/chat"})
    return show.model_copy(update={"hooks": hooks, "alerts": alerts})


async def _outage(clock: FakeClock, sink: FailingSink, day: date) -> None:
    """Take the sink down for OUTAGE_SECONDS at OUTAGE_AT on `day`."""
    await clock.sleep_until(clock.monotonic() + datetime.combine(day, OUTAGE_AT, BERLIN).timestamp()
                            - clock.time())
    sink.down = True
    await clock.sleep_until(clock.monotonic() + OUTAGE_SECONDS)
    sink.down = False


async def play(days: int, start: date) -> None:
    show = _show()
    timeline = compile_timeline(show, source=str(SHOW))
    assert show.hours is not None and show.hooks.before_open is not None
    lead = show.hooks.before_open.lead
    hours = OpeningHours(show.hours)
    clock = FakeClock(datetime.combine(start, time(0), BERLIN))
    sink, records, chat = FailingSink(clock), Records(), Chat()
    player = Player(timeline, sink, clock=clock, journal=records, hours=hours, watchdog_period=WATCHDOG)
    runner = HookRunner(player.log, expand=Settings.from_environ({}).expand, web=chat)
    installation = Installation(player, runner, tick=TICK)
    loop_scenes = [s for s in timeline.scenes if not s.closed_only]
    period = sum(float(s.duration or 0) for s in loop_scenes)
    place, at = {}, 0.0
    for scene in loop_scenes:
        place[scene.name] = at
        at += float(scene.duration or 0)
    installation.start()
    run = asyncio.create_task(player.run())
    await clock.advance(1)
    origin = player.position.show_origin_unix
    assert origin is not None
    print(f"{SHOW.name} for {days} days from {start}, one {OUTAGE_SECONDS:g} s outage a day at "
          f"{OUTAGE_AT:%H:%M}; watchdog every {WATCHDOG:g} s, outage look every {TICK:g} s, "
          f"alerts after {installation.outage.after:g} s; load {os.getloadavg()[0]:.2f}")
    print(f"{'day':<15}{'starts':>7}{'err ms':>8}{'hooks':>6}{'sched s':>8}{'out s':>6}{'rec s':>6}"
          f"{'out':>4}{'rec':>4}"
          f"{'alerts':>7}{'writes':>8}{'RSS MB':>8}{'objects':>9}")
    worst_start = worst_hook = 0.0
    rows: list[tuple[float, int]] = []
    delays: dict[str, list[float]] = {"on_outage": [], "on_recover": []}
    began = wall.perf_counter()
    for d in range(days):
        day = start + timedelta(days=d)
        end = datetime.combine(day + timedelta(days=1), time(0), BERLIN).timestamp()
        writes_before, posts_before = sink.writes, chat.posts
        outage = asyncio.create_task(_outage(clock, sink, day))
        while clock.time() < end:  # in steps, so that the hooks' subprocesses can finish
            await clock.advance(min(600.0, end - clock.time()))
            await asyncio.sleep(0)
        await outage
        await asyncio.sleep(0.05)
        new, records.kept = records.kept, []
        errors = [wrap(r["planned_at"] - (r.get("offset") or 0.0) - origin - place[r["scene"]], period)
                  for r in new if r["kind"] == "scene" and r["scene"] in place]
        opened, closed = boundaries(hours, day)
        lost = datetime.combine(day, OUTAGE_AT, BERLIN).timestamp()
        expect = {"before_open": opened.timestamp() - lead, "after_close": closed.timestamp(),
                  "on_outage": lost, "on_recover": lost + OUTAGE_SECONDS}
        hooks = [r for r in new if r["kind"] == "hook" and r["ok"]]
        late = {r["name"]: r["started_at"] - expect[r["name"]] for r in hooks}
        sched = max(abs(late.get("before_open", 0.0)), abs(late.get("after_close", 0.0)))
        delays["on_outage"].append(late.get("on_outage", float("nan")))
        delays["on_recover"].append(late.get("on_recover", float("nan")))
        outages = sum(1 for r in new if r["kind"] == "outage")
        recovered = sum(1 for r in new if r["kind"] == "recovered")
        worst = max((abs(e) for e in errors), default=0.0)
        worst_start, worst_hook = max(worst_start, worst), max(worst_hook, sched)
        gc.collect()
        objects = len(gc.get_objects())
        rows.append((rss_mb(), objects))
        print(f"{day:%a %Y-%m-%d} {len(errors):>6}{worst * 1000:>8.3f}{len(hooks):>6}{sched:>8.3f}"
              f"{delays['on_outage'][-1]:>6.1f}{delays['on_recover'][-1]:>6.1f}"
              f"{outages:>4}{recovered:>4}{chat.posts - posts_before:>7}{sink.writes - writes_before:>8}"
              f"{rows[-1][0]:>8.1f}{objects:>9}")
    player.quit()
    await asyncio.wait_for(run, 30)
    await installation.stop()
    seconds = wall.perf_counter() - began
    (rss_2, obj_2), (rss_n, obj_n) = rows[min(1, len(rows) - 1)], rows[-1]
    span = max(1, len(rows) - 2)
    print(f"{days} days in {seconds:.0f} s of real time; records {records.counted}")
    print(f"worst scene-start error {worst_start * 1000:.3f} ms (goal: within 50 ms)")
    print(f"worst before_open/after_close start against its moment {worst_hook * 1000:.3f} ms "
          f"(goal: on time)")
    for name, values in delays.items():
        print(f"{name} after the picture {'went' if name == 'on_outage' else 'came back'}: "
              f"{min(values):.1f}-{max(values):.1f} s (outage after {installation.outage.after:g} s, "
              f"watchdog {WATCHDOG:g} s, look {TICK:g} s, reconnection backoff up to 10 s)")
    print(f"memory day 2 -> day {len(rows)}: RSS {rss_2:.1f} -> {rss_n:.1f} MB "
          f"({(rss_n - rss_2) / span * 1024:+.0f} kB/day), objects {obj_2} -> {obj_n} "
          f"({(obj_n - obj_2) / span:+.0f}/day) (goal: no growth)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 2))
    args = parser.parse_args(argv)
    asyncio.run(play(args.days, args.start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
