"""The player's link to Scope: one `Sink` opened, switched and closed from one place, every
message written and journaled, and the watchdog that rebuilds a failed session.

Nothing here raises because Scope went away: a failed send, open or switch is journaled as an
error and the show goes on. The journal has one ``send`` line per message actually written
(listing the planned updates merged into it) and a ``lost`` line for each write the server never
acknowledged before its connection closed.

The watchdog (a side task of the run) checks every half second, locally, that the session is
connected and that frames arrive (no frame for ``STALL_AFTER`` s: the server *stalled*); the
full check, ``sink.liveness()`` with its ``/health`` request, runs in a task of its own every
two seconds (or at once when the local check fails) and counts only when it answers within
``HEALTH_TIMEOUT`` s, so a server that hangs is seen by its frames whatever ``/health`` does. On
a problem it reconnects with exponential backoff (0.5 s doubling, capped at 10 s, forever),
opening the new session with the full state of the wall-clock-correct position.
"""

from __future__ import annotations

import asyncio
import collections
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
from showrunner.live.sink import PacedSink, Sink
from showrunner.plan.timeline import Action, ScheduledScene, State, resolve_refs, switch_estimate

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_START",
    "HEALTH_PERIOD",
    "HEALTH_TIMEOUT",
    "STALL_AFTER",
    "WATCHDOG_PERIOD",
    "LinkState",
    "Refs",
    "ScopeLink",
    "Target",
]

log = logging.getLogger("showrunner.live.link")

WATCHDOG_PERIOD = 0.5
HEALTH_PERIOD = 2.0
# A health check that takes longer than this is a problem ("not answering").
HEALTH_TIMEOUT = 3.0
# No video frame for this long (the picture not paused): the server stalled. Checked locally at
# every watchdog tick, so a stall shows within STALL_AFTER + WATCHDOG_PERIOD seconds.
STALL_AFTER = 2.0
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
    STALLED = "stalled"  # frames stopped coming (a hung server); the watchdog rebuilds the session
    CLOSED = "closed"  # the run is over


_NOT_LIVE = (LinkState.DOWN, LinkState.RECONNECTING, LinkState.STALLED)
# Writes remembered (for the `lost` lines) and merged writes awaiting their last part.
_RECENT_WRITES = 1024


@dataclass(frozen=True)
class _Item:
    """One send handed to the sink: what the journal says about it."""

    planned: float  # monotonic
    label: str
    scene: str
    offset: float | None
    entry: bool


def timed_update(label: str) -> bool:
    """Whether a send is a scene's timed update (keyframe samples, travel stops), which gives way
    to entries in the sink's pacing; entries, jumps, reloads and operator commands do not."""
    return all(
        part in ("keyframe", "restore manage_cache", "modulate") or part.startswith("travel ")
        for part in label.split(" + ")
    )


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
        except ShowrunnerError as exc:  # sent as written: Scope drops a bad path (docs/scope.md §8-L)
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
        health_timeout: float = HEALTH_TIMEOUT,
        stall_after: float = STALL_AFTER,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.log = log
        self.refs = refs
        self.watchdog_period = watchdog_period
        self.health_period = health_period
        self.health_timeout = health_timeout
        self.stall_after = stall_after
        self.backoff = backoff
        self._paced: PacedSink | None = sink if isinstance(sink, PacedSink) else None
        self.state = LinkState.STARTING
        self.opened = False  # a session was opened once (later ones switch)
        self.live_key: tuple[Any, ...] | None = None  # the open session's pipeline setup
        self.missed = 0  # messages and switches that did not reach Scope (a reconnect resyncs)
        self.paused_by_us = False  # Scope is paused by a panic or closed hours, not by the show
        self.resting = False  # the server is off on purpose: see `rest`
        self.prerolled: State | None = None  # what the session was just opened with
        # While a session opens or switches: its pipelines and about how long it takes (s).
        self.opening: tuple[tuple[str, ...], float] | None = None
        self._live_state: State | None = None  # the state the open session was opened in
        self._target = target
        self._pause_holds = pause_holds
        self._generation = 0  # counts session (re)opens: a liveness answer from before one is stale
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[tuple[float, dict[str, Any]]]] = set()
        # write number -> (sent at, message, the sends it carries that came back so far)
        self._merged: dict[int, tuple[float, Mapping[str, Any], list[_Item]]] = {}
        self._recent: collections.OrderedDict[int, _Item] = collections.OrderedDict()
        self._last_health = float("-inf")
        self._health: asyncio.Task[str | None] | None = None
        self._health_generation = 0
        self._stopping = False

    def __repr__(self) -> str:
        return f"ScopeLink({self.state.value!r}, sink={self.sink!r})"

    @property
    def generation(self) -> int:
        """Counts the sessions opened (a reconnect or switch opens a new one with the full state)."""
        return self._generation

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
        if self.state in _NOT_LIVE:
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
        replaced = self._report_lost(kind)
        self.log.record(kind, planned=planned, sent_at=started, label=label, scene=scene,
                        message=initial, offset=offset, gap=round(gap, 4), chain=chain,
                        load_params=load_params, replaces=replaced or None,
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

    def expect(self, at: float | None) -> None:
        """The next planned entry is at `at` (monotonic; None: no entry is planned next): the
        sink holds back a timed update that would take the entry's slot (see `PacedSink`)."""
        if self._paced is not None:
            self._paced.expect(at)

    def expect_scene(self, occurrence: ScheduledScene | None, start: float | None) -> None:
        """`occurrence` starts at `start` (None: not at a planned time): `expect` its entry,
        unless that entry opens a new session (nothing waits for a session that closes)."""
        actions = occurrence.scene.actions if occurrence is not None else ()
        switches = bool(actions) and actions[0].offset <= 0 and actions[0].kind == "session"
        self.expect(None if switches else start)

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
        waits for a slot and keeps to the schedule. A scene's timed updates (see
        `timed_update`) give way to entries.
        """
        if "paused" in body:
            self.paused_by_us = bool(body["paused"]) and label in ("panic", "closed")
        if self.state is not LinkState.CONNECTED:
            self.missed += 1
            self.log.record("error", planned=planned, label=label, scene=scene, message=body,
                            offset=offset, error=f"not sent: Scope is {self.state}")
            return
        item = _Item(planned, label, scene, offset, not timed_update(label))
        paced = self._paced
        if paced is not None:
            task = start_eagerly(paced.send(body, entry=item.entry))
        else:
            task = start_eagerly(self.sink.send(body))
        if task.done():
            # One turn of the loop first: the transport's flush, queued by the write, puts the
            # message on the wire before the journal and the look-ahead for the next event run.
            await asyncio.sleep(0)
            self._sent(task, body, item)
            return
        self._inflight.add(task)
        task.add_done_callback(lambda t: self._sent(t, body, item))

    def _sent(
        self,
        task: asyncio.Future[tuple[float, dict[str, Any]]],
        body: Mapping[str, Any],
        item: _Item,
    ) -> None:
        self._inflight.discard(task)
        if task.cancelled():
            self.missed += 1
            self.log.record("error", planned=item.planned, label=item.label, scene=item.scene,
                            message=body, offset=item.offset, error="not sent: cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self.missed += 1
            self.log.error(f"{item.scene}: {item.label} not sent: {exc}", planned=item.planned,
                           label=item.label, scene=item.scene, message=body, offset=item.offset)
            return
        sent_at, sent = task.result()
        write, carries = getattr(sent, "write", None), getattr(sent, "carries", 1)
        if not isinstance(write, int) or not isinstance(carries, int) or carries <= 1:
            self._journal_write(sent_at, sent, [item], write if isinstance(write, int) else None)
            return
        # One write carrying several sends: one line, once every one of them has come back.
        parts = self._merged.setdefault(write, (sent_at, sent, []))[2]
        parts.append(item)
        if len(parts) >= carries:
            del self._merged[write]
            self._journal_write(sent_at, sent, parts, write)

    def _journal_write(
        self, sent_at: float, sent: Mapping[str, Any], items: list[_Item], write: int | None
    ) -> None:
        """One ``send`` line for one message written: the entry it carries (else its newest
        update) names it; ``items`` lists every planned update merged into it."""
        items = sorted(items, key=lambda i: i.planned)
        lead = next((i for i in reversed(items) if i.entry), items[-1])
        merged = None
        if len(items) > 1:
            merged = [
                {"planned_at": self.log.unix(i.planned), "label": i.label, "scene": i.scene,
                 "offset": i.offset}
                for i in items
            ]
        if write is not None:
            self._recent[write] = lead
            while len(self._recent) > _RECENT_WRITES:
                self._recent.popitem(last=False)
        self.log.record("send", planned=lead.planned, sent_at=sent_at, label=lead.label,
                        scene=lead.scene, message=sent, offset=lead.offset, write=write,
                        items=merged)

    def _report_lost(self, replaced_by: str | None) -> list[int]:
        """Journal a ``lost`` line per write the sink says was never acknowledged; their numbers.

        `replaced_by` names what put Scope into the full state since (``reconnect``,
        ``switch``, ``session``), None when nothing did (the run ended)."""
        if self._paced is None:
            return []
        try:
            lost = self._paced.take_lost()
        except Exception:  # a sink that cannot tell loses nothing we know of
            log.exception("the sink could not report its lost writes")
            return []
        numbers = []
        for write, sent_at, message in lost:
            item = self._recent.pop(write, None)
            what = item.label if item is not None else "update"
            self.log.record(
                "lost", planned=item.planned if item is not None else None, sent_at=sent_at,
                label=item.label if item is not None else None,
                scene=item.scene if item is not None else None, message=message,
                offset=item.offset if item is not None else None, write=write,
                reason="not acknowledged by Scope when its connection closed",
                replaced_by=replaced_by, level="warning",
                text=f"Scope may not have received message {write} ({what})"
                + (f"; the {replaced_by} sent the full state" if replaced_by else ""),
            )
            numbers.append(write)
        return numbers

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
        self._cancel_health()
        for write, (sent_at, sent, parts) in list(self._merged.items()):
            del self._merged[write]  # not every send it carried came back (should not happen)
            self._journal_write(sent_at, sent, parts, write)
        self._report_lost(None)

    def stop(self) -> None:
        """The run is ending: no new reconnection attempts."""
        self._stopping = True

    def rest(self) -> None:
        """The server is being stopped on purpose (an installation's `after_close`): no checks
        and no reconnection attempts until `wake`."""
        self.resting = True

    def wake(self) -> None:
        """The server is being started again (`before_open`): checks resume, and a session that
        did not survive the night (closed, or no frame for `stall_after` s) counts as down at
        once, so the status does not say connected until a new one is open."""
        if not self.resting:
            return
        self.resting = False
        if self.state is LinkState.CONNECTED:
            age = self._frame_age()
            if not self._sink_connected() or (age is not None and age > self.stall_after):
                self.state = LinkState.DOWN
                self.log.status_changed()

    # -- the watchdog ------------------------------------------------------------------------

    async def watch(self, room: Callable[[], float], idle: Callable[[], None]) -> None:
        """The watchdog (runs until cancelled). `room()` is the time until the next planned
        event (checks keep away from it); `idle()` is called at every tick."""
        try:
            while True:
                await self._doze(self.watchdog_period)
                if (left := room()) < _QUIET_BEFORE_EVENT:
                    # A health check answered just before a cue would share the loop with it.
                    await self._doze(left + 0.005)
                idle()
                if self._lock.locked() or self.resting or self.state in (
                    LinkState.STARTING, LinkState.CLOSED
                ):
                    continue
                problem = await self._check()
                if problem is None:
                    continue
                reason, stalled = problem
                log.warning("Scope session problem: %s", reason)
                self.log.record("watchdog", label=reason, text=f"Scope: {reason}", level="warning")
                await self.reconnect(reason, stalled=stalled)
        finally:
            self._cancel_health()

    async def _check(self) -> tuple[str, bool] | None:
        """(reason, a stall) when the session has a problem, else None.

        A closed peer connection or channel and missing frames show locally at once; the full
        check (an HTTP round trip, ~3 ms of CPU) runs in its own task every `health_period`, or
        here, bounded by `health_timeout`, when the local check fails.
        """
        generation = self._generation
        if self.state is LinkState.CONNECTED and self._sink_connected():
            age = self._frame_age()
            if age is not None and age > self.stall_after:
                return f"stalled: no frames for {age:.1f} s", True
            reason = self._health_answer(generation)
        else:
            reason = await self._probe()
            if reason is None and self.state is LinkState.DOWN:
                reason = "the session is down"
        if reason is None or self._lock.locked() or generation != self._generation:
            return None
        return reason, False

    def _frame_age(self) -> float | None:
        if self._paced is None:
            return None
        try:
            return self._paced.frame_age()
        except Exception:  # a sink that cannot tell is judged by its health check
            return None

    def _health_answer(self, generation: int) -> str | None:
        """The answer of the last health check (when it is about this session); starts the
        next one when it is due."""
        answer = None
        task = self._health
        if task is not None and task.done():
            self._health = None
            if not task.cancelled() and self._health_generation == generation:
                answer = task.result()
        now = self.clock.monotonic()
        if self._health is None and answer is None and now - self._last_health >= self.health_period:
            self._last_health = now
            self._health_generation = generation
            self._health = asyncio.create_task(self._probe(), name="showrunner-health")
        return answer

    async def _probe(self) -> str | None:
        """``sink.liveness()``, within `health_timeout` seconds."""
        try:
            async with asyncio.timeout(self.health_timeout):
                return await self.sink.liveness()
        except TimeoutError:
            return f"no answer to the health check within {self.health_timeout:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"liveness check failed: {exc}"

    def _cancel_health(self) -> None:
        task, self._health = self._health, None
        if task is not None and not task.done():
            task.cancel()

    def _sink_connected(self) -> bool:
        try:
            return bool(self.sink.connected)
        except Exception:  # a sink that cannot tell gets the full check
            return False

    async def _doze(self, seconds: float) -> None:
        await self.clock.doze(self.clock.monotonic() + seconds)

    async def reconnect(self, reason: str, *, stalled: bool = False) -> None:
        """Switch to a new session at the show's position until one opens (backoff between).

        After a stall the state stays `LinkState.STALLED` until a session is open again."""
        delay, cap = self.backoff
        attempt = 0
        self._cancel_health()
        self.state = LinkState.STALLED if stalled else LinkState.RECONNECTING
        self.log.status_changed()
        while not self._stopping:
            if self.resting:  # the server was stopped on purpose: wait for its restart
                await self._doze(self.watchdog_period)
                continue
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
            replaced = self._report_lost("reconnect")
            self.log.record("reconnect", sent_at=started, label="ok", scene=target.scene,
                            attempt=attempt, reason=reason, offset=round(target.offset, 6),
                            gap=round(gap, 4), message=initial, replaces=replaced or None,
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
