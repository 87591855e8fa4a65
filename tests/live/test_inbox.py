"""The main loop's inbox (live/inbox.py): operator commands queued in order, answered at once
when the loop cannot take them, one journal line each."""

from __future__ import annotations

import asyncio

import pytest

from showrunner.live.commands import ALREADY_ARMED, CONNECTING, STOPPED, Go, Goto, Hold, Quit
from showrunner.live.events import EventLog
from showrunner.live.inbox import Inbox
from showrunner.live.position import Position
from showrunner.plan.compiler import compile_timeline
from showrunner.show.load import load_text
from showrunner.testing import FakeClock, MemoryJournal

pytestmark = pytest.mark.anyio

SHOW = "title: t\nscenes:\n  - {name: a, prompts: one, duration: 4}\n  - {name: b, prompts: two}\n"


class Loop:
    """What the player lends the inbox: its busy reason, quitting flag, finish and poke."""

    def __init__(self) -> None:
        self.busy: str | None = None
        self.quitting = False
        self.finished: list[int] = []
        self.pokes = 0
        self.journal = MemoryJournal()
        timeline = compile_timeline(load_text(SHOW, path="t.yaml").show)
        self.inbox = Inbox(Position(timeline), EventLog(FakeClock(), self.journal),
                           busy=lambda: self.busy, quitting=lambda: self.quitting,
                           finish=self.finished.append, poke=self.poke)

    def poke(self) -> None:
        self.pokes += 1

    def operator_lines(self) -> list[tuple[str, str]]:
        return [(r["label"], r["result"]) for r in self.journal.records if r["kind"] == "operator"]


async def test_a_free_loop_gets_the_command_and_answers_through_the_future() -> None:
    loop = Loop()
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    answer = loop.inbox.take(Go(), future)
    assert (answer.outcome, bool(loop.inbox), loop.pokes) == ("queued", True, 1)
    assert loop.inbox.pop() == (Go(), future) and not loop.inbox
    assert not future.done() and loop.operator_lines() == []  # the loop answers and journals


async def test_while_busy_one_go_is_armed_and_a_second_is_refused() -> None:
    loop = Loop()
    loop.busy = CONNECTING
    first = loop.inbox.take(Go(), None)
    assert (first.outcome, first.reason) == ("queued", CONNECTING)
    assert loop.inbox.armed() == "go"
    second = loop.inbox.take(Go(), None)
    assert (second.outcome, second.reason, second.detail) == ("ignored", ALREADY_ARMED, "go")
    third = loop.inbox.take(Goto("b"), None)  # another kind of move is queued behind it
    assert third.outcome == "queued" and [c for c, _ in loop.inbox] == [Go(), Goto("b")]
    assert loop.operator_lines() == [("go queued", "queued"), ("go ignored", "ignored"),
                                      ("goto queued", "queued")]


async def test_quit_finishes_at_once_and_nothing_is_taken_afterwards() -> None:
    loop = Loop()
    assert loop.inbox.take(Quit(), None).applied and loop.finished == [0]
    loop.quitting = True
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    late = loop.inbox.take(Hold(), future)
    assert (late.outcome, late.reason) == ("ignored", STOPPED) and future.result() == late
    assert not loop.inbox


async def test_the_players_own_commands_are_posted_without_an_answer_or_a_line() -> None:
    loop = Loop()
    loop.inbox.post(Hold())
    command, future = loop.inbox.pop()
    assert command == Hold() and future is None and loop.pokes == 1
    assert loop.inbox.armed() is None and loop.operator_lines() == []
