"""An installation's day through `showrunner.app.run`, on a fake clock, against the simulator:
`before_open` at the opening minus its lead, the show waiting for the server ("starting GPU"),
`after_close` at the closing, one outage (the simulator crashes and comes back) running
`on_outage` once and `on_recover` once, and the alert webhook receiving both messages."""

from __future__ import annotations

import asyncio
import io
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from webhook import Webhook

from showrunner.app import RunOptions, StreamOutput, run
from showrunner.live.hooks import HookRunner
from showrunner.live.hours import OpeningHours
from showrunner.live.installation import Installation
from showrunner.live.journal import read_journal
from showrunner.live.link import LinkState
from showrunner.live.player import Player
from showrunner.settings import Settings
from showrunner.sim import SimThread
from showrunner.testing import FakeClock, MemoryJournal, until

pytestmark = pytest.mark.anyio

SHOW = """
title: Tidepool
loop: forever
defaults: {{pipeline: controller-viz}}
hours:
  timezone: UTC
  open: [{{start: "10:00", end: "10:10"}}]
hooks:
  before_open: {{command: [sh, -c, 'echo before_open >> {log}'], lead: 5 min}}
  after_close: {{command: [sh, -c, 'echo after_close >> {log}']}}
  on_outage: {{command: 'echo on_outage >> {log}', shell: true}}
  on_recover: {{command: [sh, -c, 'echo on_recover >> {log}']}}
alerts: {{webhook: "{webhook}/chat", after: 10s}}
scenes:
  - {{name: a, prompts: a tide pool, duration: 30}}
  - {{name: b, prompts: kelp in the current, duration: 30}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _at(hour: int, minute: int, second: int = 0) -> float:
    return datetime(2026, 1, 5, hour, minute, second, tzinfo=UTC).timestamp()


async def _step(clock: FakeClock, seconds: float, done: Any, limit: float = 120.0) -> None:
    """Advance the fake clock half a second at a time, letting real I/O happen between, until
    `done()` (the watchdog and the reconnection need both)."""
    moved = 0.0
    while not done():
        if moved >= limit:
            raise TimeoutError(f"not done after {limit:g} fake seconds")
        await clock.advance(seconds)
        moved += seconds
        await asyncio.sleep(0.02)


@pytest.mark.webrtc
async def test_an_installation_day_with_hooks_an_outage_and_alerts(tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    port = _free_port()
    clock = FakeClock(datetime(2026, 1, 5, 9, 50, tzinfo=UTC))  # a Monday, closed
    players: list[Player] = []
    stop = asyncio.Event()
    with Webhook() as chat:
        show = tmp_path / "show.yaml"
        show.write_text(SHOW.format(log=log, webhook=chat.url))
        options = RunOptions(show, scope_url=f"http://127.0.0.1:{port}",
                             journal_path=tmp_path / "j.jsonl", state_file=tmp_path / "state.json",
                             stdin_tty=False)
        lines = StreamOutput(io.StringIO(), io.StringIO())
        task = asyncio.create_task(run(options, output=lines, settings=Settings.from_environ({}),
                                       clock=clock, stop_event=stop, on_player=players.append))
        player = (await until(lambda: players))[0]
        await clock.advance_to(_at(9, 54, 59))
        await asyncio.sleep(0.3)
        assert _ran(log) == [] and player.status().mode == "pending"  # the GPU is off: no Scope
        await clock.advance(1)  # 09:55, the opening minus the lead
        await until(lambda: _ran(log) == ["before_open"])
        assert player.status().notice == "starting GPU"
        thread = SimThread("127.0.0.1", port, load_time=0.02)  # the pod has booted
        sim = thread.start()
        try:
            await until(lambda: player.started, 20)  # the show waited for the server
            await _step(clock, 0.5, lambda: player.status().notice is None)
            status = player.status()
            assert (status.mode, status.connection) == ("closed", LinkState.CONNECTED)
            await clock.advance_to(_at(10, 0, 30))
            await until(lambda: player.status().mode == "playing")

            await sim.crash()  # the picture goes away at 10:00:30
            await _step(clock, 0.5, lambda: "on_outage" in _ran(log) and len(chat.requests) == 1)
            assert player.status().connection is not LinkState.CONNECTED
            for _ in range(40):  # 20 s more, still down: no second outage
                await clock.advance(0.5)
                await asyncio.sleep(0.02)
            assert _ran(log).count("on_outage") == 1 and len(chat.requests) == 1
            await sim.start()
            await _step(clock, 0.5, lambda: "on_recover" in _ran(log) and len(chat.requests) == 2)
            assert player.status().connection is LinkState.CONNECTED

            await clock.advance_to(_at(10, 9, 59))
            await asyncio.sleep(0.3)
            assert "after_close" not in _ran(log)
            await clock.advance(1)  # 10:10, closing
            await until(lambda: "after_close" in _ran(log))
            stop.set()
            assert await asyncio.wait_for(task, 20) == 0
        finally:
            thread.stop()
    assert _ran(log) == ["before_open", "on_outage", "on_recover", "after_close"]
    journal = read_journal(tmp_path / "j.jsonl")
    hooks = {r["name"]: r for r in journal if r["kind"] == "hook"}
    assert set(hooks) == {"before_open", "after_close", "on_outage", "on_recover"}
    assert all(r["ok"] is True for r in hooks.values())
    assert hooks["before_open"]["at"] == _at(9, 55) and hooks["after_close"]["at"] == _at(10, 10)
    outages = [r for r in journal if r["kind"] in ("outage", "recovered")]
    assert [r["kind"] for r in outages] == ["outage", "recovered"]
    assert _at(10, 0, 30) <= outages[0]["since"] < _at(10, 0, 34)
    assert outages[0]["at"] - outages[0]["since"] == pytest.approx(10, abs=1)
    texts = chat.texts()
    assert texts[0].startswith("Tidepool: no picture since 2026-01-05 10:00:3")
    assert texts[1].startswith("Tidepool: picture back after ")
    assert [r["json"]["content"] for r in chat.requests] == texts and chat.requests[0]["path"] == "/chat"
    assert [r["ok"] for r in journal if r["kind"] == "alert"] == [True, True]


# -- the schedule's rules, on a recording sink -----------------------------------------------


class Sink:
    """Sessions open at once while `up`; nothing is sent anywhere."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.up = True

    @property
    def connected(self) -> bool:
        return self.up

    async def open(self, chain: Any, load_params: Any, initial: Any) -> float:
        if not self.up:
            raise ConnectionError("connection refused")
        return 0.0

    async def switch(self, chain: Any, load_params: Any, initial: Any) -> float:
        return await self.open(chain, load_params, initial)

    def prepare(self, message: Any) -> dict[str, Any]:
        return dict(message)

    async def send(self, message: Any) -> tuple[float, dict[str, Any]]:
        if not self.up:
            raise ConnectionError("connection refused")
        return self.clock.time(), dict(message)

    async def close(self) -> None:
        return None

    async def liveness(self) -> str | None:
        return None if self.up else "down"


BREAK = """
title: Break
loop: forever
hours:
  timezone: UTC
  open: [{start: "10:00", end: "13:00"}, {start: "13:05", end: "18:00"}]
hooks:
  before_open: {command: ["true"], lead: 10 min}
  after_close: {command: ["true"]}
scenes:
  - {name: a, prompts: a garden, duration: 60}
"""


async def _installation(tmp_path: Path, text: str, start: datetime, watchdog: float = 1.0,
                        **top: Any) -> tuple[
        FakeClock, Player, Installation, MemoryJournal, asyncio.Task[int]]:
    from showrunner.plan.compiler import compile_timeline
    from showrunner.show.load import load

    (tmp_path / "show.yaml").write_text(text)
    show = load(tmp_path / "show.yaml").show
    clock, journal = FakeClock(start), MemoryJournal()
    hours = OpeningHours(show.hours) if show.hours else None
    player = Player(compile_timeline(show), Sink(clock), clock=clock, journal=journal, hours=hours,
                    watchdog_period=watchdog)
    installation = Installation(player, HookRunner(player.log, expand=str), **top)
    installation.start()
    task = asyncio.create_task(player.run())
    await clock.advance(0)
    return clock, player, installation, journal, task


async def _hooks_ran(journal: MemoryJournal, count: int) -> list[tuple[str, float]]:
    await until(lambda: len([r for r in journal.records if r["kind"] == "hook"]) >= count)
    return [(r["name"], r["started_at"]) for r in journal.records if r["kind"] == "hook"]


async def test_a_break_shorter_than_the_lead_keeps_the_gpu_on(tmp_path: Path) -> None:
    clock, player, installation, journal, task = await _installation(
        tmp_path, BREAK, datetime(2026, 1, 5, 9, 0, tzinfo=UTC), watchdog=600, tick=600)
    await clock.advance_to(_at(9, 49, 59))
    assert [r for r in journal.records if r["kind"] == "hook"] == []
    await clock.advance(1)
    assert await _hooks_ran(journal, 1) == [("before_open", _at(9, 50))]
    await clock.advance_to(_at(18, 30))
    assert await _hooks_ran(journal, 2) == [("before_open", _at(9, 50)), ("after_close", _at(18, 0))]
    player.quit()
    await asyncio.wait_for(task, 5)
    await installation.stop()


async def test_starting_gpu_until_the_link_is_up_and_no_outage_meanwhile(tmp_path: Path) -> None:
    """A run started while open runs before_open at once; the server comes up late: no outage
    is counted within the lead, and the notice goes when the session is open."""
    clock, player, installation, journal, task = await _installation(
        tmp_path, BREAK, datetime(2026, 1, 5, 11, 0, tzinfo=UTC), alert_after=20)
    sink = player.sink
    assert isinstance(sink, Sink)
    assert await _hooks_ran(journal, 1) == [("before_open", _at(11, 0))]
    sink.up = False
    player.link.state = LinkState.DOWN  # the GPU is still booting
    for _ in range(9 * 6):  # nine minutes, within the ten-minute lead
        await clock.advance(10)
    assert player.status().notice == "starting GPU"
    assert not [r for r in journal.records if r["kind"] == "outage"]
    sink.up = True
    for _ in range(30):
        await clock.advance(1)
    assert player.link.state is LinkState.CONNECTED and player.status().notice is None
    assert not [r for r in journal.records if r["kind"] == "outage"]
    sink.up = False  # now a real outage: counted after 20 s
    for _ in range(40):
        await clock.advance(1)
    assert [r["kind"] for r in journal.records if r["kind"] in ("outage", "recovered")] == ["outage"]
    player.quit()
    await asyncio.wait_for(task, 5)
    await installation.stop()


async def test_the_link_rests_from_after_close_to_before_open(tmp_path: Path) -> None:
    """The GPU stopped on purpose at closing: no reconnection attempts all night; the morning's
    before_open wakes the link, which reconnects once the server answers."""
    clock, player, installation, journal, task = await _installation(
        tmp_path, BREAK, datetime(2026, 1, 5, 17, 50, tzinfo=UTC), watchdog=5.0, tick=5.0)
    sink = player.sink
    assert isinstance(sink, Sink)
    await clock.advance_to(_at(18, 0))
    await _hooks_ran(journal, 2)  # before_open at the start (open), after_close at 18:00
    sink.up = False  # the pod is stopped
    await clock.advance_to(datetime(2026, 1, 6, 9, 49, tzinfo=UTC).timestamp())
    assert player.link.resting
    assert not [r for r in journal.records if r["kind"] in ("reconnect", "watchdog", "outage")]
    await clock.advance(60)  # 09:50: before_open
    assert not player.link.resting and player.status().notice == "starting GPU"
    sink.up = True  # the pod has booted
    for _ in range(12):
        await clock.advance(5)
    assert player.link.state is LinkState.CONNECTED and player.status().notice is None
    reconnects = [r for r in journal.records if r["kind"] == "reconnect"]
    assert reconnects[-1]["label"] == "ok" and len(reconnects) <= 3  # the pod booting
    assert all(r["sent_at"] >= _at(9, 50) + 86400 for r in reconnects)
    assert not [r for r in journal.records if r["kind"] == "outage"]
    player.quit()
    await asyncio.wait_for(task, 5)
    await installation.stop()
