"""The simulator's REST API (Starlette), route for route after docs/scope.md §2, plus the recorder hook."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from showrunner.sim import catalog
from showrunner.sim.assets import AssetError, AssetStore
from showrunner.sim.headless import HeadlessRefused, HeadlessSession
from showrunner.sim.loads import LoadManager
from showrunner.sim.params import (
    IceCandidates,
    LoadRequest,
    LoRAInstall,
    ModelDownload,
    OfferRequest,
    Parameters,
    StartRequest,
    TempoEnable,
    TempoSetTempo,
    dump_parameters,
    validation_detail,
)
from showrunner.sim.record import Recorder
from showrunner.sim.session import SimSession
from showrunner.sim.tempo import SOURCES as TEMPO_SOURCES
from showrunner.sim.tempo import TempoSync, TempoUnavailable
from showrunner.sim.webrtc import SimPeer


class Server(Protocol):
    """What the HTTP app uses of the simulator (implemented by `showrunner.sim.simulator.Simulator`)."""

    recorder: Recorder
    assets: AssetStore
    loads: LoadManager
    peers: dict[str, SimPeer]
    server_start_time: float
    gpu: bool
    headless: HeadlessSession | None
    tempo: TempoSync
    ice_servers: list[dict[str, Any]] | None
    pipelines: frozenset[str]

    def live_peers(self) -> list[SimPeer]: ...
    async def start_headless(self, request: StartRequest) -> dict[str, Any]: ...
    async def stop_headless(self) -> bool: ...
    async def open_session(self, sdp: str, initial: dict[str, Any]) -> tuple[str, str]: ...
    async def end_session(self, session_id: str) -> None: ...
    def model_status(self, pipeline_id: str) -> dict[str, Any]: ...
    def start_download(self, pipeline_id: str) -> bool: ...

log = logging.getLogger(__name__)

VERSION = "0.2.4"
SIM_VRAM_GB = 24.0  # the GPU the `gpu` option presents
NOT_LOADED = "Pipeline not loaded. Please load pipeline first."
NO_HEADLESS = "No active headless session"
# What Scope answers without TURN credentials (docs/scope.md §10); the simulator answers its own
# `ice_servers` setting instead, empty by default, so that nothing it hands out leaves the machine.
PUBLIC_STUN = {"urls": ["stun:stun.l.google.com:19302"], "username": None, "credential": None}

M = TypeVar("M", bound=BaseModel)


class _Reject(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.response = JSONResponse({"detail": detail}, status_code=status)


def _error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _is_json(content_type: str | None) -> bool:
    """FastAPI parses a body as JSON only without a content type or with application/*json."""
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not _is_json(request.headers.get("content-type")):
        # FastAPI then validates the raw bytes, which no model accepts (docs/scope.md §10.1).
        raise _Reject(
            422,
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": raw.decode("utf-8", "replace"),
                }
            ],
        )
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _Reject(
            422, [{"type": "json_invalid", "loc": ["body", 0], "msg": f"JSON decode error: {exc}"}]
        ) from exc


async def _model(request: Request, model: type[M]) -> M:
    data = await _json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Reject(422, validation_detail(exc)) from exc


class RecordingMiddleware:
    """Records every HTTP exchange, and turns a crash inside a handler into a logged 500."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received_at = time.time()
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        record = self._record(scope, bytes(body), received_at)
        started = False

        async def send_recorded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                record["status"] = message["status"]
                self.recorder.add(record)
            await send(message)

        try:
            await self.app(scope, replay, send_recorded)
        except Exception:
            log.exception("error while handling %s %s", scope["method"], scope["path"])
            if not started:
                payload = json.dumps({"detail": "Internal Server Error"}).encode()
                await send_recorded(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": payload})

    @staticmethod
    def _record(scope: Scope, body: bytes, received_at: float) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        if scope["path"] == "/api/v1/webrtc/offer" and isinstance(parsed, dict):
            parsed = {k: v for k, v in parsed.items() if k != "sdp"}
        return {
            "kind": "http",
            "received_at": received_at,
            "method": scope["method"],
            "path": scope["path"],
            "query": dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)),
            "headers": headers,
            "status": None,
            "json": parsed,
            "body_size": len(body),
        }


class Api:
    """The route handlers, bound to one simulator."""

    def __init__(self, sim: Server) -> None:
        self.sim = sim

    # -- server ----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "status": "healthy",
                "timestamp": datetime.now(UTC).isoformat(),
                "server_start_time": self.sim.server_start_time,
                "version": VERSION,
                "git_commit": "simulator",
            }
        )

    async def hardware(self, request: Request) -> Response:
        missing = {"available": False, "reason": "not available in the simulator", "install_hint": None}
        vram = SIM_VRAM_GB if self.sim.gpu else None  # null on a CPU host (docs/scope.md §2.1)
        return JSONResponse({"vram_gb": vram, "spout": missing, "ndi": missing, "syphon": missing})

    async def cloud_status(self, request: Request) -> Response:
        return JSONResponse({"connected": False, "connecting": False, "error": None})

    # -- pipelines -------------------------------------------------------------------------

    async def schemas(self, request: Request) -> Response:
        body = catalog.schemas()
        body["pipelines"] = {k: v for k, v in body["pipelines"].items() if k in self.sim.pipelines}
        return JSONResponse(body)

    async def load(self, request: Request) -> Response:
        body = await _model(request, LoadRequest)
        entries: list[tuple[str, str, dict[str, Any] | None]]
        if body.pipelines:
            entries = [(e.node_id, e.pipeline_id, e.load_params) for e in body.pipelines]
        elif body.pipeline_ids:
            # The legacy form sends the same load_params to every pipeline (docs/scope.md §2.2).
            entries = [(p, p, copy.deepcopy(body.load_params)) for p in body.pipeline_ids]
        else:
            return _error(400, "Either 'pipelines' or 'pipeline_ids' must be provided")
        self.sim.loads.request(entries)
        return JSONResponse({"message": "Pipeline loading initiated successfully"})

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.sim.loads.status())

    async def models_status(self, request: Request) -> Response:
        return JSONResponse(self.sim.model_status(request.query_params.get("pipeline_id", "")))

    async def models_download(self, request: Request) -> Response:
        body = await _model(request, ModelDownload)
        if catalog.info(body.pipeline_id) is None:
            return _error(404, f"Unknown pipeline: {body.pipeline_id}")
        if not self.sim.start_download(body.pipeline_id):
            return _error(409, "A download is already in progress")
        return JSONResponse({"message": f"Download started for {body.pipeline_id}"})

    # -- WebRTC ----------------------------------------------------------------------------

    async def ice_servers(self, request: Request) -> Response:
        if self.sim.ice_servers is None:
            return _error(404, "Not Found")
        return JSONResponse({"iceServers": copy.deepcopy(self.sim.ice_servers)})

    async def offer(self, request: Request) -> Response:
        body = await _model(request, OfferRequest)
        # Scope reads the status here, which consumes an unread `error` (docs/scope.md §2.3).
        if self.sim.loads.status()["status"] != "loaded":
            return _error(400, NOT_LOADED)
        initial = dump_parameters(body.initialParameters) if body.initialParameters else {}
        try:
            session_id, answer = await self.sim.open_session(body.sdp, initial)
        except Exception as exc:
            log.exception("offer failed")
            return _error(500, f"Error processing offer: {exc}")
        return JSONResponse({"sdp": answer, "type": "answer", "sessionId": session_id})

    async def patch_offer(self, request: Request) -> Response:
        body = await _model(request, IceCandidates)
        peer = self.sim.peers.get(request.path_params["session_id"])
        if peer is None or peer.session.closed or peer.pc.connectionState in ("closed", "failed"):
            return _error(404, "Session not found")
        for item in body.candidates:
            try:
                await peer.add_candidate(item.candidate, item.sdpMid, item.sdpMLineIndex)
            except Exception as exc:
                return _error(404, f"Invalid ICE candidate: {exc}")
        return Response(status_code=204)

    async def delete_offer(self, request: Request) -> Response:
        await self.sim.end_session(request.path_params["session_id"])
        return Response(status_code=204)

    # -- session observation ---------------------------------------------------------------

    def _running_headless(self) -> HeadlessSession | None:
        run = self.sim.headless
        return run if run is not None and run.running else None

    def _observed(self) -> SimSession | None:
        """The session the GET endpoints describe: the first live WebRTC one, else the
        headless one (docs/scope.md §2.7, §10.1; Scope webrtc.py `get_frame_processor`)."""
        peers = self.sim.live_peers()
        if peers:
            return peers[0].session
        run = self._running_headless()
        return run.session if run is not None else None

    async def get_parameters(self, request: Request) -> Response:
        # No session: 200 with nothing in it, not 404 (docs/scope.md §10).
        session = self._observed()
        return JSONResponse({"parameters": session.received if session is not None else {}})

    async def post_parameters(self, request: Request) -> Response:
        # Validated, unlike the data channel; broadcast to every WebRTC session (echoed as
        # `parameters_updated`) and to the headless one; 200 even when no session stores it
        # (docs/scope.md §2.8, §10, §10.1).
        body = await _model(request, Parameters)
        applied = dump_parameters(body)
        for peer in self.sim.live_peers():
            peer.deliver(copy.deepcopy(applied))
            peer.send({"type": "parameters_updated", "parameters": applied})
        run = self._running_headless()
        if run is not None:
            # No scheduler there: `_quantized` is a plain key and applies at once (§10.1).
            run.session.receive(copy.deepcopy(applied))
        return JSONResponse({"status": "ok", "applied_parameters": applied})

    async def frame(self, request: Request) -> Response:
        try:
            quality = int(request.query_params.get("quality", "85"))
        except ValueError:
            quality = -1
        if not 1 <= quality <= 100:
            return _error(422, [{"type": "int_range", "loc": ["query", "quality"], "msg": "1..100"}])
        sink = request.query_params.get("sink_node_id") or None
        image = None
        if sink is None:
            # WebRTC sessions are asked only without a sink node id (Scope webrtc.py).
            image = next((p.last_image for p in self.sim.live_peers() if p.last_image), None)
        run = self.sim.headless
        if image is None and run is not None:
            # Any sink node id gives the headless session's latest frame (docs/scope.md §10.1).
            image = run.latest_image()
        if image is None:
            detail = "No frame available"
            if sink:
                detail += f" for sink node '{sink}'"
            return _error(404, detail + " (no active session or pipeline not running)")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return Response(buffer.getvalue(), media_type="image/jpeg")

    async def metrics(self, request: Request) -> Response:
        # Only the first live session is reported, the headless one as "headless" with
        # `headless: true` (Scope mcp_router.py); `gpu` is `{}` on a CPU server (docs/scope.md
        # §10), the CUDA block with the simulator's `gpu` option.
        sessions: dict[str, Any] = {}
        peers = self.sim.live_peers()
        run = self._running_headless()
        if peers:
            session = peers[0].session
            sessions[session.session_id] = session.metrics()
        elif run is not None:
            sessions[run.session.session_id] = run.metrics()
        return JSONResponse({"sessions": sessions, "gpu": self._gpu()})

    # -- headless session (docs/scope.md §2.8, §10.1) -------------------------------------------

    async def session_start(self, request: Request) -> Response:
        body = await _model(request, StartRequest)
        try:
            answer = await self.sim.start_headless(body)
        except HeadlessRefused as refused:
            return _error(refused.status, refused.detail)
        return JSONResponse(answer)

    async def session_stop(self, request: Request) -> Response:
        if not await self.sim.stop_headless():
            return _error(404, NO_HEADLESS)
        return JSONResponse({"status": "ok", "message": "Headless session stopped"})

    async def output_ts(self, request: Request) -> Response:
        run = self._running_headless()
        if run is None:
            return _error(404, NO_HEADLESS)
        stream = run.open_stream()

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream.chunks():
                    yield chunk
            finally:
                run.remove_stream(stream)
                await asyncio.to_thread(stream.close)

        return StreamingResponse(body(), media_type="video/mp2t", headers={"cache-control": "no-store"})

    # -- tempo (docs/scope.md §6, §10.1) ------------------------------------------------------------

    async def tempo_status(self, request: Request) -> Response:
        return JSONResponse(self.sim.tempo.status())

    async def tempo_sources(self, request: Request) -> Response:
        return JSONResponse({"sources": copy.deepcopy(TEMPO_SOURCES)})

    async def tempo_enable(self, request: Request) -> Response:
        body = await _model(request, TempoEnable)
        try:
            self.sim.tempo.enable(body.source, body.bpm, body.beats_per_bar)
        except TempoUnavailable as exc:
            return _error(400, str(exc))
        return JSONResponse(self.sim.tempo.status())

    async def tempo_disable(self, request: Request) -> Response:
        self.sim.tempo.disable()
        return JSONResponse(self.sim.tempo.status())

    async def tempo_set(self, request: Request) -> Response:
        body = await _model(request, TempoSetTempo)
        tempo = self.sim.tempo
        if not tempo.enabled:
            return _error(400, "Tempo sync is not enabled")
        tempo.set_tempo(body.bpm)
        status = tempo.status()
        if status["beat_state"] is not None:
            # The answer carries the new bpm; the status catches up later (docs/scope.md §10.1).
            status["beat_state"]["bpm"] = body.bpm
        return JSONResponse(status)

    def _gpu(self) -> dict[str, Any]:
        if not self.sim.gpu:
            return {}
        used = 0.0
        for instance in self.sim.loads.loaded().values():
            info = catalog.info(instance.pipeline_id)
            used += (info.estimated_vram_gb or 0.0) * 1024 if info is not None else 0.0
        return {
            "vram_allocated_mb": round(used, 1),
            "vram_reserved_mb": round(used, 1),
            "vram_total_mb": SIM_VRAM_GB * 1024,
        }

    # -- assets and LoRAs ------------------------------------------------------------------

    async def upload_asset(self, request: Request) -> Response:
        filename = request.query_params.get("filename")
        if filename is None:
            missing = {"type": "missing", "loc": ["query", "filename"], "msg": "Field required"}
            return _error(422, [missing])
        data = await request.body()
        try:
            info = await asyncio.to_thread(self.sim.assets.upload, filename, data)
        except AssetError as exc:
            return _error(exc.status, exc.detail)
        return JSONResponse(info)

    async def list_assets(self, request: Request) -> Response:
        kind = request.query_params.get("type")
        return JSONResponse({"assets": await asyncio.to_thread(self.sim.assets.listing, kind)})

    async def serve_asset(self, request: Request) -> Response:
        try:
            path = self.sim.assets.resolve(request.path_params["path"])
        except AssetError as exc:
            return _error(exc.status, exc.detail)
        return FileResponse(path)

    async def list_loras(self, request: Request) -> Response:
        return JSONResponse({"lora_files": await asyncio.to_thread(self.sim.assets.loras)})

    async def install_lora(self, request: Request) -> Response:
        body = await _model(request, LoRAInstall)
        try:
            info = await asyncio.to_thread(self.sim.assets.install_lora, body.url, body.filename)
        except AssetError as exc:
            return _error(exc.status, exc.detail)
        return JSONResponse({"message": f"Installed {info['name']}", "file": info})

    async def delete_lora(self, request: Request) -> Response:
        try:
            self.sim.assets.delete_lora(request.path_params["name"])
        except AssetError as exc:
            return _error(exc.status, exc.detail)
        return JSONResponse({"message": f"Deleted {request.path_params['name']}"})


def _rejecting(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except _Reject as reject:
            return reject.response
        return response

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def build_app(sim: Server) -> ASGIApp:
    """The ASGI app of one simulator (recording included)."""
    api = Api(sim)
    table: list[tuple[str, Any, list[str]]] = [
        ("/health", api.health, ["GET"]),
        ("/api/v1/hardware/info", api.hardware, ["GET"]),
        ("/api/v1/cloud/status", api.cloud_status, ["GET"]),
        ("/api/v1/pipelines/schemas", api.schemas, ["GET"]),
        ("/api/v1/pipeline/load", api.load, ["POST"]),
        ("/api/v1/pipeline/status", api.status, ["GET"]),
        ("/api/v1/models/status", api.models_status, ["GET"]),
        ("/api/v1/models/download", api.models_download, ["POST"]),
        ("/api/v1/webrtc/ice-servers", api.ice_servers, ["GET"]),
        ("/api/v1/webrtc/offer", api.offer, ["POST"]),
        ("/api/v1/webrtc/offer/{session_id}", api.patch_offer, ["PATCH"]),
        ("/api/v1/webrtc/offer/{session_id}", api.delete_offer, ["DELETE"]),
        ("/api/v1/session/parameters", api.get_parameters, ["GET"]),
        ("/api/v1/session/parameters", api.post_parameters, ["POST"]),
        ("/api/v1/session/frame", api.frame, ["GET"]),
        ("/api/v1/session/metrics", api.metrics, ["GET"]),
        ("/api/v1/session/start", api.session_start, ["POST"]),
        ("/api/v1/session/stop", api.session_stop, ["POST"]),
        ("/api/v1/session/output.ts", api.output_ts, ["GET"]),
        ("/api/v1/tempo/status", api.tempo_status, ["GET"]),
        ("/api/v1/tempo/sources", api.tempo_sources, ["GET"]),
        ("/api/v1/tempo/enable", api.tempo_enable, ["POST"]),
        ("/api/v1/tempo/disable", api.tempo_disable, ["POST"]),
        ("/api/v1/tempo/set_tempo", api.tempo_set, ["POST"]),
        ("/api/v1/assets", api.upload_asset, ["POST"]),
        ("/api/v1/assets", api.list_assets, ["GET"]),
        ("/api/v1/assets/{path:path}", api.serve_asset, ["GET"]),
        ("/api/v1/loras", api.list_loras, ["GET"]),
        ("/api/v1/loras", api.install_lora, ["POST"]),
        ("/api/v1/loras/{name}", api.delete_lora, ["DELETE"]),
    ]
    routes = [Route(path, _rejecting(fn), methods=methods) for path, fn, methods in table]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return RecordingMiddleware(app, sim.recorder)
