"""Talking to a Daydream Scope server: REST over httpx and the live session the player drives.

``ScopeClient`` is the REST side (health, pipeline load with every status-polling trap,
assets, LoRAs, WebRTC signalling). ``ScopeSession`` owns one WebRTC session at a time
(through :mod:`showrunner.scope.rtc`) and is the object a show plays against: ``open``,
``send`` (validated, rate-limited, coalesced parameter updates), ``switch`` (the
teardown → load → reconnect procedure of docs/scope.md §4.2), ``liveness`` and ``close``.
Section numbers in comments refer to what docs/scope.md describes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from showrunner.errors import (
    ScopeConnectError,
    ScopeError,
    ScopeLoadError,
    ScopeProtocolError,
    ScopeTimeoutError,
    ShowrunnerError,
)
from showrunner.pipelines import lookup as pipeline_info
from showrunner.scope.clock import SYSTEM_TIME, SessionClock
from showrunner.scope.ice import DEFAULT_ICE, IceMode, IcePolicy, IceServer, parse_served
from showrunner.scope.pacing import ONE_SHOT_KEYS, Coalescer, Prepared, Written
from showrunner.scope.rtc import RtcConnection

__all__ = [
    "EVENT_KINDS",
    "FALLBACK_CHUNK_INTERVAL",
    "ONE_SHOT_KEYS",
    "RUNTIME_KEYS",
    "SESSION_START_KEYS",
    "ClientTimeouts",
    "Coalescer",
    "Health",
    "Prepared",
    "ScopeClient",
    "ScopeEvent",
    "ScopeSession",
    "Written",
    "initial_parameters",
    "paced_interval",
    "runtime_update",
]

log = logging.getLogger("showrunner.scope.client")

FALLBACK_CHUNK_INTERVAL = 0.1
_STALL_SECONDS = 3.0
# The health check of `liveness` waits at most this long: a server that hangs must not hold the
# watchdog for the full request timeout.
HEALTH_TIMEOUT = 3.0
# Writes remembered per connection, to tell which were never acknowledged when it closes.
_WRITE_LOG = 1024
_FIRST_POLL = 0.02

# Keys that may be sent over the data channel (§3.3). Anything else can collide with a
# pipeline's internal state (§3.2 step 6), and nothing on the server validates it.
RUNTIME_KEYS = ONE_SHOT_KEYS | frozenset(
    {
        "prompts", "prompt_interpolation_method", "transition", "denoising_step_list",
        "noise_scale", "noise_controller", "manage_cache", "kv_cache_attention_bias",
        "base_seed", "vace_context_scale", "vace_use_input_video", "paused", "ctrl_input",
        "output_sinks", "input_source", "node_id",
        # tempo controls (§6)
        "quantize_mode", "lookahead_ms", "modulations", "beat_cache_reset_rate", "bpm",
        "beat_phase", "bar_position", "beat_count", "is_playing", "_quantized",
    }
)
# Read only when a session starts (§2.6, §3.3); mid-session they are ignored or harmful.
SESSION_START_KEYS = frozenset({"pipeline_ids", "graph", "recording", "input_mode", "vace_enabled"})

EVENT_KINDS = frozenset(
    {"stream_stopped", "parameters_updated", "change_scheduled", "change_applied",
     "tempo_update", "connection_state", "channel_closed", "server_message"}
)
_SERVER_MESSAGE_TYPES = frozenset(
    {"stream_stopped", "parameters_updated", "change_scheduled", "change_applied", "tempo_update"}
)
_LOAD_STATES = frozenset({"not_loaded", "loading", "loaded", "error"})


@dataclass(frozen=True)
class ClientTimeouts:
    """Seconds the client allows for each kind of wait; every network call is bounded by one of
    these (`ScopeClient(timeouts=...)`; a show's ``scope.timeouts`` fills them in)."""

    connect: float = 5.0
    request: float = 10.0
    load: float = 300.0
    offer: float = 15.0
    first_frame: float = 10.0
    poll_interval: float = 0.25
    not_loaded_grace: float = 10.0


@dataclass(frozen=True)
class Health:
    """``GET /health`` (§2.1); a changed ``server_start_time`` means the server restarted."""

    status: str
    server_start_time: float
    version: str


@dataclass(frozen=True)
class ScopeEvent:
    """Something the server or the connection told us, surfaced to the player."""

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _canonical(value: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-JSON deep copy: what the server will see, comparable with what it echoes."""
    try:
        result: dict[str, Any] = json.loads(json.dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise ScopeError(f"cannot send parameters that are not plain JSON: {exc}") from exc
    return result


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------------------
# REST


class ScopeClient:
    """REST access to one Scope server. Use as ``async with ScopeClient(url) as client:``."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeouts: ClientTimeouts = ClientTimeouts(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeouts.request, connect=timeouts.connect),
            transport=transport,
        )
        # One poller at a time: the server reports `error` to the first reader only (§2.3).
        self._load_lock = asyncio.Lock()
        self._last_load: tuple[tuple[str, ...], str] | None = None

    def __repr__(self) -> str:
        return f"ScopeClient({self.base_url!r})"

    async def __aenter__(self) -> ScopeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    # -- the one place httpx errors are translated -------------------------------------

    @contextlib.contextmanager
    def _mapped(self, what: str, method: str, url: str, timeout: float) -> Iterator[None]:
        where = f"{method} {url}"
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ScopeTimeoutError(f"Scope {what}: {where} timed out after {timeout:g} s") from exc
        except httpx.RemoteProtocolError as exc:
            raise ScopeConnectError(
                f"Scope {what}: {where}: connection dropped ({_one_line(str(exc))})"
            ) from exc
        except (httpx.NetworkError, httpx.ProxyError) as exc:
            raise ScopeConnectError(
                f"Scope {what}: cannot reach {where} ({_one_line(str(exc)) or type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise ScopeProtocolError(
                f"Scope {what}: {where} failed ({_one_line(str(exc)) or type(exc).__name__})"
            ) from exc

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        ok: Sequence[int] = (200,),
        timeout: float | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = f"{self.base_url}{path}"
        limit = timeout if timeout is not None else self.timeouts.request
        with self._mapped(what, method, url, limit):
            response = await self._http.request(
                method,
                path,
                json=json_body,
                params=params,
                content=content,
                headers=headers,
                timeout=httpx.Timeout(limit, connect=min(limit, self.timeouts.connect)),
            )
        if response.status_code not in ok:
            raise ScopeProtocolError(
                f"Scope {what}: {method} {url} answered HTTP {response.status_code}"
                f"{self._detail(response)}"
            )
        return response

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            text = _one_line(response.text)
            return f": {text}" if text else ""
        if isinstance(body, dict) and "detail" in body:
            return f": {_one_line(str(body['detail']))}"
        return f": {_one_line(json.dumps(body))}"

    async def _get_json(self, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._request("GET", path, what=what, **kwargs)
        return self._json_object(response, what)

    def _json_object(self, response: httpx.Response, what: str) -> dict[str, Any]:
        where = f"{response.request.method} {response.request.url}"
        try:
            body = response.json()
        except ValueError:
            raise ScopeProtocolError(
                f"Scope {what}: {where} did not return JSON: {_one_line(response.text, 80)!r}"
            ) from None
        if not isinstance(body, dict):
            raise ScopeProtocolError(f"Scope {what}: {where} returned {type(body).__name__}, "
                                     "expected a JSON object")
        return body

    def _field(self, body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str,
               path: str) -> Any:
        value = body.get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ScopeProtocolError(
                f"Scope {what}: the answer of {self.base_url}{path} has no valid {key!r} field"
            )
        return value

    # -- endpoints ---------------------------------------------------------------------

    async def health(self, *, timeout: float | None = None) -> Health:
        """``GET /health`` (§2.1), within `timeout` seconds (default: the request timeout)."""
        body = await self._get_json("/health", what="health check", timeout=timeout)
        started = self._field(body, "server_start_time", (int, float), "health check", "/health")
        return Health(str(body.get("status", "")), float(started), str(body.get("version", "")))

    async def pipeline_schemas(self) -> dict[str, Any]:
        """``{pipeline_id: meta}`` of every pipeline the server offers (§2.4)."""
        body = await self._get_json("/api/v1/pipelines/schemas", what="pipeline schemas")
        path = "/api/v1/pipelines/schemas"
        return dict(self._field(body, "pipelines", dict, "pipeline schemas", path))

    async def ice_servers(self) -> tuple[IceServer, ...]:
        """The STUN/TURN servers the server hands its clients (§2.6), as its own UI asks."""
        path = "/api/v1/webrtc/ice-servers"
        return parse_served(await self._get_json(path, what="ICE servers"), f"{self.base_url}{path}")

    async def models_status(self, pipeline_id: str) -> dict[str, Any]:
        """Whether the weights of `pipeline_id` are downloaded (§2.5)."""
        return await self._get_json(
            "/api/v1/models/status", what="models status", params={"pipeline_id": pipeline_id}
        )

    async def pipeline_status(self) -> dict[str, Any]:
        """``GET /api/v1/pipeline/status`` (§2.3). Reading it consumes an `error` status."""
        return await self._get_json("/api/v1/pipeline/status", what="pipeline status")

    async def load_pipeline(self, chain: Sequence[str], load_params: Mapping[str, Any]) -> float:
        """Make `chain` the loaded pipelines with exactly `load_params`; return the seconds taken.

        Skips the request when the server already has this load (loading it again would drop
        the pipeline and load it anew, §2.2). Otherwise POSTs and polls the status from this
        one place (§2.3): an old ``loaded`` right after the POST is ignored until
        ``pipeline_id`` and ``load_params`` match, a ``not_loaded`` is tolerated for
        ``ClientTimeouts.not_loaded_grace`` s, and ``error`` raises ScopeLoadError.
        """
        ids = [str(p) for p in chain]
        if not ids:
            raise ScopeError("cannot load an empty pipeline chain")
        sent = _canonical(load_params)
        key = (tuple(ids), json.dumps(sent, sort_keys=True))
        async with self._load_lock:
            started = time.monotonic()
            status = await self.pipeline_status()
            # The status names only the first instance; for a chain, also require that we
            # loaded this exact chain ourselves.
            if self._status_matches(status, ids, sent) and (len(ids) == 1 or self._last_load == key):
                log.info("pipeline %s already loaded with these load_params; not loading it again",
                         "+".join(ids))
                return time.monotonic() - started
            self._last_load = None
            await self._request(
                "POST", "/api/v1/pipeline/load", what="pipeline load",
                json_body={"pipeline_ids": ids, "load_params": sent},
            )
            await self._poll_until_loaded(ids, sent, started)
            self._last_load = key
        elapsed = time.monotonic() - started
        log.info("loaded pipeline %s in %.2f s", "+".join(ids), elapsed)
        return elapsed

    @staticmethod
    def _status_matches(status: Mapping[str, Any], ids: Sequence[str], sent: Mapping[str, Any]) -> bool:
        echoed = status.get("load_params")
        if echoed is None and not sent:
            echoed = {}
        return (
            status.get("status") == "loaded"
            and status.get("pipeline_id") == ids[0]
            and echoed == sent
        )

    async def _poll_until_loaded(self, ids: list[str], sent: dict[str, Any], started: float) -> None:
        name = "+".join(ids)
        deadline = started + self.timeouts.load
        not_loaded_since: float | None = None
        polls = 0
        while True:
            status = await self.pipeline_status()
            state = status.get("status")
            now = time.monotonic()
            if state not in _LOAD_STATES:
                raise ScopeProtocolError(f"Scope pipeline status: unknown status {state!r}")
            if state == "loaded" and self._status_matches(status, ids, sent):
                return
            if state == "error":
                raise ScopeLoadError(
                    f"loading pipeline {name} failed: Scope reported status 'error' "
                    "(the reason is only in the Scope server log)"
                )
            if state == "not_loaded":
                not_loaded_since = not_loaded_since if not_loaded_since is not None else now
                if now - not_loaded_since >= self.timeouts.not_loaded_grace:
                    raise ScopeLoadError(
                        f"loading pipeline {name} failed: status stayed 'not_loaded' for "
                        f"{self.timeouts.not_loaded_grace:g} s (an 'error' is reported only "
                        "once; see the Scope server log)"
                    )
            else:
                not_loaded_since = None
            if now >= deadline:
                stage = status.get("loading_stage")
                raise ScopeTimeoutError(
                    f"loading pipeline {name} did not finish within {self.timeouts.load:g} s "
                    f"(last status {state!r}" + (f", stage {stage!r})" if stage else ")")
                )
            # Weight-free loads finish in milliseconds (§10): poll fast first, then back off.
            pause = min(self.timeouts.poll_interval, _FIRST_POLL * 2**polls)
            polls += 1
            await asyncio.sleep(min(pause, max(0.0, deadline - now)))

    async def upload_asset(self, path: Path) -> str:
        """Upload a local image/video file (§2.9); return the server path to send in parameters."""
        path = Path(path)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise ScopeError(f"cannot read asset {path}: {exc.strerror or exc}") from exc
        response = await self._request(
            "POST", "/api/v1/assets", what="asset upload",
            params={"filename": path.name}, content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        body = self._json_object(response, "asset upload")
        server_path = str(self._field(body, "path", str, "asset upload", "/api/v1/assets"))
        log.info("uploaded %s as %s", path, server_path)
        return server_path

    async def list_loras(self) -> list[dict[str, Any]]:
        """The LoRA files the server has (§2.10)."""
        body = await self._get_json("/api/v1/loras", what="LoRA list")
        files = self._field(body, "lora_files", list, "LoRA list", "/api/v1/loras")
        return [f for f in files if isinstance(f, dict)]

    async def resolve_lora(self, name_or_path: str) -> str:
        """The server path of a LoRA given by absolute path, file name or stem."""
        wanted = name_or_path.strip()
        loras = await self.list_loras()
        for match in (
            lambda p: p == wanted,
            lambda p: Path(p).name == wanted,
            lambda p: Path(p).stem == wanted or Path(p).name == f"{wanted}.safetensors",
        ):
            for lora in loras:
                server_path = str(lora.get("path", ""))
                if server_path and match(server_path):
                    return server_path
        for lora in loras:  # the listed `name` may differ from the file stem
            if lora.get("name") == wanted and lora.get("path"):
                return str(lora["path"])
        known = ", ".join(sorted(Path(str(f.get("path", ""))).name for f in loras)) or "none"
        raise ScopeError(f"LoRA {wanted!r} is not on the Scope server (it has: {known})")

    async def session_metrics(self, *, timeout: float | None = None) -> dict[str, Any]:
        """``GET /api/v1/session/metrics`` (§2.7), within `timeout` s (default: the request timeout)."""
        return await self._get_json("/api/v1/session/metrics", what="session metrics", timeout=timeout)

    async def offer(self, sdp: str, initial_parameters: Mapping[str, Any]) -> tuple[str, str]:
        """POST our WebRTC offer (§2.6); return (answer SDP, session id)."""
        response = await self._request(
            "POST", "/api/v1/webrtc/offer", what="WebRTC offer", timeout=self.timeouts.offer,
            json_body={"sdp": sdp, "type": "offer", "initialParameters": dict(initial_parameters)},
        )
        body = self._json_object(response, "WebRTC offer")
        answer = self._field(body, "sdp", str, "WebRTC offer", "/api/v1/webrtc/offer")
        session_id = self._field(body, "sessionId", str, "WebRTC offer", "/api/v1/webrtc/offer")
        return answer, session_id

    async def delete_session(self, session_id: str) -> None:
        """End a WebRTC session on the server (§2.6); unknown sessions are fine."""
        await self._request(
            "DELETE", f"/api/v1/webrtc/offer/{session_id}", what="session delete",
            ok=(200, 204, 404),
        )

    # -- tempo sync (§6, §10.1) --------------------------------------------------------

    async def tempo_enable(self, source: str, bpm: float, beats_per_bar: int) -> dict[str, Any]:
        """``POST /api/v1/tempo/enable``: Scope follows `source` ("link" or "midi_clock"); a
        source the server cannot run (no Link or MIDI support installed) is a ScopeError."""
        response = await self._request(
            "POST", "/api/v1/tempo/enable", what="tempo enable",
            json_body={"source": source, "bpm": bpm, "beats_per_bar": beats_per_bar},
        )
        return self._json_object(response, "tempo enable")

    async def tempo_set(self, bpm: float) -> dict[str, Any]:
        """``POST /api/v1/tempo/set_tempo`` (tempo sync must be on)."""
        response = await self._request(
            "POST", "/api/v1/tempo/set_tempo", what="tempo set", json_body={"bpm": bpm}
        )
        return self._json_object(response, "tempo set")

    async def tempo_status(self) -> dict[str, Any]:
        """``GET /api/v1/tempo/status``: `enabled`, `source`, `beats_per_bar`, `beat_state`."""
        return await self._get_json("/api/v1/tempo/status", what="tempo status")

    async def tempo_disable(self) -> None:
        """``POST /api/v1/tempo/disable``."""
        await self._request("POST", "/api/v1/tempo/disable", what="tempo disable")

    # -- the headless session (§2.8, §10.1) ------------------------------------------------

    async def start_headless(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/session/start`` with `body` (``pipeline_id``, ``input_mode``,
        ``prompts``, ``input_source``, ``parameters``): a session without WebRTC (§2.8). A
        pipeline that is not loaded is a 500 (ScopeProtocolError); the answer is returned."""
        response = await self._request(
            "POST", "/api/v1/session/start", what="headless start", timeout=self.timeouts.offer,
            json_body=dict(body),
        )
        return self._json_object(response, "headless start")

    async def stop_headless(self) -> bool:
        """``POST /api/v1/session/stop``: False when no headless session was running (a 404)."""
        response = await self._request(
            "POST", "/api/v1/session/stop", what="headless stop", ok=(200, 404),
        )
        return response.status_code == 200

    async def post_parameters(self, wire: str) -> None:
        """``POST /api/v1/session/parameters`` with `wire` (one JSON object as text): validated
        (a 422 names the value), then given to every session of the server (§2.8)."""
        await self._request(
            "POST", "/api/v1/session/parameters", what="parameter update",
            content=wire.encode(), headers={"Content-Type": "application/json"},
        )

    async def session_parameters(self) -> dict[str, Any]:
        """``GET /api/v1/session/parameters``: the merged parameters of the observed session (§2.7)."""
        body = await self._get_json("/api/v1/session/parameters", what="session parameters")
        path = "/api/v1/session/parameters"
        return dict(self._field(body, "parameters", dict, "session parameters", path))

    async def session_frame(self, *, quality: int = 70, timeout: float | None = None) -> bytes | None:
        """``GET /api/v1/session/frame``: the last output frame as JPEG, None when there is none (§2.7)."""
        response = await self._request(
            "GET", "/api/v1/session/frame", what="frame capture", ok=(200, 404),
            params={"quality": str(quality)}, timeout=timeout,
        )
        return response.content if response.status_code == 200 else None


# --------------------------------------------------------------------------------------
# The live session


def runtime_update(message: Mapping[str, Any]) -> dict[str, Any]:
    """`message` checked and canonical for a running session, whatever carries it (the data
    channel or ``/session/parameters``): only runtime keys (§3.3), ``prompts`` as a 0-step
    ``transition`` (§8-G). ScopeError for what may not be sent."""
    if not message:
        raise ScopeError("refusing to send an empty parameter update")
    keys = set(message)
    start_only = sorted(keys & SESSION_START_KEYS)
    if start_only:
        raise ScopeError(
            f"cannot change {', '.join(start_only)} mid-session (read only when a session "
            "starts); use switch()"
        )
    unknown = sorted(keys - RUNTIME_KEYS)
    if unknown:
        raise ScopeError(
            f"cannot send {', '.join(map(repr, unknown))} to Scope: not a runtime parameter"
        )
    prepared = _canonical(message)
    if "prompts" in prepared and "transition" not in prepared:
        # A bare `prompts` equal to the last one received is silently ignored (§8-G).
        prepared["transition"] = {"target_prompts": prepared.pop("prompts"), "num_steps": 0}
    return prepared


def initial_parameters(ids: list[str], given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a session of the chain `ids` starts with: ``{"pipeline_ids": ids,
    **given}``, checked (§2.6: without ``pipeline_ids`` there is never any video)."""
    if not ids:
        raise ScopeError("cannot open a session without pipelines")
    if "pipeline_ids" in given and list(given["pipeline_ids"]) != ids:
        raise ScopeError(f"initial pipeline_ids {list(given['pipeline_ids'])} differ from the "
                         f"loaded chain {ids}")
    unknown = sorted(set(given) - RUNTIME_KEYS - SESSION_START_KEYS)
    if unknown:
        raise ScopeError(f"cannot start a session with {', '.join(map(repr, unknown))}: "
                         "not a Scope parameter")
    initial = _canonical(given)
    initial.pop("pipeline_ids", None)
    return {"pipeline_ids": ids, **initial}


def paced_interval(chain: Sequence[str], metrics: Mapping[str, Any], session_id: str | None) -> float | None:
    """Seconds per chunk of `chain` from the session's ``pipeline_fps`` in `metrics` (§3.3),
    None when either is unknown."""
    frames = _chunk_frames(chain)
    fps = _pipeline_fps(metrics, session_id) if frames is not None else None
    return frames / fps if frames is not None and fps else None


def _chunk_frames(chain: Sequence[str]) -> int | None:
    """Output frames per pipeline call (§3.3, §7); None when no pipeline of `chain` is known."""
    infos = [pipeline_info(p) for p in chain]
    # Every processor in the chain takes one update per *its* chunk: the longest one binds.
    known = [info.frames_per_chunk for info in infos if info is not None]
    return max(known) if known else None


def _pipeline_fps(metrics: Mapping[str, Any], session_id: str | None) -> float | None:
    sessions = metrics.get("sessions")
    if not isinstance(sessions, dict) or not sessions:
        return None
    entry = sessions.get(session_id) if session_id in sessions else None
    if not isinstance(entry, dict):
        return None
    fps = entry.get("pipeline_fps")
    if isinstance(fps, dict):  # per-pipeline figures: the slowest sets the pace
        values = [v for v in fps.values() if isinstance(v, (int, float)) and v > 0]
        fps = min(values) if values else None
    if isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0:
        return float(fps)
    return None


class ScopeSession:
    """The one live Scope session a show plays against (async context manager).

    Keep exactly one per server (§4.5). After ``close()`` the same object can ``open()``
    again; ``frames_received`` counts across all its connections. Gaps, frame times and write
    times are read from `clock` (the player's clock fits), the REST side keeps real time.
    `ice` chooses the ICE servers of each connection (scope/ice.py; by default none for a
    loopback URL, the server's list otherwise).
    """

    def __init__(
        self,
        client: ScopeClient,
        *,
        loopback_only: bool | None = None,
        record_video: Path | None = None,
        on_event: Callable[[ScopeEvent], None] | None = None,
        chunk_interval: float | None = None,
        clock: SessionClock = SYSTEM_TIME,
        ice: IcePolicy = DEFAULT_ICE,
    ) -> None:
        self.client = client
        self.clock = clock
        self.loopback_only = _is_loopback_url(client.base_url) if loopback_only is None else loopback_only
        self.ice = ice
        self._ice_warned = False  # `auto` without the server's list: said once
        self.record_video = Path(record_video) if record_video is not None else None
        self.on_event = on_event
        self._explicit_interval = chunk_interval
        self._chunk_interval = chunk_interval if chunk_interval is not None else FALLBACK_CHUNK_INTERVAL
        self._coalescer = Coalescer(self._write, self._chunk_interval, clock=clock)
        self._rtc: RtcConnection | None = None
        self._session_id: str | None = None
        self._server_start_time: float | None = None
        self._chain: list[str] = []
        self._frames_before = 0
        self._last_frame_before: float | None = None
        self._watch_from = 0.0  # monotonic time frames are expected from
        self._paused = False
        self._opens = 0
        # Set when the server said `stream_stopped` (§3.4): its processing ended, whatever the
        # peer connection still says. `liveness` reports it at once; the next open clears it.
        self._stream_stopped: str | None = None
        # (write number, unix time, message) of the writes on the open connection, and the
        # writes of closed connections that the server never acknowledged.
        self._written: collections.deque[tuple[int, float, dict[str, Any]]] = collections.deque(
            maxlen=_WRITE_LOG
        )
        self._lost: list[tuple[int, float, dict[str, Any]]] = []
        self._listeners: list[Callable[[ScopeEvent], None]] = []

    def __repr__(self) -> str:
        return (f"ScopeSession({self.client.base_url!r}, session_id={self._session_id!r}, "
                f"connected={self.connected})")

    async def __aenter__(self) -> ScopeSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- state ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The peer connection is up and the data channel is open."""
        rtc = self._rtc
        return (rtc is not None and rtc.state == "connected" and rtc.channel_state == "open"
                and self._stream_stopped is None)

    @property
    def frames_received(self) -> int:
        """Video frames received over every connection this session has opened."""
        return self._frames_before + (self._rtc.frames_received if self._rtc else 0)

    @property
    def last_frame_at(self) -> float | None:
        """``clock.monotonic()`` of the newest received frame."""
        if self._rtc is not None and self._rtc.last_frame_at is not None:
            return self._rtc.last_frame_at
        return self._last_frame_before

    def latest_jpeg(self) -> bytes | None:
        """The newest received frame as JPEG, for the operator page's live preview."""
        return self._rtc.latest_jpeg() if self._rtc is not None else None

    @property
    def session_id(self) -> str | None:
        """The server's id of the open session."""
        return self._session_id

    @property
    def server_start_time(self) -> float | None:
        """``/health`` ``server_start_time`` when the session was opened."""
        return self._server_start_time

    @property
    def chunk_interval(self) -> float:
        """Seconds per pipeline chunk: the pace at which the server takes updates."""
        return self._chunk_interval

    @property
    def local_sdp(self) -> str | None:
        """Our last offer SDP (for diagnostics)."""
        return self._rtc.local_sdp if self._rtc else None

    @property
    def remote_sdp(self) -> str | None:
        """The server's last answer SDP (for diagnostics)."""
        return self._rtc.remote_sdp if self._rtc else None

    # -- lifecycle -----------------------------------------------------------------------

    async def open(
        self,
        chain: Sequence[str],
        load_params: Mapping[str, Any],
        initial_parameters: Mapping[str, Any],
    ) -> float:
        """Load `chain` (if needed), connect with `initial_parameters`; return the seconds taken.

        ``initialParameters`` on the wire is ``{"pipeline_ids": chain, **initial_parameters}``:
        without ``pipeline_ids`` Scope accepts the offer and never sends video (§2.6).
        """
        if self._rtc is not None:
            raise RuntimeError("the session is already open; call switch() or close() first")
        started = self.clock.monotonic()
        ids = [str(p) for p in chain]
        initial = self._initial_parameters(ids, initial_parameters)
        self._stream_stopped = None
        self._server_start_time = (await self.client.health()).server_start_time
        await self.client.load_pipeline(ids, load_params)
        ice_servers = await self.ice_servers()
        self._opens += 1
        rtc = RtcConnection(
            loopback_only=self.loopback_only,
            record_to=self._recording_path(),
            on_message=self._on_server_message,
            on_state=self._on_rtc_state,
            clock=self.clock,
            ice_servers=ice_servers,
            relay_only=self.ice.relay_only,
        )
        self._rtc = rtc
        self._chain = ids

        async def send_offer(sdp: str) -> str:
            answer, session_id = await self.client.offer(sdp, initial)
            self._session_id = session_id
            return answer

        try:
            await rtc.connect(send_offer, timeout=self.client.timeouts.offer)
        except BaseException:
            await self.close()
            raise
        self._watch_from = self.clock.monotonic()
        self._paused = bool(initial.get("paused", False))
        await self._update_chunk_interval()
        gap = self.clock.monotonic() - started
        log.info("session %s open on %s (%s): gap %.2f s, chunk interval %.3f s",
                 self._session_id, self.client.base_url, "+".join(ids), gap, self._chunk_interval)
        return gap

    async def ice_servers(self) -> tuple[IceServer, ...]:
        """The ICE servers the next connection uses (asks the server when the policy says so:
        fresh at each connection, since TURN credentials may expire)."""
        if not self.ice.asks_server(self.loopback_only):
            return self.ice.choose()
        try:
            served = await self.client.ice_servers()
        except ScopeProtocolError as exc:  # e.g. a proxy that does not pass the endpoint on
            if self.ice.mode is not IceMode.AUTO:
                raise
            if not self._ice_warned:
                self._ice_warned = True
                log.warning("%s; using none (--ice-server to choose)", exc)
            return ()
        return self.ice.choose(served)

    async def switch(
        self,
        chain: Sequence[str],
        load_params: Mapping[str, Any],
        initial_parameters: Mapping[str, Any],
    ) -> float:
        """Close, load, reopen (§4.2: an open session never follows a load); return the gap."""
        started = self.clock.monotonic()
        previous = "+".join(self._chain) or "nothing"
        await self.close()
        await self.open(chain, load_params, initial_parameters)
        gap = self.clock.monotonic() - started
        log.info("switched pipelines %s -> %s: gap %.2f s", previous, "+".join(chain), gap)
        return gap

    async def close(self) -> None:
        """Close the peer connection and DELETE the session. Idempotent; never raises.

        Writes the server had not acknowledged when the connection closed are kept for
        `take_lost`.
        """
        self._coalescer.cancel(ScopeConnectError("the Scope session closed before the update was sent"))
        rtc, self._rtc = self._rtc, None
        session_id, self._session_id = self._session_id, None
        if rtc is not None:
            self._note_lost(rtc)
            await rtc.close()
            self._frames_before += rtc.frames_received
            self._last_frame_before = rtc.last_frame_at or self._last_frame_before
        if session_id is not None:
            try:
                await self.client.delete_session(session_id)
            except ScopeError as exc:
                log.warning("could not delete session %s: %s", session_id, exc)
            else:
                log.info("session %s closed", session_id)

    async def wait_first_frame(self) -> None:
        """Wait (up to ``ClientTimeouts.first_frame``) until video arrives on the open session."""
        await self._require_rtc().wait_first_frame(self.client.timeouts.first_frame)

    # -- sending -------------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any], *, entry: bool = True) -> tuple[float, dict[str, Any]]:
        """Send a parameter update; return (unix time written, the exact dict that went out).

        Only runtime keys (§3.3) pass; ``prompts`` without a ``transition`` becomes a
        0-step ``transition`` (§8-G). Updates are paced to one per chunk and merged while
        they wait (see :class:`Coalescer`); `entry` ``False`` marks a timed update (a keyframe
        sample) that gives way to an expected entry. What went out is a `Written`: its
        ``write`` numbers it among this session's writes, ``carries`` counts the updates
        merged into it (every caller whose update it carries gets the same one).
        """
        prepared = message if isinstance(message, Prepared) else runtime_update(message)
        rtc = self._require_rtc()
        if rtc.channel_state != "open":
            raise ScopeConnectError(f"cannot send to Scope: the data channel is {rtc.channel_state}")
        return await self._coalescer.submit(prepared, entry=entry)

    def expect(self, at: float | None) -> None:
        """The show's next entry is planned at `at` (``clock.monotonic()``; None: none is
        planned): a timed update that would take its slot waits and goes out merged into it."""
        self._coalescer.expect(at)

    def frame_age(self) -> float | None:
        """Seconds since the newest frame (or since frames were expected again); None while no
        frame is expected: no connection, a paused picture, or before the first frame."""
        rtc = self._rtc
        if rtc is None or self._paused or rtc.last_frame_at is None:
            return None
        return self.clock.monotonic() - max(rtc.last_frame_at, self._watch_from)

    def take_lost(self) -> list[tuple[int, float, dict[str, Any]]]:
        """(write number, unix time written, message) of each write the server had not
        acknowledged when its connection closed (it may never have arrived); each is reported once."""
        lost, self._lost = self._lost, []
        return lost

    def prepare(self, message: Mapping[str, Any]) -> Prepared:
        """Check and serialise `message` ahead of its moment; `send` then writes it as it is.

        Raises `ScopeError` for what `send` would refuse. Takes ~0.1 ms off the path between
        a planned moment and the write.
        """
        prepared = runtime_update(message)
        return Prepared(prepared, json.dumps(prepared, separators=(",", ":")))

    def _write(self, message: dict[str, Any], number: int) -> float:
        rtc = self._require_rtc()
        text = message.wire if isinstance(message, Prepared) else None
        at = rtc.send_text(text if text is not None else json.dumps(message, separators=(",", ":")))
        self._written.append((number, at, message))
        if "paused" in message:
            self._paused = bool(message["paused"])
            if not self._paused:
                self._watch_from = self.clock.monotonic()
        log.debug("sent %s", message)
        return at

    # -- health ----------------------------------------------------------------------------

    async def liveness(self) -> str | None:
        """None while the session is healthy, else a one-line reason.

        A ``stream_stopped`` message from the server (§3.4: sent when its processing stops, on a
        shutdown or a pipeline error) is the reason at once, without a request: the early hint
        that lets the watchdog reconnect before frames stop or the connection closes.

        The ``/health`` request waits at most ``HEALTH_TIMEOUT`` s (a server that hangs is
        "not answering"); the peer connection, the data channel and the frames are checked after it.
        """
        rtc = self._rtc
        if rtc is not None and self._stream_stopped is not None:
            return self._stream_stopped  # the early hint of an outage: no request needed
        try:
            health = await self.client.health(timeout=min(HEALTH_TIMEOUT, self.client.timeouts.request))
        except ScopeTimeoutError:
            return "server not answering"
        except ScopeError:
            return "server unreachable"
        if self._server_start_time is not None and health.server_start_time != self._server_start_time:
            return "server restarted"
        if rtc is None or rtc.state in ("failed", "closed"):
            return "peer connection closed"
        if rtc.channel_state != "open":
            return "data channel closed"
        if not self._paused:
            now = self.clock.monotonic()
            if rtc.last_frame_at is None:
                waited = now - self._watch_from
                if waited > self.client.timeouts.first_frame:
                    return f"no frames for {waited:.1f} s"
            else:
                waited = now - max(rtc.last_frame_at, self._watch_from)
                if waited > _STALL_SECONDS:
                    return f"no frames for {waited:.1f} s"
        if self._explicit_interval is None and self._chunk_interval == FALLBACK_CHUNK_INTERVAL:
            await self._update_chunk_interval()
        return None

    # -- internals -------------------------------------------------------------------------

    def _note_lost(self, rtc: RtcConnection) -> None:
        unacknowledged = rtc.unacknowledged() if self._written else 0
        if unacknowledged:
            lost = list(self._written)[-unacknowledged:]
            self._lost.extend(lost)
            log.warning("%d message(s) written just before the connection closed were never "
                        "acknowledged by Scope (writes %s)", len(lost), ", ".join(str(w) for w, _, _ in lost))
        self._written.clear()

    def _require_rtc(self) -> RtcConnection:
        if self._rtc is None:
            raise ScopeConnectError("no open Scope session; call open() first")
        return self._rtc

    @staticmethod
    def _initial_parameters(ids: list[str], given: Mapping[str, Any]) -> dict[str, Any]:
        # open()'s and switch()'s argument `initial_parameters` hides the module function there.
        return initial_parameters(ids, given)

    def _recording_path(self) -> Path | None:
        if self.record_video is None:
            return None
        if self._opens <= 1:
            return self.record_video
        # Each reconnection is a new stream; keep the earlier files.
        return self.record_video.with_stem(f"{self.record_video.stem}-{self._opens}")

    async def _update_chunk_interval(self) -> None:
        if self._explicit_interval is not None:
            interval = self._explicit_interval
        else:
            frames = _chunk_frames(self._chain)
            fps = None
            if frames is not None:
                try:
                    fps = _pipeline_fps(await self.client.session_metrics(), self._session_id)
                except ScopeError as exc:
                    log.warning("cannot read the pipeline fps: %s", exc)
            interval = frames / fps if frames is not None and fps else FALLBACK_CHUNK_INTERVAL
        self._chunk_interval = interval
        self._coalescer.interval = interval

    def listen(self, callback: Callable[[ScopeEvent], None]) -> Callable[[], None]:
        """Call `callback` with every event besides `on_event` (e.g. each ``tempo_update``);
        returns the function that stops it."""
        self._listeners.append(callback)

        def stop() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return stop

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        event = ScopeEvent(kind=kind, payload=payload, at=self.clock.time())
        for listener in [self.on_event, *self._listeners]:
            if listener is None:
                continue
            try:
                listener(event)
            except Exception:  # a broken listener must not break the connection
                log.exception("the Scope event listener failed on %s", kind)

    def _on_server_message(self, text: str) -> None:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") in _SERVER_MESSAGE_TYPES:
            kind = str(body["type"])
            payload = {k: v for k, v in body.items() if k != "type"}
        else:
            kind = "server_message"
            payload = body if isinstance(body, dict) else {"text": text}
        level = logging.DEBUG if kind == "tempo_update" else logging.INFO
        log.log(level, "Scope says %s: %s", kind, _one_line(json.dumps(payload), 300))
        if kind == "stream_stopped" and self._rtc is not None:
            error = payload.get("error_message")
            self._stream_stopped = "Scope stopped the stream" + (
                f" ({_one_line(str(error), 120)})" if error else "")
        self._emit(kind, payload)

    def _on_rtc_state(self, what: str, state: str) -> None:
        if what == "channel":
            self._emit("channel_closed", {})
        else:
            self._emit("connection_state", {"state": state})


# --------------------------------------------------------------------------------------
# Other HTTP calls: lifecycle hooks and alert webhooks (httpx stays confined to this module)


class WebCalls:
    """HTTP requests to services other than Scope (a GPU provider's API, a chat webhook).

    One connection pool; no proxy from the environment (``trust_env=False``): a call goes
    exactly where the show says. ``request`` returns the HTTP status and raises a
    ``ShowrunnerError`` (one line, without the URL, which may carry a secret) when there is no
    answer within `timeout` seconds. Use as ``async with WebCalls() as web:``.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(trust_env=False, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return "WebCalls()"

    async def __aenter__(self) -> WebCalls:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], json_body: Any, timeout: float
    ) -> int:
        try:
            answer = await self._http.request(
                method, url, headers=dict(headers), timeout=timeout,
                **({"json": json_body} if json_body is not None else {}),
            )
        except httpx.TimeoutException:
            raise ShowrunnerError(f"no answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise ShowrunnerError(_one_line(str(exc)) or type(exc).__name__) from None
        return answer.status_code
