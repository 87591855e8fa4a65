"""OSC in and out over UDP on 127.0.0.1, with python-osc on the other end."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any, cast

import pytest
from cue_show import DROP, TIMED, FakePlayer, playing, transitions_to, until_status
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import AsyncIOOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from showrunner.control.gate import Commands
from showrunner.control.osc import BadPacket, OscControl, parse_address, read_command
from showrunner.live.link import LinkState
from showrunner.sim import serve_sim
from showrunner.testing import MemoryJournal, until


class Receiver:
    """A python-osc server on 127.0.0.1 that keeps what it received."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple[Any, ...]]] = []
        self.port = 0

    def handle(self, address: str, *args: Any) -> None:
        self.messages.append((address, args))

    def values(self, address: str) -> list[Any]:
        return [args[0] for a, args in self.messages if a == address]

    async def wait_for(self, address: str, value: Any, timeout: float = 3.0) -> None:
        await until(lambda: value in self.values(address), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(rec.handle)
    loop = cast(asyncio.BaseEventLoop, asyncio.get_running_loop())
    server = AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, loop)
    transport, _ = await server.create_serve_endpoint()
    rec.port = transport.get_extra_info("sockname")[1]
    try:
        yield rec
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("[::1]:7000", ("::1", 7000)),
        (" td-rig.local:10000 ", ("td-rig.local", 10000)),
    ],
    ids=["ipv4", "ipv6", "name"],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9000", "host:", ":9000", "host:0", "host:70000", "host:x"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_address(text)


@pytest.mark.anyio
async def test_inbound_commands_reach_the_player_once() -> None:
    player = FakePlayer()
    journal = MemoryJournal()
    commands = Commands(player, min_go_interval=0.5, journal=journal)
    async with OscControl(commands, port=0) as osc:
        assert osc.port is not None
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            await press_in_order(sender, journal)
    assert player.calls == ["go", ("goto", "calm"), "hold", "resume", "back"]
    assert [(r["command"], r["source"], r["applied"], r["reason"]) for r in journal.records] == [
        ("go", "osc", True, None),
        ("go", "osc", False, "debounced"),
        ("goto", "osc", True, None),
        ("hold", "osc", True, None),
        ("resume", "osc", True, None),
        ("back", "osc", True, None),
    ]


async def press_in_order(sender: SimpleUDPClient, journal: MemoryJournal) -> None:
    sender.send_message("/showrunner/go", [])
    await until(lambda: len(journal.records) == 1)
    sender.send_message("/showrunner/go", [])  # inside the debounce window
    await until(lambda: len(journal.records) == 2)
    sender.send_message("/showrunner/goto", "calm")
    sender.send_message("/showrunner/hold", 1)
    sender.send_message("/showrunner/resume", 1.0)
    sender.send_message("/showrunner/back", [])
    await until(lambda: len(journal.records) == 6)


@pytest.mark.anyio
async def test_button_release_and_ids() -> None:
    player = FakePlayer()
    journal = MemoryJournal()
    commands = Commands(player, min_go_interval=0, journal=journal)
    async with OscControl(commands, port=0) as osc:
        assert osc.port is not None
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            sender.send_message("/showrunner/go", 0)  # release: nothing
            sender.send_message("/showrunner/go", 0.0)
            sender.send_message("/showrunner/go", "press-7")
            await until(lambda: len(journal.records) == 1)
            sender.send_message("/showrunner/go", "press-7")
            sender.send_message("/showrunner/goto", ["storm", "g1"])
            sender.send_message("/showrunner/goto", [])  # no scene: ignored, logged
            sender.send_message("/showrunner/stop", [])  # not an OSC command: ignored
            await until(lambda: len(journal.records) == 3)
            await asyncio.sleep(0.1)
    assert player.calls == ["go", ("goto", "storm")]
    assert [(r["command"], r["id"], r["reason"]) for r in journal.records] == [
        ("go", "press-7", None),
        ("go", "press-7", "duplicate"),
        ("goto", "g1", None),
    ]
    assert osc.bad.total == 2


@pytest.mark.anyio
async def test_status_goes_out_and_follows_changes(receiver: Receiver) -> None:
    player = FakePlayer()
    commands = Commands(player)
    async with OscControl(commands, port=None, out=f"127.0.0.1:{receiver.port}"):
        await receiver.wait_for("/showrunner/scene", "intro")
        await receiver.wait_for("/showrunner/next", "storm")
        await receiver.wait_for("/showrunner/state", "connected")
        await receiver.wait_for("/showrunner/countdown", -1.0)
        await commands.goto("calm", source="keyboard")
        await receiver.wait_for("/showrunner/scene", "calm")
        await receiver.wait_for("/showrunner/next", "")
        player.connection = LinkState.RECONNECTING
        await receiver.wait_for("/showrunner/state", "reconnecting")
    assert receiver.values("/showrunner/scene") == ["intro", "calm"]
    assert receiver.values("/showrunner/state") == ["connected", "reconnecting"]


@pytest.mark.anyio
async def test_a_running_countdown_is_sent_about_twice_a_second(receiver: Receiver) -> None:
    player = FakePlayer()
    player.countdown = 10.0
    commands = Commands(player)
    async with OscControl(commands, port=None, out=("127.0.0.1", receiver.port)):
        await receiver.wait_for("/showrunner/countdown", 10.0)
        for step in range(14):  # 1.4 s of a countdown that the player updates every 0.1 s
            await asyncio.sleep(0.1)
            player.countdown = 10.0 - 0.1 * (step + 1)
        sent = receiver.values("/showrunner/countdown")
        player.countdown = None
        await receiver.wait_for("/showrunner/countdown", -1.0)
    assert 3 <= len(sent) <= 4, sent  # the first value, then one every 0.5 s
    assert sent == sorted(sent, reverse=True)


@pytest.mark.anyio
async def test_everything_is_resent_for_late_listeners(receiver: Receiver) -> None:
    commands = Commands(FakePlayer())
    async with OscControl(
        commands, port=None, out=("127.0.0.1", receiver.port), refresh_interval=0.3
    ):
        await until(lambda: len(receiver.values("/showrunner/scene")) >= 3)
    assert set(receiver.values("/showrunner/scene")) == {"intro"}


def test_repr() -> None:
    osc = OscControl(Commands(None), port=9000, out="127.0.0.1:9001")
    assert repr(osc) == "OscControl(host='127.0.0.1', port=9000, out=('127.0.0.1', 9001))"


# -- with the real player on the simulator ---------------------------------------------------------





@pytest.mark.anyio
async def test_go_over_osc_advances_the_real_show_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An OSC GO reaches Scope as one prompt transition (docs/scope.md §3.3 `transition`); a
    second GO inside the debounce window changes nothing; status goes out over OSC."""
    journal = MemoryJournal()
    commands = Commands(None, min_go_interval=5, journal=journal)
    async with (
        serve_sim() as sim,
        OscControl(commands, port=0, out=("127.0.0.1", receiver.port)) as osc,
        playing(tmp_path, sim, commands.attach),
    ):
        await until_status(
            commands.status, scene="preshow", connection="connected", mode="waiting"
        )
        await receiver.wait_for("/showrunner/scene", "preshow")
        assert osc.port is not None
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            sender.send_message("/showrunner/go", 1)
            sender.send_message("/showrunner/go", 0)  # the button's release
            await until_status(commands.status, scene="first")
            sender.send_message("/showrunner/go", 1)
            await until(lambda: len(journal.records) == 2)
        await receiver.wait_for("/showrunner/scene", "first")
        await receiver.wait_for("/showrunner/next", "second")
        await asyncio.sleep(0.3)  # room for a wrong second advance to show
        assert (await commands.status()).scene == "first"
    assert transitions_to(sim, "a neon wave rising out of the harbour") == 1
    assert transitions_to(sim, "a slow aurora over a frozen sea") == 0
    assert [(r["source"], r["applied"], r["reason"]) for r in journal.records] == [
        ("osc", True, None),
        ("osc", False, "debounced"),
    ]
    assert "connected" in receiver.values("/showrunner/state")


# -- what an OSC sender may send -------------------------------------------------------------------


def raw(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address=address)
    for value in args:
        builder.add_arg(value)
    return builder.build().dgram


@pytest.mark.parametrize(
    ("address", "args"),
    [
        ("/showrunner/*", ()),  # an address pattern would fire every command
        ("/showrunner/{go,back,hold}", ()),
        ("/showrunner/go", (1, 2)),  # too many arguments
        ("/showrunner/go", (b"\x00\x01",)),  # a blob
        ("/showrunner/go", ("x" * 200,)),  # an id over the limit
        ("/showrunner/goto", ("n" * 60_000,)),  # a 60 KB scene name
        ("/showrunner/goto", (3,)),
        ("/showrunner/cue", ()),
    ],
)
def test_what_is_not_a_command(address: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(BadPacket):
        read_command(address, args)


def test_commands_and_releases() -> None:
    assert read_command("/showrunner/go", ()) == ("go", None, None)
    assert read_command("/showrunner/go", (1,)) == ("go", None, None)
    assert read_command("/showrunner/go", (0.0,)) is None  # a button's release
    assert read_command("/showrunner/go", (True,)) == ("go", None, None)
    assert read_command("/showrunner/cue", ("drop", "c1")) == ("cue", "drop", "c1")
    assert read_command("/showrunner/panic", ()) == ("panic", None, None)
    assert read_command("/showrunner/reload", ("r1",)) == ("reload", None, "r1")


@pytest.mark.anyio
async def test_random_packets_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """5,000 random datagrams: no traceback, no command, one log line for the first and at
    most a count afterwards."""
    import random

    player = FakePlayer()
    journal = MemoryJournal()
    commands = Commands(player, journal=journal)
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        async with OscControl(commands, port=0) as osc:
            assert osc.port is not None
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with closing(sock):
                for n in range(5000):
                    size = rng.randrange(0, 200)
                    data = bytes(rng.randrange(256) for _ in range(size))
                    if n % 3 == 0:  # half-valid: a real address with garbage after it
                        data = b"/showrunner/go\x00\x00,b\x00\x00" + data
                    sock.sendto(data, ("127.0.0.1", osc.port))
                    if n % 200 == 0:
                        await asyncio.sleep(0.01)
                # A loaded machine may still be draining the flood and drop a datagram when
                # its receive buffer is full: the hold is sent again until one arrives.
                for _ in range(20):
                    sock.sendto(raw("/showrunner/hold"), ("127.0.0.1", osc.port))
                    with contextlib.suppress(TimeoutError):
                        await until(lambda: player.calls, timeout=0.5)
                        break
            assert osc.bad.total > 1000
    finally:
        loop.set_exception_handler(None)
    assert errors == []
    assert player.calls and set(player.calls) == {"hold"}
    assert {r["command"] for r in journal.records} == {"hold"}
    bad_lines = [r for r in caplog.records if "OSC: ignored" in r.getMessage()]
    assert 1 <= len(bad_lines) <= 2
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.anyio
async def test_new_addresses_and_replies() -> None:
    """cue, panic, resume and reload arrive; every command is answered to its sender."""
    player = FakePlayer(reloadable=True)
    journal = MemoryJournal()
    commands = Commands(player, min_go_interval=0, journal=journal)
    replies = Receiver()
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(replies.handle)
    loop = cast(asyncio.BaseEventLoop, asyncio.get_running_loop())
    server = AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, loop)
    transport, _ = await server.create_serve_endpoint()
    try:
        async with OscControl(commands, port=0) as osc:
            assert osc.port is not None
            for message in (raw("/showrunner/cue", "drop"), raw("/showrunner/panic"),
                            raw("/showrunner/resume", 1), raw("/showrunner/reload"),
                            raw("/showrunner/goto", "nowhere")):
                count = len(replies.messages)
                transport.sendto(message, ("127.0.0.1", osc.port))
                await until(lambda: len(replies.messages) > count)  # noqa: B023
    finally:
        transport.close()
    assert player.calls == [("cue", "drop"), "panic", "resume", "reload"]
    assert [args for _, args in replies.messages] == [
        ("cue", "applied", "", ""),
        ("panic", "applied", "", ""),
        ("resume", "applied", "", ""),
        ("reload", "applied", "", ""),
        ("goto", "ignored", "unknown scene", "unknown scene 'nowhere'"),
    ]
    assert {a for a, _ in replies.messages} == {"/showrunner/reply"}


@pytest.mark.anyio
async def test_go_over_osc_starts_the_next_timed_scene(tmp_path: Path) -> None:
    """A show of timed 60 s scenes: an OSC GO starts the next one now (Scope gets its look)."""
    journal = MemoryJournal()
    commands = Commands(None, journal=journal)
    async with (
        serve_sim() as sim,
        OscControl(commands, port=0) as osc,
        playing(tmp_path, sim, commands.attach, text=TIMED),
    ):
        await until_status(commands.status, scene="one", connection="connected")
        assert osc.port is not None
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            sender.send_message("/showrunner/go", 1)
            await until_status(commands.status, scene="two")
        await until(lambda: transitions_to(sim, "a lighthouse in a storm") == 1)
    assert [(r["result"], r["detail"]) for r in journal.records] == [("applied", "two")]


@pytest.mark.anyio
async def test_a_named_cue_over_osc_starts_its_scene(tmp_path: Path) -> None:
    journal = MemoryJournal()
    commands = Commands(None, journal=journal)
    async with (
        serve_sim() as sim,
        OscControl(commands, port=0) as osc,
        playing(tmp_path, sim, commands.attach, text=DROP),
    ):
        await until_status(commands.status, scene="build", waiting_for="drop",
                           connection="connected")
        assert osc.port is not None
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            sender.send_message("/showrunner/cue", "drop")
            await until_status(commands.status, scene="drop")
        await until(lambda: transitions_to(sim, "a burst of light over the crowd") == 1)
    assert [(r["command"], r["arg"], r["applied"]) for r in journal.records] == [
        ("cue", "drop", True)
    ]


@pytest.mark.parametrize(
    ("address", "args", "why"),
    [
        ("/showrunner/input/", (0.5,), "not an input name"),
        ("/showrunner/input/a/b", (0.5,), "not an input name"),
        ("/showrunner/input/level", (), "takes one number"),
        ("/showrunner/input/level", ("x",), "takes one number"),
        ("/showrunner/input/level", (True,), "takes one number"),
        ("/showrunner/input/level", (0.1, 0.2), "takes one number"),
        ("/showrunner/input/level", (float("inf"),), "not a finite number"),
    ],
)
def test_input_messages_are_checked(address: str, args: tuple[Any, ...], why: str) -> None:
    from showrunner.control.osc import BadPacket, read_input

    with pytest.raises(BadPacket, match=why):
        read_input(address, args)


def test_an_input_message_reads_name_and_value() -> None:
    from showrunner.control.osc import read_input

    assert read_input("/showrunner/input/level", (1,)) == ("level", 1.0)


# -- tempo -----------------------------------------------------------------------------------------


def _runner(name: str, bpm: float = 120.0) -> Any:
    import time

    from showrunner.sync.runner import TempoRunner
    from showrunner.sync.sources import SourceContext, SourceOptions

    return TempoRunner(SourceOptions(name, bpm=bpm), SourceContext(time.monotonic))


@pytest.mark.anyio
async def test_taps_set_the_tempo_and_every_answer_goes_back(receiver: Receiver) -> None:
    """/showrunner/tap presses (0 is a release) tap the tempo; /showrunner/bpm on a fixed tempo
    is refused in the reply; the tempo, bar and beat go out."""
    runner = _runner("tap")
    task = asyncio.create_task(runner.run())
    commands = Commands(FakePlayer())
    async with OscControl(commands, port=0, out=f"127.0.0.1:{receiver.port}") as osc:
        osc.tempo = runner
        await receiver.wait_for("/showrunner/tempo", 120.0)
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            for _ in range(4):
                sender.send_message("/showrunner/tap", 1)
                sender.send_message("/showrunner/tap", 0)
                await asyncio.sleep(0.3)
            await until(lambda: abs(runner.status().bpm - 200.0) < 30, 3.0)
            replies = [args for address, args in receiver.messages if address == "/showrunner/reply"]
            assert len(replies) == 4 and all(r[:2] == ("tap", "applied") for r in replies)
            assert replies[0][3] == ""  # the first tap of a count sets no tempo
            sent = runner.tempo_status()["bpm"]
            await until(lambda: abs(receiver.values("/showrunner/tempo")[-1] - sent) < 0.01, 3.0)
            beats = receiver.values("/showrunner/beat")
            assert set(beats) <= {1, 2, 3, 4} and len(set(beats)) >= 2  # the beat counts
            assert receiver.values("/showrunner/bar")[0] == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.anyio
async def test_bpm_on_a_fixed_tempo_or_a_bad_value_changes_nothing(receiver: Receiver) -> None:
    runner = _runner("fixed", 100.0)
    task = asyncio.create_task(runner.run())
    async with OscControl(Commands(FakePlayer()), port=0, out=("127.0.0.1", receiver.port)) as osc:
        osc.tempo = runner
        with closing(SimpleUDPClient("127.0.0.1", osc.port)) as sender:
            sender.send_message("/showrunner/bpm", 128.0)
            await until(lambda: [a for a, _ in receiver.messages if a == "/showrunner/reply"], 3.0)
            sender.send_message("/showrunner/bpm", [128.0, 1.0])
            sender.send_message("/showrunner/bpm", True)
            await until(lambda: osc.bad.total == 2, 3.0)
    reply = next(args for address, args in receiver.messages if address == "/showrunner/reply")
    assert reply == ("bpm", "ignored", "refused",
                     "the fixed tempo cannot be changed here (tempo source tap, osc, link or scope can)")
    assert runner.status().bpm == 100.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
