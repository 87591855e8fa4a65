"""`showrunner run`: load, compile, connect and play a show, with one AsyncExitStack.

Everything a live run needs is wired here and torn down in reverse order: the control surfaces
(HTTP page/API, OSC) and the command gate they share, the embedded simulator (when the show
names no Scope), the Scope client and session, the hot reload, the scheduler clock, the journal,
the terminal and the signal handlers. The player does the playing. Lines for the user go
through one output object (the CLI's: stdout for progress, stderr for problems).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from showrunner.control.gate import Commands
from showrunner.control.http import ControlServer
from showrunner.control.osc import OscControl
from showrunner.control.terminal import Terminal
from showrunner.errors import (
    ScopeConnectError,
    ScopeError,
    ScopeTimeoutError,
    ShowErrors,
    ShowrunnerError,
)
from showrunner.live.clock import Clock, prompt_thread_switches
from showrunner.live.hooks import HookRunner
from showrunner.live.hours import OpeningHours
from showrunner.live.inputs import BeatClock
from showrunner.live.installation import Installation
from showrunner.live.journal import Journal, Rotation
from showrunner.live.player import Player
from showrunner.live.resume import default_state_path, read_state, show_hash, state_file_problem
from showrunner.live.scheduling import SchedulerClock
from showrunner.music.reading import TempoReading
from showrunner.performance import start_performance
from showrunner.plan.preflight import compile_result, parse_key_path
from showrunner.plan.start import StartPoint, start_point
from showrunner.plan.timeline import Timeline
from showrunner.reload.apply import HotReload, Output
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession, WebCalls
from showrunner.scope.headless import HeadlessSession
from showrunner.scope.ice import IceMode, IcePolicy, IceServer, policy_from_words
from showrunner.scope.preflight import Need, NeedKind, Preflight
from showrunner.scope.preflight import check as check_server
from showrunner.settings import Settings
from showrunner.show.lint import Finding
from showrunner.show.load import LoadResult, allowed_folders, format_key_path, load, source_location
from showrunner.show.model import Show, Transport, transport_problems
from showrunner.sim import SimThread
from showrunner.sync.runner import TempoRunner
from showrunner.sync.sources import DEFAULT_BPM, SourceContext, SourceOptions

__all__ = [
    "RunOptions", "StreamOutput", "check_scope", "ice_policy", "needed_pipelines", "run", "run_show",
    "scope_findings", "show_needs",
]

log = logging.getLogger(__name__)

_STARTUP_BACKOFF = (0.5, 10.0)


class StreamOutput:
    """Lines for the user: progress on `out`, problems on `err` (the CLI: stdout and stderr)."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        # While a terminal shows its status line: lines go through it, above that line.
        self.through: Callable[[str], None] | None = None

    @classmethod
    def standard(cls) -> StreamOutput:
        """The process's stdout and stderr as they are now (tests replace them)."""
        return cls(sys.stdout, sys.stderr)

    def say(self, line: str) -> None:
        if self.through is not None:
            self.through(line)
        else:
            print(line, file=self.out)

    def warn(self, line: str) -> None:
        if self.through is not None:
            self.through(line)
        else:
            print(line, file=self.err, flush=True)


@dataclass(frozen=True)
class RunOptions:
    """What `showrunner run` is asked to do (README: "Run a show")."""

    path: Path
    scope_url: str | None = None  # default: the show's scope.url, else an embedded simulator
    start_scene: str | None = None  # --from
    at: str | None = None  # --at (plan.position.parse_position)
    journal_path: Path | None = None
    journal_rotation: Rotation | None = None  # --journal-max-size, --journal-rotate, --journal-keep
    record_video: Path | None = None
    state_file: Path | None = None  # default: beside the journal or the show
    reload_at: str | None = None  # "now" | "boundary"; default: the show's reload_at
    control_host: str = "127.0.0.1"
    control_port: int = -1  # the control page/API: -1 off, 0 any free port
    osc_port: int | None = None  # receive OSC commands on this UDP port
    osc_out: str | None = None  # send OSC status to HOST:PORT
    min_go_interval: float = 0.5  # seconds between two accepted GOs
    stdin_tty: bool | None = None  # keys from stdin: None = when it is a terminal
    allow_paths: tuple[Path, ...] = ()  # folders besides the show's own it may read (--allow-path)
    resume: bool = False  # continue from the state file (shows with hours or loops always do)
    ice_servers: tuple[str, ...] = ()  # --ice-server: auto | server | none | URLs (default: the show's)
    ice_relay_only: bool = False  # --ice-relay-only (or the show's ice_transport_policy: relay)
    alert_webhook: str | None = None  # --alert-webhook: outage messages (default: the show's)
    alert_after: float | None = None  # --alert-after: seconds without picture (default: the show's)
    tempo: str | None = None  # the tempo source (--tempo); default: the show's tempo.source
    transport: Transport | None = None  # --transport; default: the show's scope.transport

    def __post_init__(self) -> None:
        if self.reload_at not in (None, "now", "boundary"):
            raise ValueError(f"reload_at must be 'now' or 'boundary', not {self.reload_at!r}")
        if self.transport not in (None, "webrtc", "headless"):
            raise ValueError(f"transport must be 'webrtc' or 'headless', not {self.transport!r}")


@dataclass
class _Hooks:
    """A run's collaborators besides its options: given by the caller (tests) or made by `run`."""

    settings: Settings
    commands: Commands  # the gate every control surface goes through
    clock: Clock | None = None
    stop_event: asyncio.Event | None = None
    on_player: Callable[[Player], None] | None = None
    server: ControlServer | None = field(default=None, repr=False)  # set by `run`
    osc: OscControl | None = field(default=None, repr=False)  # set by `run`


async def run(
    options: RunOptions,
    *,
    output: Output | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
    stop_event: asyncio.Event | None = None,
    on_player: Callable[[Player], None] | None = None,
    commands: Commands | None = None,
) -> int:
    """Play a show live with its control surfaces; 0 when it ends or is quit, 1 for a bad show or setup.

    A show without ``scope.url`` (and no `scope_url`) plays on an embedded simulator. Scope
    going away during the show never ends the run: the player reconnects. Edits of the show
    file (and its includes and images) are applied while it plays. Keys, the control page and
    OSC all go through `commands` (debounced and journaled; a gate of its own when None).
    """
    out = output or StreamOutput.standard()
    if options.journal_path is not None:  # before anything starts or connects
        problem = _journal_problem(Path(options.journal_path))
        if problem is not None:
            out.warn(f"error: cannot write the journal {options.journal_path}: {problem}")
            return 1
    gate = commands or Commands(None, min_go_interval=options.min_go_interval)
    hooks = _Hooks(settings or Settings.from_environ(), gate, clock, stop_event, on_player)
    # The hot reload loads the show in tasks and threads started from here: they inherit the
    # allowed folders.
    with allowed_folders(options.allow_paths):
        async with AsyncExitStack() as stack:
            if options.control_port >= 0:
                hooks.server = await _control_server(stack, options, hooks, out)
                if hooks.server is None:
                    return 1
            if options.osc_port is not None or options.osc_out:
                osc = OscControl(hooks.commands, port=options.osc_port, out=options.osc_out)
                try:
                    await stack.enter_async_context(osc)
                except OSError as exc:
                    out.warn(f"osc: cannot listen on port {options.osc_port}: "
                             f"{(exc.strerror or str(exc)).lower()}")
                    return 1
                hooks.osc = osc
            return await _play(options, hooks, out)


def _journal_problem(path: Path) -> str | None:
    """Why the journal cannot be appended to at `path` (one line for the user), or None.

    The journal opens only once the session is up; this finds out before anything connects by
    doing what it will do (create missing folders, open the file for appending) and undoing
    what it created. A directory, a FIFO (opening one would wait for a reader) or a device is
    refused without being opened.
    """
    try:
        mode: int | None = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folders are looked at below
        mode = None
    except OSError as exc:
        return _os_reason(exc, path)
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            return "it is a directory"
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"it is {kind}, not a regular file"
    missing: list[Path] = []
    folder = path.absolute().parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    made: list[Path] = []
    created = False
    try:
        for new in reversed(missing):
            new.mkdir()
            made.append(new)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        created = mode is None
        os.close(fd)
    except OSError as exc:
        return _os_reason(exc, path)
    finally:
        with contextlib.suppress(OSError):
            if created:
                path.unlink()
            for new in reversed(made):
                new.rmdir()
    return None


def _os_reason(exc: OSError, path: Path) -> str:
    reason = (exc.strerror or str(exc)).lower()
    where = exc.filename
    return f"{where}: {reason}" if where and str(where) != str(path) else reason


async def run_show(
    path: str | Path,
    *,
    scope_url: str | None = None,
    start_scene: str | None = None,
    at: str | None = None,
    journal_path: Path | None = None,
    record_video: Path | None = None,
    state_file: Path | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
    stdin_tty: bool | None = None,
    stop_event: asyncio.Event | None = None,
    on_player: Callable[[Player], None] | None = None,
    reload_at: str | None = None,
    commands: Commands | None = None,
    resume: bool = False,
    transport: Transport | None = None,
) -> int:
    """`run` without a control page or OSC, printing to stdout/stderr (tests, benchmarks)."""
    options = RunOptions(
        Path(path), scope_url=scope_url, start_scene=start_scene, at=at, journal_path=journal_path,
        record_video=record_video, state_file=state_file, reload_at=reload_at, stdin_tty=stdin_tty,
        resume=resume, transport=transport,
    )
    return await run(options, settings=settings, clock=clock, stop_event=stop_event,
                     on_player=on_player, commands=commands)


async def _control_server(
    stack: AsyncExitStack, options: RunOptions, hooks: _Hooks, out: Output
) -> ControlServer | None:
    """The control page/API, started before the show loads; None (reported) when its port is taken."""
    server = ControlServer(
        host=options.control_host,
        port=options.control_port,
        token=hooks.settings.control_token,
        commands=hooks.commands,
        announce=out.warn,
    )
    try:
        await stack.enter_async_context(server)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        out.warn(f"control: cannot listen on {options.control_host}:{options.control_port}: "
                 f"{reason.lower()} (choose another --control-port, or -1 for none)")
        return None
    if not server.token_generated:  # a generated token's URL was announced with it
        out.warn(f"control: {server.page_url}")
    return server


@dataclass(frozen=True)
class _PreparedShow:
    """A show ready to play: its load, plan, start and the settings read from it."""

    result: LoadResult
    timeline: Timeline
    point: StartPoint
    headers: dict[str, str]
    hours: OpeningHours | None
    state_path: Path
    ice: IcePolicy
    transport: Transport


def _prepare_show(options: RunOptions, settings: Settings, out: Output) -> _PreparedShow | None:
    """Load and compile the show and read where it starts; None (reported) when it cannot play."""
    show_path = Path(options.path)
    try:
        result = load(show_path, allow=options.allow_paths)
        timeline = compile_result(result)
        point = start_point(timeline, start_scene=options.start_scene, at=options.at)
        headers = _auth_headers(result.show, settings)
        ice = ice_policy(result.show, settings, options.ice_servers, relay_only=options.ice_relay_only)
        hours = OpeningHours(result.show.hours) if result.show.hours else None
    except ShowErrors as exc:
        for problem in exc.errors:
            out.warn(problem.format())
        return None
    except ShowrunnerError as exc:
        out.warn(f"error: {exc}")
        return None
    transport = options.transport or result.show.scope.transport
    if (refusals := _transport_refusals(options, result, transport)):
        for line in refusals:
            out.warn(line)
        return None
    state_path = Path(options.state_file) if options.state_file else default_state_path(show_path)
    if (refused := state_file_problem(state_path)) is not None:
        out.warn(f"error: {refused}")
        return None
    if options.start_scene is None and options.at is None:
        point = _where_to_start(options, result, timeline, state_path, out) or point
    return _PreparedShow(result, timeline, point, headers, hours, state_path, ice, transport)


def _transport_refusals(options: RunOptions, result: LoadResult, transport: Transport) -> list[str]:
    """What the show or the run options need that `transport` cannot do (one line each); the
    show's own scope.transport was already checked by the load."""
    lines = []
    if transport != result.show.scope.transport:
        for loc, message in transport_problems(result.show, transport):
            path, line, col = source_location(result, loc)
            lines.append(f"{path}:{line}:{col}: {format_key_path(loc)}: {message} (--transport {transport})")
    if transport == "headless" and options.record_video is not None:
        lines.append("error: --record-video records the video Scope sends back, and the headless "
                     "transport receives none: record on the server (its output.ts, or the "
                     "NDI/Spout/Syphon output) or use --transport webrtc")
    return lines


def _wall_clock_show(result: LoadResult, timeline: Timeline) -> bool:
    """A show whose position the wall clock decides: opening hours, or a loop without cues."""
    if result.show.hours:
        return True
    scenes = [s for s in timeline.scenes if not s.closed_only]
    return timeline.total_duration is None and bool(timeline.period) and all(
        s.cue is None for s in scenes
    )


def _where_to_start(
    options: RunOptions, result: LoadResult, timeline: Timeline, state_path: Path, out: Output
) -> StartPoint | None:
    """Resume (None: from the top), saying which applies: a show resumes when asked
    (`--resume`) or when the wall clock decides where it is anyway."""
    wall = _wall_clock_show(result, timeline)
    if not (options.resume or wall):
        saved = read_state(state_path)
        if saved is not None and saved.show == str(result.path.resolve()) and (
            saved.show_hash == show_hash(result.files)
        ):
            out.say(f"Starting from the top (--resume continues at {saved.scene}, "
                    f"as saved in {state_path})")
        else:
            out.say("Starting from the top")
        return None
    point = _resume_point(result, state_path, out)
    if point is None:
        out.say("Starting from the top" + (" (no saved position yet)" if wall else ""))
    return point


async def _play(options: RunOptions, hooks: _Hooks, out: Output) -> int:
    """Connect to Scope (or an embedded simulator) and play the show until it ends or is quit."""
    prepared = _prepare_show(options, hooks.settings, out)
    if prepared is None:
        return 1
    result, show_path = prepared.result, Path(options.path)
    async with AsyncExitStack() as stack:
        url = options.scope_url or result.show.scope.url
        if url is None:
            sim = SimThread("127.0.0.1", 0, keep_records=False)  # it plays as long as the show
            await asyncio.to_thread(sim.start)
            stack.push_async_callback(asyncio.to_thread, sim.stop)
            url = sim.url
            out.say(f"No Scope URL in the show: playing on the built-in simulator at {url}")
        client = await stack.enter_async_context(
            ScopeClient(url, headers=prepared.headers, timeouts=_timeouts(result.show))
        )
        quit_early = _quit_signal(stack, hooks.stop_event)
        # Watch the show from now on: an edit made while Scope connects is not lost, and the
        # watch's first look at the files happens before timed playback begins.
        hot = HotReload(client, show_path, result, options.reload_at, out, show_hash,
                        refuse=lambda edited: _transport_refusals(options, edited, prepared.transport))
        hot.start()
        stack.push_async_callback(hot.stop)
        session = await _session(stack, client, options, prepared, out)
        tempo = await _start_tempo(stack, options, result.show, SourceContext(
            hooks.clock.monotonic if hooks.clock is not None else time.monotonic, client,
            session if isinstance(session, ScopeSession) else None,
        ), hooks, out)
        # The player exists (pending, its first scene waiting) while Scope is prepared, so the
        # control surfaces show what the show waits for.
        player = await _player(stack, prepared, session, hooks, options, url)
        live_tempo = _follow_tempo(stack, tempo, player)
        await _installation(stack, player, hooks.settings, options)
        terminal = Terminal(player, commands=hooks.commands, tty=options.stdin_tty)
        terminal.tempo = tempo
        await stack.enter_async_context(terminal)
        if terminal.tty and isinstance(out, StreamOutput):
            out.through = terminal.line
            stack.callback(setattr, out, "through", None)
        refs = await _prepare_scope(client, prepared, quit_early, out, player)
        if refs is None:
            return 1 if not (quit_early.is_set() or player.quitting) else 0
        player.set_refs(*refs)
        player.notice = None
        hot.attach(player)
        _install_quit(stack, player, quit_early)
        performance = await start_performance(stack, player, hooks.commands, osc=hooks.osc,
                                              chunk_interval=lambda: session.chunk_interval,
                                              show_path=show_path, beat=live_tempo)
        if hooks.server is not None:
            hooks.server.live = performance
        try:
            return await player.run()
        finally:
            await hot.stop()  # before the journal and the session close


async def _session(
    stack: AsyncExitStack, client: ScopeClient, options: RunOptions, prepared: _PreparedShow, out: Output
) -> ScopeSession | HeadlessSession:
    """The Scope session the show plays into: WebRTC, or headless (docs/operating.md)."""
    if prepared.transport == "headless":
        out.say("Transport: headless (updates over HTTP, no video back)")
        return await stack.enter_async_context(HeadlessSession(client))
    return await stack.enter_async_context(
        ScopeSession(client, record_video=options.record_video, ice=prepared.ice)
    )


async def _player(
    stack: AsyncExitStack,
    prepared: _PreparedShow,
    session: ScopeSession | HeadlessSession,
    hooks: _Hooks,
    options: RunOptions,
    url: str,
) -> Player:
    """The player, with its clock and journal, attached to the command gate and control page."""
    clock = hooks.clock
    if clock is None:
        clock = await stack.enter_async_context(SchedulerClock())
    journal = None
    if options.journal_path:
        day_clock = clock  # the journal's day is the run clock's local date (daily rotation)
        journal = stack.enter_context(Journal(options.journal_path, rotation=options.journal_rotation,
                                              today=lambda: day_clock.now().date()))
    result = prepared.result
    player = Player(
        prepared.timeline, session, clock=clock, journal=journal,
        start=prepared.point, hours=prepared.hours, state_path=prepared.state_path,
        show_path=str(Path(options.path).resolve()), show_hash=show_hash(result.files),
        manage_gc=True, scope_url=url,
    )
    player.notice = f"waiting for Scope at {url}"
    hooks.commands.attach(player)
    if hooks.server is not None:
        hooks.server.attach(player)
        # The page's preview: the video Scope sends back, or (headless) its /session/frame.
        hooks.server.frames = session
        hooks.server.picture = session  # /api/health and /metrics: frames and their age
    if hooks.on_player is not None:
        hooks.on_player(player)
    stack.enter_context(prompt_thread_switches())
    return player


async def _installation(
    stack: AsyncExitStack, player: Player, settings: Settings, options: RunOptions
) -> Installation:
    """The lifecycle hooks, outage detector and alerts beside the player (stopped before the
    journal closes); `before_open` runs now when the show is open."""
    web = await stack.enter_async_context(WebCalls())
    runner = HookRunner(player.log, expand=settings.expand, web=web)
    installation = Installation(player, runner, alert_webhook=options.alert_webhook,
                                alert_after=options.alert_after)
    installation.start()
    stack.push_async_callback(installation.stop)
    return installation


async def _start_tempo(
    stack: AsyncExitStack,
    options: RunOptions,
    show: Show,
    context: SourceContext,
    hooks: _Hooks,
    out: Output,
) -> TempoRunner:
    """The run's tempo source (`--tempo`, else the show's `tempo.source`), running beside the
    show until the run ends, on the status, the page and OSC."""
    runner = TempoRunner(SourceOptions(
        name=options.tempo or show.tempo.source, bpm=show.bpm or DEFAULT_BPM,
        beats_per_bar=show.beats_per_bar, scope_follows=show.tempo.scope_follows,
        tap_reset=show.tempo.tap_reset,
        midi_device=show.tempo.midi_clock or (show.midi.device if show.midi else None),
        midi_api=show.midi.api if show.midi else None,
    ), context, warn=out.warn)
    server = hooks.server
    if server is not None:
        server.attach_tempo(runner)
        stack.callback(server.attach_tempo, None)
        shown: list[tuple[float, bool]] = []

        def changed(reading: TempoReading) -> None:  # a new tempo or transport state: at once
            now = (round(reading.bpm, 2), reading.playing)
            if shown != [now]:
                shown[:] = [now]
                server.tempo_changed()

        runner.listen(changed)
    if hooks.osc is not None:
        hooks.osc.tempo = runner
        stack.callback(setattr, hooks.osc, "tempo", None)
    task = asyncio.create_task(runner.run(), name="tempo")
    task.add_done_callback(_tempo_ended)
    stack.push_async_callback(_cancel, task)
    return runner


def _follow_tempo(stack: AsyncExitStack, tempo: TempoRunner, player: Player) -> BeatClock | None:
    """A live tempo source drives the player's musical time (bars and beats, quantize) and the
    beat LFOs; the fixed bpm (also after a source fell back to it) leaves the player on the
    show's own bpm. Returns the LFOs' beat clock (None: the fixed bpm)."""

    def follow(reading: TempoReading) -> None:
        if reading.source != "fixed":
            player.tempo_reading(reading)

    stack.callback(tempo.listen(follow))
    if tempo.source_name == "fixed":
        return None

    def beats() -> float:  # the player's tempo map once it has a reading, else the source's own
        tempo_map = player.beat.tempo
        return tempo.status().beat if tempo_map.empty else tempo_map.beat_at(player.clock.monotonic())

    return beats


def _tempo_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("the tempo source stopped: %s", exc, exc_info=exc)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def needed_pipelines(timeline: Timeline) -> list[str]:
    """Every pipeline id the show loads, in the order it first needs them."""
    ids: dict[str, None] = {}
    for scene in timeline.scenes:
        for state in (scene.state_in, scene.state_out):
            ids.update(dict.fromkeys(state.chain))
    return list(ids)


# Runtime keys on the wire whose show key has another name.
_SHOW_KEY = {"denoising_step_list": "denoising_steps", "prompt_interpolation_method": "prompt_interpolation"}


def show_needs(show: Show, timeline: Timeline) -> list[Need]:
    """What the show asks of the server's pipelines (scope/preflight.py), scene by scene, each
    need once, at the key that asks for it (the scene's own, an earlier scene's or the
    defaults')."""
    out: list[Need] = []
    seen: set[tuple[object, ...]] = set()

    def add(kind: NeedKind, pipeline: str, i: int, path: tuple[str, ...], key: str = "",
            value: object = None) -> None:
        mark = (kind, pipeline, key, repr(value))
        if mark not in seen:
            seen.add(mark)
            out.append(Need(kind, pipeline, _setting(show, i, path), key, value))

    for scene in timeline.scenes:
        i, state = scene.index, scene.state_in
        main = scene.main_pipeline
        for pipeline in state.chain:
            add(NeedKind.PIPELINE, pipeline, i, ("pipeline",))
        add(NeedKind.MODE, main, i, ("input_mode",), "input_mode", state.input_mode)
        for key in ("height", "width"):
            if key in state.load_params:
                add(NeedKind.SIZE, main, i, ("load", key), key, state.load_params[key])
        if state.load_params.get("loras"):
            add(NeedKind.LORA, main, i, ("load", "loras"))
        if state.vace_refs:
            add(NeedKind.VACE, main, i, ("vace",))
        for key, value in state.params.items():
            add(NeedKind.PARAM, main, i, (_SHOW_KEY.get(key, key),), key, value)
    return out


def _setting(show: Show, index: int, path: tuple[str, ...]) -> str:
    """The key path of the value in force at scene `index` (values track from earlier scenes)."""
    for i in range(index, -1, -1):
        node: object = show.scenes[i]
        for name in path:
            if node is None or name not in getattr(node, "model_fields_set", ()):
                break
            node = getattr(node, name)
        else:
            return format_key_path(("scenes", i, *path))
    return format_key_path(("defaults", *path))


async def scope_findings(
    client: ScopeClient, result: LoadResult, timeline: Timeline
) -> tuple[list[Finding], Preflight]:
    """The server check of `run` and ``check --scope``: the show's needs against the server's
    pipelines, as findings positioned in the show (ScopeError when the server cannot be asked)."""
    report = await check_server(client, show_needs(result.show, timeline))
    findings = []
    for problem in report.problems:
        loc = parse_key_path(problem.where)
        path, line, col = source_location(result, loc)
        findings.append(Finding("error" if problem.severity == "error" else "warning", "scope",
                                problem.message, path, line, col, problem.where))
    return findings, report


async def check_scope(
    result: LoadResult, url: str, settings: Settings
) -> tuple[list[Finding], Preflight | None]:
    """``showrunner check --scope URL`` for one loaded show: the findings of `scope_findings`
    and what was verified; no server check (None) for a show that does not compile (`check`
    reports why). ScopeError when the server cannot be asked."""
    try:
        timeline = compile_result(result)
    except ShowErrors:
        return [], None
    headers = _auth_headers(result.show, settings)
    async with ScopeClient(url, headers=headers, timeouts=_timeouts(result.show)) as client:
        return await scope_findings(client, result, timeline)


def _auth_headers(show: Show, settings: Settings) -> dict[str, str]:
    auth = show.scope.auth
    if auth is None:
        return {}
    token = settings.secret(auth.env)
    if not token:
        raise ShowrunnerError(
            f"scope.auth.env names the environment variable {auth.env}, which is not set; "
            f"export {auth.env}=<token> before running the show"
        )
    return {auth.header: f"{auth.scheme} {token}" if auth.scheme else token}


def ice_policy(
    show: Show, settings: Settings, words: tuple[str, ...] = (), *, relay_only: bool = False
) -> IcePolicy:
    """The ICE servers of a run: ``--ice-server`` values when given, else the show's
    ``scope.ice_servers``; relay only when asked on the command line or in the show. TURN
    servers named without credentials take them from the environment (settings)."""
    user, password = settings.turn_username, settings.turn_credential
    relay = relay_only or show.scope.ice_transport_policy == "relay"
    try:
        policy = policy_from_words(words, relay_only=relay, username=user, credential=password)
    except ValueError as exc:
        raise ShowrunnerError(str(exc)) from None
    if policy is None:
        policy = _show_ice(show, relay, user, password)
    if relay and policy.mode in (IceMode.NONE, IceMode.LIST) and not any(
        s.is_turn for s in policy.servers
    ):
        raise ShowrunnerError("relay only (--ice-relay-only or scope.ice_transport_policy: relay) "
                              "needs a TURN server, and the ICE servers given have none")
    return policy


def _show_ice(show: Show, relay: bool, user: str | None, password: str | None) -> IcePolicy:
    chosen = show.scope.ice_servers
    if isinstance(chosen, str):
        return IcePolicy(IceMode(chosen), relay_only=relay)
    servers = tuple(
        IceServer(tuple(s.urls), s.username, s.credential).with_credentials(user, password)
        for s in chosen
    )
    return IcePolicy(IceMode.LIST, servers, relay_only=relay)


def _timeouts(show: Show) -> ClientTimeouts:
    t = show.scope.timeouts
    return ClientTimeouts(connect=t.connect, request=t.request, load=t.load, offer=t.offer,
                          first_frame=t.first_frame)


def _resume_point(result: LoadResult, state_path: Path, out: Output) -> StartPoint | None:
    saved = read_state(state_path)
    if saved is None:
        return None
    if saved.show != str(result.path.resolve()) or saved.show_hash != show_hash(result.files):
        out.say(f"Ignoring {state_path}: it belongs to another show or an older version of it; "
                "starting from the top")
        return None
    out.say(f"Resuming from {state_path} (last scene: {saved.scene})")
    return StartPoint(resume=saved)


def _quit_signal(stack: AsyncExitStack, stop_event: asyncio.Event | None) -> asyncio.Event:
    """An event set by SIGINT/SIGTERM or `stop_event` before the player exists."""
    quit_early = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, quit_early.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or no signals here
        stack.callback(loop.remove_signal_handler, sig)
    if stop_event is not None:
        watcher = asyncio.create_task(_forward(stop_event, quit_early.set))
        stack.callback(watcher.cancel)
    return quit_early


def _install_quit(stack: AsyncExitStack, player: Player, quit_early: asyncio.Event) -> None:
    if quit_early.is_set():
        player.quit()
        return
    watcher = asyncio.create_task(_forward(quit_early, player.quit))
    stack.callback(watcher.cancel)


async def _forward(event: asyncio.Event, action: Callable[[], object]) -> None:
    await event.wait()
    action()


async def _prepare_scope(
    client: ScopeClient,
    prepared: _PreparedShow,
    quit_early: asyncio.Event,
    out: Output,
    player: Player,
) -> tuple[dict[str, str], dict[str, str]] | None:
    """Before the first scene: check that the server has the show's pipelines, upload local
    images and resolve LoRAs. A Scope that does not answer yet is waited for (the first scene
    stays pending); a missing pipeline or asset ends the run (None, reported)."""
    delay, cap = _STARTUP_BACKOFF
    said: str | None = None
    while not (quit_early.is_set() or player.quitting):
        try:
            findings, report = await scope_findings(client, prepared.result, prepared.timeline)
            for finding in findings:
                out.warn(finding.format())
            if not report.ok:
                return None
            return await _prepare_refs(client, prepared.result, out)
        except (ScopeConnectError, ScopeTimeoutError) as exc:
            line = f"Scope is not reachable at {client.base_url} ({exc}); waiting for it"
            if line != said:  # once, not at every retry
                out.warn(line)
                said = line
        except ScopeError as exc:
            out.warn(f"error: {exc}")
            return None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(quit_early.wait(), delay)
        delay = min(delay * 2, cap)
    return None


async def _prepare_refs(
    client: ScopeClient, result: LoadResult, out: Output
) -> tuple[dict[str, str], dict[str, str]]:
    """Upload local images and resolve LoRAs (ScopeError when the server lacks one)."""
    show = result.show
    base = result.path.absolute().parent  # where the load checked them (even for a linked show)
    assets: dict[str, str] = {}
    for name, image in show.assets.images.items():
        if image.server_path is not None:
            assets[name] = image.server_path
        else:
            assert image.file is not None
            assets[name] = await client.upload_asset(base / image.file)
    loras: dict[str, str] = {}
    for name, lora in show.assets.loras.items():
        wanted = lora.path if lora.path is not None else lora.filename
        assert wanted is not None
        loras[name] = await client.resolve_lora(wanted)
    if show.assets.images or show.assets.loras:
        out.say(f"Assets ready: {len(assets)} image(s), {len(loras)} LoRA(s)")
    return assets, loras
