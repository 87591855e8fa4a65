"""`showrunner run`: load, compile, connect and play a show, with one AsyncExitStack.

Everything a live run needs is composed here and torn down in reverse order: the embedded
simulator (when the show names no Scope), the Scope client and session, the scheduler clock,
the journal, the terminal and the signal handlers. The player does the playing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TextIO

from showrunner.control.gate import Commands
from showrunner.control.terminal import Terminal
from showrunner.errors import (
    ScopeConnectError,
    ScopeError,
    ScopeTimeoutError,
    ShowError,
    ShowErrors,
    ShowrunnerError,
)
from showrunner.live.clock import Clock, prompt_thread_switches
from showrunner.live.hours import OpeningHours
from showrunner.live.journal import Journal
from showrunner.live.player import Player, StartPoint, start_point
from showrunner.live.resume import default_state_path, read_state, show_hash
from showrunner.live.scheduling import SchedulerClock
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.diff import diff_timelines
from showrunner.reload.watch import watch_show
from showrunner.scope.client import ClientTimeouts, ScopeClient, ScopeSession
from showrunner.settings import Settings
from showrunner.show.load import LoadResult, load
from showrunner.show.model import Show
from showrunner.sim import SimThread

__all__ = ["run_show"]

log = logging.getLogger("showrunner.app")

_STARTUP_BACKOFF = (0.5, 10.0)
# The show-file watch picks a change up once the files have been quiet for about a step; its
# thread also wakes every step while nothing happens (about 0.6 % of one core at 10 ms, 0.2 %
# at 25 ms, 0.1 % at 50 ms). 25 ms keeps edit-to-air near 55 ms (README: "Latency") at a cost an
# installation running for weeks can ignore.
RELOAD_STEP_MS = 25
RELOAD_DEBOUNCE_MS = 100


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
) -> int:
    """Play the show at `path` live; return 0 when it ends or is quit, 1 for a bad show or setup.

    A show without ``scope.url`` (and no `scope_url`) plays on an embedded simulator. Scope
    going away during the show never ends the run: the player reconnects. Edits of the show
    file (and its includes and images) are applied while it plays: `reload_at` ("now" or
    "boundary", default: the show's `reload_at`) says when they reach the playing scene.
    Keys pressed in the terminal go through `commands` (debounced and journaled like every
    other control surface; a default gate when None).
    """
    if reload_at not in (None, "now", "boundary"):
        raise ValueError(f"reload_at must be 'now' or 'boundary', not {reload_at!r}")
    out, err = sys.stdout, sys.stderr
    show_path = Path(path)
    try:
        result = load(show_path)
        timeline = compile_timeline(result.show, source=str(show_path))
        point = start_point(timeline, start_scene=start_scene, at=at)
        headers = _auth_headers(result.show, settings or Settings.from_environ())
        hours = OpeningHours(result.show.hours) if result.show.hours else None
    except ShowErrors as exc:
        for problem in exc.errors:
            print(problem.format(), file=err)
        return 1
    except ShowrunnerError as exc:
        print(f"error: {exc}", file=err)
        return 1
    state_path = Path(state_file) if state_file else default_state_path(show_path, journal_path)
    if start_scene is None and at is None:
        point = _resume_point(result, state_path, out) or point

    async with AsyncExitStack() as stack:
        url = scope_url or result.show.scope.url
        if url is None:
            sim = SimThread("127.0.0.1", 0)
            await asyncio.to_thread(sim.start)
            stack.push_async_callback(asyncio.to_thread, sim.stop)
            url = sim.url
            print(f"No Scope URL in the show: playing on the built-in simulator at {url}", file=out)
        client = await stack.enter_async_context(
            ScopeClient(url, headers=headers, timeouts=_timeouts(result.show))
        )
        quit_early = _quit_signal(stack, stop_event)
        # Watch the show from now on: an edit made while Scope connects is not lost, and the
        # watch's first look at the files happens before timed playback begins.
        hot = _HotReload(client, show_path, result, reload_at, out, err)
        hot.start()
        stack.push_async_callback(hot.stop)
        refs = await _prepare_refs(client, result, quit_early, out, err)
        if refs is None:
            return 1 if not quit_early.is_set() else 0
        assets, loras = refs
        session = await stack.enter_async_context(ScopeSession(client, record_video=record_video))
        if clock is None:
            clock = await stack.enter_async_context(SchedulerClock())
        journal = stack.enter_context(Journal(journal_path)) if journal_path else None
        player = Player(
            timeline, session, clock=clock, journal=journal, assets=assets, loras=loras,
            start=point, hours=hours, state_path=state_path,
            show_path=str(show_path.resolve()), show_hash=show_hash(result.files),
            manage_gc=True,
        )
        if commands is None:
            commands = Commands(None)
        commands.attach(player)
        if on_player is not None:
            on_player(player)
        stack.enter_context(prompt_thread_switches())
        hot.attach(player)
        _install_quit(stack, player, quit_early)
        await stack.enter_async_context(Terminal(player, commands=commands, tty=stdin_tty))
        try:
            return await player.run()
        finally:
            await hot.stop()  # before the journal and the session close
    return 0  # pragma: no cover - the stack only exits through a return above


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


def _timeouts(show: Show) -> ClientTimeouts:
    t = show.scope.timeouts
    return ClientTimeouts(connect=t.connect, request=t.request, load=t.load, offer=t.offer,
                          first_frame=t.first_frame)


def _resume_point(result: LoadResult, state_path: Path, out: TextIO) -> StartPoint | None:
    saved = read_state(state_path)
    if saved is None:
        return None
    if saved.show != str(result.path.resolve()) or saved.show_hash != show_hash(result.files):
        print(f"Ignoring {state_path}: it belongs to another show or an older version of it; "
              "starting from the top", file=out)
        return None
    print(f"Resuming from {state_path} (last scene: {saved.scene})", file=out)
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


async def _prepare_refs(
    client: ScopeClient,
    result: LoadResult,
    quit_early: asyncio.Event,
    out: TextIO,
    err: TextIO,
) -> tuple[dict[str, str], dict[str, str]] | None:
    """Upload local images and resolve LoRAs before the first scene; wait for Scope if it is down."""
    show = result.show
    base = result.path.resolve().parent
    delay, cap = _STARTUP_BACKOFF
    while not quit_early.is_set():
        try:
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
                print(f"Assets ready: {len(assets)} image(s), {len(loras)} LoRA(s)", file=out)
            return assets, loras
        except (ScopeConnectError, ScopeTimeoutError) as exc:
            print(f"Scope is not reachable ({exc}); retrying in {delay:g} s", file=err)
        except ScopeError as exc:
            print(f"error: {exc}", file=err)
            return None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(quit_early.wait(), delay)
        delay = min(delay * 2, cap)
    return None


class _HotReload:
    """Feeds edits of the show to the player while it plays (README: "Edit the show while it plays").

    Each new version is compiled and diffed off the event loop; changed image files are
    uploaded again and new LoRAs resolved before the player gets the plan. A version that does
    not load, compile or upload is reported and the show plays on unchanged.
    """

    def __init__(
        self,
        client: ScopeClient,
        path: Path,
        result: LoadResult,
        reload_at: str | None,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self._player: Player | None = None
        self._ready = asyncio.Event()  # set once the player exists
        self.client = client
        self.path = path
        self.first = result
        self.reload_at = reload_at
        self.out, self.err = out, err
        self.stop_event = asyncio.Event()
        self._lock = asyncio.Lock()  # one version at a time, in order
        self._task: asyncio.Task[None] | None = None
        self._images = _image_stats(result)  # what was uploaded: asset name -> (file, stat)
        loras = result.show.assets.loras
        self._loras = {name: lora.path or lora.filename for name, lora in loras.items()}

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="showrunner-reload")

    def attach(self, player: Player) -> None:
        """Edits seen so far (and from now on) go to `player`."""
        self._player = player
        player.reload_hook = self.reload
        self._ready.set()

    @property
    def player(self) -> Player:
        assert self._player is not None, "attach() the player first"
        return self._player

    async def stop(self) -> None:
        self.stop_event.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def reload(self) -> None:
        """Load the show now, whatever the watcher saw (the control surface's RELOAD)."""
        try:
            item: LoadResult | ShowErrors = await asyncio.to_thread(load, self.path)
        except ShowErrors as errors:
            item = errors
        await self.apply(item)

    async def _watch(self) -> None:
        try:
            async for item in watch_show(
                self.path, stop_event=self.stop_event, initial=self.first,
                debounce_ms=RELOAD_DEBOUNCE_MS, step_ms=RELOAD_STEP_MS,
            ):
                await self.apply(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # the watch is a convenience: losing it must not end the show
            log.exception("watching the show file failed; edits are no longer applied")
            print("Hot reload stopped after an internal error; restart to apply edits",
                  file=self.err)

    async def apply(self, item: LoadResult | ShowErrors) -> None:
        await self._ready.wait()
        async with self._lock:
            if isinstance(item, ShowErrors):
                self._failed([e.format() for e in item.errors])
                return
            try:
                timeline = await asyncio.to_thread(
                    compile_timeline, item.show, source=str(self.path)
                )
            except ShowErrors as errors:
                self._failed([e.format() for e in errors.errors])
                return
            except ShowError as error:
                self._failed([error.format()])
                return
            except ShowrunnerError as exc:
                self._failed([f"{self.path}: {exc}"])
                return
            try:
                assets, loras, refreshed = await self._refs(item)
            except ScopeError as exc:
                self._failed([f"{self.path}: assets: {exc}"])
                return
            diff = await asyncio.to_thread(diff_timelines, self.player.plan, timeline)
            self.player.show_hash = show_hash(item.files)
            apply = self.reload_at or item.show.reload_at
            self.player.replace_timeline(
                timeline, apply=apply, assets=assets, loras=loras, refreshed=refreshed, diff=diff
            )
            lines = diff.summary().splitlines() if not diff.empty else ["no change to the plan"]
            lines += [f"image {name!r} uploaded again" for name in refreshed]
            for line in lines:
                print(f"reload: {line}", file=self.out)

    def _failed(self, lines: list[str]) -> None:
        self.player.reload_failed(lines)
        print("reload failed, the show plays on unchanged:", file=self.err)
        for line in lines:
            print(f"  {line}", file=self.err)

    async def _refs(self, result: LoadResult) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """Server paths of the new version's assets: changed image files are uploaded again."""
        assets, loras = dict(self.player.assets), dict(self.player.loras)
        refreshed: list[str] = []
        stats = await asyncio.to_thread(_image_stats, result)
        for name, image in result.show.assets.images.items():
            if image.server_path is not None:
                assets[name] = image.server_path
                continue
            file, stat = stats[name]
            if self._images.get(name) != (file, stat) or name not in assets:
                assets[name] = await self.client.upload_asset(file)
                if name in self._images:
                    refreshed.append(name)
                self._images[name] = (file, stat)
        for name, lora in result.show.assets.loras.items():
            wanted = lora.path or lora.filename
            assert wanted is not None
            if self._loras.get(name) != wanted or name not in loras:
                loras[name] = await self.client.resolve_lora(wanted)
                self._loras[name] = wanted
        return assets, loras, refreshed


def _image_stats(result: LoadResult) -> dict[str, tuple[Path, tuple[int, int] | None]]:
    """Local image assets: name -> (file, (size, mtime) or None when missing)."""
    base = result.path.resolve().parent
    stats: dict[str, tuple[Path, tuple[int, int] | None]] = {}
    for name, image in result.show.assets.images.items():
        if image.file is None:
            continue
        file = base / image.file
        try:
            st = file.stat()
            stats[name] = (file, (st.st_size, st.st_mtime_ns))
        except OSError:
            stats[name] = (file, None)
    return stats
