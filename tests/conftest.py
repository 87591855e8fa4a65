from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from showrunner.sim import Simulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environ() -> Iterator[None]:
    """Tests never see the developer's SHOWRUNNER_* settings."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("SHOWRUNNER_")}
    for k in saved:
        del os.environ[k]
    yield
    for k in [k for k in os.environ if k.startswith("SHOWRUNNER_")]:
        del os.environ[k]
    os.environ.update(saved)


# -- MIDI ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jack() -> Iterator[str]:
    """A private dummy JACK server for the MIDI tests (skipped where jackd cannot run)."""
    from jackd import jack_server

    with jack_server() as name:
        yield name


# -- Scope simulator ---------------------------------------------------------------------


@pytest.fixture
def sim_thread() -> Iterator[Simulator]:
    """A simulator on its own thread and loop (fast loads), so it never delays the runner's
    timing."""
    from showrunner.sim import SimThread

    thread = SimThread("127.0.0.1", 0, load_time=0.02)
    simulator = thread.start()
    yield simulator
    thread.stop()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A running Scope simulator on 127.0.0.1 (free port) with fast loads."""
    from showrunner.sim import serve_sim

    async with serve_sim(host="127.0.0.1", port=0, load_time=0.02, fps=None) as running:
        yield running


class LoopbackPeer:
    """A minimal aiortc offerer for the simulator's own tests (not showrunner's client)."""

    def __init__(self, base_url: str, *, video: str | None = "sendrecv") -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.base_url = base_url
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("parameters", ordered=True)
        if video is not None:
            self.pc.addTransceiver("video", direction=video)
        self.session_id = ""
        self.answer_sdp = ""
        self.response: httpx.Response | None = None
        self.frames = 0
        self.tracks = 0
        self.frame_size: tuple[int, int] | None = None
        self.messages: list[Any] = []
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self.channel.on("open", self.opened.set)
        self.channel.on("close", self.closed.set)
        self.channel.on("message", lambda m: self.messages.append(json.loads(m)))
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        self.tracks += 1
        async def read() -> None:
            from aiortc.mediastreams import MediaStreamError

            try:
                while True:
                    frame = await track.recv()
                    self.frames += 1
                    self.frame_size = (frame.width, frame.height)
            except MediaStreamError:
                return

        self._readers.append(asyncio.get_running_loop().create_task(read()))

    def _loopback_only(self) -> None:
        # Only 127.0.0.1 host candidates, so the tests never touch another interface.
        transports = [t.sender.transport for t in self.pc.getTransceivers()]
        transports.append(self.pc.sctp.transport)
        for gatherer in {id(t.transport.iceGatherer): t.transport.iceGatherer for t in transports}.values():
            conn = gatherer._connection

            async def gather(conn: Any = conn) -> None:
                conn._local_candidates_start = True
                for component in conn._components:
                    conn._local_candidates += await conn.get_component_candidates(
                        component=component, addresses=["127.0.0.1"]
                    )
                conn._local_candidates_end = True

            conn.gather_candidates = gather

    async def connect(self, initial_parameters: dict[str, Any] | None = None) -> httpx.Response:
        """Offer, post it with `initialParameters`, apply the answer; returns the HTTP response."""
        from aiortc import RTCSessionDescription

        offer = await self.pc.createOffer()
        self._loopback_only()
        await self.pc.setLocalDescription(offer)
        body: dict[str, Any] = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        if initial_parameters is not None:
            body["initialParameters"] = initial_parameters
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.post("/api/v1/webrtc/offer", json=body)
        self.response = response
        if response.status_code == 200:
            answer = response.json()
            self.session_id, self.answer_sdp = answer["sessionId"], answer["sdp"]
            await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return response

    async def send(self, message: Any) -> None:
        await asyncio.wait_for(self.opened.wait(), 5)
        self.channel.send(message if isinstance(message, str) else json.dumps(message))

    async def close(self) -> None:
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


@pytest.fixture
async def sim_peer() -> AsyncIterator[Callable[..., Awaitable[LoopbackPeer]]]:
    """Factory: `await sim_peer(url, initial_parameters, video="sendrecv")` → connected peer."""
    peers: list[LoopbackPeer] = []

    async def connect(
        url: str, initial_parameters: dict[str, Any] | None = None, *, video: str | None = "sendrecv"
    ) -> LoopbackPeer:
        peer = LoopbackPeer(url, video=video)
        peers.append(peer)
        await peer.connect(initial_parameters)
        return peer

    yield connect
    for peer in peers:
        await peer.close()
