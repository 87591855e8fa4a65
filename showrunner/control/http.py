"""The operator's control surface: an HTTP API, a live event stream, an MJPEG preview and a page.

``ControlServer`` serves, on one port:

* ``GET /api/status`` and ``POST /api/{go,back,hold,resume,panic,reload}``, ``POST /api/goto/{scene}``
  (commands go through `showrunner.control.gate.Commands`: debounced, idempotent, journaled);
* ``GET /api/events``, a Server-Sent Events stream of status and log lines;
* ``POST /api/tempo/tap`` and ``POST /api/tempo/bpm`` (``{"bpm": 128}``), the tempo's block
  ``tempo`` in the status (`showrunner.control.tempo.TempoControl`);
* ``GET /preview.mjpg``, the show's picture as MJPEG at about 10 fps;
* ``GET /api/health`` (200 ready, 503 not: `showrunner.control.monitor`) and ``GET /metrics``
  (Prometheus: `showrunner.control.metrics`);
* ``GET /``, the operator page (plain HTML/CSS/JS from ``showrunner/static``).

Bound to loopback it is open to local programs; bound to anything else it requires a bearer
token (`needs_token`). Browsers may pass the token as ``?token=`` on GET requests, since
``EventSource`` and ``<img>`` cannot send headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import secrets
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from showrunner.control.gate import (
    DEBOUNCED,
    DUPLICATE,
    FAILED,
    MAX_ID,
    MAX_NAME,
    NOT_READY,
    NOT_SUPPORTED,
    REFUSED,
    TOO_LONG,
    UNKNOWN_SCENE,
    Commands,
    Controllable,
    JournalEntry,
    OperatorJournal,
    json_safe,
)
from showrunner.control.metrics import CONTENT_TYPE, Metrics
from showrunner.control.monitor import Monitor, PictureSource
from showrunner.control.tempo import TempoControl
from showrunner.errors import ShowrunnerError
from showrunner.serving import HttpServer

__all__ = ["ControlServer", "Controllable", "FrameSource", "needs_token"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
PREVIEW_FPS = 10.0
HEARTBEAT_S = 1.0  # a status event at least this often: keeps the page's countdown true
_BACKLOG = 50
_QUEUE_SIZE = 256
MAX_BODY = 4096  # bytes of a command's body (it holds an id at most)
_COMMANDS = ("go", "back", "hold", "resume", "panic", "reload")

_HTTP_STATUS: dict[str | None, int] = {
    None: 200,
    DEBOUNCED: 200,
    DUPLICATE: 200,
    UNKNOWN_SCENE: 404,
    REFUSED: 409,
    NOT_SUPPORTED: 501,
    NOT_READY: 503,
    FAILED: 502,
    TOO_LONG: 400,
}


def _http_status(result: str, reason: str | None) -> int:
    """The HTTP status of an answer: 200 applied, 202 queued, else by the reason (the
    player's own reasons, such as "nothing to go to", are 409)."""
    if result == "queued":
        return 202
    return _HTTP_STATUS.get(reason, 409)


@runtime_checkable
class FrameSource(Protocol):
    """Where the preview comes from. `latest_jpeg` is called ~10×/s per viewer: keep it cheap."""

    def latest_jpeg(self) -> bytes | None: ...


def needs_token(host: str) -> bool:
    """Whether a server bound to `host` must require a token: yes unless it is loopback only.

    ``127.0.0.0/8``, ``::1`` and ``localhost`` are loopback. The wildcard addresses (``0.0.0.0``,
    ``::``, ``""``), LAN addresses and other host names are reachable from other machines.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True


def _is_loopback_name(host: str) -> bool:
    return bool(host) and not needs_token(host)


# -- fan-out to event-stream clients --------------------------------------------------------


class _Hub:
    """Fans player events and journal entries out to every open event stream.

    Publishers may run on other threads (a player's scheduler, a keyboard reader); everything
    is handed to the event loop before it touches a queue.
    """

    _CLOSE = ("close", None)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: set[asyncio.Queue[tuple[str, Any]]] = set()
        self.backlog: deque[dict[str, Any]] = deque(maxlen=_BACKLOG)
        self.closing = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[tuple[str, Any]]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(_QUEUE_SIZE)
        if self.closing.is_set():
            queue.put_nowait(self._CLOSE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        self._queues.discard(queue)

    def publish(self, kind: str, data: Any = None) -> None:
        """Send one event to every stream; safe from any thread."""
        if self._on_loop():
            self._publish(kind, data)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._publish, kind, data)

    def close(self) -> None:
        """End every stream; call on the loop."""
        self.closing.set()
        for queue in list(self._queues):
            self._put(queue, self._CLOSE)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _publish(self, kind: str, data: Any) -> None:
        if kind == "log":
            self.backlog.append(data)
        for queue in list(self._queues):
            self._put(queue, (kind, data))

    @staticmethod
    def _put(queue: asyncio.Queue[tuple[str, Any]], item: tuple[str, Any]) -> None:
        # A stalled viewer loses its oldest events rather than holding memory or the show.
        while True:
            try:
                queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                queue.get_nowait()


def _sse(event: str, data: Any) -> bytes:
    payload = json.dumps(json_safe(data), separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


def _player_log_line(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A log line for the page from a player event, when the event carries a message."""
    text = next(
        (payload[k] for k in ("text", "error", "message") if isinstance(payload.get(k), str)),
        None,
    )
    if text is None:
        return None
    level = payload.get("level")
    if not isinstance(level, str):
        is_error = "error" in payload or "error" in (payload.get("kind"), payload.get("type"))
        level = "error" if is_error else "info"
    at = payload.get("at") if isinstance(payload.get("at"), int | float) else None
    return {"at": at, "level": level, "source": "player", "text": text}


# -- access rules ---------------------------------------------------------------------------


class _Gate:
    """Token and origin checks in front of the whole app (static files excepted)."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self._problem(scope, headers)
        if problem is not None:
            code, message = problem
            extra = {"WWW-Authenticate": "Bearer"} if code == 401 else None
            await JSONResponse({"error": message}, code, headers=extra)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        method = scope["method"]
        host = headers.get("host", "")
        if self.loopback and self.token is None and not _is_loopback_name(_hostname(host)):
            # Another name resolving to 127.0.0.1 (DNS rebinding) must not reach an open server.
            return 403, f"host {host!r} is not a loopback name"
        origin = headers.get("origin")
        if method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != host:
            # Stops other web pages in the operator's browser from pressing buttons.
            return 403, f"cross-origin request from {origin!r} refused"
        if self.token is None or scope["path"].startswith("/static/"):
            return None
        if self._token_ok(headers.get("authorization", ""), scope, method):
            return None
        return 401, "missing or wrong token: send 'Authorization: Bearer <token>'"

    def _token_ok(self, authorization: str, scope: Scope, method: str) -> bool:
        assert self.token is not None
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), self.token):
            return True
        if method in ("GET", "HEAD"):
            query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
            return _same(query.get("token", ""), self.token)
        return False


def _same(given: str, token: str) -> bool:
    """Constant-time comparison of two texts, whatever characters they hold (compare_digest
    refuses non-ASCII text)."""
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def _hostname(host_header: str) -> str:
    return urlsplit(f"//{host_header}").hostname or ""


# -- the server -------------------------------------------------------------------------------


class LivePanel(Protocol):
    """The live inputs of a run, as the page shows them (`showrunner.performance.Performance`)."""

    def meters(self) -> dict[str, Any]: ...

    def set_input(self, name: str, value: float) -> bool:
        """Set the input `name` (0-1); False when the show has no such input (or it is an LFO)."""
        ...

    async def learn(self, action: str, name: str | None) -> dict[str, Any]:
        """Map the control last pressed on the MIDI device to `action` in the show file; a
        ShowrunnerError says why not."""
        ...


class ControlServer:
    """The HTTP control surface for one player, as an async context manager.

    ``async with ControlServer(player) as server: print(server.url)``. `player` may be None
    and set later with `attach`. `token` is required from clients when given, and always when
    the bind is not loopback (`require_token` overrides that rule; a missing token is then
    generated and announced once through `announce`, stderr by default).
    """

    def __init__(
        self,
        player: Controllable | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        frames: FrameSource | None = None,
        journal: OperatorJournal | None = None,
        min_go_interval: float = 0.5,
        require_token: bool | None = None,
        commands: Commands | None = None,
        announce: Callable[[str], None] | None = None,
        picture: PictureSource | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.frames = frames
        self.picture = picture  # the session's frames, for /api/health and /metrics
        self.monitor = monitor or Monitor()
        self.metrics = Metrics()
        self.commands = commands or Commands(
            None, min_go_interval=min_go_interval, journal=journal
        )
        required = needs_token(host) if require_token is None else require_token
        self.token_generated = required and not token
        self.token: str | None = token or (secrets.token_urlsafe(24) if required else None)
        self._announce = announce or _print_stderr
        # With shared commands (OSC, keys), their player is this server's player too.
        self._player: Controllable | None = player or self.commands.player
        self._unsubscribe: Callable[[], object] | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._hub: _Hub | None = None
        self.live: LivePanel | None = None  # the run's inputs and MIDI (meters, learn mode)
        self.tempo: TempoControl | None = None  # the run's tempo, once the show is loaded
        self.app = self._build_app()
        # Open requests get 2 s on stop; the event and preview streams are ended first.
        self._http = HttpServer(self.app, host, port, name="control server", graceful=2)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> ControlServer:
        if self._http.running:
            raise RuntimeError("ControlServer is already running; use one `async with` at a time")
        self._hub = _Hub(asyncio.get_running_loop())
        self._stop_listening = self.commands.listen(self._on_journal)
        self.attach(self._player)
        try:
            self.port = await self._http.start()
        except BaseException:
            await self._teardown()
            raise
        if self.token_generated:
            self._announce(f"control: {self.page_url}  (a generated token: set "
                           "SHOWRUNNER_CONTROL_TOKEN to choose one)")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        if self._hub is not None:
            # Ends the event and preview streams, so the shutdown below does not wait on them.
            self._hub.close()
        await self._http.stop()
        self._drop_player_subscription()
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        if not self._http.running:
            raise RuntimeError("ControlServer.url is known inside `async with ControlServer(...)`")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def page_url(self) -> str:
        """The operator page's URL, with the token when one is needed."""
        return f"{self.url}/" + (f"?token={self.token}" if self.token else "")

    # -- the player ---------------------------------------------------------------------------

    @property
    def player(self) -> Controllable | None:
        return self._player

    def attach(self, player: Controllable | None) -> None:
        """Control `player` from now on (None detaches); usable as `run_show(on_player=...)`."""
        self._drop_player_subscription()
        self._player = player
        self.commands.attach(player)
        if player is not None and self._hub is not None:
            self._unsubscribe = player.subscribe(self._on_player_event)
        if self._hub is not None:
            self._hub.publish("status")

    def attach_tempo(self, tempo: TempoControl | None) -> None:
        """Show `tempo` in the status and take taps and set tempos for it (None: no tempo)."""
        self.tempo = tempo
        self.tempo_changed()

    def tempo_changed(self) -> None:
        """A new status event now (a tempo or transport change), not at the next heartbeat."""
        if self._hub is not None:
            self._hub.publish("status")

    def _drop_player_subscription(self) -> None:
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._unsubscribe()
            self._unsubscribe = None

    def _on_player_event(self, event: dict[str, Any]) -> None:
        self.metrics.observe(event)
        if self._hub is None:
            return
        self._hub.publish("player", event)
        if (line := _player_log_line(event)) is not None:
            self._hub.publish("log", line)
        self._hub.publish("status")

    def _on_journal(self, entry: JournalEntry) -> None:
        if self._hub is None:
            return
        level = "info" if entry.applied or entry.reason in (DEBOUNCED, DUPLICATE) else "warning"
        self._hub.publish(
            "log", {"at": entry.at, "level": level, "source": entry.source, "text": entry.text()}
        )
        self._hub.publish("status")

    # -- the app ------------------------------------------------------------------------------

    def _build_app(self) -> ASGIApp:
        routes = [
            Route("/", self._page, methods=["GET"]),
            Route("/api/status", self._status, methods=["GET"]),
            Route("/api/health", self._health, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/api/events", self._events, methods=["GET"]),
            Route("/api/show", self._show, methods=["GET"]),
            Route("/api/inputs", self._inputs, methods=["GET"]),
            Route("/api/inputs/{name}", self._set_input, methods=["POST"]),
            Route("/api/controls", self._learn, methods=["POST"]),
            Route("/api/goto/{scene}", self._goto, methods=["POST"]),
            Route("/api/cue/{cue}", self._cue, methods=["POST"]),
            Route("/api/tempo/tap", self._tempo_tap, methods=["POST"]),
            Route("/api/tempo/bpm", self._tempo_bpm, methods=["POST"]),
            Route("/api/{command:str}", self._command, methods=["POST"]),
            Route("/preview.mjpg", self._preview, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
        app = Starlette(routes=routes)
        return _Gate(app, token=self.token, loopback=not needs_token(self.host))

    async def _page(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "operator.html", headers={"Cache-Control": "no-store"})

    async def _status(self, request: Request) -> Response:
        return JSONResponse(await self._status_json(), headers={"Cache-Control": "no-store"})

    async def _status_json(self) -> dict[str, Any]:
        """The player's status with the tempo block (`tempo`: None while there is none)."""
        body = (await self.commands.status()).to_json()
        body["tempo"] = self.tempo.tempo_status() if self.tempo is not None else None
        return body

    async def _tempo_tap(self, request: Request) -> Response:
        return await self._tempo_call(None)

    async def _tempo_bpm(self, request: Request) -> Response:
        raw = await _read_body(request)
        if raw is None:
            return JSONResponse({"error": f"the request body is over {MAX_BODY} bytes"}, 413)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, 400)
        value = body.get("bpm") if isinstance(body, dict) else None
        if value is None:
            value = request.query_params.get("bpm")
        if value is None:
            return JSONResponse({"error": 'give the tempo as {"bpm": 128} or ?bpm=128'}, 400)
        return await self._tempo_call(value)

    async def _tempo_call(self, value: object | None) -> Response:
        """A tap (`value` None) or a set tempo: 200, 400 for a bad value, 409 when the source
        takes no tempo or refused it, 503 while there is no tempo."""
        tempo = self.tempo
        if tempo is None:
            return JSONResponse({"applied": False, "error": "no show running"}, 503)
        command = "tap" if value is None else "bpm"
        try:
            bpm = await tempo.tap() if value is None else await tempo.set_bpm(value)
        except (ValueError, ShowrunnerError) as exc:
            log.warning("tempo %s from http ignored: %s", command, exc)
            code = 400 if isinstance(exc, ValueError) else 409
            return JSONResponse({"command": command, "applied": False, "error": str(exc)}, code)
        self.tempo_changed()
        return JSONResponse({"command": command, "applied": True, "bpm": bpm})

    async def _health(self, request: Request) -> Response:
        health = self.monitor.health(await self.commands.status(), self.picture)
        return JSONResponse(health.to_json(), health.http_status,
                            headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: Request) -> Response:
        health = self.monitor.health(await self.commands.status(), self.picture)
        return Response(self.metrics.render(health), media_type=CONTENT_TYPE,
                        headers={"Cache-Control": "no-store"})

    async def _show(self, request: Request) -> Response:
        player = self._player
        info = getattr(player, "show_info", None)
        if player is None or info is None:
            return JSONResponse({"error": "no show running"}, 503)
        return JSONResponse(json_safe(info()), headers={"Cache-Control": "no-store"})

    async def _inputs(self, request: Request) -> Response:
        meters = self.live.meters() if self.live is not None else {"inputs": [], "midi": None}
        return JSONResponse(json_safe(meters), headers={"Cache-Control": "no-store"})

    async def _set_input(self, request: Request) -> Response:
        """``{"value": 0-1}`` sets a live input, as the page's sliders do."""
        name = request.path_params["name"]
        raw = await _read_body(request)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        value = body.get("value") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return JSONResponse({"error": 'send {"value": <number 0-1>}'}, 400)
        if self.live is None:
            return JSONResponse({"error": "no show running"}, 503)
        if not self.live.set_input(name, float(value)):
            return JSONResponse({"error": f"the show has no input {name[:40]!r} to set"}, 404)
        return JSONResponse({"input": name, "value": min(1.0, max(0.0, float(value)))})

    async def _learn(self, request: Request) -> Response:
        """Learn mode: ``{"action": "go" | … | "goto", "name": …}`` maps the last control."""
        raw = await _read_body(request)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return JSONResponse({"error": 'send {"action": …, "name": …}'}, 400)
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            return JSONResponse({"error": f"`name` is a string of at most {MAX_NAME} characters"}, 400)
        if self.live is None:
            return JSONResponse({"error": "no show running"}, 503)
        try:
            entry = await self.live.learn(body["action"][:40], name or None)
        except ShowrunnerError as exc:
            return JSONResponse({"error": str(exc)}, 409)
        if self._hub is not None:
            self._hub.publish("log", {"at": time.time(), "level": "info", "source": "page",
                                      "text": f"learned {json.dumps(entry)}"})
        return JSONResponse({"learned": entry})

    async def _goto(self, request: Request) -> Response:
        return await self._run(request, "goto", request.path_params["scene"])

    async def _cue(self, request: Request) -> Response:
        return await self._run(request, "cue", request.path_params["cue"])

    async def _command(self, request: Request) -> Response:
        command = request.path_params["command"]
        if command not in _COMMANDS:
            return JSONResponse({"error": f"no such command {command[:40]!r}"}, 404)
        return await self._run(request, command, None)

    async def _run(self, request: Request, command: str, arg: str | None) -> Response:
        if arg is not None and len(arg) > MAX_NAME:
            return JSONResponse({"command": command, "applied": False, "result": "ignored",
                                 "reason": TOO_LONG,
                                 "error": f"names are at most {MAX_NAME} characters"}, 400)
        raw = await _read_body(request)
        if raw is None:
            return JSONResponse({"error": f"the request body is over {MAX_BODY} bytes"}, 413)
        body: Any = {}
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return JSONResponse({"error": "the request body is not JSON"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the request body must be a JSON object"}, 400)
        command_id = body.get("id") or request.query_params.get("id")
        if command_id is not None and not isinstance(command_id, str | int):
            return JSONResponse({"error": "`id` must be a string"}, 400)
        if command_id is not None and len(str(command_id)) > MAX_ID:
            return JSONResponse({"error": f"`id` is at most {MAX_ID} characters"}, 400)
        source = "page" if body.get("source") == "page" else "http"
        outcome = await self.commands.run(
            command,
            arg,
            source=source,
            command_id=str(command_id) if command_id is not None else None,
        )
        # No status in the answer: the player carries commands out on its own loop, so the
        # status right now may not show the command yet. The event stream follows it.
        return JSONResponse(outcome.to_json(), _http_status(outcome.result, outcome.reason))

    async def _events(self, request: Request) -> Response:
        hub = self._hub
        if hub is None:
            return JSONResponse({"error": "the control server is not running"}, 503)
        queue = hub.subscribe()
        backlog = list(hub.backlog)
        return StreamingResponse(
            self._event_stream(hub, queue, backlog),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _event_stream(
        self, hub: _Hub, queue: asyncio.Queue[tuple[str, Any]], backlog: list[dict[str, Any]]
    ) -> AsyncIterator[bytes]:
        try:
            yield b"retry: 1000\n\n"
            yield _sse("status", await self._status_json())
            for line in backlog:
                yield _sse("log", line)
            while True:
                try:
                    items = [await asyncio.wait_for(queue.get(), HEARTBEAT_S)]
                except TimeoutError:
                    items = [("status", None)]
                while not queue.empty():
                    items.append(queue.get_nowait())
                status_changed = False
                for kind, data in items:
                    if kind == "close":
                        return
                    if kind == "status":
                        status_changed = True  # many changes at once make one status event
                    else:
                        yield _sse(kind, data)
                if status_changed:
                    yield _sse("status", await self._status_json())
        finally:
            hub.unsubscribe(queue)

    async def _preview(self, request: Request) -> Response:
        frames, hub = self.frames, self._hub
        first = frames.latest_jpeg() if frames is not None else None
        if frames is None or first is None or hub is None:
            return JSONResponse({"error": "no preview picture yet"}, 503)
        return StreamingResponse(
            _mjpeg(frames, first, hub),
            media_type=f"multipart/x-mixed-replace; boundary={_BOUNDARY.decode()}",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def __repr__(self) -> str:
        where = self.url if self._http.running else f"{self.host}:{self.port}"
        return f"ControlServer({where!r}, token={'yes' if self.token else 'no'})"


_BOUNDARY = b"showrunnerframe"


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None when it is over MAX_BODY (read no further than that)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _mjpeg(frames: FrameSource, first: bytes, hub: _Hub) -> AsyncIterator[bytes]:
    """MJPEG parts at ~PREVIEW_FPS; each part is followed at once by the next boundary, since
    browsers show a part only when they see the boundary after it."""
    yield b"--" + _BOUNDARY + b"\r\n"
    jpeg: bytes | None = first
    sent: bytes | None = None
    idle = 0
    while not hub.closing.is_set():
        # The same picture is re-sent about once a second, so a gone viewer is noticed.
        if jpeg is not None and (jpeg is not sent or idle >= PREVIEW_FPS):
            yield _part(jpeg)
            sent, idle = jpeg, 0
        else:
            idle += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.closing.wait(), 1.0 / PREVIEW_FPS)
        jpeg = frames.latest_jpeg() or sent


def _part(jpeg: bytes) -> bytes:
    head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return head + jpeg + b"\r\n--" + _BOUNDARY + b"\r\n"


def _print_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

