"""ScopeClient failure handling, without a server (the Coalescer: tests/scope/test_pacing.py).

Failures a well-behaved simulator cannot produce (timeouts, 5xx, garbage bodies, scripted
status races) are injected with ``httpx.MockTransport``; everything else is tested against
the simulator in ``tests/scope/test_session.py``.
"""

from __future__ import annotations

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
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession

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
    the call and the URL (docs/scope.md §2.12 codes; errors translated in one place)."""
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
    """An offer while nothing is loaded is a 400 with a detail (docs/scope.md §2.6)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"detail": "Pipeline not loaded. Please load pipeline first."})

    async with client_for(handler) as client:
        with pytest.raises(ScopeProtocolError, match=r"answered HTTP 400: Pipeline not loaded\."):
            await client.offer("v=0", {"pipeline_ids": ["gray"]})


@pytest.mark.anyio
async def test_headers_reach_every_request() -> None:
    """Optional headers (a proxy's bearer token) go on every call (docs/scope.md §1: Scope itself
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
    the right id with other load_params; only an exact match counts (docs/scope.md §2.3)."""
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
    """A transient `not_loaded` while old instances are dropped is pending (docs/scope.md §2.3)."""
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
    else read the one-time `error`) (docs/scope.md §2.3)."""
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
    """Only the four documented states exist (docs/scope.md §2.3)."""
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
    """Only §3.3 runtime keys may go over the data channel (docs/scope.md §3.2 step 6); the
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


# -- WebCalls: the hooks' and alerts' HTTP calls ---------------------------------------------


@pytest.mark.anyio
async def test_web_calls_return_the_status_and_translate_failures() -> None:
    from showrunner.errors import ShowrunnerError
    from showrunner.scope.client import WebCalls

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/refused":
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(202)

    async with WebCalls(transport=httpx.MockTransport(handler)) as web:
        status = await web.request("PUT", BASE + "/pods/secret-id/start", headers={"X-Key": "k"},
                                   json_body={"a": 1}, timeout=1.0)
        assert status == 202
        assert seen[0].method == "PUT" and seen[0].headers["X-Key"] == "k"
        assert seen[0].content == b'{"a":1}'
        assert (await web.request("GET", BASE + "/", headers={}, json_body=None, timeout=1.0)) == 202
        assert seen[1].content == b""
        with pytest.raises(ShowrunnerError, match=r"^connection refused$"):
            await web.request("POST", BASE + "/refused", headers={}, json_body=None, timeout=1.0)
        with pytest.raises(ShowrunnerError, match=r"^no answer within 1 s$"):
            await web.request("POST", BASE + "/slow", headers={}, json_body=None, timeout=1.0)
