"""RtcConnection (the aiortc facade) against the Scope simulator over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from showrunner.errors import ScopeConnectError, ScopeProtocolError, ScopeTimeoutError
from showrunner.scope.client import ClientTimeouts, ScopeClient
from showrunner.scope.rtc import CHANNEL_LABEL, RtcConnection, candidate_addresses
from showrunner.sim import Simulator, serve_sim

pytestmark = [pytest.mark.webrtc, pytest.mark.anyio]

SMALL = {"height": 64, "width": 64}


@pytest.fixture
async def sim(anyio_backend: str) -> AsyncIterator[Simulator]:
    async with serve_sim(host="127.0.0.1", port=0, load_time=0.05) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[ScopeClient]:
    async with ScopeClient(sim.url, timeouts=ClientTimeouts(request=2.0, offer=5.0)) as scope_client:
        await scope_client.load_pipeline(["controller-viz"], SMALL)
        yield scope_client


class Offerer:
    """Signals through the real client and keeps the session id the server gave."""

    def __init__(self, client: ScopeClient, initial: dict[str, Any] | None = None) -> None:
        self.client = client
        self.initial = {"pipeline_ids": ["controller-viz"]} if initial is None else initial
        self.session_id: str | None = None

    async def __call__(self, sdp: str) -> str:
        answer, self.session_id = await self.client.offer(sdp, self.initial)
        return answer


def media_sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(line)
    return sections


async def test_offer_and_answer_carry_only_loopback_candidates(client: ScopeClient) -> None:
    """No ICE servers and host candidates on 127.0.0.1 only; the offer has a sendrecv video
    m-line and the data channel (docs/scope.md §4.1, §3.1, §10: ignore the STUN fallback)."""
    offerer = Offerer(client)
    rtc = RtcConnection(loopback_only=True)
    try:
        await rtc.connect(offerer, timeout=5.0)
        assert rtc.local_sdp is not None and rtc.remote_sdp is not None
        ours, theirs = candidate_addresses(rtc.local_sdp), candidate_addresses(rtc.remote_sdp)
        assert ours and set(ours) == {"127.0.0.1"}
        assert theirs and set(theirs) == {"127.0.0.1"}, f"simulator answered with {theirs}"
        assert "typ srflx" not in rtc.local_sdp and "typ relay" not in rtc.local_sdp
        video, application = media_sections(rtc.local_sdp)
        assert video[0].startswith("m=video") and "a=sendrecv" in video
        assert application[0].startswith("m=application")
    finally:
        await rtc.close()


async def test_states_messages_and_close(client: ScopeClient, sim: Simulator) -> None:
    """The channel carries JSON text both ways; the state sequence is observable and
    close() is idempotent (docs/scope.md §3.1, §3.4)."""
    states: list[tuple[str, str]] = []
    messages: list[str] = []
    offerer = Offerer(client)
    rtc = RtcConnection(loopback_only=True, on_state=lambda w, s: states.append((w, s)),
                        on_message=messages.append)
    assert (rtc.state, rtc.channel_state) == ("new", "new")
    with pytest.raises(ScopeConnectError, match="data channel: it is new"):
        rtc.send_text("{}")
    await rtc.connect(offerer, timeout=5.0)
    assert (rtc.state, rtc.channel_state) == ("connected", "open")

    rtc.send_text(json.dumps({"noise_scale": 0.25}))
    record = await sim.wait_for(
        lambda s: next((r for r in s.records if r["kind"] == "data"), None))
    assert record["label"] == CHANNEL_LABEL
    assert record["session_id"] == offerer.session_id
    assert record["message"] == {"noise_scale": 0.25}

    await sim.drop_peer_connection()  # the simulator says `stream_stopped` first
    for _ in range(100):
        if rtc.state == "closed" or rtc.channel_state == "closed":
            break
        await asyncio.sleep(0.03)
    assert any(json.loads(m).get("type") == "stream_stopped" for m in messages)

    await rtc.close()
    await rtc.close()
    assert rtc.state == "closed"
    assert states[:2] == [("connection", "connecting"), ("connection", "connected")]
    assert ("channel", "closed") in states
    with pytest.raises(ScopeConnectError):
        rtc.send_text("{}")
    with pytest.raises(RuntimeError, match="connects once"):
        await rtc.connect(offerer, timeout=1.0)


async def test_frames_are_counted_and_recorded(client: ScopeClient, tmp_path: Path) -> None:
    """Received frames are consumed (Scope only produces while someone pulls, §2.7), counted,
    and written by aiortc's MediaRecorder when asked (docs/scope.md §4.1)."""
    out = tmp_path / "show.mp4"
    rtc = RtcConnection(loopback_only=True, record_to=out)
    try:
        await rtc.connect(Offerer(client), timeout=5.0)
        await rtc.wait_first_frame(5.0)
        await asyncio.sleep(0.4)
        counted = rtc.frames_received
        assert counted > 3 and rtc.last_frame_at is not None
    finally:
        await rtc.close()
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height) == (64, 64)
    assert 0 < frames <= counted + 2


async def test_no_pipeline_ids_means_no_video(client: ScopeClient) -> None:
    """Without initialParameters.pipeline_ids the offer succeeds, the channel opens and no
    frame ever comes (docs/scope.md §2.6, §10) — why ScopeSession always sends them."""
    rtc = RtcConnection(loopback_only=True)
    try:
        await rtc.connect(Offerer(client, initial={}), timeout=5.0)
        assert rtc.channel_state == "open"
        with pytest.raises(ScopeTimeoutError, match=r"no video frame arrived within 0\.6 s"):
            await rtc.wait_first_frame(0.6)
        assert rtc.frames_received == 0
    finally:
        await rtc.close()


async def test_a_refused_offer_closes_the_connection(sim: Simulator) -> None:
    """An offer before any load is a 400 (docs/scope.md §2.6); the error passes through and the
    half-built peer connection is closed."""
    async with ScopeClient(sim.url) as fresh:
        rtc = RtcConnection(loopback_only=True)
        with pytest.raises(ScopeProtocolError, match="Pipeline not loaded"):
            await rtc.connect(Offerer(fresh), timeout=5.0)
    assert rtc.state == "closed"
