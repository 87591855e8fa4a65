"""APScheduler, confined: date jobs with a precise hand-over, and cron arithmetic."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from showrunner.live.clock import Clock
from showrunner.live.scheduling import (
    SchedulerClock,
    cron_at,
    local_timezone,
    next_fire,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.anyio
async def test_each_wait_is_one_date_job_and_never_ends_early() -> None:
    """Each wait is one APScheduler date job set ahead of the deadline; the wait ends at the
    deadline, never before it. (How close is a machine figure: bench/bench_cue_timing.py.)"""
    async with SchedulerClock() as clock:
        assert isinstance(clock, Clock)
        assert "running" in repr(clock)
        assert clock._scheduler is not None
        jobs_seen = []
        for _ in range(5):
            # Set from now, so a stall of the machine between two waits cannot put a deadline
            # in the past (a wait whose deadline has passed ends at once, with no job).
            deadline = clock.monotonic() + 0.1
            waiter = asyncio.create_task(clock.sleep_until(deadline))
            await asyncio.sleep(0)
            jobs_seen.append(len(clock._scheduler.get_jobs()))
            await waiter
            assert time.monotonic() >= deadline
        assert jobs_seen == [1, 1, 1, 1, 1]
        assert clock._scheduler.get_jobs() == []


@pytest.mark.anyio
async def test_cancelled_wait_removes_its_job() -> None:
    async with SchedulerClock() as clock:
        task = asyncio.create_task(clock.sleep_until(clock.monotonic() + 30))
        await asyncio.sleep(0.01)
        assert clock._scheduler is not None and len(clock._scheduler.get_jobs()) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert clock._scheduler.get_jobs() == []
    assert "stopped" in repr(clock)


@pytest.mark.anyio
async def test_without_a_running_scheduler_waits_still_work() -> None:
    clock = SchedulerClock()
    deadline = clock.monotonic() + 0.01
    await clock.sleep_until(deadline)
    assert time.monotonic() >= deadline


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (datetime(2026, 1, 5, 9, 0, tzinfo=BERLIN), datetime(2026, 1, 5, 10, 0, tzinfo=BERLIN)),
        # Exactly at a fire time counts as "already fired": the next one is a day later.
        (datetime(2026, 1, 5, 10, 0, tzinfo=BERLIN), datetime(2026, 1, 6, 10, 0, tzinfo=BERLIN)),
        # Friday evening -> Monday (weekdays only).
        (datetime(2026, 1, 9, 18, 0, tzinfo=BERLIN), datetime(2026, 1, 12, 10, 0, tzinfo=BERLIN)),
    ],
    ids=["same-day", "at-fire-time", "over-weekend"],
)
def test_next_fire(after: datetime, expected: datetime) -> None:
    trigger = cron_at([0, 1, 2, 3, 4], 10, 0, BERLIN)
    assert next_fire(trigger, after) == expected


def test_next_fire_across_dst_keeps_local_time() -> None:
    trigger = cron_at(range(7), 10, 0, BERLIN)
    fire = next_fire(trigger, datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN))
    assert fire is not None
    assert fire.astimezone(BERLIN).hour == 10
    elapsed = fire.timestamp() - datetime(2026, 3, 28, 10, 0, tzinfo=BERLIN).timestamp()
    assert elapsed == timedelta(hours=23).total_seconds()  # the spring-forward day is 23 h


def test_next_fire_wraps_weekday_seven_to_monday() -> None:
    trigger = cron_at([7], 1, 30, UTC)  # "day after Sunday"
    fire = next_fire(trigger, datetime(2026, 1, 1, tzinfo=UTC))
    assert fire is not None and fire.weekday() == 0


def test_next_fire_needs_aware_datetimes_and_days() -> None:
    with pytest.raises(ValueError):
        next_fire(cron_at([0], 1, 0, UTC), datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        cron_at([], 1, 0, UTC)


def test_local_timezone_is_a_tzinfo() -> None:
    assert local_timezone().utcoffset(datetime(2026, 1, 1)) is not None
