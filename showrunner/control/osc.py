"""OSC in and out, for lighting desks and TouchDesigner rigs. python-osc is used only here.

In (UDP, default 127.0.0.1): ``/showrunner/go``, ``/showrunner/cue <name>``,
``/showrunner/back``, ``/showrunner/goto <name>``, ``/showrunner/hold``, ``/showrunner/resume``,
``/showrunner/panic``, ``/showrunner/reload``. Commands go through
`showrunner.control.gate.Commands`, so they are debounced and journaled like any other (source
``osc``); each is answered with ``/showrunner/reply <command> <result> <reason> <detail>`` to
the sender (and to the status address).

Buttons on OSC surfaces send ``1`` when pressed and ``0`` when released; a numeric argument of
0 is therefore a release and does nothing. A string argument is a command id: a repeat with the
same id is applied once (``/showrunner/goto <name> [id]`` takes it second).

Live inputs: ``/showrunner/input/<name> <float>`` sets the show's input ``<name>`` (0-1, as a
TouchDesigner audio-analysis patch sends it many times a second); it is not a command (no
journal line, no reply). A value for an input the show does not have is a bad packet.

Tempo (`showrunner.control.tempo.TempoControl`): ``/showrunner/tap`` (a button: ``0`` is its
release) taps the tempo and ``/showrunner/bpm <float>`` sets it; each is answered with
``/showrunner/reply tap|bpm applied|ignored <reason> <bpm or error>``. A bad value is one
logged line and changes nothing.

Only exact addresses are taken (no OSC address patterns: one packet is at most one command per
message), and arguments are checked: a packet that does not parse, an unknown address or wrong
arguments are counted and logged (the first one, then a count every ten seconds), never
carried out.

Out (UDP to a configured host:port): ``/showrunner/scene <name>``, ``/showrunner/next <name>``
(``""`` when there is none), ``/showrunner/countdown <seconds>`` (``-1.0`` when no countdown runs)
and ``/showrunner/state <connection state>``, each when it changes, the countdown about twice a
second while it runs, and all four every few seconds so a rig started late catches up. With
a tempo: ``/showrunner/tempo <bpm>`` when it changes, ``/showrunner/bar <n>`` and
``/showrunner/beat <n>`` (both from 1) as they count, each sent just after the beat falls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from pythonosc.udp_client import UDPClient

from showrunner.control.gate import MAX_ID, MAX_NAME, Commands, JournalEntry, Outcome, Status
from showrunner.control.tempo import TempoControl
from showrunner.errors import ShowrunnerError

__all__ = [
    "INPUT", "PREFIX", "BadPackets", "InputSetter", "OscControl", "parse_address", "read_command",
    "read_input",
]

log = logging.getLogger(__name__)

PREFIX = "/showrunner"
#: Inbound commands, and whether each takes a name first.
_INBOUND = {
    "go": False, "cue": True, "back": False, "goto": True, "hold": False, "resume": False,
    "panic": False, "reload": False,
}
_TEMPO = (f"{PREFIX}/tap", f"{PREFIX}/bpm")
_MAX_MESSAGES = 16  # commands one packet (a bundle) may carry
_REPORT_EVERY = 10.0  # seconds between two lines about bad packets


class BadPacket(ValueError):
    """An OSC packet or message that is not a command (it is counted, not carried out)."""


def read_command(address: str, args: tuple[Any, ...]) -> tuple[str, str | None, str | None] | None:
    """(command, name, id) of one OSC message; None for a button's release; BadPacket when the
    message is not a command (unknown or pattern address, wrong arguments, too long)."""
    command = address[len(PREFIX) + 1 :] if address.startswith(PREFIX + "/") else ""
    if command not in _INBOUND:
        raise BadPacket(f"unknown address {_short(address)!r}")
    name: str | None = None
    rest = list(args)
    if _INBOUND[command]:
        if not rest or not isinstance(rest[0], str) or not rest[0].strip():
            raise BadPacket(f"{address} needs a name first")
        name = rest.pop(0)
        if len(name) > MAX_NAME:
            raise BadPacket(f"{address}: the name is over {MAX_NAME} characters")
    if len(rest) > 1:
        raise BadPacket(f"{address}: too many arguments ({len(args)})")
    if not rest:
        return command, name, None
    value = rest[0]
    if isinstance(value, str):
        if not value or len(value) > MAX_ID:
            raise BadPacket(f"{address}: a command id is 1 to {MAX_ID} characters")
        return command, name, value
    if isinstance(value, bool):
        return (command, name, None) if value else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return (command, name, None) if value else None  # 0: a button's release
    raise BadPacket(f"{address}: cannot take {type(value).__name__} {_short(repr(value))}")


INPUT = PREFIX + "/input/"

#: Sets a live input: (name, value) -> whether the show took it.
InputSetter = Callable[[str, float], bool]


def read_input(address: str, args: tuple[Any, ...]) -> tuple[str, float]:
    """(name, value) of a ``/showrunner/input/<name> <float>`` message; BadPacket otherwise."""
    name = address[len(INPUT):]
    if not name or len(name) > MAX_NAME or "/" in name:
        raise BadPacket(f"{_short(address)}: not an input name")
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int | float):
        raise BadPacket(f"{_short(address)} takes one number")
    value = float(args[0])
    if not math.isfinite(value):
        raise BadPacket(f"{_short(address)}: {value} is not a finite number")
    return name, value


def _short(text: str, keep: int = 60) -> str:
    return text if len(text) <= keep else text[:keep] + "…"


class BadPackets:
    """Counts packets that were not commands; logs the first, then a count every ten seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = 0
        self._clock = clock
        self._since = 0  # bad packets not yet reported
        self._reported_at: float | None = None

    def add(self, sender: Any, why: str) -> None:
        self.total += 1
        now = self._clock()
        if self._reported_at is None:
            log.warning("OSC: ignored a packet from %s: %s", _peer(sender), why)
            self._reported_at = now
            return
        self._since += 1
        if now - self._reported_at >= _REPORT_EVERY:
            log.warning("OSC: ignored %d more bad packet(s) in %.0f s (%d in all; last from %s: %s)",
                        self._since, now - self._reported_at, self.total, _peer(sender), why)
            self._since, self._reported_at = 0, now


def _peer(sender: Any) -> str:
    if isinstance(sender, tuple) and len(sender) >= 2:
        return f"{sender[0]}:{sender[1]}"
    return str(sender)


class _Inbound(asyncio.DatagramProtocol):
    """Parses each datagram itself: nothing a sender does reaches asyncio as an exception."""

    def __init__(self, on_message: Callable[[str, tuple[Any, ...], Any], None], bad: BadPackets) -> None:
        self.on_message = on_message
        self.bad = bad

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as exc:  # ParseError, and whatever a crafted packet makes the parser do
            self.bad.add(addr, f"not an OSC packet ({_short(str(exc))})")
            return
        if len(messages) > _MAX_MESSAGES:
            self.bad.add(addr, f"a bundle of {len(messages)} messages (at most {_MAX_MESSAGES})")
            return
        for message in messages:
            try:
                self.on_message(message.address, tuple(message.params), addr)
            except BadPacket as exc:
                self.bad.add(addr, str(exc))
            except Exception as exc:
                self.bad.add(addr, f"unreadable message ({_short(str(exc))})")

    def error_received(self, exc: Exception) -> None:
        log.debug("OSC socket: %s", exc)  # e.g. a reply's receiver is gone


def parse_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (or ``"[::1]:PORT"``) as a (host, port) pair; ValueError says what is wrong."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:9000)")
    return host, int(port_text)


class OscControl:
    """OSC listener and status sender around one `Commands`, as an async context manager.

    `port` is the UDP port to listen on (0 picks one, None listens nowhere); `out` is where
    status goes (None sends nothing). The actual inbound port is `.port` once started.
    """

    def __init__(
        self,
        commands: Commands,
        *,
        host: str = "127.0.0.1",
        port: int | None = 0,
        out: tuple[str, int] | str | None = None,
        poll_interval: float = 0.1,
        countdown_interval: float = 0.5,
        refresh_interval: float = 5.0,
    ) -> None:
        self.commands = commands
        self.host = host
        self.port = port
        self.out = parse_address(out) if isinstance(out, str) else out
        self.poll_interval = poll_interval
        self.countdown_interval = countdown_interval
        self.refresh_interval = refresh_interval
        self._transport: asyncio.BaseTransport | None = None
        self._client: UDPClient | None = None
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poke = asyncio.Event()
        self._stop_listening: Any = None
        self._sent: dict[str, Any] = {}
        self._countdown_at = 0.0
        self._refresh_at = 0.0
        self.bad = BadPackets()
        self.inputs: InputSetter | None = None  # set once a show with inputs plays
        self.tempo: TempoControl | None = None  # the run's tempo, once the show is loaded

    async def __aenter__(self) -> OscControl:
        loop = asyncio.get_running_loop()
        try:
            if self.port is not None:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Inbound(self._on_message, self.bad), local_addr=(self.host, self.port)
                )
                self._transport = transport
                self.port = transport.get_extra_info("sockname")[1]
            if self.out is not None:
                host, port = self.out
                # getaddrinfo may block on a DNS name.
                self._client = await asyncio.to_thread(UDPClient, host, port)
                self._stop_listening = self.commands.listen(self._on_journal)
                self._sender = loop.create_task(self._send_loop())
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        tasks = [t for t in (self._sender, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sender = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def notify(self) -> None:
        """Send changed status now rather than at the next poll (e.g. from a player callback)."""
        self._poke.set()

    # -- inbound ------------------------------------------------------------------------------

    def _on_message(self, address: str, args: tuple[Any, ...], sender: Any) -> None:
        if address.startswith(INPUT):
            self._set_input(*read_input(address, args))
            return
        if address in _TEMPO:
            self._on_tempo(address, args, sender)
            return
        read = read_command(address, args)
        if read is None:
            return  # a button's release
        command, name, command_id = read
        self._spawn(self._run(command, name, command_id, sender))

    def _set_input(self, name: str, value: float) -> None:
        if self.inputs is None or not self.inputs(name, value):
            raise BadPacket(f"the show has no input {_short(name)!r}")

    async def _run(self, command: str, name: str | None, command_id: str | None, sender: Any) -> None:
        outcome = await self.commands.run(command, name, source="osc", command_id=command_id)
        self._reply(outcome, sender)

    def _on_tempo(self, address: str, args: tuple[Any, ...], sender: Any) -> None:
        """``/showrunner/tap [1|0]`` or ``/showrunner/bpm <number>``; BadPacket for wrong arguments."""
        if address.endswith("/tap"):
            if len(args) > 1:
                raise BadPacket(f"{address}: too many arguments ({len(args)})")
            if args and isinstance(args[0], int | float) and not args[0]:
                return  # a button's release
            self._spawn(self._tempo_call("tap", None, sender))
            return
        if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int | float):
            raise BadPacket(f"{address} takes one number, the bpm")
        self._spawn(self._tempo_call("bpm", args[0], sender))

    async def _tempo_call(self, command: str, value: object, sender: Any) -> None:
        tempo = self.tempo
        try:
            if tempo is None:
                raise ShowrunnerError("no show running")
            bpm = await tempo.tap() if value is None else await tempo.set_bpm(value)
        except (ValueError, ShowrunnerError) as exc:
            log.warning("OSC: %s from %s ignored: %s", command, _peer(sender), exc)
            self._reply(Outcome(command, False, reason="refused", error=str(exc)), sender)
            return
        self._reply(Outcome(command, True, detail="" if bpm is None else f"{bpm:g}"), sender)
        self._poke.set()

    def _reply(self, outcome: Outcome, sender: Any) -> None:
        """``/showrunner/reply <command> <result> <reason> <detail>`` to the sender and `out`."""
        builder = OscMessageBuilder(address=f"{PREFIX}/reply")
        for value in (outcome.command, outcome.result, outcome.reason or "",
                      outcome.detail or outcome.error or ""):
            builder.add_arg(value)
        packet = builder.build().dgram
        sendto = getattr(self._transport, "sendto", None)
        if sendto is not None and sender is not None:
            with contextlib.suppress(OSError):
                sendto(packet, sender)
        if self._client is not None and self.out is not None and tuple(self.out) != tuple(sender or ()):
            with contextlib.suppress(OSError):
                self._client.send(builder.build())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("OSC command failed", exc_info=task.exception())

    # -- outbound -----------------------------------------------------------------------------

    def _on_journal(self, entry: JournalEntry) -> None:
        self._poke.set()

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._poke.clear()
            try:
                self._send_changes(await self.commands.status(), loop.time())
            except Exception:
                log.exception("could not read the status for OSC")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self._next_look())

    def _next_look(self) -> float:
        """Seconds until the status is read again: the poll interval, or less to send the next
        beat just after it falls."""
        if self.tempo is None:
            return self.poll_interval
        tempo = self.tempo.tempo_status()
        if not tempo["playing"] or tempo["bpm"] <= 0:
            return self.poll_interval
        to_beat = (1.0 - float(tempo["beat"]) % 1.0) * 60.0 / float(tempo["bpm"])
        return min(self.poll_interval, to_beat + 0.001)

    def _send_changes(self, status: Status, now: float) -> None:
        refresh = now >= self._refresh_at
        if refresh:
            self._refresh_at = now + self.refresh_interval
        values: dict[str, Any] = {
            "scene": status.scene or "",
            "next": status.next or "",
            "state": str(status.connection),
        }
        for key, value in values.items():
            if refresh or self._sent.get(key) != value:
                self._send(key, value)
        if self.tempo is not None:
            tempo = self.tempo.tempo_status()
            beats: dict[str, Any] = {"tempo": round(float(tempo["bpm"]), 2), "bar": tempo["bar"],
                                     "beat": tempo["beat_in_bar"]}
            for key, beat_value in beats.items():
                if refresh or self._sent.get(key) != beat_value:
                    self._send(key, beat_value)
        countdown = status.countdown
        value = -1.0 if countdown is None else round(max(countdown, 0.0), 3)
        previous = self._sent.get("countdown")
        started_or_stopped = (previous == -1.0) != (value == -1.0) or previous is None
        due = now >= self._countdown_at and value != previous
        if refresh or started_or_stopped or due:
            self._send("countdown", value)
            self._countdown_at = now + self.countdown_interval

    def _send(self, key: str, value: str | float) -> None:
        self._sent[key] = value
        if self._client is None:
            return
        builder = OscMessageBuilder(address=f"{PREFIX}/{key}")
        builder.add_arg(value)
        try:
            self._client.send(builder.build())
        except OSError as exc:
            # Nobody listening, or a full buffer: status is re-sent, so one loss is harmless.
            log.debug("OSC send to %s failed: %s", self.out, exc)

    def __repr__(self) -> str:
        return f"OscControl(host={self.host!r}, port={self.port!r}, out={self.out!r})"
