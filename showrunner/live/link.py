"""The player's link to Scope: one `Sink` opened, switched and closed from one place, every
message written and journaled, and the watchdog that rebuilds a failed session.

Nothing here raises because Scope went away: a failed send, open or switch is journaled as an
error and the show goes on. The watchdog (a side task of the run) checks ``sink.connected``
every half second and asks ``sink.liveness()`` every two seconds (or at once when the quick
check fails); on a problem it reconnects with exponential backoff (0.5 s doubling, capped at
10 s, forever), opening the new session with the full state of the wall-clock-correct position.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from showrunner.errors import ShowrunnerError
from showrunner.live.clock import Clock
from showrunner.live.eager import start_eagerly
from showrunner.live.events import EventLog
from showrunner.live.sink import Sink
from showrunner.plan.timeline import Action, State, resolve_refs, switch_estimate

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_START",
    "HEALTH_PERIOD",
    "WATCHDOG_PERIOD",
    "LinkState",
    "Refs",
    "ScopeLink",
    "Target",
]

log = logging.getLogger("showrunner.live.link")

WATCHDOG_PERIOD = 0.5
HEALTH_PERIOD = 2.0
BACKOFF_START = 0.5
BACKOFF_CAP = 10.0
# Background work (health checks, garbage collection) keeps this far from the next event.
_QUIET_BEFORE_EVENT = 0.05


class LinkState(enum.StrEnum):
    """Where the link to Scope stands (the status's ``connection``)."""

    STARTING = "starting"  # no session opened yet
    CONNECTING = "connecting"  # a session is being opened or switched
    CONNECTED = "connected"
    DOWN = "down"  # an open or switch failed; the watchdog reconnects
    RECONNECTING = "reconnecting"  # the watchdog is rebuilding the session
    CLOSED = "closed"  # the run is over


@dataclass(frozen=True)
class Target:
    """Where the show is, for a reconnection: the state there, the scene and the offset into it."""

    state: State
    scene: str
    offset: float


class Refs:
    """``@asset:``/``@lora:`` references and the server paths they resolve to."""

    def __init__(
        self, log: EventLog, assets: Mapping[str, str] | None, loras: Mapping[str, str] | None
    ) -> None:
        self.log = log
        self.assets = dict(assets or {})
        self.loras = dict(loras or {})

    def __repr__(self) -> str:
        return f"Refs(assets={len(self.assets)}, loras={len(self.loras)})"

    def resolve(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """`message` with its references replaced by server paths (a copy)."""
        try:
            return resolve_refs(message, self.assets, self.loras)
        except ShowrunnerError as exc:  # sent as written: Scope drops a bad path (contract §8-L)
            self.log.error(f"cannot resolve a reference: {exc}")
            return copy.deepcopy(dict(message))


class ScopeLink:
    """The one link from the player to Scope, through a `Sink`.

    `target` tells where the show is (for a reconnection); `pause_holds` whether a pause the
    player made itself (panic, closed hours) still holds.
    """

    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        log: EventLog,
        refs: Refs,
        *,
        target: Callable[[], Target],
        pause_holds: Callable[[], bool],
        watchdog_period: float = WATCHDOG_PERIOD,
        health_period: float = HEALTH_PERIOD,
        backoff: tuple[float, float] = (BACKOFF_START, BACKOFF_CAP),
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.log = log
        self.refs = refs
        self.watchdog_period = watchdog_period
        self.health_period = health_period
        self.backoff = backoff
        self.state = LinkState.STARTING
        self.opened = False  # a session was opened once (later ones switch)
        self.live_key: tuple[Any, ...] | None = None  # the open session's pipeline setup
        self.missed = 0  # messages and switches that did not reach Scope (a reconnect resyncs)
        self.paused_by_us = False  # Scope is paused by a panic or closed hours, not by the show
        self.prerolled: State | None = None  # what the session was just opened with
        # While a session opens or switches: its pipelines and about how long it takes (s).
        self.opening: tuple[tuple[str, ...], float] | None = None
        self._live_state: State | None = None  # the state the open session was opened in
        self._target = target
        self._pause_holds = pause_holds
        self._generation = 0  # counts session (re)opens: a liveness answer from before one is stale
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[tuple[float, dict[str, Any]]]] = set()
        self._last_health = float("-inf")
        self._stopping = False

    def __repr__(self) -> str:
        return f"ScopeLink({self.state.value!r}, sink={self.sink!r})"

    # -- sessions ----------------------------------------------------------------------------

    async def session(
        self,
        state: State,
        initial: Mapping[str, Any],
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float | None = None,
    ) -> None:
        """Open (the first time) or switch the session to `state`'s pipelines, with `initial`."""
        chain = list(state.chain)
        load_params = self.refs.resolve(state.load_params)
        initial = self.refs.resolve(initial)
        if self.state in (LinkState.DOWN, LinkState.RECONNECTING):
            self.missed += 1
            self.log.record("error", planned=planned, label=label, scene=scene, message=initial,
                            offset=offset, error=f"not switched: Scope is {self.state}")
            return
        async with self._lock:
            kind = "switch" if self.opened else "session"
            started = self.clock.time()
            self.state = LinkState.CONNECTING
            self.opening = (tuple(chain), switch_estimate(self._live_state, state))
            self.log.status_changed()
            try:
                if self.opened:
                    gap = await self.sink.switch(chain, load_params, initial)
                else:
                    gap = await self.sink.open(chain, load_params, initial)
            except asyncio.CancelledError:
                self.opening = None
                raise
            except Exception as exc:
                self.opening = None
                self.opened = True  # a later attempt must close what may be half open
                self.live_key = None
                self.state = LinkState.DOWN
                self.log.error(f"{scene}: {kind} failed: {exc}", planned=planned, label=label,
                               scene=scene, message=initial, offset=offset)
                return
            self._connected(state)
        self.log.record(kind, planned=planned, sent_at=started, label=label, scene=scene,
                        message=initial, offset=offset, gap=round(gap, 4), chain=chain,
                        load_params=load_params,
                        text=f"{'opened' if kind == 'session' else 'switched'} "
                        f"{'+'.join(chain)} in {gap:.2f} s")

    async def put(
        self,
        state: State,
        entry: Action | None,
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float,
    ) -> None:
        """Put Scope into `state` (a jump, seek, catch-up or reopening): a new session when the
        pipelines differ, else one message with the full state. `entry` is the scene's entry
        action when entering at its start (its own transition and one-shots are kept)."""
        prerolled, self.prerolled = self.prerolled, None
        if prerolled is not None and prerolled == state and self.live_key == state.session_key:
            return  # the session was opened in exactly this state a moment ago
        if not self.opened or state.session_key != self.live_key:
            message = entry.message if entry is not None and entry.kind == "session" else (
                state.initial_parameters()
            )
            await self.session(state, message, planned=planned, label=label, scene=scene,
                               offset=offset)
            return
        full = dict(state.resync_message())
        if entry is not None and entry.kind == "send":
            full.update(entry.message)
        self.unpause(full)
        await self.send(self.refs.resolve(full), planned=planned, label=label, scene=scene,
                        offset=offset)

    def unpause(self, message: dict[str, Any]) -> None:
        """Lift our own pause (panic, closed hours) in a full-state message, unless it still holds."""
        if self.paused_by_us and "paused" not in message and not self._pause_holds():
            message["paused"] = False

    def _connected(self, state: State) -> None:
        self.opening = None
        self._live_state = state
        self.opened = True
        self.live_key = state.session_key
        self.state = LinkState.CONNECTED
        self._generation += 1

    # -- messages ----------------------------------------------------------------------------

    async def send(
        self,
        body: dict[str, Any],
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float | None = None,
    ) -> None:
        """Hand `body` (references resolved) to the sink now; journaled when it has gone out.

        The sink may hold a message back to respect the server's one-update-per-chunk intake
        (merging later ones into it), so the send runs as its own task: the main loop never
        waits for a slot and keeps to the schedule.
        """
        if "paused" in body:
            self.paused_by_us = bool(body["paused"]) and label in ("panic", "closed")
        if self.state is not LinkState.CONNECTED:
            self.missed += 1
            self.log.record("error", planned=planned, label=label, scene=scene, message=body,
                            offset=offset, error=f"not sent: Scope is {self.state}")
            return
        task = start_eagerly(self.sink.send(body))
        if task.done():
            # One turn of the loop first: the transport's flush, queued by the write, puts the
            # message on the wire before the journal and the look-ahead for the next event run.
            await asyncio.sleep(0)
            self._sent(task, body, planned=planned, label=label, scene=scene, offset=offset)
            return
        self._inflight.add(task)
        task.add_done_callback(
            lambda t: self._sent(t, body, planned=planned, label=label, scene=scene, offset=offset)
        )

    def _sent(
        self,
        task: asyncio.Future[tuple[float, dict[str, Any]]],
        body: Mapping[str, Any],
        *,
        planned: float,
        label: str,
        scene: str,
        offset: float | None,
    ) -> None:
        self._inflight.discard(task)
        if task.cancelled():
            self.missed += 1
            self.log.record("error", planned=planned, label=label, scene=scene, message=body,
                            offset=offset, error="not sent: cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self.missed += 1
            self.log.error(f"{scene}: {label} not sent: {exc}", planned=planned, label=label,
                           scene=scene, message=body, offset=offset)
            return
        sent_at, sent = task.result()
        self.log.record("send", planned=planned, sent_at=sent_at, label=label, scene=scene,
                        message=sent, offset=offset)

    async def close(self) -> None:
        """Close the session for good; sends still in flight are journaled as they fail."""
        self._stopping = True
        self.state = LinkState.CLOSED
        try:
            await self.sink.close()
        except Exception as exc:  # closing must never hide the real outcome
            log.error("closing the Scope session failed: %s", exc)
        if self._inflight:  # the close failed whatever was still waiting; journal it
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await asyncio.sleep(0)

    def stop(self) -> None:
        """The run is ending: no new reconnection attempts."""
        self._stopping = True

    # -- the watchdog ------------------------------------------------------------------------

    async def watch(self, room: Callable[[], float], idle: Callable[[], None]) -> None:
        """The watchdog (runs until cancelled). `room()` is the time until the next planned
        event (checks keep away from it); `idle()` is called at every tick."""
        while True:
            await self._doze(self.watchdog_period)
            if (left := room()) < _QUIET_BEFORE_EVENT:
                # A health check answered just before a cue would share the loop with it.
                await self._doze(left + 0.005)
            idle()
            if self._lock.locked() or self.state in (LinkState.STARTING, LinkState.CLOSED):
                continue
            # A closed peer connection or channel shows locally at once; the full check (an
            # HTTP round trip, ~3 ms of CPU) runs every `health_period`, or when that fails.
            now = self.clock.monotonic()
            if self.state is LinkState.CONNECTED and self._sink_connected() and (
                now - self._last_health < self.health_period
            ):
                continue
            self._last_health = now
            generation = self._generation
            try:
                reason = await self.sink.liveness()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"liveness check failed: {exc}"
            if reason is None and self.state is LinkState.DOWN:
                reason = "the session is down"
            if reason is None or self._lock.locked() or generation != self._generation:
                continue
            log.warning("Scope session problem: %s", reason)
            self.log.record("watchdog", label=reason, text=f"Scope: {reason}", level="warning")
            await self.reconnect(reason)

    def _sink_connected(self) -> bool:
        try:
            return bool(self.sink.connected)
        except Exception:  # a sink that cannot tell gets the full check
            return False

    async def _doze(self, seconds: float) -> None:
        await self.clock.doze(self.clock.monotonic() + seconds)

    async def reconnect(self, reason: str) -> None:
        """Switch to a new session at the show's position until one opens (backoff between)."""
        delay, cap = self.backoff
        attempt = 0
        self.state = LinkState.RECONNECTING
        self.log.status_changed()
        while not self._stopping:
            attempt += 1
            missed = self.missed
            target = self._target()
            initial = self.refs.resolve(target.state.initial_parameters())
            if self.paused_by_us:
                initial["paused"] = True  # still frozen (panic) or closed: stay so
            started = self.clock.time()
            try:
                async with self._lock:
                    gap = await self.sink.switch(
                        list(target.state.chain), self.refs.resolve(target.state.load_params), initial
                    )
                    self._connected(target.state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.record("reconnect", sent_at=started, label="failed", scene=target.scene,
                                attempt=attempt, reason=reason, error=str(exc), retry_in=delay,
                                text=f"reconnect {attempt} failed: {exc}; retry in {delay:g} s",
                                level="warning")
                self.log.errors.append(f"reconnect {attempt}: {exc}")
                await self._doze(delay)
                delay = min(delay * 2, cap)
                continue
            self.log.record("reconnect", sent_at=started, label="ok", scene=target.scene,
                            attempt=attempt, reason=reason, offset=round(target.offset, 6),
                            gap=round(gap, 4), message=initial,
                            text=f"reconnected after {attempt} attempt(s): {target.scene} "
                            f"+{target.offset:.1f}s")
            if self.missed != missed:
                # The show moved on while reconnecting: bring Scope to where it is now.
                await self._resync()
            return

    async def _resync(self) -> None:
        target = self._target()
        if target.state.session_key != self.live_key:
            await self.reconnect("the show changed pipelines during the reconnection")
            return
        message = dict(target.state.resync_message())
        self.unpause(message)
        await self.send(self.refs.resolve(message), planned=self.clock.monotonic(), label="resync",
                        scene=target.scene, offset=target.offset)
