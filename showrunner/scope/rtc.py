"""The WebRTC side of a Scope session: one aiortc peer connection behind a small facade.

Scope streams generated video over WebRTC and takes live parameters as JSON text on a
data channel (docs/scope.md §3, §4). Everything aiortc lives in this module, so the rest of
showrunner deals only in plain strings, floats and callbacks:

- a ``sendrecv`` video transceiver even though nothing is sent: Scope's output track only
  runs while an input track exists, and a ``recvonly`` offer gets no video (§4.1);
- a ``"parameters"`` data channel, ordered, created before the offer (§3.1);
- the ICE servers chosen for the session (:mod:`showrunner.scope.ice`; an empty list for a
  Scope on this machine), optionally relay candidates only, and, for a Scope on this machine,
  host candidates restricted to 127.0.0.1 (see :func:`restrict_ice_to_loopback`);
- received frames are consumed, counted and optionally recorded to a file;
- what was written but never acknowledged by the server's SCTP stack can be told
  (:meth:`RtcConnection.unacknowledged`): Scope acknowledges nothing itself (§3.1), but SCTP does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from showrunner.errors import (
    ScopeConnectError,
    ScopeError,
    ScopeProtocolError,
    ScopeTimeoutError,
)
from showrunner.scope.clock import SYSTEM_TIME, SessionClock
from showrunner.scope.ice import IceServer

__all__ = [
    "CHANNEL_LABEL",
    "LOOPBACK_ADDRESS",
    "RtcConnection",
    "candidate_addresses",
    "candidate_types",
    "restrict_ice_to_loopback",
]

log = logging.getLogger("showrunner.scope.rtc")

CHANNEL_LABEL = "parameters"
LOOPBACK_ADDRESS = "127.0.0.1"
# The SCTP payload protocol of a (non-empty) text message on a WebRTC data channel (RFC 8831).
_PPID_STRING = 51
# How many of the last writes are remembered (their byte offsets) to tell which were acknowledged.
_WRITES_KEPT = 1024

OfferFn = Callable[[str], Awaitable[str]]
"""Sends our offer SDP to the server and returns its answer SDP."""


def restrict_ice_to_loopback(pc: RTCPeerConnection) -> None:
    """Make every ICE transport of `pc` gather a single host candidate on 127.0.0.1.

    aioice's host-address discovery deliberately skips 127.0.0.1, so a loopback-only
    setup would otherwise advertise LAN addresses (and, with the default configuration,
    ask a public STUN server). The fix is applied per connection, to the aioice
    ``Connection`` behind each gatherer, rather than by patching aioice globally: other
    peer connections in the same process (a simulator, say) keep their own behaviour.
    Call it after the transceivers and the data channel exist and before
    ``setLocalDescription``, which is when gathering happens.
    """
    gatherers = {
        id(g): g
        for g in (
            t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()
        )
    }
    if pc.sctp is not None:
        g = pc.sctp.transport.transport.iceGatherer
        gatherers[id(g)] = g
    for gatherer in gatherers.values():
        connection = gatherer._connection
        gather_component = connection.get_component_candidates

        async def loopback_candidates(
            component: int,
            addresses: list[str],
            timeout: int = 5,
            _gather: Callable[..., Awaitable[list[Any]]] = gather_component,
        ) -> list[Any]:
            # `addresses` is whatever aioice discovered on the LAN; ignore it.
            return await _gather(
                component=component, addresses=[LOOPBACK_ADDRESS], timeout=timeout
            )

        # Per connection on purpose (see above): the instance attribute shadows the method.
        connection.get_component_candidates = loopback_candidates  # type: ignore[method-assign]


def candidate_addresses(sdp: str) -> list[str]:
    """The connection addresses of every ``a=candidate`` line in an SDP blob."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ …
            fields = line.split()
            if len(fields) > 4:
                found.append(fields[4])
    return found


def candidate_types(sdp: str) -> list[str]:
    """The type (host, srflx, relay, ...) of every ``a=candidate`` line in an SDP blob."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if "typ" in fields[:-1]:
                found.append(fields[fields.index("typ") + 1])
    return found


def _configuration(servers: Sequence[IceServer], relay_only: bool) -> RTCConfiguration:
    # An empty list, not None: None makes aiortc fall back to a public STUN server.
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in servers
        ],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
    )


@contextlib.contextmanager
def _map_rtc_errors(what: str) -> Iterator[None]:
    """Translate aiortc's exceptions into showrunner's, once, with one-line messages."""
    try:
        yield
    except (InvalidStateError, InvalidAccessError, ValueError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ScopeProtocolError(f"WebRTC {what} failed: {detail}") from exc
    except OSError as exc:
        raise ScopeConnectError(f"WebRTC {what} failed: {exc}") from exc


class RtcConnection:
    """One receive-only peer connection to Scope with its "parameters" data channel.

    ``on_message(text)`` is called for every text message from the server; ``on_state(what,
    state)`` for every change of the peer connection (``what == "connection"``) and when
    the data channel closes (``what == "channel"``). Callbacks must not raise. Frame times
    and write times are read from `clock`. `ice_servers` are the STUN/TURN servers to gather
    with (none by default); `relay_only` offers TURN relay candidates only.
    """

    def __init__(
        self,
        *,
        loopback_only: bool,
        record_to: Path | None = None,
        on_message: Callable[[str], None] | None = None,
        on_state: Callable[[str, str], None] | None = None,
        clock: SessionClock = SYSTEM_TIME,
        ice_servers: Sequence[IceServer] = (),
        relay_only: bool = False,
    ) -> None:
        self.loopback_only = loopback_only
        self.ice_servers = tuple(ice_servers)
        self.relay_only = relay_only
        self.clock = clock
        self.record_to = record_to
        self.on_message = on_message
        self.on_state = on_state
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.frames_received = 0
        self.last_frame_at: float | None = None
        self._last_frame: Any = None
        self._jpeg: tuple[Any, bytes] | None = None
        self._pc: RTCPeerConnection | None = None
        self._channel: RTCDataChannel | None = None
        self._recorder: _Recorder | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._first_frame = asyncio.Event()
        self._closed = False
        self._bytes_written = 0  # payload bytes of every text message written so far
        self._write_ends: collections.deque[int] = collections.deque(maxlen=_WRITES_KEPT)

    def __repr__(self) -> str:
        return f"RtcConnection(state={self.state!r}, channel={self.channel_state!r})"

    @property
    def state(self) -> str:
        """The peer connection state: new, connecting, connected, failed or closed."""
        if self._closed:
            return "closed"
        if self._pc is None:
            return "new"
        return str(self._pc.connectionState)

    @property
    def channel_state(self) -> str:
        """The data channel state: connecting, open, closing or closed ("new" before connect)."""
        if self._channel is None:
            return "closed" if self._closed else "new"
        return str(self._channel.readyState)

    async def connect(self, offer_fn: OfferFn, *, timeout: float) -> None:
        """Offer, apply the answer and wait up to `timeout` s for the data channel to open.

        Raises ScopeTimeoutError, ScopeConnectError or ScopeProtocolError; on any failure the
        connection is closed again.
        """
        if self._pc is not None or self._closed:
            raise RuntimeError("an RtcConnection connects once; make a new one to reconnect")
        try:
            await self._negotiate(offer_fn)
            await self._wait_open(timeout)
        except BaseException:
            await self.close()
            raise

    async def _negotiate(self, offer_fn: OfferFn) -> None:
        if self.relay_only and not any(s.is_turn for s in self.ice_servers):
            raise ScopeConnectError("relay-only ICE needs a TURN server, and none is configured "
                                    "(--ice-server turn:HOST:PORT, or scope.ice_servers)")
        with _map_rtc_errors("ICE configuration"):
            pc = RTCPeerConnection(_configuration(self.ice_servers, self.relay_only))
        self._pc = pc
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("track", self._on_track)
        pc.addTransceiver("video", direction="sendrecv")
        channel = pc.createDataChannel(CHANNEL_LABEL, ordered=True)
        self._channel = channel
        channel.on("open", self._changed.set)
        channel.on("close", self._on_channel_close)
        channel.on("message", self._on_message)
        if self.record_to is not None:
            self._recorder = self._open_recorder(self.record_to)
        if self.loopback_only and not self.relay_only:  # relay only: no host candidates at all
            restrict_ice_to_loopback(pc)
        with _map_rtc_errors("offer"):
            await pc.setLocalDescription(await pc.createOffer())
        self.local_sdp = pc.localDescription.sdp
        if self.relay_only and "relay" not in candidate_types(self.local_sdp):
            raise ScopeConnectError(
                "the TURN server gave no relay candidate (check its URL, that it is reachable "
                "and the credentials: " + ", ".join(u for s in self.ice_servers for u in s.urls) + ")"
            )
        answer = await offer_fn(self.local_sdp)
        self.remote_sdp = answer
        with _map_rtc_errors("answer"):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def _wait_open(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.channel_state == "open":
                        return
                    if self.state in ("failed", "closed") or self.channel_state == "closed":
                        raise ScopeConnectError(
                            f"WebRTC connection to Scope failed before the data channel opened "
                            f"(peer connection {self.state}, data channel {self.channel_state})"
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise ScopeTimeoutError(
                f"the WebRTC data channel did not open within {timeout:g} s "
                f"(peer connection {self.state})"
            ) from None

    @staticmethod
    def _open_recorder(path: Path) -> _Recorder:
        # Opened before the offer so that a bad path fails the connect, not a callback.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _Recorder(path)
        except Exception as exc:  # PyAV raises its own error types for container problems
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ScopeError(f"cannot record the video to {path}: {detail}") from exc

    def latest_jpeg(self, quality: int = 70) -> bytes | None:
        """The last received frame as JPEG (for a live preview); None before the first frame."""
        frame = self._last_frame
        if frame is None:
            return None
        if self._jpeg is not None and self._jpeg[0] is frame:
            return self._jpeg[1]
        buffer = io.BytesIO()
        frame.to_image().save(buffer, format="JPEG", quality=quality)
        self._jpeg = (frame, buffer.getvalue())
        return self._jpeg[1]

    def send_text(self, text: str) -> float:
        """Write one text message to the data channel; return the unix time it was written."""
        channel = self._channel
        if channel is None or channel.readyState != "open":
            raise ScopeConnectError(
                f"cannot send on the {CHANNEL_LABEL!r} data channel: it is {self.channel_state}"
            )
        with _map_rtc_errors("data channel send"):
            channel.send(text)
        self._bytes_written += len(text.encode("utf-8"))
        self._write_ends.append(self._bytes_written)
        return self.clock.time()

    def unacknowledged(self) -> int:
        """How many of the last messages written here the server has not acknowledged (yet).

        Scope sends no acknowledgement of its own (§3.1), but SCTP does: a message is
        acknowledged once its bytes have left the data channel's buffer (``bufferedAmount``)
        and the peer's SACK covers them (aiortc keeps what is unacknowledged in the SCTP
        transport's outbound and sent queues). A message written just before the peer went away,
        or while it hangs, stays unacknowledged: it may never have arrived.
        """
        channel = self._channel
        if channel is None or not self._write_ends:
            return 0
        pending = channel.bufferedAmount + _sctp_unacknowledged(channel)
        acknowledged = self._bytes_written - pending
        count = 0
        for end in reversed(self._write_ends):
            if end <= acknowledged:
                break
            count += 1
        return count

    async def wait_first_frame(self, timeout: float) -> None:
        """Wait until at least one video frame has arrived."""
        try:
            async with asyncio.timeout(timeout):
                await self._first_frame.wait()
        except TimeoutError:
            raise ScopeTimeoutError(
                f"no video frame arrived within {timeout:g} s (peer connection {self.state})"
            ) from None

    async def close(self) -> None:
        """Close the peer connection, stop recording and the frame consumer. Never raises."""
        if self._closed:
            return
        self._closed = True
        pc, self._pc = self._pc, None
        if pc is not None:
            try:
                await pc.close()
            except Exception:  # closing is best effort; the connection may be half-dead
                log.warning("closing the peer connection failed", exc_info=True)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            try:
                recorder.close()
            except Exception:  # e.g. nothing was ever encoded; the file is just empty
                log.warning("finishing the recording %s failed", self.record_to, exc_info=True)
            else:
                log.info("recorded the received video to %s", self.record_to)
        self._changed.set()

    # -- aiortc callbacks ---------------------------------------------------------------

    def _on_connection_state(self) -> None:
        state = self.state
        log.info("peer connection %s", state)
        self._changed.set()
        if self.on_state is not None:
            self.on_state("connection", state)

    def _on_channel_close(self) -> None:
        log.info("data channel %r closed", CHANNEL_LABEL)
        self._changed.set()
        if self.on_state is not None:
            self.on_state("channel", "closed")

    def _on_message(self, message: str | bytes) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        if self.on_message is not None:
            self.on_message(text)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video" or self._consumer is not None:
            return
        self._consumer = asyncio.ensure_future(self._consume(track))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                log.info("remote video track ended after %d frames", self.frames_received)
                return
            self.frames_received += 1
            self.last_frame_at = self.clock.monotonic()
            # Kept undecoded-to-JPEG: encoding happens only when a preview asks for it.
            self._last_frame = frame
            if self._recorder is not None:
                self._recorder.write(frame)
            self._first_frame.set()


def _sctp_unacknowledged(channel: RTCDataChannel) -> int:
    """Payload bytes of `channel`'s text messages that SCTP holds unacknowledged.

    aiortc has no public API for this; its transport keeps them in two queues. Should those
    change, nothing is counted (only ``bufferedAmount`` then).
    """
    transport = channel.transport
    chunks = itertools.chain(getattr(transport, "_outbound_queue", ()), getattr(transport, "_sent_queue", ()))
    total = 0
    for chunk in chunks:
        ours = getattr(chunk, "stream_id", None) == channel.id
        if ours and getattr(chunk, "protocol", None) == _PPID_STRING:
            total += len(getattr(chunk, "user_data", b""))
    return total


class _Recorder:
    """Writes the received frames to a file (H.264 in the container the name says).

    aiortc's MediaRecorder encodes at a fixed 30 frames/s time base, so a faster stream (a CPU
    server runs controller-viz at about 60 frames/s) maps two frames onto one timestamp and the
    muxer refuses the file. Here the encoder keeps the frames' own 90 kHz timestamps; a frame
    whose timestamp does not advance is skipped.
    """

    def __init__(self, path: Path) -> None:
        self._container: Any = av.open(str(path), mode="w")
        self._stream: Any = None
        self._last_pts: int | None = None

    def write(self, frame: Any) -> None:
        if self._stream is None:
            stream = self._container.add_stream("libx264", rate=90)
            stream.width, stream.height = frame.width, frame.height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = frame.time_base or Fraction(1, 90_000)
            self._stream = stream
        pts = frame.pts
        if pts is not None and self._last_pts is not None and pts <= self._last_pts:
            return
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
        finally:
            self._container.close()
