"""The outage detector: `after` seconds without an expected picture is one outage; the
picture back is one recovery; time without an expected picture does not count."""

from __future__ import annotations

import pytest

from showrunner.live.events import EventLog
from showrunner.live.outage import Outage, OutageState, OutageWatch
from showrunner.testing import FakeClock, MemoryJournal

pytestmark = pytest.mark.anyio


class Scene:
    """What the detector is told: a picture, and whether one is expected."""

    def __init__(self) -> None:
        self.picture = True
        self.expected = True


def _watch(clock: FakeClock, journal: MemoryJournal, scene: Scene,
           calls: list[tuple[str, Outage]]) -> OutageWatch:
    return OutageWatch(
        clock, EventLog(clock, journal), after=30, picture=lambda: scene.picture,
        expected=lambda: scene.expected, reason=lambda: "Scope reconnecting",
        on_outage=lambda o: calls.append(("outage", o)),
        on_recover=lambda o: calls.append(("recover", o)),
    )


async def _run(clock: FakeClock, watch: OutageWatch, seconds: int) -> None:
    for _ in range(seconds):
        watch.observe()
        await clock.advance(1)


async def test_one_outage_and_one_recovery_however_long() -> None:
    clock, journal, scene, calls = FakeClock(), MemoryJournal(), Scene(), []
    watch = _watch(clock, journal, scene, calls)
    await _run(clock, watch, 5)
    scene.picture = False
    lost_at = clock.time()
    await _run(clock, watch, 30)
    assert watch.state is OutageState.DARK and not calls
    await _run(clock, watch, 300)  # five more minutes dark: still one outage
    assert watch.state is OutageState.OUTAGE
    assert [(kind, o.since) for kind, o in calls] == [("outage", lost_at)]
    scene.picture = True
    await _run(clock, watch, 60)
    assert [kind for kind, _ in calls] == ["outage", "recover"] and watch.outages == 1
    assert calls[1][1].seconds == 330
    records = [r for r in journal.records if r["kind"] in ("outage", "recovered")]
    assert [(r["kind"], r["label"]) for r in records] == [
        ("outage", "Scope reconnecting"), ("recovered", "picture back")]
    assert records[0]["at"] == lost_at + 30 and records[1]["seconds"] == 330


async def test_a_short_gap_is_no_outage() -> None:
    clock, journal, scene, calls = FakeClock(), MemoryJournal(), Scene(), []
    watch = _watch(clock, journal, scene, calls)
    for _ in range(3):
        scene.picture = False
        await _run(clock, watch, 29)
        scene.picture = True
        await _run(clock, watch, 1)
    assert not calls and watch.outages == 0 and watch.state is OutageState.PICTURE


async def test_no_picture_while_none_is_expected_does_not_count() -> None:
    clock, journal, scene, calls = FakeClock(), MemoryJournal(), Scene(), []
    watch = _watch(clock, journal, scene, calls)
    scene.picture, scene.expected = False, False  # closed, the GPU stopped
    await _run(clock, watch, 3600)
    assert not calls and watch.state is OutageState.PICTURE
    scene.expected = True  # opening time, and still no picture: counted from now
    await _run(clock, watch, 29)
    assert not calls
    await _run(clock, watch, 2)
    assert [kind for kind, _ in calls] == ["outage"]
