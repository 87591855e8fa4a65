"""The simulator object and its three ways to run: `serve_sim`, `SimThread`, `serve_forever`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from showrunner.serving import HttpServer
from showrunner.sim import catalog
from showrunner.sim.app import build_app
from showrunner.sim.assets import AssetStore
from showrunner.sim.headless import HEADLESS_ID, UNPACED_FPS, HeadlessRefused, HeadlessSession
from showrunner.sim.inputs import INPUT_PIPELINES, VideoFileSource, open_source, source_config
from showrunner.sim.loads import Faults, LoadManager, lora_adapters
from showrunner.sim.params import GraphConfig, StartRequest
from showrunner.sim.record import Recorder
from showrunner.sim.session import SimSession, Stream
from showrunner.sim.tempo import TempoSync
from showrunner.sim.webrtc import SimPeer

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Entries each session history keeps when the simulator keeps no records (`keep_records`).
SESSION_HISTORY = 64


def _on_sim_loop(
    method: Callable[Concatenate[Simulator, P], Awaitable[R]],
) -> Callable[Concatenate[Simulator, P], Coroutine[Any, Any, R]]:
    """Run a control method on the simulator's own event loop, whichever loop awaits it."""

    async def wrapper(self: Simulator, /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop() or loop.is_closed():
            return await method(self, *args, **kwargs)

        async def call() -> R:
            return await method(self, *args, **kwargs)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))

    functools.update_wrapper(wrapper, method)
    return wrapper


class Simulator:
    """A Scope 0.2.4 look-alike: REST + WebRTC on loopback, with fault knobs and a recorder."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        load_time: float | None = 0.05,
        fps: float | None = None,
        record_path: Path | str | None = None,
        gpu: bool = False,
        ice_servers: Sequence[Mapping[str, Any]] = (),
        pipelines: Sequence[str] | None = None,
        keep_records: bool = True,
    ) -> None:
        self.host = host
        # The pipelines it offers (schemas, loads): all of `catalog` by default, a GPU host's
        # list. A CPU host offers only the weight-free ones (docs/scope.md §2.4, §10).
        known = catalog.pipeline_ids()
        unknown = sorted(set(pipelines or ()) - set(known))
        if unknown:
            raise ValueError(f"the simulator knows no pipeline {', '.join(unknown)} "
                             f"(it knows: {', '.join(known)})")
        self.pipelines = frozenset(known if pipelines is None else pipelines)
        self.port = port
        self.fps = fps
        # Present a CUDA device in `/session/metrics` and `/hardware/info`; the real CPU
        # server answers `gpu: {}` and `vram_gb: null` (docs/scope.md §10). The pipeline list stays
        # a GPU host's either way, so Wan shows can be rehearsed.
        self.gpu = gpu
        # What `GET /api/v1/webrtc/ice-servers` hands out: `{urls, username?, credential?}` each.
        # Scope answers a public STUN server when it has no TURN credentials (docs/scope.md §10);
        # the simulator answers nothing by default, so a client that uses the list stays on this
        # machine. A test points it at a TURN server on loopback. None: the endpoint answers 404,
        # as behind a proxy that does not pass it on.
        self.ice_servers: list[dict[str, Any]] | None = [ice_server_entry(e) for e in ice_servers]
        self.faults = Faults(load_time=load_time)
        # What it keeps in memory for the caller to read: every record (`records`), the
        # sessions' histories (`SimSession.applied`, ...) and closed sessions (`sessions`). A
        # simulator run as a server (`showrunner sim`, the one `run` embeds) keeps none of
        # that beyond the last few entries: nobody reads them, and they grew without bound.
        self.keep_records = keep_records
        self._history = None if keep_records else SESSION_HISTORY
        self.recorder = Recorder(Path(record_path) if record_path is not None else None,
                                 keep=keep_records)
        self._root = Path(tempfile.mkdtemp(prefix="showrunner-sim-"))
        self.assets = AssetStore(self._root)
        self.loads = LoadManager(self.faults, self.assets.lora_paths,
                                 offered=lambda pipeline_id: pipeline_id in self.pipelines)
        self.sessions: dict[str, SimSession] = {}
        self.peers: dict[str, SimPeer] = {}
        # The headless session (docs/scope.md §2.8); a second start leaves the first one running
        # in `headless_orphans` until the server restarts (docs/scope.md §10.1).
        self.headless: HeadlessSession | None = None
        self.headless_orphans: list[HeadlessSession] = []
        self.tempo = TempoSync(self._tempo_update)
        self.server_start_time = 0.0
        self.app = build_app(self)
        self._http: HttpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._downloaded = set(catalog.pipeline_ids())
        self._download: dict[str, Any] | None = None
        self._closed = False

    # -- what tests and callers read -------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every HTTP request and data-channel message so far, in arrival order."""
        return self.recorder.records

    @property
    def running(self) -> bool:
        return self._http is not None

    @property
    def loaded(self) -> dict[str, Any]:
        """`{"status": combined, "pipelines": {key: {pipeline_id, load_params, status}}}`."""
        return {
            "status": self.loads.combined(),
            "pipelines": {
                key: {
                    "pipeline_id": i.pipeline_id,
                    "load_params": i.load_params,
                    "status": i.status,
                }
                for key, i in self.loads.instances.items()
            },
        }

    def live_peers(self) -> list[SimPeer]:
        """Open sessions' peers, oldest first."""
        return [p for p in self.peers.values() if not p.session.closed]

    # -- lifecycle -------------------------------------------------------------------------

    @_on_sim_loop
    async def start(self) -> None:
        """Start listening (again) on the same port, with a new server_start_time."""
        if self._http is not None:
            return
        if self._closed:
            raise RuntimeError("this simulator was closed; create a new one")
        self._loop = asyncio.get_running_loop()
        self.server_start_time = max(time.time(), self.server_start_time + 0.001)
        http = HttpServer(self.app, self.host, self.port)
        self.port = await http.start()
        self._http = http
        log.info("Scope simulator listening on %s", self.url)

    @_on_sim_loop
    async def crash(self) -> None:
        """Die like a killed server: every peer connection closes without a word, nothing
        stays loaded."""
        peers = list(self.peers.values())
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        runs = [r for r in (self.headless, *self.headless_orphans) if r is not None]
        self.headless, self.headless_orphans = None, []
        await asyncio.gather(*(r.close() for r in runs), return_exceptions=True)
        self.tempo.disable()
        self.tempo = TempoSync(self._tempo_update)
        if self._http is not None:
            await self._http.stop()
            self._http = None
        self.loads.reset()
        if self._download is not None:
            self._download["task"].cancel()
            self._download = None

    @_on_sim_loop
    async def shutdown(self) -> None:
        """Stop like a server on SIGTERM: every open session first sends `stream_stopped` on
        its data channel (docs/scope.md §3.4, §10), then closes; then as `crash()`. `start()`
        brings the server back (a new server_start_time)."""
        peers = list(self.peers.values())
        await asyncio.gather(*(p.close(notify=True) for p in peers), return_exceptions=True)
        await self.crash()

    @_on_sim_loop
    async def restart(self, down_for: float = 0.0) -> None:
        """`crash()`, stay down for `down_for` seconds, then `start()` on the same port."""
        await self.crash()
        await asyncio.sleep(down_for)
        await self.start()

    @_on_sim_loop
    async def close(self) -> None:
        """Stop for good (a graceful `shutdown()`) and remove the simulator's files."""
        await self.shutdown()
        self._closed = True
        self.recorder.close()
        shutil.rmtree(self._root, ignore_errors=True)

    # -- fault injection -------------------------------------------------------------------

    def _select(self, session_id: str | None) -> list[SimPeer]:
        if session_id is None:
            return self.live_peers()
        peer = self.peers.get(session_id)
        return [peer] if peer is not None else []

    @_on_sim_loop
    async def drop_data_channel(self, session_id: str | None = None) -> None:
        """Close the data channel of one session (None = every session) from the server side."""
        for peer in self._select(session_id):
            await peer.drop_channel()

    @_on_sim_loop
    async def drop_peer_connection(self, session_id: str | None = None) -> None:
        """Stop one session (None = every session) on purpose, `stream_stopped` first."""
        peers = self._select(session_id)
        await asyncio.gather(*(p.close(notify=True) for p in peers), return_exceptions=True)

    @_on_sim_loop
    async def notify(self, message: dict[str, Any], session_id: str | None = None) -> int:
        """Send a server→client message (e.g. ``{"type": "stream_stopped"}``) on the data channel
        of one session (None = every session) without stopping anything; returns how many got it."""
        return sum(peer.send(message) for peer in self._select(session_id))

    async def wait_for(
        self, predicate: Callable[[Simulator], Any], timeout: float = 5.0
    ) -> Any:
        """Poll `predicate(sim)` until it is truthy and return its value; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"simulator condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    # -- used by the routes ----------------------------------------------------------------

    def stream_for(self, pipeline_ids: Any) -> tuple[Stream | None, str | None]:
        """The pipeline chain an offer gets, or why it gets no video (docs/scope.md §2.6)."""
        if not pipeline_ids or not isinstance(pipeline_ids, list):
            return None, "No pipeline IDs provided, cannot start"
        loaded = self.loads.loaded()
        missing = [p for p in pipeline_ids if p not in loaded]
        if missing:
            return None, f"pipelines not loaded: {', '.join(map(str, missing))}"
        main = loaded[pipeline_ids[-1]]
        info = catalog.info(main.pipeline_id)
        assert info is not None
        params = main.load_params

        def size(name: str, default: int) -> int:
            value = params.get(name)
            return value if isinstance(value, int) and value > 0 else default

        return (
            Stream(
                pipeline_ids=tuple(pipeline_ids),
                pipeline_id=main.pipeline_id,
                height=size("height", info.default_height),
                width=size("width", info.default_width),
                fps=float(self.fps or info.fps),
                frames_per_chunk=info.frames_per_chunk,
                vace=info.supports_vace and params.get("vace_enabled", True) is not False,
                manages_cache=info.supports_cache_management,
                lora_adapters=tuple(lora_adapters(params)) if info.supports_lora else (),
                chain=tuple(loaded[p].pipeline_id for p in pipeline_ids),
            ),
            None,
        )

    async def with_input(
        self, initial: dict[str, Any], stream: Stream | None, reason: str | None
    ) -> tuple[VideoFileSource | None, Stream | None, str | None]:
        """Open the session's server-side input source, if any (docs/scope.md §3.3, §7, §10).

        passthrough and gray then show the file's frames at its size and rate (unless the
        simulator's `fps` is set); a source that cannot be opened leaves them without frames.
        Other pipelines keep their own picture, the source only shows in the metrics.
        """
        config = source_config(initial)
        if config is None:
            return None, stream, reason
        source = await asyncio.to_thread(open_source, config, self.assets.assets_dir)
        if stream is None or stream.pipeline_id not in INPUT_PIPELINES:
            return source, stream, reason
        if source is None:
            return None, stream, reason or "the input source could not be opened; no input frames"
        stream = dataclasses.replace(
            stream, width=source.width, height=source.height, fps=float(self.fps or source.fps)
        )
        return source, stream, reason

    async def open_session(self, sdp: str, initial: dict[str, Any]) -> tuple[str, str]:
        """Answer an offer; returns (sessionId, answer SDP). Raises on a bad offer."""
        session_id = str(uuid.uuid4())
        stream, reason = self.stream_for(initial.get("pipeline_ids"))
        source, stream, reason = await self.with_input(initial, stream, reason)
        if reason is not None:
            # Scope only logs this; the offer still succeeds (docs/scope.md §2.6, §10).
            log.warning("session %s: %s; no video", session_id, reason)
        session = SimSession(session_id, initial, stream=stream, no_video_reason=reason,
                             history=self._history)
        if source is not None:
            session.input_source_type = source.source_type
        peer = SimPeer(
            session,
            recorder=self.recorder,
            faults=self.faults,
            on_closed=self._peer_closed,
            source=source,
            tempo=self.tempo,
            open_input=lambda config: asyncio.to_thread(open_source, config, self.assets.assets_dir),
        )
        try:
            answer = await peer.answer(sdp)
        except Exception:
            await peer.close()
            raise
        self.sessions[session_id] = session
        self.peers[session_id] = peer
        return session_id, answer

    async def end_session(self, session_id: str) -> None:
        """DELETE of an offer: stop it if it exists (unknown ids are fine)."""
        peer = self.peers.get(session_id)
        if peer is not None:
            await peer.close()

    def _tempo_update(self, message: dict[str, Any]) -> None:
        # WebRTC sessions only: a headless session gets no tempo (docs/scope.md §10.1).
        for peer in self.live_peers():
            peer.send(message)

    async def start_headless(self, request: StartRequest) -> dict[str, Any]:
        """`POST /api/v1/session/start` (docs/scope.md §2.8, §10.1; Scope mcp_router.py).

        The body is stored as sent; keys under `parameters` that it already sets are dropped.
        HeadlessRefused(500) when the pipeline is not loaded under that id (no session then
        exists), (400) for a graph without a sink or without a pipeline. A graph's pipeline
        nodes are loaded first, under their node ids.
        """
        graph: GraphConfig | None = None
        if request.graph is not None:
            graph = GraphConfig.model_validate(request.graph)  # malformed: a 500, as in Scope
            errors = graph.errors()
            if errors:
                raise HeadlessRefused(400, f"Invalid graph: {'; '.join(errors)}")
            entries: list[tuple[str, str, dict[str, Any] | None]] = [
                (n.id, str(n.pipeline_id or n.node_type_id), None)
                for n in graph.nodes
                if (n.type == "pipeline" and n.pipeline_id) or (n.type == "node" and n.node_type_id)
            ]
            if not entries:
                raise HeadlessRefused(400, "Graph must contain at least one pipeline or custom node")
            self.loads.request(entries)
            await self.wait_for(lambda s: s.loads.combined() != "loading", timeout=600)
            keys = [key for key, _, _ in entries]
            initial: dict[str, Any] = {
                "pipeline_ids": [pipeline_id for _, pipeline_id, _ in entries],
                "input_mode": request.input_mode,
                "graph": request.graph,
            }
        else:
            assert request.pipeline_id is not None
            keys = [request.pipeline_id]
            initial = {"pipeline_ids": list(keys), "input_mode": request.input_mode}
        if request.prompts is not None:
            initial["prompts"] = request.prompts
        if request.input_source is not None:
            initial["input_source"] = request.input_source
        for key, value in (request.parameters or {}).items():
            initial.setdefault(key, value)

        stream, reason = self.stream_for(keys)
        if stream is None:
            log.error("headless session: %s", reason)
            raise HeadlessRefused(500, "FrameProcessor failed to start (check logs for details)")
        source, stream, reason = await self.with_input(initial, stream, reason)
        session = SimSession(HEADLESS_ID, initial, stream=stream, no_video_reason=reason,
                             history=self._history)
        if source is not None:
            session.input_source_type = source.source_type
        for node_id, params in (request.node_parameters or {}).items():
            session.receive({"node_id": node_id, **params})
        assert stream is not None
        if self.fps:
            rate = float(self.fps)
        elif source is not None and stream.pipeline_id in INPUT_PIPELINES:
            rate = stream.fps  # paced by the file
        else:
            rate = UNPACED_FPS.get(stream.pipeline_id, stream.fps)
        run = HeadlessSession(session, faults=self.faults, rate=rate, source=source)
        if self.headless is not None:
            # Replaced, not stopped: it keeps running (docs/scope.md §2.8, §10.1).
            log.warning("a new headless session replaces the running one without stopping it")
            self.headless_orphans.append(self.headless)
        self.headless = run
        run.start()
        answer: dict[str, Any] = {"status": "ok", "input_mode": request.input_mode, "cloud_mode": False}
        if graph is not None:
            answer["graph"] = True
            answer["pipeline_ids"] = initial["pipeline_ids"]
            answer["sink_node_ids"] = [n.id for n in graph.nodes if n.type == "sink"]
            answer["source_node_ids"] = [n.id for n in graph.nodes if n.type == "source"]
        else:
            answer["pipeline_id"] = request.pipeline_id
        return answer

    async def stop_headless(self) -> bool:
        """`POST /api/v1/session/stop`: False when there is no headless session (a 404)."""
        run, self.headless = self.headless, None
        if run is None:
            return False
        await run.close()
        return True

    def _peer_closed(self, peer: SimPeer) -> None:
        self.peers.pop(peer.session.session_id, None)
        if not self.keep_records:
            self.sessions.pop(peer.session.session_id, None)

    def model_status(self, pipeline_id: str) -> dict[str, Any]:
        """Body of `GET /api/v1/models/status` (docs/scope.md §2.5)."""
        job = self._download
        if job is not None and job["pipeline_id"] == pipeline_id:
            elapsed = time.monotonic() - job["started"]
            total = max(self.faults.download_time, 1e-6)
            return {
                "downloaded": False,
                "progress": {
                    "is_downloading": True,
                    "percentage": round(min(elapsed / total, 0.99) * 100, 1),
                    "current_artifact": f"{pipeline_id}/model.safetensors",
                    "error": None,
                },
            }
        return {"downloaded": pipeline_id in self._downloaded, "progress": None}

    def start_download(self, pipeline_id: str) -> bool:
        """Begin a background download; False while another one runs (the 409 case)."""
        if self._download is not None:
            return False

        async def run() -> None:
            await asyncio.sleep(self.faults.download_time)
            self._downloaded.add(pipeline_id)
            self._download = None

        self._downloaded.discard(pipeline_id)
        task = asyncio.get_running_loop().create_task(run())
        self._download = {"pipeline_id": pipeline_id, "started": time.monotonic(), "task": task}
        return True


def ice_server_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One ``iceServers`` entry as Scope serves it: ``urls`` a list, ``username`` and
    ``credential`` present (null when not needed). ValueError for an entry without urls."""
    urls = entry.get("urls")
    listed = [urls] if isinstance(urls, str) else list(urls or [])
    if not listed or not all(isinstance(u, str) and u for u in listed):
        raise ValueError(f"an ICE server needs urls (strings), not {urls!r}")
    return {"urls": listed, "username": entry.get("username"), "credential": entry.get("credential")}


@asynccontextmanager
async def serve_sim(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    load_time: float | None = 0.05,
    fps: float | None = None,
    record_path: Path | str | None = None,
    gpu: bool = False,
    ice_servers: Sequence[Mapping[str, Any]] = (),
    pipelines: Sequence[str] | None = None,
    keep_records: bool = True,
) -> AsyncIterator[Simulator]:
    """Run a simulator on the current event loop for the duration of the `async with`.

    `load_time=None` gives realistic loads (2 s Wan, 0.02 s weight-free); `fps=None` gives
    each pipeline its own rate (controller-viz 60, passthrough/gray 30 or their input file's,
    Wan 16; see `showrunner.sim.catalog`). `keep_records=False` keeps no records, closed
    sessions or long session histories in memory (a server that runs for days).
    """
    sim = Simulator(host, port, load_time=load_time, fps=fps, record_path=record_path, gpu=gpu,
                    ice_servers=ice_servers, pipelines=pipelines, keep_records=keep_records)
    try:
        await sim.start()
        yield sim
    finally:
        await sim.close()


class SimThread:
    """A simulator on its own event loop in a daemon thread, so its work never delays yours."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        load_time: float | None = 0.05,
        fps: float | None = None,
        record_path: Path | str | None = None,
        gpu: bool = False,
        ice_servers: Sequence[Mapping[str, Any]] = (),
        pipelines: Sequence[str] | None = None,
        keep_records: bool = True,
    ) -> None:
        self._kwargs: dict[str, Any] = {
            "pipelines": pipelines,
            "keep_records": keep_records,
            "load_time": load_time,
            "fps": fps,
            "record_path": record_path,
            "gpu": gpu,
            "ice_servers": ice_servers,
        }
        self._host, self._port = host, port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.simulator: Simulator | None = None

    @property
    def url(self) -> str:
        return self._require().url

    @property
    def port(self) -> int:
        return self._require().port

    def _require(self) -> Simulator:
        if self.simulator is None:
            raise RuntimeError("SimThread is not started; call start() first")
        return self.simulator

    def start(self, timeout: float = 10.0) -> Simulator:
        """Start the thread and return the running simulator."""
        if self.simulator is not None:
            return self.simulator
        ready: Future[Simulator] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="scope-simulator", daemon=True
        )
        self._thread.start()
        self.simulator = ready.result(timeout=timeout)
        return self.simulator

    def _run(self, ready: Future[Simulator]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                async with serve_sim(self._host, self._port, **self._kwargs) as sim:
                    ready.set_result(sim)
                    await self._stop.wait()
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                else:
                    raise

        asyncio.run(main())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the simulator and wait for its thread to end."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self.simulator = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve_forever(
    host: str,
    port: int,
    *,
    record_path: Path | None,
    load_time: float | None,
    fps: float | None,
    on_ready: Callable[[Simulator], None] | None = None,
    gpu: bool = False,
    ice_servers: Sequence[Mapping[str, Any]] = (),
    pipelines: Sequence[str] | None = None,
    keep_records: bool = False,
) -> None:
    """Run a simulator until cancelled (Ctrl-C); `on_ready` gets it once it listens.

    The process is the simulator's own, so it takes a short thread switch interval: the render
    thread then holds the GIL for at most 0.5 ms (Python's default: 5 ms) while a message waits,
    and the record's ``received_at`` says when a message arrived, not when the thread let go.
    It keeps no records in memory by default (`keep_records`): `record_path` has them all.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, 0.0005))
    try:
        async with serve_sim(host, port, load_time=load_time, fps=fps,
                             record_path=record_path, gpu=gpu, ice_servers=ice_servers,
                             pipelines=pipelines, keep_records=keep_records) as sim:
            if on_ready is not None:
                on_ready(sim)
            await asyncio.Event().wait()
    finally:
        sys.setswitchinterval(previous)
