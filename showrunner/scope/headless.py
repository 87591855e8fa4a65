"""The headless transport: a show played into Scope's WebRTC-free session (docs/scope.md §2.8, §10.1).

For rigs where the picture leaves Scope through NDI, Spout or Syphon sinks (or a recording) and
the runner does not need the video: `HeadlessSession` starts the session with ``POST
/api/v1/session/start``, sends each update with ``POST /api/v1/session/parameters`` and never
opens a peer connection. It is a `PacedSink` like the WebRTC ``ScopeSession``: the same
checks on what may be sent (`runtime_update`), the same pacing (one update per chunk, merged
while waiting: `Coalescer`), the same switch procedure (stop, load, start: §4.2).

What differs, and how it is made up for:

- The HTTP path validates (a 422 names the bad value) and its model re-adds
  ``vace_context_scale: 1.0`` and ``prompt_interpolation_method: "linear"`` to every update
  (§8-I), which would undo a show's own values: every POST restates the values in force.
- No frames arrive here: the picture is watched through ``/session/metrics`` (``frames_out``
  rising, polled every `WATCH_PERIOD` s), the server through ``/health``; the preview for the
  operator page is ``GET /session/frame``, fetched at most every `PREVIEW_PERIOD` s while
  someone looks at it.
- A new start replaces a running headless session without stopping it (§2.8): a start is
  always preceded by a stop.
- One pipeline per session: ``/session/start`` takes one ``pipeline_id``; its graph form loads
  the pipelines again without their load parameters. A chain is refused (the show's check
  says so first: ``scope.transport`` in docs/show-format.md).

HTTP goes through `ScopeClient` (httpx stays in client.py).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from showrunner.errors import ScopeConnectError, ScopeError, ScopeTimeoutError
from showrunner.scope.client import (
    FALLBACK_CHUNK_INTERVAL,
    HEALTH_TIMEOUT,
    ScopeClient,
    paced_interval,
    runtime_update,
)
from showrunner.scope.client import initial_parameters as checked_start
from showrunner.scope.clock import SYSTEM_TIME, SessionClock
from showrunner.scope.pacing import Coalescer, Prepared, Written

__all__ = ["HEADLESS_ID", "PREVIEW_PERIOD", "WATCH_PERIOD", "HeadlessSession", "start_body"]

log = logging.getLogger("showrunner.scope.headless")

HEADLESS_ID = "headless"  # the session's id in /session/metrics (Scope webrtc.py)
WATCH_PERIOD = 0.5  # seconds between two looks at /session/metrics
PREVIEW_PERIOD = 1.0  # seconds between two preview frames, while the page shows them
_PREVIEW_WANTED = 10.0  # a preview is fetched this long after the page last asked for one
_PREVIEW_QUALITY = 70
_STALL_SECONDS = 3.0
# What the validated HTTP model adds to every update when it is absent (§2.8, §8-I).
HTTP_DEFAULTS: Mapping[str, Any] = {"vace_context_scale": 1.0, "prompt_interpolation_method": "linear"}
# Closing waits this long (real seconds) for POSTs already handed over before giving up on them.
_DRAIN_SECONDS = 1.0
# Futures of recent POSTs, by write number, for the senders whose update they carry.
_POSTS_KEPT = 64


def start_body(pipeline_id: str, initial: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /session/start`` body for `initial` (checked parameters, as `initial_parameters`
    makes them): ``input_mode``, ``prompts`` and ``input_source`` in their own fields, the rest
    as ``parameters`` (Scope merges those into the first chunk's parameters, mcp_router.py)."""
    rest = {k: v for k, v in initial.items() if k != "pipeline_ids"}
    body: dict[str, Any] = {"pipeline_id": pipeline_id, "input_mode": rest.pop("input_mode", "text")}
    for key in ("prompts", "input_source"):
        if key in rest:
            body[key] = rest.pop(key)
    if rest:
        body["parameters"] = rest
    return body


class HeadlessSession:
    """The headless Scope session a show plays against (a `PacedSink`; async context manager).

    After ``close()`` the same object can ``open()`` again. Times are read from `clock` (the
    player's clock fits); `watch_period` and `preview_period` are seconds on that clock.
    """

    def __init__(
        self,
        client: ScopeClient,
        *,
        chunk_interval: float | None = None,
        clock: SessionClock = SYSTEM_TIME,
        watch_period: float = WATCH_PERIOD,
        preview_period: float = PREVIEW_PERIOD,
    ) -> None:
        self.client = client
        self.clock = clock
        self.watch_period = watch_period
        self.preview_period = preview_period
        self._explicit_interval = chunk_interval
        self._chunk_interval = chunk_interval if chunk_interval is not None else FALLBACK_CHUNK_INTERVAL
        self._coalescer = Coalescer(self._write, self._chunk_interval, clock=clock)
        self._running = False  # a session was started here and not stopped
        self._gone: str | None = None  # the server says it no longer runs it
        self._hidden = False  # the metrics show another (WebRTC) session instead of ours
        self._chain: list[str] = []
        self._server_start_time: float | None = None
        self._paused = False
        self._watch_from = 0.0  # monotonic time frames are expected from
        self._frames_out: int | None = None
        self._frames_before = 0  # frames_out of the sessions before this one
        self._progress_at: float | None = None  # monotonic time frames_out last rose
        self._in_force: dict[str, Any] = dict(HTTP_DEFAULTS)
        # Per write number: when its POST started, for the senders whose update it carries.
        self._posts: collections.OrderedDict[int, asyncio.Future[float]] = collections.OrderedDict()
        self._post_lock = asyncio.Lock()  # POSTs go out one after the other, in write order
        self._post_tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, tuple[float, dict[str, Any]]] = {}  # POSTs not answered yet
        self._lost: list[tuple[int, float, dict[str, Any]]] = []
        self._monitor: asyncio.Task[None] | None = None
        self._jpeg: bytes | None = None
        self._jpeg_wanted = -math.inf
        self._jpeg_at = -math.inf
        self.starts = 0  # sessions started by this object

    def __repr__(self) -> str:
        return f"HeadlessSession({self.client.base_url!r}, connected={self.connected})"

    async def __aenter__(self) -> HeadlessSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- state -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A session was started and the server has not been seen without it."""
        return self._running and self._gone is None

    @property
    def chunk_interval(self) -> float:
        """Seconds per pipeline chunk: the pace at which the server takes updates."""
        return self._chunk_interval

    @property
    def server_start_time(self) -> float | None:
        """``/health`` ``server_start_time`` when the session was started."""
        return self._server_start_time

    @property
    def frames_out(self) -> int | None:
        """The session's ``frames_out`` as last read from ``/session/metrics``."""
        return self._frames_out

    @property
    def frames_received(self) -> int:
        """Frames Scope produced over every headless session so far (its ``frames_out``; none
        of them comes here): what /api/health and /metrics count."""
        return self._frames_before + (self._frames_out or 0)

    def latest_jpeg(self) -> bytes | None:
        """The newest preview frame (JPEG) for the operator page; asking keeps it coming."""
        self._jpeg_wanted = self.clock.monotonic()
        return self._jpeg

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(
        self,
        chain: Sequence[str],
        load_params: Mapping[str, Any],
        initial_parameters: Mapping[str, Any],
    ) -> float:
        """Load `chain` (one pipeline), stop any headless session, start one with
        `initial_parameters`; return the seconds taken."""
        if self._running:
            raise RuntimeError("the session is already open; call switch() or close() first")
        started = self.clock.monotonic()
        ids = [str(p) for p in chain]
        if len(ids) != 1:
            raise ScopeError(f"the headless transport plays one pipeline per session, not the chain "
                             f"{'+'.join(ids)} (docs/scope.md §2.8); use scope.transport: webrtc")
        initial = checked_start(ids, initial_parameters)
        self._server_start_time = (await self.client.health()).server_start_time
        await self.client.load_pipeline(ids, load_params)
        if await self.client.stop_headless():
            log.info("stopped a headless session that was already running")
        await self.client.start_headless(start_body(ids[0], initial))
        self.starts += 1
        self._running, self._gone, self._hidden, self._chain = True, None, False, ids
        self._in_force = {k: initial.get(k, v) for k, v in HTTP_DEFAULTS.items()}
        self._paused = bool(initial.get("paused", False))
        self._watch_from = self.clock.monotonic()
        self._frames_before += self._frames_out or 0
        self._frames_out = self._progress_at = None
        try:
            await self._update_chunk_interval()
        except ScopeError as exc:
            log.warning("cannot read the pipeline fps: %s", exc)
        self._monitor = asyncio.create_task(self._watch(), name="showrunner-headless-watch")
        gap = self.clock.monotonic() - started
        log.info("headless session open on %s (%s): gap %.2f s, chunk interval %.3f s",
                 self.client.base_url, ids[0], gap, self._chunk_interval)
        return gap

    async def switch(
        self,
        chain: Sequence[str],
        load_params: Mapping[str, Any],
        initial_parameters: Mapping[str, Any],
    ) -> float:
        """Stop, load, start again (§4.2); return the gap."""
        started = self.clock.monotonic()
        await self.close()
        await self.open(chain, load_params, initial_parameters)
        return self.clock.monotonic() - started

    async def close(self) -> None:
        """Stop the headless session on the server, once the POSTs already written are answered
        (at most `_DRAIN_SECONDS`; the rest are reported lost). Idempotent; never raises."""
        self._coalescer.cancel(ScopeConnectError("the headless session closed before the update was sent"))
        monitor, self._monitor = self._monitor, None
        if self._post_tasks:  # updates already handed over go out first (the show's last one)
            await asyncio.wait(list(self._post_tasks), timeout=_DRAIN_SECONDS)
        tasks = [*self._post_tasks, *([monitor] if monitor is not None else [])]
        for task in tasks:  # a POST the server has not answered is reported lost (`take_lost`)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self._running:
            return
        self._running = False
        try:
            await self.client.stop_headless()
        except ScopeError as exc:
            log.warning("could not stop the headless session: %s", exc)
        else:
            log.info("headless session stopped")

    # -- sending -----------------------------------------------------------------------------

    def prepare(self, message: Mapping[str, Any]) -> Prepared:
        """Check and serialise `message` ahead of its moment (as the WebRTC session does)."""
        prepared = runtime_update(message)
        return Prepared(prepared, json.dumps(prepared, separators=(",", ":")))

    async def send(self, message: Mapping[str, Any], *, entry: bool = True) -> tuple[float, dict[str, Any]]:
        """POST a parameter update, paced and merged as on the data channel; return (unix time
        the POST started, what it carried). A refused or failed POST raises ScopeError."""
        prepared = message if isinstance(message, Prepared) else runtime_update(message)
        if not self.connected:
            raise ScopeConnectError(f"cannot send to Scope: {self._gone or 'no headless session'}")
        at, written = await self._coalescer.submit(prepared, entry=entry)
        post = self._posts.get(written.write) if isinstance(written, Written) else None
        if post is not None:
            at = await asyncio.shield(post)
        return at, written

    def expect(self, at: float | None) -> None:
        """The show's next entry is planned at `at` (see `Coalescer.expect`)."""
        self._coalescer.expect(at)

    def take_lost(self) -> list[tuple[int, float, dict[str, Any]]]:
        """(write number, unix time, message) of each POST the server had not answered when the
        session closed (it may or may not have applied it); each is reported once. A POST the
        server refused fails its send instead."""
        lost, self._lost = self._lost, []
        return lost

    def _write(self, message: dict[str, Any], number: int) -> float:
        """Start the POST of `message` (write `number`), after the ones before it."""
        wire = message.wire if isinstance(message, Prepared) else json.dumps(message, separators=(",", ":"))
        restated = {k: v for k, v in self._in_force.items() if k not in message}
        for key in HTTP_DEFAULTS:
            if key in message:
                self._in_force[key] = message[key]
        if restated:  # `wire` is a non-empty JSON object: insert before its closing brace
            wire = f"{wire[:-1]},{json.dumps(restated, separators=(',', ':'))[1:]}"
        if "paused" in message:
            self._paused = bool(message["paused"])
            if not self._paused:
                self._watch_from = self.clock.monotonic()
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._posts[number] = done
        while len(self._posts) > _POSTS_KEPT:
            self._posts.popitem(last=False)
        task = asyncio.create_task(self._post(wire, number, message, done))
        self._post_tasks.add(task)
        task.add_done_callback(self._post_tasks.discard)
        log.debug("sending %s", wire)
        return self.clock.time()

    async def _post(
        self, wire: str, number: int, message: dict[str, Any], done: asyncio.Future[float]
    ) -> None:
        """POST `wire` once the POSTs before it are answered; `done` gets the time it started."""
        try:
            async with self._post_lock:
                at = self.clock.time()
                self._in_flight[number] = (at, message)
                await self.client.post_parameters(wire)
                del self._in_flight[number]
                done.set_result(at)
        except asyncio.CancelledError:  # the session closed
            flight = self._in_flight.pop(number, None)
            if flight is not None:  # written, never answered: its send went out, it may be lost
                self._lost.append((number, *flight))
                done.set_result(flight[0])
            else:
                _fail(done, ScopeConnectError("the headless session closed before the update was sent"))
        except Exception as exc:
            self._in_flight.pop(number, None)
            _fail(done, exc)

    # -- health ------------------------------------------------------------------------------

    def frame_age(self) -> float | None:
        """Seconds since ``frames_out`` last rose (or since frames were expected again); None
        while none is expected: no session, a paused picture, before the first frame."""
        if not self._running or self._paused or self._hidden or self._progress_at is None:
            return None
        return self.clock.monotonic() - max(self._progress_at, self._watch_from)

    async def liveness(self) -> str | None:
        """None while the session is healthy, else a one-line reason (``/health`` within
        ``HEALTH_TIMEOUT`` s, then what ``/session/metrics`` last said)."""
        try:
            health = await self.client.health(timeout=min(HEALTH_TIMEOUT, self.client.timeouts.request))
        except ScopeTimeoutError:
            return "server not answering"
        except ScopeError:
            return "server unreachable"
        if self._server_start_time is not None and health.server_start_time != self._server_start_time:
            return "server restarted"
        if not self._running:
            return "no headless session"
        if self._gone is not None:
            return self._gone
        if not (self._paused or self._hidden):
            now = self.clock.monotonic()
            if self._progress_at is None:
                waited = now - self._watch_from
                if waited > self.client.timeouts.first_frame:
                    return f"no frames for {waited:.1f} s"
            elif (waited := now - max(self._progress_at, self._watch_from)) > _STALL_SECONDS:
                return f"no frames for {waited:.1f} s"
        return None

    async def _watch(self) -> None:
        """Read ``/session/metrics`` every `watch_period` s, and the preview frame when due."""
        limit = min(HEALTH_TIMEOUT, self.client.timeouts.request)
        while True:
            await self.clock.doze(self.clock.monotonic() + self.watch_period)
            try:
                self._observe(await self.client.session_metrics(timeout=limit))
                now = self.clock.monotonic()
                if now - self._jpeg_wanted < _PREVIEW_WANTED and now - self._jpeg_at >= self.preview_period:
                    self._jpeg_at = now
                    self._jpeg = await self.client.session_frame(quality=_PREVIEW_QUALITY, timeout=limit) or (
                        self._jpeg
                    )
            except ScopeError as exc:  # a server that does not answer shows in the frame age
                log.debug("headless watch: %s", exc)

    def _observe(self, metrics: Mapping[str, Any]) -> None:
        sessions = metrics.get("sessions")
        if not isinstance(sessions, dict):
            return
        entry = sessions.get(HEADLESS_ID)
        if not isinstance(entry, dict):
            # Nothing at all: the server runs no session. Another session listed instead (a
            # WebRTC one, e.g. a browser on Scope's UI) hides ours: nothing can be told then,
            # and frames are not watched until ours shows again.
            if not sessions:
                self._gone = "the headless session is gone"
            else:
                self._hidden = True
            return
        if self._hidden:
            self._hidden = False
            self._watch_from = self.clock.monotonic()
        frames = entry.get("frames_out")
        if isinstance(frames, int) and not isinstance(frames, bool):
            if self._frames_out is None or frames != self._frames_out:
                if frames > 0:
                    self._progress_at = self.clock.monotonic()
                self._frames_out = frames
        if self._explicit_interval is None and self._chunk_interval == FALLBACK_CHUNK_INTERVAL:
            self._set_interval(paced_interval(self._chain, metrics, HEADLESS_ID))

    async def _update_chunk_interval(self) -> None:
        if self._explicit_interval is not None:
            self._set_interval(self._explicit_interval)
            return
        self._set_interval(paced_interval(self._chain, await self.client.session_metrics(), HEADLESS_ID))

    def _set_interval(self, interval: float | None) -> None:
        self._chunk_interval = interval if interval is not None else FALLBACK_CHUNK_INTERVAL
        self._coalescer.interval = self._chunk_interval


def _fail(future: asyncio.Future[float], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # its senders may have gone; don't let asyncio warn about it
