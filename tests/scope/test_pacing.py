"""The Coalescer: one message per chunk interval, what waits is merged, entries first.

All on a FakeClock: writes are checked by order and by the clock's readings, never by real time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from showrunner.errors import ScopeConnectError
from showrunner.scope.pacing import EXPECT_GRACE, HOLD_LIMIT, Coalescer, Prepared, Written, merge
from showrunner.testing import FakeClock

pytestmark = pytest.mark.anyio


class Wire:
    """Stands in for the data channel: (clock time, write number, message) of every write."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, int, dict[str, Any]]] = []
        self.fail = False

    def __call__(self, message: dict[str, Any], number: int) -> float:
        if self.fail:
            raise ScopeConnectError("the channel closed")
        self.sent.append((self.clock.monotonic(), number, json.loads(json.dumps(message))))
        return self.clock.time()

    @property
    def times(self) -> list[float]:
        return [at for at, _, _ in self.sent]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for _, _, m in self.sent]


def mono(clock: FakeClock, unix: float) -> float:
    """A unix time the clock reported, on its monotonic scale."""
    return unix - clock.time() + clock.monotonic()


def transition(text: str, steps: int = 0) -> dict[str, Any]:
    return {"transition": {"target_prompts": [{"text": text, "weight": 1.0}], "num_steps": steps}}


def spaced(times: list[float], interval: float) -> bool:
    return all(b - a >= interval - 0.003 for a, b in itertools.pairwise(times))


async def test_an_update_on_an_idle_line_is_written_at_once() -> None:
    """No added latency when the line is idle (docs/scope.md §3.2: pacing only matters when updates
    come faster than chunks): the write happens in the caller's first step."""
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    coalescer = Coalescer(wire, 0.02, clock=clock)
    for i in range(3):
        submit = coalescer.submit({"noise_scale": i / 10})
        with pytest.raises(StopIteration) as done:
            submit.send(None)
        at, sent = done.value.value
        assert (at, sent) == (clock.time(), {"noise_scale": i / 10})
        assert isinstance(sent, Written) and (sent.write, sent.carries) == (i + 1, 1)
        await clock.advance(0.025)
    assert [n for _, n, _ in wire.sent] == [1, 2, 3]


async def test_at_most_one_write_per_interval_and_what_waits_merges_into_one() -> None:
    """A burst becomes one message per interval. Whatever waits merges into the single waiting
    message, the latest target of each key winning: a newer transition replaces an older one,
    a newer one-shot copy replaces the older, LoRA scales merge per path (docs/scope.md §3.2, §8-L)."""
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    coalescer = Coalescer(wire, 0.5, clock=clock)
    first = await coalescer.submit({"noise_scale": 0.1})
    burst = [
        transition("a", 4),
        {"noise_scale": 0.2, "vace_ref_images": ["/a.png"]},
        {"lora_scales": [{"path": "/x", "scale": 0.1}, {"path": "/y", "scale": 0.2}]},
        transition("b"),
        {"vace_ref_images": ["/b.png"], "lora_scales": [{"path": "/x", "scale": 0.9}]},
        {"noise_scale": 0.3},
    ]
    waiting = [asyncio.ensure_future(coalescer.submit(m)) for m in burst]
    await clock.settle()
    assert coalescer.pending == len(burst) and len(wire.sent) == 1
    await clock.advance(0.5)
    results = await asyncio.gather(*waiting)
    assert wire.messages == [
        {"noise_scale": 0.1},
        {"noise_scale": 0.3, "vace_ref_images": ["/b.png"],
         "lora_scales": [{"path": "/y", "scale": 0.2}, {"path": "/x", "scale": 0.9}], **transition("b")},
    ]
    assert wire.times == [0.0, 0.5]
    # Every caller learns the one message its update went out in, and what it carried.
    assert all(sent is results[0][1] for _, sent in results)
    assert (results[0][1].write, results[0][1].carries) == (2, len(burst))
    assert first[1].carries == 1 and coalescer.pending == 0


async def test_a_flood_of_transitions_never_builds_a_backlog() -> None:
    """The issue's 200 saves in 10 s, each a new transition, on a 0.75 s chunk: the old queue
    kept one slot per transition and ended up seconds behind. Now at most one message waits, so
    every update goes out within one interval and the line is idle one interval after the last."""
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    interval = 0.75
    coalescer = Coalescer(wire, interval, clock=clock)
    handed: list[tuple[float, asyncio.Future[tuple[float, Written]]]] = []
    for i in range(200):
        handed.append((clock.monotonic(), asyncio.ensure_future(coalescer.submit(transition(f"save {i}")))))
        await clock.advance(0.05)
        assert coalescer.pending <= 200 and len({id(s) for s in coalescer._pending}) <= 1
    await clock.advance(interval)
    assert all(future.done() for _, future in handed)
    delays = [mono(clock, future.result()[0]) - at for at, future in handed]
    assert max(delays) <= interval + 1e-9
    assert spaced(wire.times, interval)
    assert len(wire.sent) <= 10 / interval + 2
    assert wire.messages[-1] == transition("save 199")
    assert coalescer.pending == 0


async def test_a_timed_update_gives_way_to_an_expected_entry() -> None:
    """A keyframe sample due a quarter chunk before a scene entry would take the entry's slot
    (the real run's `verse` entry went out 501.7 ms late behind one): it waits and goes out
    merged into the entry, which is written on time."""
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    interval = 0.75
    coalescer = Coalescer(wire, interval, clock=clock)
    await coalescer.submit({"lora_scales": [{"path": "/w", "scale": 0.5}]}, entry=False)  # t 0
    await clock.advance(interval)
    coalescer.expect(clock.monotonic() + 0.25)  # the entry of the next scene
    keyframe = asyncio.ensure_future(
        coalescer.submit({"lora_scales": [{"path": "/w", "scale": 1.2}]}, entry=False)
    )
    await clock.advance(0.25)
    assert not keyframe.done() and len(wire.sent) == 1
    entry = await coalescer.submit(transition("verse"), entry=True)
    await clock.settle()
    assert keyframe.done() and keyframe.result() == entry
    assert wire.sent[1] == (1.0, 2, {"lora_scales": [{"path": "/w", "scale": 1.2}], **transition("verse")})
    assert entry[1].carries == 2
    # A sample that leaves the entry its slot is not held back.
    coalescer.expect(clock.monotonic() + 2 * interval)
    await clock.advance(interval)
    await coalescer.submit({"noise_scale": 0.4}, entry=False)
    assert wire.times[-1] == 1.75


async def test_a_held_update_goes_out_when_the_entry_does_not_come() -> None:
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    coalescer = Coalescer(wire, 0.75, clock=clock)
    coalescer.expect(0.25)
    held = asyncio.ensure_future(coalescer.submit({"noise_scale": 0.2}, entry=False))
    await clock.advance(0.25 + EXPECT_GRACE)
    assert held.done() and wire.times == [pytest.approx(0.25 + EXPECT_GRACE)]
    # Told that no entry comes after all, a held update goes at once.
    await clock.advance(1.0)
    coalescer.expect(clock.monotonic() + 0.3)
    held = asyncio.ensure_future(coalescer.submit({"noise_scale": 0.3}, entry=False))
    await clock.advance(0.1)
    assert not held.done()
    coalescer.expect(None)
    await clock.settle()
    assert held.done() and wire.times[-1] == pytest.approx(clock.monotonic())
    # Held or not, an update never waits longer than HOLD_LIMIT (0.5 s, the documented limit):
    # an entry further away than that waits for the next slot instead.
    await clock.advance(1.0)
    handed = clock.monotonic()
    coalescer.expect(handed + 0.45)
    held = asyncio.ensure_future(coalescer.submit({"noise_scale": 0.4}, entry=False))
    await clock.advance(1.0)
    assert held.done() and wire.times[-1] == pytest.approx(handed + HOLD_LIMIT)
    await clock.advance(1.0)
    handed = clock.monotonic()
    coalescer.expect(handed + 0.6)
    await coalescer.submit({"noise_scale": 0.5}, entry=False)
    assert wire.times[-1] == handed
    await clock.advance(0.6)
    entry = asyncio.ensure_future(coalescer.submit(transition("later")))
    await clock.advance(0.15)
    assert entry.done() and wire.times[-1] == pytest.approx(handed + 0.75)


async def test_an_entry_is_never_queued_behind_timed_updates() -> None:
    """Keyframe samples faster than the server's chunks (each a one-shot `lora_scales`, which
    the old queue never merged) and then an entry: the entry goes out at the next slot, with the
    waiting samples merged into it, never more than one interval after it was handed over."""
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    interval = 0.75
    coalescer = Coalescer(wire, interval, clock=clock)
    samples = []
    for i in range(20):
        samples.append(asyncio.ensure_future(
            coalescer.submit({"lora_scales": [{"path": "/w", "scale": i / 10}]}, entry=False)
        ))
        await clock.advance(0.25)
    handed = clock.monotonic()
    entry = asyncio.ensure_future(coalescer.submit(transition("drop"), entry=True))
    await clock.advance(interval)
    at, sent = entry.result()
    assert mono(clock, at) - handed <= interval
    assert sent == {"lora_scales": [{"path": "/w", "scale": 1.9}], **transition("drop")}
    assert all(s.done() for s in samples) and spaced(wire.times, interval)


async def test_prepared_updates_keep_their_wire_until_merged() -> None:
    clock = FakeClock(monotonic=0.0)
    written: list[dict[str, Any]] = []

    def write(message: dict[str, Any], number: int) -> float:
        written.append(message)
        return clock.time()

    coalescer = Coalescer(write, 0.5, clock=clock)
    alone = Prepared({"noise_scale": 0.1}, '{"noise_scale":0.1}')
    await coalescer.submit(alone)
    later = Prepared({"noise_scale": 0.2}, '{"noise_scale":0.2}')
    waiting = asyncio.ensure_future(coalescer.submit(later))
    await clock.advance(0.5)
    await waiting
    assert written[0] is alone and written[1] is later  # nothing merged: written as prepared
    one = asyncio.ensure_future(coalescer.submit(Prepared({"noise_scale": 0.3}, "x")))
    two = asyncio.ensure_future(coalescer.submit(Prepared({"base_seed": 3}, "y")))
    await clock.advance(0.5)
    await asyncio.gather(one, two)
    assert written[2] == {"noise_scale": 0.3, "base_seed": 3} and not isinstance(written[2], Prepared)


async def test_messages_for_other_nodes_are_not_merged() -> None:
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    coalescer = Coalescer(wire, 0.5, clock=clock)
    await coalescer.submit({"noise_scale": 0.1})
    pending = [asyncio.ensure_future(coalescer.submit(m)) for m in (
        {"node_id": "a", "noise_scale": 0.2}, {"noise_scale": 0.3}, {"node_id": "a", "noise_scale": 0.4},
    )]
    await clock.advance(1.0)
    await asyncio.gather(*pending)
    assert wire.messages[1:] == [{"node_id": "a", "noise_scale": 0.4}, {"noise_scale": 0.3}]
    assert wire.times == [0.0, 0.5, 1.0]


async def test_cancel_fails_waiting_messages_and_a_failed_write_fails_its_callers() -> None:
    """Closing the session fails queued updates instead of leaving callers hanging."""
    clock = FakeClock(monotonic=0.0)
    wire = Wire(clock)
    coalescer = Coalescer(wire, 10.0, clock=clock)
    await coalescer.submit({"noise_scale": 0.1})
    waiting = asyncio.ensure_future(coalescer.submit({"noise_scale": 0.2}))
    await clock.settle()
    coalescer.cancel(ScopeConnectError("closed"))
    with pytest.raises(ScopeConnectError, match="closed"):
        await waiting
    assert len(wire.sent) == 1 and coalescer.pending == 0
    await clock.advance(10.0)
    wire.fail = True
    with pytest.raises(ScopeConnectError):
        await coalescer.submit({"noise_scale": 0.3})


def test_merge_keeps_the_latest_target_of_each_key() -> None:
    older = {"prompts": [{"text": "a", "weight": 1.0}], **transition("a"), "noise_scale": 0.1,
             "output_sinks": {"ndi": {"enabled": True}}, "reset_cache": True}
    newer = {**transition("b"), "output_sinks": {"spout": {"enabled": False}}}
    assert merge(older, newer) == {
        "noise_scale": 0.1, "reset_cache": True, **transition("b"),
        "output_sinks": {"ndi": {"enabled": True}, "spout": {"enabled": False}},
    }
    assert merge(transition("a"), {"prompts": [{"text": "c", "weight": 1.0}]}) == {
        "prompts": [{"text": "c", "weight": 1.0}]
    }
