"""The answering side of a simulated Scope WebRTC session (docs/scope.md §2.6, §3, §4.1).

One `SimPeer` per offer: an aiortc peer connection that never leaves 127.0.0.1, the
"parameters" data channel feeding a `SimSession`, and a video track that renders the
session's chunks at the pipeline's frame rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

from aioice import Candidate
from aioice.ice import get_host_addresses
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc import (
    sdp as aiortc_sdp,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame
from PIL import Image

from showrunner.sim.inputs import INPUT_PIPELINES, SourceClosed, VideoFileSource
from showrunner.sim.loads import Faults
from showrunner.sim.record import Recorder
from showrunner.sim.render import Chunk, ChunkView, Renderer
from showrunner.sim.session import SimSession
from showrunner.sim.tempo import QuantizedScheduler, TempoSync

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
LOOPBACK = "127.0.0.1"


def restrict_to_loopback(pc: RTCPeerConnection) -> None:
    """Make every ICE gatherer of `pc` offer one host candidate on 127.0.0.1 and nothing else.

    aioice leaves 127.0.0.1 out of its host addresses and would gather on every LAN interface;
    this swaps the gather step of each of this connection's gatherers (no process-wide patch,
    so other peers in the process are untouched). Call it once the transceivers and the data
    channel transport exist, before `setLocalDescription` (which gathers). The connection must
    have been built with `RTCConfiguration(iceServers=[])`: aiortc adds a public STUN server
    when the list is None.
    """
    transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    gatherers = {id(t.transport.iceGatherer): t.transport.iceGatherer for t in transports}
    for gatherer in gatherers.values():
        connection = gatherer._connection

        async def gather(connection: Any = connection) -> None:
            if connection._local_candidates_start:
                return
            connection._local_candidates_start = True
            for component in connection._components:
                connection._local_candidates += await connection.get_component_candidates(
                    component=component, addresses=[LOOPBACK]
                )
            connection._local_candidates_end = True

        connection.gather_candidates = gather  # type: ignore[method-assign]


def _host_addresses() -> set[str]:
    return {LOOPBACK, "::1", *get_host_addresses(use_ipv4=True, use_ipv6=True)}


def is_local_candidate(candidate: str) -> bool:
    """True when a remote candidate is an address of this host (mDNS names never are)."""
    try:
        host = Candidate.from_sdp(candidate.removeprefix("candidate:")).host
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # an mDNS ".local" name: resolving it would multicast on the LAN
    return address.is_loopback or str(address) in _host_addresses()


def local_candidates_only(sdp: str) -> str:
    """The offer without candidates that would make the simulator send beyond this host."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and not is_local_candidate(line[2:]):
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def offered_video_direction(sdp: str) -> str | None:
    """Direction of the offer's first video m-line, None without one; ValueError for non-SDP."""
    if not sdp.lstrip().startswith("v=0"):
        raise ValueError("not an SDP offer")
    description = aiortc_sdp.SessionDescription.parse(sdp)
    if not description.media:
        raise ValueError("SDP offer has no media sections")
    for media in description.media:
        if media.kind == "video":
            return media.direction or "sendrecv"
    return None


def chunk_view(session: SimSession) -> ChunkView:
    """What the picture of the session's current chunk shows."""
    stream = session.stream
    assert stream is not None
    transition = session.transition
    return ChunkView(
        pipeline_id=stream.pipeline_id,
        width=stream.width,
        height=stream.height,
        chunk=session.chunk,
        prompts=tuple((p["text"], p["weight"]) for p in session.prompts),
        transition=(transition["step"], transition["num_steps"]) if transition else None,
        lora_scales=tuple(sorted(session.lora_scales.items())),
        vace_ref=session.vace_ref,
        paused=session.paused,
        cache_resets=session.resets,
        buttons=tuple(session.ctrl["button"]),
        mouse=(float(session.ctrl["mouse"][0]), float(session.ctrl["mouse"][1])),
    )


class SimVideoTrack(MediaStreamTrack):
    """Sends the peer's chunks as frames, paced at the pipeline fps."""

    kind = "video"

    def __init__(self, peer: SimPeer) -> None:
        super().__init__()
        self._peer = peer
        self._chunk: Chunk | None = None
        self._left = 0
        self._next_at: float | None = None
        self._start = time.monotonic()
        self._ended = asyncio.Event()

    async def recv(self) -> VideoFrame:
        peer, session = self._peer, self._peer.session
        if session.stream is None or session.no_video_reason is not None:
            # A session without a usable pipeline: connected, silent (docs/scope.md §2.6).
            await self._ended.wait()
            raise MediaStreamError
        period = 1.0 / session.stream.fps
        repeat = False
        while True:
            if self.readyState != "live" or session.closed:
                raise MediaStreamError
            now = time.monotonic()
            if session.paused:
                # Paused: the track keeps sending the last frame at its rate, nothing new is
                # produced (docs/scope.md §3.2 step 2, §10; Scope tracks.py "when video is paused,
                # return the last frame"). Before the first frame there is nothing to repeat.
                if peer.last_image is None:
                    await self._until_resumed(0.05)
                    continue
                if self._next_at is not None and self._next_at > now:
                    await self._until_resumed(self._next_at - now)
                    continue
                repeat = True
                break
            if self._left == 0:
                if not peer.chunks:
                    peer.chunk_ready.clear()
                    await peer.chunk_ready.wait()
                    continue
                self._chunk = peer.chunks.popleft()
                self._left = len(self._chunk.images)
            if self._next_at is not None and self._next_at > now:
                await asyncio.sleep(self._next_at - now)
                continue
            break
        # After a stall, pace from now instead of sending a burst.
        self._next_at = max(self._next_at or now, now - period) + period
        if repeat:
            assert peer.last_image is not None
            image = peer.last_image
            peer.frame_repeated()
        else:
            chunk = self._chunk
            assert chunk is not None
            image = chunk.images[len(chunk.images) - self._left]
            self._left -= 1
            if chunk.stamp:
                image = peer.renderer.frame_image(image, session.frames_sent + 1)
            peer.frame_sent(image)
        frame: VideoFrame = VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
        frame.pts = int((now - self._start) * VIDEO_CLOCK)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        return frame

    async def _until_resumed(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, less if the session resumes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._peer.resumed.wait(), max(timeout, 0.0))

    def stop(self) -> None:
        super().stop()
        # Wake a recv() that waits, so it can notice the end.
        self._ended.set()
        self._peer.chunk_ready.set()


class SimPeer:
    """One answered offer: peer connection, data channel, session, chunk producer."""

    def __init__(
        self,
        session: SimSession,
        *,
        recorder: Recorder,
        faults: Faults,
        on_closed: Callable[[SimPeer], None] | None = None,
        source: VideoFileSource | None = None,
        tempo: TempoSync | None = None,
        open_input: Callable[[dict[str, Any]], Awaitable[VideoFileSource | None]] | None = None,
    ) -> None:
        self.session = session
        self.source = source
        # Opens a source named by a runtime `input_source` message (the simulator's assets).
        self._open_input = open_input
        self._source_task: asyncio.Task[None] | None = None
        self.scheduler = QuantizedScheduler(tempo, self.deliver, self.send)
        self.recorder = recorder
        self.faults = faults
        self.renderer = Renderer()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel: RTCDataChannel | None = None
        self.track: SimVideoTrack | None = None
        self.chunks: deque[Chunk] = deque(maxlen=2)  # chunks that do not fit are dropped
        self.chunk_ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.last_image: Image.Image | None = None
        self._producer: asyncio.Task[None] | None = None
        self._on_closed = on_closed
        self._closing = False
        if not session.paused:
            self.resumed.set()
        session.on_pause_change = self._pause_changed
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    # -- signalling ----------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the client's offer and return the answer SDP (loopback candidates only)."""
        direction = offered_video_direction(offer_sdp)
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=local_candidates_only(offer_sdp), type="offer")
        )
        if direction in ("sendrecv", "recvonly"):
            # Scope always answers with its output track, even when it will stay silent.
            self.track = SimVideoTrack(self)
            self.pc.addTrack(self.track)
        if self.session.stream is not None and direction != "sendrecv":
            # The output loop needs an input track; a recvonly offer has none (docs/scope.md §4.1).
            reason = f"video m-line is {direction}" if direction else "no video m-line"
            self.session.no_video_reason = reason
            log.warning("session %s: %s, no video", self.session.session_id, reason)
        restrict_to_loopback(self.pc)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        if self.track is not None:
            if self.session.no_video_reason is None:
                self._producer = asyncio.get_running_loop().create_task(self._produce())
            elif direction == "recvonly":
                self.track.stop()  # "Track stopped" at once, like Scope's loop
        return self.pc.localDescription.sdp

    async def add_candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        """A trickled candidate (PATCH); non-local ones are ignored. ValueError if unparsable."""
        text = candidate.removeprefix("a=").removeprefix("candidate:")
        parsed = candidate_from_sdp(text)
        parsed.sdpMid, parsed.sdpMLineIndex = sdp_mid, index
        if is_local_candidate(text):
            await self.pc.addIceCandidate(parsed)

    # -- data channel --------------------------------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self.channel = channel  # the last channel opened receives notifications

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            try:
                self._on_message(channel, message)
            except Exception:
                log.exception("data channel message handling failed")

    def _on_message(self, channel: RTCDataChannel, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text)
            ok = True
        except ValueError:
            parsed, ok = text, False
        self.recorder.add(
            {
                "kind": "data",
                "received_at": time.time(),
                "session_id": self.session.session_id,
                "label": channel.label,
                "message": parsed,
            }
        )
        if not ok:
            log.error("session %s: bad JSON on the data channel, dropped", self.session.session_id)
            return
        if isinstance(parsed, dict) and parsed.get("_quantized"):
            # Beat-quantized (docs/scope.md §6): `paused` still applies at once (§3.2 step 2).
            update = {k: v for k, v in parsed.items() if k != "_quantized"}
            if "paused" in update:
                self.session.receive({"paused": update["paused"]})
            self.scheduler.schedule(update)
            return
        if isinstance(parsed, dict):
            parsed = {k: v for k, v in parsed.items() if k != "_quantized"}
        self.deliver(parsed)

    def deliver(self, message: Any) -> None:
        """An update reaching the frame processor (data channel or HTTP broadcast): the
        scheduler takes `quantize_mode` / `lookahead_ms` (docs/scope.md §6), the session the rest."""
        if isinstance(message, dict):
            if "quantize_mode" in message:
                self.scheduler.set_mode(message["quantize_mode"])
            if "lookahead_ms" in message:
                self.scheduler.set_lookahead(message["lookahead_ms"])
            if isinstance(message.get("input_source"), dict):
                self._update_source(message["input_source"])
        self.session.receive(message)

    def _update_source(self, config: dict[str, Any]) -> None:
        """A runtime `input_source`, taken as Scope's frame processor takes it
        (server/frame_processor.py `_update_input_source`): enabled with none running starts
        one; disabled stops the running one; enabled while one runs replaces it only when the
        `source_type` differs or the message says `"reconnect": true` (another file of the same
        type is otherwise ignored)."""
        enabled = bool(config.get("enabled", False))
        running = self.source is not None
        if enabled and running and not (
            config.get("source_type", "") != self.session.input_source_type or config.get("reconnect")
        ):
            log.info("session %s: input source %r ignored (same type, no reconnect)",
                     self.session.session_id, config.get("source_name"))
            return
        old, self.source = self.source, None
        self.session.input_source_type = ""
        previous = self._source_task

        async def swap() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            if old is not None:
                await asyncio.to_thread(old.close)
            if enabled and self._open_input is not None and not self.session.closed:
                new = await self._open_input(config)
                if new is not None:
                    self.source = new
                    self.session.input_source_type = new.source_type

        self._source_task = asyncio.get_running_loop().create_task(swap())

    def send(self, message: dict[str, Any]) -> bool:
        """Send a server→client message if the channel is open."""
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return False
        try:
            channel.send(json.dumps(message))
        except Exception:
            log.exception("cannot send on the data channel")
            return False
        return True

    async def drop_channel(self) -> None:
        """Close the data channel from the server side; the peer connection stays."""
        if self.channel is not None:
            self.channel.close()

    # -- video ---------------------------------------------------------------------------

    def _pause_changed(self, paused: bool) -> None:
        if paused:
            self.resumed.clear()
            self.chunk_ready.set()  # wake a track waiting for a chunk: it repeats the last frame
        else:
            self.resumed.set()

    async def _produce(self) -> None:
        """Generate chunks whether or not anyone watches (docs/scope.md §4.1, text mode)."""
        session = self.session
        assert session.stream is not None
        next_at = time.monotonic()
        try:
            while not session.closed:
                if session.paused:
                    await self.resumed.wait()
                    next_at = time.monotonic()
                    continue
                session.step()
                self.chunks.append(await self._make_chunk())
                self.chunk_ready.set()
                next_at += session.stream.chunk_interval + max(self.faults.chunk_delay, 0.0)
                delay = next_at - time.monotonic()
                if delay < -1.0:
                    next_at = time.monotonic()  # fell far behind: do not catch up in a burst
                await asyncio.sleep(max(delay, 0.0))
        except Exception:
            log.exception("session %s: chunk generation failed", session.session_id)

    async def _make_chunk(self) -> Chunk:
        """The frames of the chunk just stepped: the input file's (passthrough, gray) or a
        picture of the session's state."""
        stream = self.session.stream
        assert stream is not None
        source = self.source
        if source is not None and stream.pipeline_id in INPUT_PIPELINES:
            try:
                images = await asyncio.to_thread(source.read_many, stream.frames_per_chunk)
            except SourceClosed:  # swapped out while being read: drawn like no source
                images = []
            if images:
                self.session.frames_in += len(images)
                for pipeline_id in stream.chain or (stream.pipeline_id,):
                    effect = INPUT_PIPELINES.get(pipeline_id)
                    if effect is not None:
                        images = [effect(image) for image in images]
                return Chunk(tuple(images), stamp=False)
        base = self.renderer.chunk_image(chunk_view(self.session))
        return Chunk((base,) * stream.frames_per_chunk)

    def frame_sent(self, image: Image.Image) -> None:
        """A newly produced frame left on the track (metrics `frames_out`)."""
        self.session.frames_sent += 1
        self.last_image = image

    def frame_repeated(self) -> None:
        """The frozen last frame was sent again while paused (not a new frame)."""
        self.session.frames_repeated += 1

    # -- lifetime ------------------------------------------------------------------------

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self._closing:
            log.info(
                "session %s: connection %s", self.session.session_id, self.pc.connectionState
            )
            asyncio.get_running_loop().create_task(self.close())

    async def close(self, *, notify: bool = False) -> None:
        """End the session; with `notify`, try to send `stream_stopped` first."""
        if self._closing:
            return
        self._closing = True
        self.scheduler.cancel()
        if notify and self.send({"type": "stream_stopped"}):
            await asyncio.sleep(0.05)  # let SCTP deliver it before the connection goes
        self.session.closed = True
        if self._producer is not None:
            self._producer.cancel()
            await asyncio.gather(self._producer, return_exceptions=True)
        if self.track is not None:
            self.track.stop()
        if self._source_task is not None:  # a source being swapped in (session.closed: no new one)
            await asyncio.gather(self._source_task, return_exceptions=True)
        if self.source is not None:
            await asyncio.to_thread(self.source.close)
        await self.pc.close()
        if self._on_closed is not None:
            self._on_closed(self)
