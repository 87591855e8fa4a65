"""The headless session: a pipeline run without WebRTC (docs/scope.md §2.8, §10.1; Scope headless.py).

Only one exists; a new start replaces it without stopping the old one. Its output is not
paced: controller-viz makes about 1,000 frames/s on a real CPU server (`UNPACED_FPS`), the
other pipelines their usual rate (a `video_file` input paces at the file's rate). The
simulator counts those frames but draws only the latest, when `/session/frame` or
`/session/output.ts` asks for it. `paused` stops production; the frame stays the same.
`output.ts` is H.264 in MPEG-TS with timestamps at 30 fps whatever the real rate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
from PIL import Image

from showrunner.sim.inputs import INPUT_PIPELINES, SourceClosed, VideoFileSource
from showrunner.sim.loads import Faults
from showrunner.sim.render import ChunkView, Renderer
from showrunner.sim.session import SimSession
from showrunner.sim.webrtc import chunk_view

log = logging.getLogger(__name__)

HEADLESS_ID = "headless"  # the session id in metrics and recordings (docs/scope.md §2.11, §10.1)
# Frames per second a pipeline makes when nothing paces it (docs/scope.md §10.1: controller-viz
# ~900–1,000 frames/s on CPU); pipelines not listed make their usual `Stream.fps`.
UNPACED_FPS = {"controller-viz": 1000.0}
TICK = 0.02  # seconds between production steps
MAX_FRAMES_PER_TICK = 200  # after a stall, no burst larger than this
TS_RATE = 30  # output.ts timestamps (Scope RECORDING_MAX_FPS)


class HeadlessRefused(Exception):
    """A start the real server refuses: `status` and `detail` of its answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class TsStream:
    """One `GET /session/output.ts` listener: H.264 in MPEG-TS, fed with the latest frames."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._lock = threading.Lock()
        self._container: Any = None
        self._video: Any = None
        self._frames = 0
        self._closed = False
        self.busy = False

    # PyAV writes the muxed bytes here, from the encoding thread.
    def write(self, data: bytes) -> int:
        chunk = bytes(data)
        if chunk:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)
        return len(chunk)

    def flush(self) -> None:
        return None

    def encode(self, image: Image.Image) -> None:
        """Encode one frame (runs in a worker thread)."""
        with self._lock:
            if self._closed:
                return
            width, height = image.width + image.width % 2, image.height + image.height % 2
            if self._container is None:
                self._container = av.open(self, "w", format="mpegts", buffer_size=188 * 8)
                self._video = self._container.add_stream("libx264", rate=TS_RATE)
                self._video.width, self._video.height = width, height
                self._video.pix_fmt = "yuv420p"
                # Low latency for a rehearsal tool; Scope uses libx264's defaults.
                self._video.options = {"preset": "ultrafast", "tune": "zerolatency"}
            if image.size != (width, height):
                padded = Image.new("RGB", (width, height))
                padded.paste(image, (0, 0))
                image = padded
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            frame.pts = self._frames
            frame.time_base = Fraction(1, TS_RATE)
            self._frames += 1
            for packet in self._video.encode(frame):
                self._container.mux(packet)

    def close(self) -> None:
        """Flush and end the stream (runs in a worker thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._container is not None:
                try:
                    for packet in self._video.encode(None):
                        self._container.mux(packet)
                    self._container.close()
                except Exception as exc:
                    log.warning("error finishing output.ts: %s", exc)
            self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            yield chunk


class HeadlessSession:
    """The WebRTC-free session of `POST /api/v1/session/start`."""

    def __init__(
        self,
        session: SimSession,
        *,
        faults: Faults,
        rate: float,
        source: VideoFileSource | None = None,
    ) -> None:
        self.session = session
        self.faults = faults
        self.rate = rate
        self.source = source
        self.renderer = Renderer()
        self.running = False
        self.resumed = asyncio.Event()
        if not session.paused:
            self.resumed.set()
        session.on_pause_change = self._pause_changed
        self._view: ChunkView | None = None
        self._input_image: Image.Image | None = None
        self._drawn: tuple[int, Image.Image] | None = None
        self._streams: list[TsStream] = []
        self._last_ts = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.running = True
        if self.session.stream is not None and self.session.no_video_reason is None:
            self._task = asyncio.get_running_loop().create_task(self._produce())

    def _pause_changed(self, paused: bool) -> None:
        if paused:
            self.resumed.clear()
        else:
            self.resumed.set()

    # -- production ----------------------------------------------------------------------

    async def _produce(self) -> None:
        session = self.session
        stream = session.stream
        assert stream is not None
        per_chunk = stream.frames_per_chunk
        shows_input = self.source is not None and stream.pipeline_id in INPUT_PIPELINES
        budget = float(per_chunk)  # the first chunk comes at once
        last = time.monotonic()
        try:
            while self.running and not session.closed:
                if session.paused:
                    # Paused: nothing is produced; updates wait in the queue (docs/scope.md §10.1).
                    await self.resumed.wait()
                    last = time.monotonic()
                    continue
                now = time.monotonic()
                seconds_per_chunk = per_chunk / self.rate + max(self.faults.chunk_delay, 0.0)
                budget += (now - last) * per_chunk / seconds_per_chunk
                last = now
                chunks = min(int(budget // per_chunk), max(MAX_FRAMES_PER_TICK // per_chunk, 1))
                budget = min(budget - chunks * per_chunk, float(per_chunk))
                if chunks:
                    for _ in range(chunks):
                        session.step()
                    frames = chunks * per_chunk
                    if shows_input:
                        await self._read_input(frames)
                    else:
                        self._view = chunk_view(session)
                    session.frames_sent += frames
                    self._feed_streams()
                await asyncio.sleep(TICK)
        except Exception:
            log.exception("headless session: chunk generation failed")

    async def _read_input(self, frames: int) -> None:
        assert self.source is not None and self.session.stream is not None
        try:
            images = await asyncio.to_thread(self.source.read_many, frames)
        except SourceClosed:  # swapped out while being read: the next read takes the new one
            return
        self.session.frames_in += len(images)
        image = images[-1]
        for pipeline_id in self.session.stream.chain or (self.session.stream.pipeline_id,):
            effect = INPUT_PIPELINES.get(pipeline_id)
            if effect is not None:
                image = effect(image)
        self._input_image = image

    def latest_image(self) -> Image.Image | None:
        """The last output frame, drawn on demand; the same image until a new one exists."""
        if self._input_image is not None:
            return self._input_image
        if self._view is None:
            return None
        number = self.session.frames_sent
        if self._drawn is None or self._drawn[0] != number:
            base = self.renderer.chunk_image(self._view)
            self._drawn = (number, self.renderer.frame_image(base, number))
        return self._drawn[1]

    # -- output.ts -----------------------------------------------------------------------

    def open_stream(self) -> TsStream:
        stream = TsStream(asyncio.get_running_loop())
        self._streams.append(stream)
        return stream

    def remove_stream(self, stream: TsStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    def _feed_streams(self) -> None:
        """Encode the latest frame for each listener, at most `TS_RATE` frames a second."""
        now = time.monotonic()
        if not self._streams or now - self._last_ts < 1.0 / TS_RATE:
            return
        image = self.latest_image()
        if image is None:
            return
        self._last_ts = now
        for stream in self._streams:
            if not stream.busy:
                stream.busy = True
                asyncio.get_running_loop().create_task(self._encode(stream, image))

    async def _encode(self, stream: TsStream, image: Image.Image) -> None:
        try:
            await asyncio.to_thread(stream.encode, image)
        except Exception:
            log.exception("output.ts encoding failed; that listener is dropped")
            self.remove_stream(stream)
            await asyncio.to_thread(stream.close)
        finally:
            stream.busy = False

    # -- end -----------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """The metrics entry: the session's figures plus `headless: true` (mcp_router.py)."""
        return {**self.session.metrics(), "headless": True}

    async def close(self) -> None:
        """Stop producing, end every output.ts stream cleanly, release the input."""
        self.running = False
        self.session.closed = True
        self.resumed.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        streams, self._streams = self._streams, []
        for stream in streams:
            await asyncio.to_thread(stream.close)
        if self.source is not None:
            await asyncio.to_thread(self.source.close)

