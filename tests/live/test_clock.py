"""The clock protocol: a real clock that hands over precisely, and a fake one tests drive."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

import pytest

from showrunner.live.clock import (
    Clock,
    SystemClock,
    handover,
    prompt_thread_switches,
)
from showrunner.testing import FakeClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)


def test_handover_ends_at_the_deadline_not_before() -> None:
    for wait in (0.0005, 0.002, 0.01):  # within the spin, and longer than the spin
        deadline = time.monotonic() + wait
        handover(deadline)
        assert time.monotonic() >= deadline
    # How late it ends is a machine figure: bench/bench_cue_timing.py measures it.


@pytest.mark.anyio
async def test_system_clock_sleep_until_never_wakes_early() -> None:
    clock = SystemClock()
    for wait in (0.001, 0.003, 0.01, 0.02):  # shorter and longer than the early wake-up
        deadline = clock.monotonic() + wait
        await clock.sleep_until(deadline)
        assert clock.monotonic() >= deadline


@pytest.mark.anyio
async def test_approach_yields_to_the_loop_and_stops_short() -> None:
    """The long part of a wait runs on the event loop (other tasks go on); it ends before
    the deadline so the hand-over can finish at it."""
    clock = SystemClock(early=0.004)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    deadline = clock.monotonic() + 0.05
    await clock.approach(deadline)
    ticker.cancel()
    assert clock.monotonic() < deadline
    assert ticks > 1


def test_prompt_thread_switches_shortens_and_restores_the_interval() -> None:
    before = sys.getswitchinterval()
    with prompt_thread_switches(0.0005):
        assert sys.getswitchinterval() == pytest.approx(min(before, 0.0005))
    assert sys.getswitchinterval() == before


@pytest.mark.anyio
async def test_system_clock_past_deadline_returns_at_once() -> None:
    clock = SystemClock()
    started = time.monotonic()
    await clock.sleep_until(clock.monotonic() - 5)
    assert time.monotonic() - started < 0.01


def test_system_clock_now_is_aware() -> None:
    assert SystemClock().now().tzinfo is not None
    assert SystemClock(UTC).now().tzinfo is UTC


def test_fake_clock_reads() -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), monotonic=50.0)
    assert clock.monotonic() == 50.0
    assert clock.now() == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert clock.time() == datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
    assert repr(clock).startswith("FakeClock(")


@pytest.mark.anyio
async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock(monotonic=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, d)) for n, d in (("b", 2.0), ("a", 1.0), ("c", 5.0))]
    await clock.settle()
    assert clock.sleepers == 3 and clock.next_deadline == 1.0
    await clock.advance(3.0)
    assert woke == [("a", 1.0), ("b", 2.0)]
    assert clock.monotonic() == 3.0
    await clock.advance(2.0)
    assert woke[-1] == ("c", 5.0)
    await asyncio.gather(*tasks)


@pytest.mark.anyio
async def test_fake_clock_chained_sleeps_see_their_own_deadlines() -> None:
    """A loop that plans every wait from one origin never drifts (no chained sleeps)."""
    clock = FakeClock(monotonic=0.0)
    seen: list[float] = []

    async def ticker() -> None:
        for i in range(1, 5):
            await clock.sleep_until(i * 0.25)
            seen.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(1.0)
    await task
    assert seen == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.anyio
async def test_fake_clock_cancelled_sleeper_is_forgotten() -> None:
    clock = FakeClock(monotonic=0.0)
    task = asyncio.create_task(clock.sleep_until(10.0))
    await clock.settle()
    task.cancel()
    await clock.settle()
    assert clock.sleepers == 0
    await clock.advance(20.0)


@pytest.mark.anyio
async def test_fake_clock_refuses_to_go_back_and_jumps_wall_only() -> None:
    clock = FakeClock(1000.0, monotonic=0.0)
    with pytest.raises(ValueError):
        await clock.advance(-1)
    clock.jump_wall(3600)
    assert clock.time() == 4600.0 and clock.monotonic() == 0.0
    await clock.advance_to(4610.0)
    assert clock.monotonic() == 10.0
