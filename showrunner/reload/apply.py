"""Applying edits while the show plays: load → compile → diff → hand the new plan to the player.

README: "Edit the show while it plays". Each new version (from the watch in watch.py, or a
RELOAD command) is compiled and diffed off the event loop; changed image files are uploaded
again and new LoRAs resolved before the player gets the plan. A version that does not load,
compile or upload is reported and the show plays on unchanged.

The player, the Scope client and the show-file hash are passed in (their packages sit beside
this one), described by the protocols below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from showrunner.errors import ScopeError, ShowError, ShowErrors, ShowrunnerError
from showrunner.plan.compiler import Compiler
from showrunner.plan.diff import PlanDiff, diff_timelines
from showrunner.plan.preflight import compile_result
from showrunner.plan.timeline import Timeline
from showrunner.reload.watch import watch_show
from showrunner.show.load import LoadResult, key_location, load
from showrunner.show.model import Show

__all__ = [
    "PROGRESS_AFTER_S",
    "RELOAD_DEBOUNCE_MS",
    "RELOAD_STEP_MS",
    "AssetServer",
    "HotReload",
    "Output",
    "ReloadTarget",
]

log = logging.getLogger("showrunner.reload.apply")

# The show-file watch picks a change up once the files have been quiet for about a step; its
# thread also wakes every step while nothing happens (about 0.6 % of one core at 10 ms, 0.2 %
# at 25 ms, 0.1 % at 50 ms). 25 ms keeps edit-to-air near 55 ms (README: "Latency") at a cost an
# installation running for weeks can ignore.
RELOAD_STEP_MS = 25
RELOAD_DEBOUNCE_MS = 100
# Work of a reload the status (and so the operator page) shows once it has taken this long.
PROGRESS_AFTER_S = 1.0


class Output(Protocol):
    """Where a run's user-facing lines go (``showrunner.app.StreamOutput``: stdout, stderr)."""

    def say(self, line: str) -> None:
        """A line of progress (stdout)."""

    def warn(self, line: str) -> None:
        """A line about a problem (stderr)."""


class AssetServer(Protocol):
    """What the reload needs of the Scope client (``showrunner.scope.client.ScopeClient``)."""

    async def upload_asset(self, path: Path) -> str: ...

    async def resolve_lora(self, name_or_path: str) -> str: ...


class ReloadTarget(Protocol):
    """What the reload needs of the player (``showrunner.live.player.Player``)."""

    show_hash: str
    reload_hook: Callable[[], Awaitable[object]] | None

    @property
    def plan(self) -> Timeline: ...

    @property
    def assets(self) -> Mapping[str, str]: ...

    @property
    def loras(self) -> Mapping[str, str]: ...

    def replace_timeline(
        self,
        timeline: Timeline,
        *,
        apply: str,
        assets: Mapping[str, str],
        loras: Mapping[str, str],
        refreshed: Sequence[str],
        diff: PlanDiff,
    ) -> object: ...

    def reload_failed(self, errors: Sequence[str]) -> None: ...

    def working(self, what: str | None, progress: float | None = None) -> None: ...


class _Work:
    """What a reload is doing, told to the player once it has taken PROGRESS_AFTER_S (a short
    reload shows nothing), and taken back when it ends."""

    def __init__(self, target: ReloadTarget, since: float) -> None:
        self.target = target
        self.what: tuple[str, float | None] = ("reloading the show", None)
        self.shown = False
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, since + PROGRESS_AFTER_S - loop.time()), self._show)

    def step(self, what: str, progress: float | None) -> None:
        self.what = (what, progress)
        if self.shown:
            self.target.working(what, progress)

    def _show(self) -> None:
        self.shown = True
        self.target.working(*self.what)

    def done(self) -> None:
        self._timer.cancel()
        if self.shown:
            self.target.working(None)


class HotReload:
    """Feeds edits of the show to the player while it plays (README: "Edit the show while it plays").

    Each new version is compiled and diffed off the event loop; changed image files are
    uploaded again and new LoRAs resolved before the player gets the plan. A version that does
    not load, compile or upload is reported and the show plays on unchanged.
    """

    def __init__(
        self,
        client: AssetServer,
        path: Path,
        result: LoadResult,
        reload_at: str | None,
        output: Output,
        hash_files: Callable[[Iterable[Path]], str],
        refuse: Callable[[LoadResult], list[str]] | None = None,
    ) -> None:
        self._player: ReloadTarget | None = None
        # What the run cannot play of a version that loads (one line each; e.g. its transport).
        self.refuse = refuse
        self._ready = asyncio.Event()  # set once the player exists
        self.client = client
        self.path = path
        self.first = result
        self.reload_at = reload_at
        self.output = output
        self.hash_files = hash_files
        self.stop_event = asyncio.Event()
        self._lock = asyncio.Lock()  # one version at a time, in order
        self._task: asyncio.Task[None] | None = None
        self._images = _image_stats(result)  # what was uploaded: asset name -> (file, stat)
        loras = result.show.assets.loras
        self._loras = {name: lora.path or lora.filename for name, lora in loras.items()}
        # Keeps the compiled scenes of the last version: an edit recompiles what it touches.
        self.compiler = Compiler()
        self._work: _Work | None = None  # the status line of a load under way
        self._load_started: float | None = None  # loop time the last load began

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="showrunner-reload")

    def attach(self, player: ReloadTarget) -> None:
        """Edits seen so far (and from now on) go to `player`."""
        self._player = player
        player.reload_hook = self.reload
        self._ready.set()

    @property
    def player(self) -> ReloadTarget:
        assert self._player is not None, "attach() the player first"
        return self._player

    async def stop(self) -> None:
        self.stop_event.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def reload(self) -> None:
        """Load the show now, whatever the watcher saw (the control surface's RELOAD)."""
        self._loading(True)
        try:
            item: LoadResult | ShowErrors = await asyncio.to_thread(load, self.path)  # full load
        except ShowErrors as errors:
            item = errors
        finally:
            self._loading(False)
        await self.apply(item)

    async def _watch(self) -> None:
        try:
            # Compile the version playing once more, off the loop, to fill the compiler's memo.
            await asyncio.to_thread(self.compiler.compile, self.first.show, source=str(self.path))
            async for item in watch_show(
                self.path, stop_event=self.stop_event, initial=self.first,
                debounce_ms=RELOAD_DEBOUNCE_MS, step_ms=RELOAD_STEP_MS, loading=self._loading,
            ):
                await self.apply(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # the watch is a convenience: losing it must not end the show
            log.exception("watching the show file failed; edits are no longer applied")
            self.output.warn("Hot reload stopped after an internal error; restart to apply edits")

    def _loading(self, started: bool) -> None:
        """A load begins (shown once it takes long) or ends; apply() goes on from its start."""
        if self._work is not None:
            self._work.done()
            self._work = None
        if started:
            self._load_started = asyncio.get_running_loop().time()
            if self._player is not None:
                self._work = _Work(self._player, self._load_started)

    async def apply(self, item: LoadResult | ShowErrors) -> None:
        await self._ready.wait()
        async with self._lock:
            since, self._load_started = self._load_started, None
            self._loading(False)
            work = _Work(self.player, asyncio.get_running_loop().time() if since is None else since)
            try:
                await self._apply(item, work)
            finally:
                work.done()

    async def _apply(self, item: LoadResult | ShowErrors, work: _Work) -> None:
        if isinstance(item, ShowErrors):
            self._failed([e.format() for e in item.errors])
            return
        if self.refuse is not None and (refused := self.refuse(item)):
            self._failed(refused)
            return
        try:
            timeline = await asyncio.to_thread(compile_result, item, self.compiler)
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
            assets, loras, refreshed = await self._refs(item, work)
        except ScopeError as exc:
            self._failed([f"{self.path}: assets: {exc}"])
            return
        for line in read_at_start(self.player.plan.show, item):
            self.output.warn(line)
        diff = await asyncio.to_thread(diff_timelines, self.player.plan, timeline)
        self.player.show_hash = self.hash_files(item.files)
        apply = self.reload_at or item.show.reload_at
        self.player.replace_timeline(
            timeline, apply=apply, assets=assets, loras=loras, refreshed=refreshed, diff=diff
        )
        lines = diff.summary().splitlines() if not diff.empty else ["no change to the plan"]
        lines += [f"image {name!r} uploaded again" for name in refreshed]
        for line in lines:
            self.output.say(f"reload: {line}")

    def _failed(self, lines: list[str]) -> None:
        self.player.reload_failed(lines)
        self.output.warn("reload failed, the show plays on unchanged:")
        for line in lines:
            self.output.warn(f"  {line}")

    async def _refs(
        self, result: LoadResult, work: _Work
    ) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """Server paths of the new version's assets: changed image files are uploaded again."""
        assets, loras = dict(self.player.assets), dict(self.player.loras)
        refreshed: list[str] = []
        stats = await asyncio.to_thread(_image_stats, result)
        images = result.show.assets.images
        for done, (name, image) in enumerate(images.items()):
            if image.server_path is not None:
                assets[name] = image.server_path
                continue
            file, stat = stats[name]
            if self._images.get(name) != (file, stat) or name not in assets:
                work.step(f"uploading image {name!r}", done / len(images))
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


# What a run reads once, when it starts (the tempo source, the MIDI device, the Scope server and
# its transport, the outage delay): an edit of it applies at the next run.
_READ_AT_START: tuple[tuple[str, Callable[[Show], object]], ...] = (
    ("tempo", lambda show: show.tempo),
    ("midi", lambda show: show.midi),
    ("scope", lambda show: show.scope),
    ("alerts.after", lambda show: show.alerts.after),
)


def read_at_start(old: Show, new: LoadResult) -> list[str]:
    """One positioned line for each setting read at the start of a run that `new` changes."""
    lines = []
    for name, read in _READ_AT_START:
        if read(old) != read(new.show):
            path, line, col = key_location(new, tuple(name.split(".")))
            lines.append(f"{path}:{line}:{col}: {name}: read when the run starts: "
                         "the edit applies at the next run")
    return lines


def _image_stats(result: LoadResult) -> dict[str, tuple[Path, tuple[int, int] | None]]:
    """Local image assets: name -> (file, (size, mtime) or None when missing)."""
    base = result.path.absolute().parent  # where the load checked them (even for a linked show)
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
