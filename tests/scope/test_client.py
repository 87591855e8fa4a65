"""ScopeClient failure handling and the Coalescer, without a server.

Failures a well-behaved simulator cannot produce (timeouts, 5xx, garbage bodies, scripted
status races) are injected with ``httpx.MockTransport``; everything else is tested against
the simulator in ``tests/scope/test_session.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from showrunner.errors import (
    ScopeConnectError,
    ScopeError,
    ScopeLoadError,
    ScopeProtocolError,
    ScopeTimeoutError,
)
from showrunner.scope.client import ClientTimeouts, Coalescer, ScopeClient, ScopeSession
from showrunner.testing import FakeClock

BASE = "http://127.0.0.1:8000"
FAST = ClientTimeouts(request=1.0, poll_interval=0.01, not_loaded_grace=0.2, load=2.0)

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, *, timeouts: ClientTimeouts = FAST, **kwargs: Any) -> ScopeClient:
    return ScopeClient(BASE, transport=httpx.MockTransport(handler), timeouts=timeouts, **kwargs)


def status(state: str, pipeline_id: str | None = None, load_params: Any = None) -> dict[str, Any]:
    return {"status": state, "pipeline_id": pipeline_id, "load_params": load_params,
            "loaded_lora_adapters": None, "error": None, "loading_stage": None}


class ScriptedScope:
    """Answers pipeline status from a script (the last entry repeats) and records requests."""

    def __init__(self, before_post: dict[str, Any], after_post: Iterable[dict[str, Any]]) -> None:
        self.before_post = before_post
        self.after_post = list(after_post)
        self.posted = False
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.url.path == "/api/v1/pipeline/load":
            self.posted = True
            return httpx.Response(200, json={"message": "Pipeline loading initiated successfully"})
        if request.url.path == "/api/v1/pipeline/status":
            if not self.posted:
                return httpx.Response(200, json=self.before_post)
            body = self.after_post.pop(0) if len(self.after_post) > 1 else self.after_post[0]
            return httpx.Response(200, json=body)
        return httpx.Response(404, json={"detail": "Not Found"})

    @property
    def status_reads(self) -> int:
        return sum(1 for _, path in self.requests if path == "/api/v1/pipeline/status")


# -- error mapping -----------------------------------------------------------------------


def raise_(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "error", "words"),
    [
        (raise_(httpx.ReadTimeout("read timed out")), ScopeTimeoutError, "timed out after 1 s"),
        (raise_(httpx.ConnectError("[Errno 111] Connection refused")), ScopeConnectError,
         "cannot reach GET http://127.0.0.1:8000/health"),
        (raise_(httpx.RemoteProtocolError("Server disconnected\nwithout a response")),
         ScopeConnectError, "connection dropped (Server disconnected without a response)"),
        (lambda r: httpx.Response(500, text="Internal Server Error\nTraceback ..."),
         ScopeProtocolError, "answered HTTP 500: Internal Server Error Traceback ..."),
        (lambda r: httpx.Response(503, json={"detail": "warming up"}),
         ScopeProtocolError, "answered HTTP 503: warming up"),
        (lambda r: httpx.Response(200, text="<html>proxy login</html>"),
         ScopeProtocolError, "did not return JSON: '<html>proxy login</html>'"),
        (lambda r: httpx.Response(200, json=[1, 2]), ScopeProtocolError, "expected a JSON object"),
        (lambda r: httpx.Response(200, json={"status": "healthy"}), ScopeProtocolError,
         "no valid 'server_start_time'"),
    ],
    ids=["timeout", "refused", "dropped", "500-text", "503-detail", "not-json", "not-object",
         "missing-field"],
)
async def test_rest_failures_map_to_one_line_errors(
    handler: Handler, error: type[ScopeError], words: str
) -> None:
    """Every httpx failure becomes one ScopeError subclass with a one-line message naming
    the call and the URL (contract §2.12 codes; errors translated in one place)."""
    async with client_for(handler) as client:
        with pytest.raises(error) as info:
            await client.health()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Scope health check: ")
    assert words in message
    assert "http://127.0.0.1:8000/health" in message


@pytest.mark.anyio
async def test_offer_rejection_carries_the_server_detail() -> None:
    """An offer while nothing is loaded is a 400 with a detail (contract §2.6)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"detail": "Pipeline not loaded. Please load pipeline first."})

    async with client_for(handler) as client:
        with pytest.raises(ScopeProtocolError, match=r"answered HTTP 400: Pipeline not loaded\."):
            await client.offer("v=0", {"pipeline_ids": ["gray"]})


@pytest.mark.anyio
async def test_headers_reach_every_request() -> None:
    """Optional headers (a proxy's bearer token) go on every call (contract §1: Scope itself
    has no auth, a proxy in front of it may)."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "healthy", "server_start_time": 1.5,
                                             "version": "0.2.4"})
        return httpx.Response(200, json={"lora_files": []})

    async with client_for(handler, headers={"Authorization": "Bearer s3cret"}) as client:
        health = await client.health()
        await client.list_loras()
    assert health.server_start_time == 1.5
    assert seen == ["Bearer s3cret", "Bearer s3cret"]


# -- load polling traps --------------------------------------------------------------------


@pytest.mark.anyio
async def test_load_ignores_stale_loaded_status() -> None:
    """Right after the POST the status may still show the previous `loaded` pipeline, or
    the right id with other load_params; only an exact match counts (contract §2.3)."""
    params = {"height": 320, "width": 576}
    scope = ScriptedScope(
        status("loaded", "passthrough", {}),
        [
            status("loaded", "passthrough", {}),
            status("loaded", "gray", {"height": 512, "width": 512}),
            status("loading", "gray", params),
            status("loaded", "gray", params),
        ],
    )
    async with client_for(scope) as client:
        await client.load_pipeline(["gray"], params)
    assert scope.status_reads == 5
    assert scope.requests.count(("POST", "/api/v1/pipeline/load")) == 1


@pytest.mark.anyio
async def test_load_tolerates_not_loaded_within_grace() -> None:
    """A transient `not_loaded` while old instances are dropped is pending (contract §2.3)."""
    scope = ScriptedScope(
        status("not_loaded"),
        [status("not_loaded"), status("not_loaded"), status("loaded", "gray", {})],
    )
    async with client_for(scope) as client:
        await client.load_pipeline(["gray"], {})
    assert scope.status_reads == 4


@pytest.mark.anyio
async def test_load_fails_after_not_loaded_grace() -> None:
    """`not_loaded` for longer than the grace period means the load is gone (e.g. someone
    else read the one-time `error`) (contract §2.3)."""
    scope = ScriptedScope(status("not_loaded"), [status("not_loaded")])
    started = time.monotonic()
    async with client_for(scope) as client:
        with pytest.raises(ScopeLoadError) as info:
            await client.load_pipeline(["gray"], {})
    assert 0.2 <= time.monotonic() - started < 1.5
    assert str(info.value) == (
        "loading pipeline gray failed: status stayed 'not_loaded' for 0.2 s (an 'error' is "
        "reported only once; see the Scope server log)"
    )


@pytest.mark.anyio
async def test_load_rejects_unknown_status() -> None:
    """Only the four documented states exist (contract §2.3)."""
    scope = ScriptedScope(status("not_loaded"), [status("warming")])
    async with client_for(scope) as client:
        with pytest.raises(ScopeProtocolError, match="unknown status 'warming'"):
            await client.load_pipeline(["gray"], {})


# -- sending rules that need no connection --------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"height": 512}, "cannot send 'height' to Scope: not a runtime parameter"),
        ({"prompts": [{"text": "a", "weight": 1}], "init_cache": True}, "'init_cache'"),
        ({"pipeline_ids": ["gray"]}, "cannot change pipeline_ids mid-session"),
        ({"input_mode": "video"}, "cannot change input_mode mid-session"),
        ({}, "empty parameter update"),
        ({"noise_scale": float("nan")}, None),
    ],
    ids=["height", "internal-state", "pipeline_ids", "input_mode", "empty", "nan-is-json"],
)
async def test_whitelist_is_checked_before_anything_is_sent(
    message: dict[str, Any], words: str | None
) -> None:
    """Only §3.3 runtime keys may go over the data channel (contract §3.2 step 6); the
    check runs before the connection is even looked at."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with client_for(handler) as client:
        session = ScopeSession(client)
        with pytest.raises(ScopeError) as info:
            await session.send(message)
    if words is None:  # a valid message: it fails only for want of a connection
        assert isinstance(info.value, ScopeConnectError)
    else:
        assert type(info.value) is ScopeError
        assert words in str(info.value)


# -- the coalescer ----------------------------------------------------------------------------


class Wire:
    """Stands in for the data channel: records what was written and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, Any]]] = []

    def __call__(self, message: dict[str, Any]) -> float:
        self.sent.append((time.monotonic(), json.loads(json.dumps(message))))
        return time.time()


@pytest.mark.anyio
async def test_coalescer_sends_idle_messages_at_once() -> None:
    """No added latency when the line is idle (contract §3.2 step 5: pacing only matters
    when updates come faster than chunks)."""
    wire = Wire()
    coalescer = Coalescer(wire, 0.02)
    for i in range(3):
        submit = coalescer.submit({"noise_scale": i / 10})
        # Written on the first step, with no wait on the event loop in between.
        with pytest.raises(StopIteration) as done:
            submit.send(None)
        at, sent = done.value.value
        assert sent == {"noise_scale": i / 10}
        assert abs(at - time.time()) < 0.5
        await asyncio.sleep(0.025)
    assert len(wire.sent) == 3


@pytest.mark.anyio
async def test_coalescer_merges_but_never_drops_transitions_or_one_shots() -> None:
    """A burst becomes one message per interval; persistent keys merge (later wins), while
    a second transition or one-shot key waits for its own slot (contract §3.2, §8-L)."""
    wire = Wire()
    interval = 0.04
    coalescer = Coalescer(wire, interval)

    def transition(text: str) -> dict[str, Any]:
        return {"transition": {"target_prompts": [{"text": text, "weight": 1}], "num_steps": 2}}

    burst = [
        {"noise_scale": 0.1},                     # idle: out at once
        {"noise_scale": 0.2},                     # slot 2
        {"noise_scale": 0.3, "manage_cache": False},
        transition("a"),                          # merges into slot 2
        transition("b"),                          # second transition: slot 3
        {"vace_ref_images": ["/x.png"]},          # merges into slot 3
        {"vace_ref_images": ["/y.png"], "noise_scale": 0.4},  # second copy: slot 4
        {"reset_cache": True},                    # merges into slot 4
    ]
    results = await asyncio.gather(*(coalescer.submit(m) for m in burst))

    assert [m for _, m in wire.sent] == [
        {"noise_scale": 0.1},
        {"noise_scale": 0.3, "manage_cache": False, **transition("a")},
        {**transition("b"), "vace_ref_images": ["/x.png"]},
        {"vace_ref_images": ["/y.png"], "noise_scale": 0.4, "reset_cache": True},
    ]
    gaps = [b[0] - a[0] for a, b in zip(wire.sent, wire.sent[1:], strict=False)]
    assert all(gap >= interval * 0.95 for gap in gaps), gaps
    # Every caller learns what its message went out as.
    assert results[1][1] == results[2][1] == results[3][1] == wire.sent[1][1]
    assert results[7][1] == wire.sent[3][1]
    assert results[4][0] < results[6][0]
    assert coalescer.pending == 0


@pytest.mark.anyio
async def test_coalescer_waits_for_its_slot_on_its_clock() -> None:
    """The wait for a slot goes through the session's clock: on a fake one, a held update is
    written when that clock reaches one interval after the last write, not before."""
    clock = FakeClock(monotonic=0.0)
    written: list[tuple[float, dict[str, Any]]] = []

    def write(message: dict[str, Any]) -> float:
        written.append((clock.monotonic(), dict(message)))
        return clock.time()

    coalescer = Coalescer(write, 0.5, clock=clock)
    await coalescer.submit({"noise_scale": 0.1})
    held = asyncio.ensure_future(coalescer.submit({"noise_scale": 0.2}))
    await clock.advance(0.4)
    assert written == [(0.0, {"noise_scale": 0.1})] and not held.done()
    await clock.advance(0.1)
    assert written[1:] == [(0.5, {"noise_scale": 0.2})]
    assert await held == (clock.time(), {"noise_scale": 0.2})


@pytest.mark.anyio
async def test_coalescer_cancel_fails_waiting_messages() -> None:
    """Closing the session fails queued updates instead of leaving callers hanging."""
    wire = Wire()
    coalescer = Coalescer(wire, 10.0)
    await coalescer.submit({"noise_scale": 0.1})
    waiting = asyncio.ensure_future(coalescer.submit({"noise_scale": 0.2}))
    await asyncio.sleep(0)
    coalescer.cancel(ScopeConnectError("closed"))
    with pytest.raises(ScopeConnectError, match="closed"):
        await waiting
    assert len(wire.sent) == 1
