"""ICE server choice (scope/ice.py) through ScopeSession, against the simulator on 127.0.0.1 and,
for relaying, a real TURN server (coturn) on 127.0.0.1 (docs/scope.md §2.6, "ICE servers")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from showrunner.errors import ScopeConnectError, ScopeProtocolError
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession
from showrunner.scope.ice import IceMode, IcePolicy, IceServer, policy_from_words
from showrunner.scope.rtc import candidate_addresses, candidate_types
from showrunner.sim import Simulator, serve_sim
from tests.turn import bound_addresses, needs_turnserver, turn_server

pytestmark = [pytest.mark.anyio]

QUICK = ClientTimeouts(request=2.0, offer=8.0, first_frame=8.0)
SMALL = {"height": 64, "width": 64}
FIRST = {"prompts": [{"text": "a lighthouse", "weight": 1.0}]}


def ice_requests(sim: Simulator) -> list[dict[str, Any]]:
    return [r for r in sim.records if r["kind"] == "http" and r["path"] == "/api/v1/webrtc/ice-servers"]


@pytest.fixture
async def sim(anyio_backend: str) -> AsyncIterator[Simulator]:
    async with serve_sim(port=0, load_time=0.02) as simulator:
        yield simulator


async def test_auto_on_loopback_uses_no_ice_server_and_does_not_ask(sim: Simulator) -> None:
    """`auto` with a loopback URL: an empty list, host candidates on 127.0.0.1 only, and the
    server's list is not even fetched (a real Scope would hand out a public STUN server, §10)."""
    async with ScopeClient(sim.url, timeouts=QUICK) as client, ScopeSession(client) as session:
        await session.open(["controller-viz"], SMALL, FIRST)
        assert session.local_sdp is not None
        assert set(candidate_types(session.local_sdp)) == {"host"}
        assert set(candidate_addresses(session.local_sdp)) == {"127.0.0.1"}
    assert ice_requests(sim) == []


async def test_server_mode_asks_the_server_at_each_connection(sim: Simulator) -> None:
    """`server`: the list comes from `GET /api/v1/webrtc/ice-servers`, fresh for every
    connection (TURN credentials may expire); the simulator's list is empty by default."""
    policy = IcePolicy(IceMode.SERVER)
    async with ScopeClient(sim.url, timeouts=QUICK) as client:
        assert await client.ice_servers() == ()
        async with ScopeSession(client, ice=policy) as session:
            await session.open(["controller-viz"], SMALL, FIRST)
            await session.switch(["controller-viz"], {"height": 32, "width": 32}, FIRST)
    assert len(ice_requests(sim)) == 3


async def test_auto_without_the_servers_list_falls_back_to_none_in_one_line(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A remote Scope behind a proxy that does not pass `/api/v1/webrtc/ice-servers` on (404):
    `auto` warns once and uses no ICE servers (host candidates, enough on a LAN) rather than
    failing every connection; `server`, asked for explicitly, is an error. Only the list is
    fetched here (127.0.0.1): no connection is made with a non-loopback policy."""
    sim.ice_servers = None  # the endpoint answers 404
    async with ScopeClient(sim.url, timeouts=QUICK) as client:
        auto = ScopeSession(client, loopback_only=False)
        assert await auto.ice_servers() == ()
        assert await auto.ice_servers() == ()
        warned = [r.getMessage() for r in caplog.records if "ICE servers" in r.getMessage()]
        assert len(warned) == 1 and "using none (--ice-server to choose)" in warned[0]
        assert "404" in warned[0]
        server = ScopeSession(client, ice=IcePolicy(IceMode.SERVER))
        with pytest.raises(ScopeProtocolError, match="ICE servers"):
            await server.ice_servers()
    assert len(ice_requests(sim)) == 3


async def test_simulator_hands_out_its_ice_servers_setting() -> None:
    entry = {"urls": "turn:127.0.0.1:3478", "username": "u", "credential": "c"}
    async with serve_sim(port=0, ice_servers=[entry]) as sim, ScopeClient(sim.url) as client:
        assert await client.ice_servers() == (IceServer(("turn:127.0.0.1:3478",), "u", "c"),)


async def test_relay_only_without_a_turn_server_is_refused(sim: Simulator) -> None:
    policy = IcePolicy(IceMode.NONE, relay_only=True)
    async with ScopeClient(sim.url, timeouts=QUICK) as client, ScopeSession(client, ice=policy) as session:
        with pytest.raises(ScopeConnectError, match="relay-only ICE needs a TURN server"):
            await session.open(["controller-viz"], SMALL, FIRST)


def test_command_line_words() -> None:
    assert policy_from_words([]) is None
    assert policy_from_words(["server"], relay_only=True) == IcePolicy(IceMode.SERVER, relay_only=True)
    policy = policy_from_words(["stun:127.0.0.1:3478", "turn:127.0.0.1:3479"], username="u", credential="c")
    assert policy == IcePolicy(IceMode.LIST, (
        IceServer(("stun:127.0.0.1:3478",)), IceServer(("turn:127.0.0.1:3479",), "u", "c"),
    ))
    with pytest.raises(ValueError, match="cannot be combined"):
        policy_from_words(["none", "turn:127.0.0.1"])
    with pytest.raises(ValueError, match="expected auto, server, none or a stun:"):
        policy_from_words(["127.0.0.1:3478"])


@needs_turnserver
@pytest.mark.webrtc
async def test_relay_only_through_a_turn_server_on_loopback(tmp_path: Path, anyio_backend: str) -> None:
    """The server hands out a TURN server (here coturn on 127.0.0.1): with the relay policy the
    offer carries relay candidates only, the session comes up through the relay and frames
    arrive. coturn itself listens on 127.0.0.1 and nowhere else."""
    with turn_server(tmp_path) as turn:
        assert bound_addresses(turn.pid) == {"127.0.0.1"}
        async with serve_sim(port=0, load_time=0.02, ice_servers=[turn.ice_server()]) as sim:
            policy = IcePolicy(IceMode.SERVER, relay_only=True)
            async with ScopeClient(sim.url, timeouts=QUICK) as client, \
                    ScopeSession(client, ice=policy) as session:
                await session.open(["controller-viz"], SMALL, FIRST)
                assert session.local_sdp is not None
                assert "typ relay" in session.local_sdp
                assert set(candidate_types(session.local_sdp)) == {"relay"}
                await session.wait_first_frame()
                assert session.connected and session.frames_received > 0
                # Its relay allocations too: every socket of coturn is on 127.0.0.1.
                assert bound_addresses(turn.pid) == {"127.0.0.1"}
            assert len(ice_requests(sim)) == 1


@needs_turnserver
@pytest.mark.webrtc
async def test_wrong_turn_credentials_are_one_clear_error(tmp_path: Path, sim: Simulator) -> None:
    with turn_server(tmp_path) as turn:
        wrong = IceServer((turn.url,), turn.username, "not-the-password")
        policy = IcePolicy(IceMode.LIST, (wrong,), relay_only=True)
        async with ScopeClient(sim.url, timeouts=QUICK) as client, \
                ScopeSession(client, ice=policy) as session:
            with pytest.raises(ScopeConnectError, match="the TURN server gave no relay candidate"):
                await session.open(["controller-viz"], SMALL, FIRST)
