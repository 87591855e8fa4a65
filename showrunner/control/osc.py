"""OSC in and out, for lighting desks and TouchDesigner rigs. python-osc is used only here.

In (UDP, default 127.0.0.1): ``/showrunner/go``, ``/showrunner/back``, ``/showrunner/goto <name>``,
``/showrunner/hold``, ``/showrunner/resume``. Commands go through `showrunner.control.gate.Commands`,
so they are debounced and journaled like any other (source ``osc``).

Buttons on OSC surfaces send ``1`` when pressed and ``0`` when released; a numeric argument of
0 is therefore a release and does nothing. A string argument is a command id: a repeat with the
same id is applied once (``/showrunner/goto <name> [id]`` takes it second).

Out (UDP to a configured host:port): ``/showrunner/scene <name>``, ``/showrunner/next <name>``
(``""`` when there is none), ``/showrunner/countdown <seconds>`` (``-1.0`` when no countdown runs)
and ``/showrunner/state <connection state>``, each when it changes, the countdown about twice a
second while it runs, and all four every few seconds so a rig started late catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, cast

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import AsyncIOOSCUDPServer
from pythonosc.udp_client import UDPClient

from showrunner.control.gate import Commands, JournalEntry, Status

__all__ = ["PREFIX", "OscControl", "parse_address"]

log = logging.getLogger(__name__)

PREFIX = "/showrunner"
_INBOUND = ("go", "back", "goto", "hold", "resume")


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

    async def __aenter__(self) -> OscControl:
        loop = asyncio.get_running_loop()
        try:
            if self.port is not None:
                server = AsyncIOOSCUDPServer(
                    (self.host, self.port), self._dispatcher(), cast(asyncio.BaseEventLoop, loop)
                )
                self._transport, _ = await server.create_serve_endpoint()
                self.port = self._transport.get_extra_info("sockname")[1]
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

    def _dispatcher(self) -> Dispatcher:
        # strict_timing would sleep inside the event loop until a bundle's time tag: a
        # far-future tag would freeze the show. Bundles are handled on arrival instead.
        dispatcher = Dispatcher(strict_timing=False)
        for command in _INBOUND:
            dispatcher.map(f"{PREFIX}/{command}", self._on_message, command)
        return dispatcher

    def _on_message(self, address: str, fixed: list[Any], *args: Any) -> None:
        command: str = fixed[0]
        arg: str | None = None
        if command == "goto":
            if not args or not isinstance(args[0], str) or not args[0]:
                log.warning("OSC %s needs a scene name; got %r", address, args)
                return
            arg, args = args[0], args[1:]
        if args and isinstance(args[0], int | float) and not args[0]:
            return  # a button's release
        command_id = str(args[0]) if args and isinstance(args[0], str) and args[0] else None
        self._spawn(self.commands.run(command, arg, source="osc", command_id=command_id))

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
                await asyncio.wait_for(self._poke.wait(), self.poll_interval)

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
