"""The link to Scope on a FakeClock: pacing with entries first, one journal line per message
written, lost writes, and the watchdog seeing a hung server by its frames.

`PacedDouble` is a `PacedSink` test double: it paces with the real Coalescer on the test's clock
and writes nothing anywhere; frames, hangs and lost writes are switched on by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from showrunner.errors import ScopeConnectError
from showrunner.live.link import STALL_AFTER, LinkState, timed_update
from showrunner.live.player import Player
from showrunner.live.sink import PacedSink
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.scope.pacing import Coalescer
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, MemoryJournal, until

pytestmark = pytest.mark.anyio


class PacedDouble:
    """A sink that paces like ScopeSession (one write per `interval`, merged, entries first)."""

    def __init__(self, clock: FakeClock, interval: float = 0.75) -> None:
        self.clock = clock
        self.interval = interval
        self.writes: list[tuple[float, int, dict[str, Any]]] = []
        self.opened: list[tuple[float, dict[str, Any]]] = []
        self.switched: list[tuple[float, dict[str, Any]]] = []
        self.coalescer = Coalescer(self._write, interval, clock=clock)
        self.up = False
        self.frames_from: float | None = None  # frames arrive from then on (None: they stopped)
        self.stopped_at: float | None = None
        self.hung = asyncio.Event()  # set: the server answers again (SIGCONT)
        self.hung.set()
        self.lost: list[tuple[int, float, dict[str, Any]]] = []
        self.problem: str | None = None

    # -- the fault switches

    def freeze(self) -> None:
        """SIGSTOP: no frames, no answers, nothing acknowledged."""
        self.stopped_at = self.clock.monotonic()
        self.frames_from = None
        self.hung.clear()

    def thaw(self) -> None:
        self.stopped_at = None
        self.hung.set()

    # -- the Sink protocol

    @property
    def connected(self) -> bool:
        return self.up

    async def open(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float:
        self.opened.append((self.clock.monotonic(), dict(initial_parameters)))
        self._up()
        return 0.0

    async def switch(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float:
        await self.close()
        await self.hung.wait()  # a stopped server answers nothing
        self.switched.append((self.clock.monotonic(), dict(initial_parameters)))
        self._up()
        return 0.0

    def _up(self) -> None:
        self.up, self.problem = True, None
        self.frames_from = self.clock.monotonic()

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return dict(message)

    async def send(self, message: Mapping[str, Any], *, entry: bool = True) -> tuple[float, dict[str, Any]]:
        if not self.up:
            raise ScopeConnectError("not connected")
        return await self.coalescer.submit(message, entry=entry)

    def _write(self, message: dict[str, Any], number: int) -> float:
        self.writes.append((self.clock.monotonic(), number, dict(message)))
        return self.clock.time()

    async def close(self) -> None:
        if self.stopped_at is not None and self.writes:
            # Written while the server was stopped: never acknowledged.
            self.lost += [(n, self.clock.time(), m) for at, n, m in self.writes if at >= self.stopped_at]
        self.up = False
        self.coalescer.cancel(ScopeConnectError("closed"))

    async def liveness(self) -> str | None:
        await self.hung.wait()
        return self.problem

    # -- PacedSink

    def expect(self, at: float | None) -> None:
        self.coalescer.expect(at)

    def frame_age(self) -> float | None:
        if not self.up:
            return None
        if self.frames_from is not None:
            return 0.0
        assert self.stopped_at is not None
        return self.clock.monotonic() - self.stopped_at

    def take_lost(self) -> list[tuple[int, float, dict[str, Any]]]:
        lost, self.lost = self.lost, []
        return lost


def compile_show(text: str) -> Timeline:
    return compile_timeline(load_text(text, path="link.yaml").show, source="link.yaml")


@contextlib.asynccontextmanager
async def playing(player: Player) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(player.run())
    try:
        yield task
    finally:
        player.quit()
        assert await asyncio.wait_for(task, 5) == 0


def sends(journal: MemoryJournal) -> list[dict[str, Any]]:
    return [r for r in journal.records if r["kind"] == "send"]


def test_the_double_is_a_paced_sink() -> None:
    assert isinstance(PacedDouble(FakeClock()), PacedSink)


def test_timed_updates_are_keyframes_and_travel_stops() -> None:
    assert timed_update("keyframe") and timed_update("travel 2") and timed_update("travel 1 + keyframe")
    assert timed_update("keyframe + restore manage_cache")
    assert not any(timed_update(label) for label in ("enter", "cue", "goto", "reload", "panic", "catch up"))


# The scene after a keyframed one: the last sample is due a quarter chunk before the entry
# (longlive: 12 frames per chunk at 16 fps, 0.75 s; the real run of shows/performance.yaml
# sent the second `verse` entry 501.7 ms late behind such a sample).
KEYFRAMED = """
title: keyframed
defaults: {pipeline: longlive, input_mode: video}
end: stop
scenes:
  - name: wash
    prompts: watercolor harbour
    duration: 4
    keyframes:
      noise_scale: [{at: 0, value: 0.2}, {at: 4, value: 0.9}]
  - name: verse
    prompts: a neon wave
    duration: 2
    keyframes:
      noise_scale: [{at: 0, value: 0.9}, {at: 2, value: 0.5}]
"""


async def test_an_entry_after_a_keyframed_scene_goes_out_on_time() -> None:
    clock = FakeClock()
    sink, journal = PacedDouble(clock), MemoryJournal()
    origin = clock.monotonic()
    player = Player(compile_show(KEYFRAMED), sink, clock=clock, journal=journal, watchdog_period=3600)
    run = asyncio.create_task(player.run())
    await until(lambda: sink.opened)
    await clock.advance(6.5)
    assert await asyncio.wait_for(run, 5) == 0
    times = [round(at - origin, 6) for at, _, _ in sink.writes]
    entry = next(m for _, _, m in sink.writes if "transition" in m)
    assert times[[m for _, _, m in sink.writes].index(entry)] == 4.0
    assert entry["noise_scale"] == 0.9  # the last sample of `wash`, merged into the entry
    assert all(b - a >= 0.75 - 0.003 for a, b in itertools.pairwise(times))
    line = next(r for r in sends(journal) if r["label"] == "enter")
    assert line["sent_at"] == pytest.approx(line["planned_at"], abs=1e-6)
    assert [(i["label"], i["scene"]) for i in line["items"]] == [("keyframe", "wash"), ("enter", "verse")]


async def test_nothing_waits_for_an_entry_that_opens_a_new_session() -> None:
    """A next scene on another pipeline is entered by a switch (close, load, reconnect): the
    last sample before it goes out on time, as nothing could merge into a closing session."""
    clock = FakeClock()
    sink, journal = PacedDouble(clock), MemoryJournal()
    origin = clock.monotonic()
    show = KEYFRAMED.replace("a neon wave\n", "a neon wave\n    pipeline: memflow\n")
    player = Player(compile_show(show), sink, clock=clock, journal=journal, watchdog_period=3600)
    run = asyncio.create_task(player.run())
    await until(lambda: sink.opened)
    await clock.advance(6.5)
    assert await asyncio.wait_for(run, 5) == 0
    assert [round(at - origin, 6) for at, _, _ in sink.writes][:5] == [0.75, 1.5, 2.25, 3.0, 3.75]
    assert [round(at - origin, 6) for at, _ in sink.switched] == [4.0]
    assert not [r for r in journal.records if r["kind"] == "error"]


FAST_KEYFRAMES = """
title: fast keyframes
fps: 32
defaults: {pipeline: longlive, input_mode: video}
scenes:
  - name: ramp
    prompts: a slow ramp
    duration: 3
    keyframes:
      noise_scale: [{at: 0, value: 0.1}, {at: 3, value: 0.9}]
"""


async def test_one_journal_line_per_message_written() -> None:
    """Samples planned twice as fast as the server takes them go out merged in pairs: one
    `send` line per message written, listing the planned updates it carries (77 journal lines
    for 76 messages received was the bug)."""
    timeline = compile_show(FAST_KEYFRAMES)
    planned = [a for a in timeline.scenes[0].actions if a.kind == "send"]
    clock = FakeClock()
    sink, journal = PacedDouble(clock), MemoryJournal()
    async with playing(Player(timeline, sink, clock=clock, journal=journal, watchdog_period=3600)):
        await until(lambda: sink.opened)
        await clock.advance(3.5)
    lines = sends(journal)
    assert len(lines) == len(sink.writes) < len(planned)
    assert [r["write"] for r in lines] == [n for _, n, _ in sink.writes]
    assert [r["message"] for r in lines] == [m for _, _, m in sink.writes]
    carried = [item["offset"] for r in lines for item in r.get("items") or [r]]
    assert carried == [a.offset for a in planned]
    for line in lines:
        for item in line.get("items") or [line]:
            assert 0 <= line["sent_at"] - item["planned_at"] <= 0.75 + 1e-6


LOOKS = """
title: looks
defaults: {pipeline: controller-viz, noise_scale: 0.3}
loop: forever
scenes:
  - {name: one, prompts: look one, duration: 4}
  - {name: two, prompts: look two, duration: 4}
  - {name: three, prompts: look three, duration: 4}
"""


async def test_writes_never_acknowledged_are_journaled_as_lost() -> None:
    """A message written just as the connection drops is not counted as delivered: the sink
    reports it unacknowledged at the reconnection, the journal says `lost` and names the
    reconnection that put Scope into the full state instead."""
    clock = FakeClock()
    sink, journal = PacedDouble(clock, interval=0.1), MemoryJournal()
    player = Player(compile_show(LOOKS), sink, clock=clock, journal=journal, watchdog_period=0.5)
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(4.0)  # `two` entered at +4 and written
        written = sink.writes[-1]
        sink.lost.append((written[1], clock.time(), written[2]))
        sink.up, sink.problem = False, "peer connection closed"
        await clock.advance(1.0)
        await until(lambda: sink.switched)
        await clock.advance(0.1)
    lost = [r for r in journal.records if r["kind"] == "lost"]
    assert [(r["write"], r["label"], r["scene"], r["replaced_by"]) for r in lost] == [
        (written[1], "enter", "two", "reconnect")
    ]
    reconnect = next(r for r in journal.records if r["kind"] == "reconnect" and r["label"] == "ok")
    assert reconnect["replaces"] == [written[1]]
    assert journal.records.index(lost[0]) < journal.records.index(reconnect)
    assert sink.switched[0][1]["prompts"] == [{"text": "look two", "weight": 1.0}]


async def test_a_hung_server_is_seen_by_its_frames_and_the_show_keeps_its_clock() -> None:
    """SIGSTOP on the server: /health never answers, frames stop. The status says `stalled`
    within STALL_AFTER + one watchdog tick (under 3 s) whatever /health does; nothing is
    journaled as sent while stalled, what was written meanwhile is `lost`; when the server
    answers again the show goes on at the scene the wall clock says, as after a crash."""
    clock = FakeClock()
    sink, journal = PacedDouble(clock, interval=0.1), MemoryJournal()
    player = Player(compile_show(LOOKS), sink, clock=clock, journal=journal, watchdog_period=0.5)
    states: list[tuple[float, str]] = []
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(3.0)
        stopped, stopped_unix = clock.monotonic(), clock.time()
        sink.freeze()
        for _ in range(120):  # 12 s, the server stopped for 10 of them
            await clock.advance(0.1)
            states.append((round(clock.monotonic() - stopped, 3), player.status().connection.value))
            if clock.monotonic() - stopped >= 10 and sink.stopped_at is not None:
                sink.thaw()
        await until(lambda: player.status().connection is LinkState.CONNECTED)
        await clock.advance(0.5)
    first_stalled = next(t for t, s in states if s == "stalled")
    assert first_stalled <= STALL_AFTER + 0.5 + 1e-6 < 3.0
    assert {s for t, s in states if t < first_stalled} == {"connected"}
    assert {s for t, s in states if first_stalled <= t < 10} == {"stalled"}
    assert states[-1][1] == "connected"
    watchdog = [r for r in journal.records if r["kind"] == "watchdog"]
    assert watchdog[0]["label"].startswith("stalled: no frames for")
    # What was written to the stopped server (the entry of `two` at +4) is lost, not sent.
    lost = [r for r in journal.records if r["kind"] == "lost"]
    assert [(r["label"], r["scene"], r["replaced_by"]) for r in lost] == [("enter", "two", "reconnect")]
    # Nothing is written while stalled; what fell due meanwhile is journaled as not sent.
    assert not [r for r in sends(journal) if stopped_unix + 2.5 < r["sent_at"] < stopped_unix + 10]
    not_sent = [r for r in journal.records
                if r["kind"] == "error" and r.get("error") == "not sent: Scope is stalled"]
    assert [r["scene"] for r in not_sent] == ["three", "one"]  # entered at +8 and +12 while stopped
    # Back after 10 s: the session reopens, and the show is where the wall clock says: 13 s in,
    # `one` of the second loop, one second in.
    reconnect = next(r for r in journal.records if r["kind"] == "reconnect" and r["label"] == "ok")
    after = [r for r in sends(journal) if r["sent_at"] >= reconnect["sent_at"]]
    assert after[0]["label"] == "resync" and after[0]["scene"] == "one"
    assert after[0]["message"]["transition"]["target_prompts"] == [{"text": "look one", "weight": 1.0}]


async def test_a_resting_link_neither_checks_nor_reconnects_and_wakes_down() -> None:
    """`rest` (the GPU stopped on purpose): the server going away is not looked at; `wake`: a
    session without frames counts as down at once and is reopened when the server answers."""
    clock = FakeClock()
    sink, journal = PacedDouble(clock, interval=0.1), MemoryJournal()
    player = Player(compile_show(LOOKS), sink, clock=clock, journal=journal, watchdog_period=0.5)
    async with playing(player):
        await until(lambda: sink.opened)
        await clock.advance(1.0)
        player.link.rest()
        sink.freeze()  # the pod is stopped
        for _ in range(600):  # a minute
            await clock.advance(0.1)
        assert player.status().connection is LinkState.CONNECTED  # nobody looked
        assert not [r for r in journal.records if r["kind"] in ("watchdog", "reconnect")]
        player.link.wake()
        assert player.status().connection is LinkState.DOWN
        sink.thaw()
        await clock.advance(1.0)
        await until(lambda: player.status().connection is LinkState.CONNECTED)
    assert [r["label"] for r in journal.records if r["kind"] == "reconnect"] == ["ok"]
