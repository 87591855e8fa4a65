"""Hot reload: watch a show's files while it plays and hand back each new version, or its errors.

Rehearsal means editing the show file while it plays, so a typo must never stop the picture: a
bad edit is *yielded* as a `ShowErrors` value (never raised) and the player keeps the plan it
has. The watcher follows what the show really reads — the show file, its includes and its local
asset files (`LoadResult.files`, recomputed after each good load) — and watches their *parent
folders*, because most editors save by writing a temporary file and renaming it over the
original, which a watch on the file itself would lose.

watchfiles is used only here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watchfiles

from showrunner.errors import ShowError, ShowErrors
from showrunner.show.load import LoadResult, load

log = logging.getLogger(__name__)

Change = tuple[Any, str]  # (watchfiles.Change, path)
_Stats = dict[Path, "tuple[int, int, int] | None"]

# Editors' swap, backup, lock and temporary files: never a reason to reload.
_JUNK = re.compile(
    r"""(
        \.sw[a-z]$              # vim swap files (.swp, .swo, .swx, …)
      | ~$                      # backup copies (vim, emacs, gedit)
      | ^\.\#                   # emacs lock links
      | ^\#.*\#$                # emacs auto-save
      | ^\d+$                   # vim's write test file (4913, 5036, …)
      | \.(tmp|temp|bak|part|crdownload)$
      | \.tmp[.\w-]*$           # atomic-save temporaries (show.yaml.tmp.1234)
      | \.kate-swp$             # kate
      | ___jb_(tmp|old)___$     # JetBrains safe write
      | ^\.goutputstream-       # gedit
      | ^\.~lock\.              # LibreOffice
      | ^\.DS_Store$ | ^\._     # macOS metadata
    )""",
    re.VERBOSE,
)
# After a failed load the file set is unknown (a new include may not exist yet), so any file of
# these kinds appearing in a watched folder counts; logs, journals and state files do not.
_SHOW_LIKE = frozenset({".yaml", ".yml", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
_TEXT_SUFFIXES = (".yaml", ".yml")  # read by the loader: their content is in the model

_MISSING_GRACE_S = 0.3  # how long a watched file may be absent mid-save before loading anyway
_MISSING_POLL_S = 0.005
_ERROR_GRACE_S = 0.1  # a failed load waits this long for a save still in progress
_MAX_DEFER_S = 0.25  # saves that keep coming postpone a result by at most this long
_POLL_S = 1.0  # idle wake-up: re-arm the watch of a folder that disappeared and came back


def _is_junk(path: str) -> bool:
    return bool(_JUNK.search(os.path.basename(path)))


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def _relevant(
    changes: Iterable[Change],
    watched_paths: Collection[str | os.PathLike[str]],
    *,
    open_dirs: Collection[str | os.PathLike[str]] = (),
) -> bool:
    """True when a batch of file changes calls for a reload.

    A change counts when it names one of `watched_paths` (whatever its name looks like), or —
    only in the folders listed in `open_dirs`, used while the last load failed — when it names
    a show-like file (YAML or image) that is not an editor's swap, backup or temporary file.
    """
    watched = {_norm(p) for p in watched_paths}
    dirs = {_norm(d) for d in open_dirs}
    for _change, raw in changes:
        path = _norm(raw)
        if path in watched:
            return True
        if (
            dirs
            and os.path.dirname(path) in dirs
            and not _is_junk(path)
            and os.path.splitext(path)[1].lower() in _SHOW_LIKE
        ):
            return True
    return False


@dataclass(frozen=True)
class _WatchSet:
    """What to watch after a load: the files (in every spelling events may use) and folders."""

    files: tuple[Path, ...]  # as the loader named them (absolute): existence checks
    paths: frozenset[str]  # normalised spellings matched against events
    dirs: frozenset[str]  # parent folders handed to watchfiles
    after_error: bool

    @classmethod
    def of(cls, files: Iterable[Path], *, after_error: bool) -> _WatchSet:
        listed = tuple(dict.fromkeys(Path(_norm(f)) for f in files))
        paths: set[str] = set()
        dirs: set[str] = set()
        for file in listed:
            # A symlinked show or folder reports its events under the real folder's name.
            real_parent = os.path.realpath(file.parent)
            real_file = os.path.realpath(file)
            paths.update(_norm(p) for p in (file, os.path.join(real_parent, file.name), real_file))
            dirs.update((real_parent, os.path.dirname(real_file)))
        return cls(listed, frozenset(paths), frozenset(dirs), after_error)

    def relevant(self, changes: Iterable[Change]) -> bool:
        return _relevant(changes, self.paths, open_dirs=self.dirs if self.after_error else ())


def _next_watch_set(
    show: Path, result: LoadResult | ShowErrors, previous: _WatchSet | None
) -> _WatchSet:
    if isinstance(result, LoadResult):
        return _WatchSet.of([show, *result.files], after_error=False)
    # Keep watching what the last good load used, plus whatever the errors point at.
    named = [Path(e.path) for e in result.errors if e.path and not e.path.startswith("<")]
    kept = previous.files if previous is not None else ()
    return _WatchSet.of([show, *kept, *named], after_error=True)


class _StopFlag:
    """Stops a watch when the caller's event (or a parent flag) is set, or the watch ends.

    watchfiles sets the event it is given when it is cancelled; a private flag keeps that from
    touching the caller's event.
    """

    def __init__(self, outer: asyncio.Event | None, *, parent: _StopFlag | None = None) -> None:
        self._outer = outer
        self._parent = parent
        self._set = False

    def is_set(self) -> bool:
        return (
            self._set
            or (self._outer is not None and self._outer.is_set())
            or (self._parent is not None and self._parent.is_set())
        )

    def set(self) -> None:
        self._set = True


# ---------------------------------------------------------------------------------------------
# Loading (in a worker thread)
# ---------------------------------------------------------------------------------------------


def _load_quietly(
    path: str | os.PathLike[str], previous: LoadResult | None = None
) -> LoadResult | ShowErrors:
    """Load (error lines name the show as the caller spelled it); failures become values.

    `previous` (the last good load) lets unchanged scenes be re-used (show.load.load)."""
    try:
        return load(os.fspath(path), previous=previous)
    except ShowErrors as errors:
        return errors
    except ShowError as error:
        return ShowErrors([error])
    except OSError as exc:
        message = f"cannot read the show: {exc.strerror or exc}"
        return ShowErrors([ShowError(message, path=os.fspath(path))])
    except Exception as exc:
        log.exception("loading %s failed unexpectedly", path)
        message = f"could not load the show ({type(exc).__name__}: {exc})"
        return ShowErrors([ShowError(message, path=os.fspath(path))])


def _stats(files: Iterable[Path]) -> _Stats:
    """Size, mtime and inode per file (None when missing): a cheap "did it change" check."""
    stats: _Stats = {}
    for file in files:
        try:
            st = os.stat(file)
            stats[file] = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            stats[file] = None
    return stats


def _load_and_stat(
    path: str | os.PathLike[str], show_path: Path, known: Iterable[Path],
    previous: LoadResult | None = None,
) -> tuple[LoadResult | ShowErrors, _Stats, bool]:
    """Load, then stat every file the load used (change detection and the fingerprint).

    The third value is True when one of the `known` files changed while it was being read:
    the result is already out of date.
    """
    before = _stats(known)
    result = _load_quietly(path, previous)
    files = [show_path]
    if isinstance(result, LoadResult):
        files = [Path(_norm(f)) for f in result.files]
    seen = _stats(files)
    moved = any(seen.get(f, before[f]) != before[f] for f in before)
    return result, seen, moved


def _assets(result: LoadResult | ShowErrors) -> list[Path]:
    """Files whose content the loader does not read (images): compared by size and mtime."""
    if isinstance(result, ShowErrors):
        return []
    return [
        Path(_norm(f))
        for f in result.files
        if _norm(f) != _norm(result.path) and Path(f).suffix.lower() not in _TEXT_SUFFIXES
    ]


def _fingerprint(item: LoadResult | ShowErrors, stats: _Stats) -> tuple[object, ...]:
    """Equal fingerprints mean the consumer would get nothing new (a save without changes).

    A good load compares by its model and file list, plus the asset files' size and mtime
    (assets are uploaded, so a new image must reach the player although the show is the same);
    a failed load compares by its error lines.
    """
    if isinstance(item, ShowErrors):
        return ("errors", str(item))
    assets = tuple((str(f), stats.get(f)) for f in _assets(item))
    return ("show", item.show, _norm(item.path), tuple(_norm(f) for f in item.files), assets)


async def _settle(files: Iterable[Path], stop: _StopFlag) -> None:
    """Give a save that deletes then re-creates a file a moment to finish before loading."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _MISSING_GRACE_S
    while not stop.is_set() and loop.time() < deadline:
        if all(f.exists() for f in files):
            return
        await asyncio.sleep(_MISSING_POLL_S)


# ---------------------------------------------------------------------------------------------
# Watching
# ---------------------------------------------------------------------------------------------


class _Watchers:
    """One watchfiles watch over every folder in use, feeding a queue of change batches.

    One watch means one polling thread however many folders the show uses. When the folders
    change (an include added or removed) the new watch is armed before the old one stops, so
    no save falls in between (a change seen by both is merged like any other).
    """

    def __init__(self, stop: _StopFlag, debounce_ms: int, step_ms: int) -> None:
        self._stop = stop
        self._debounce_ms = debounce_ms
        self._step_ms = step_ms
        self._dirs: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._flag: _StopFlag | None = None
        self._queue: asyncio.Queue[set[Change] | None] = asyncio.Queue()

    async def ensure(self, dirs: Iterable[str]) -> bool:
        """Watch exactly the folders of `dirs` that exist; True when a new watch started."""
        wanted = frozenset(d for d in dirs if os.path.isdir(d))
        running = self._task is not None and not self._task.done()
        if wanted == self._dirs and running:
            return False
        old_task, old_flag = self._task, self._flag
        self._dirs, self._task, self._flag = wanted, None, None
        if wanted:
            self._flag = _StopFlag(None, parent=self._stop)
            self._task = asyncio.create_task(
                self._watch(sorted(wanted), self._flag), name="watch show files"
            )
            # Let the new task run up to its first wait: by then its watch is armed.
            await asyncio.sleep(0)
        if old_task is not None and old_flag is not None:
            old_flag.set()
            old_task.cancel()
        return bool(wanted)

    async def _watch(self, folders: list[str], flag: _StopFlag) -> None:
        try:
            async for changes in watchfiles.awatch(
                *folders,
                stop_event=flag,  # any object with is_set()/set()
                debounce=self._debounce_ms,
                step=self._step_ms,
                recursive=False,
                watch_filter=None,  # _relevant() is the one filter
            ):
                self._queue.put_nowait(changes)
        except OSError as exc:
            # A folder vanished (a checkout, a rename); ensure() starts again when asked.
            log.info("stopped watching %s: %s", ", ".join(folders), exc)
        finally:
            self._queue.put_nowait(None)

    async def next_batch(self, timeout: float) -> set[Change] | None:
        """Every change that arrived, merged; None after `timeout` or when a watch ended."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        batch: set[Change] = set(first or ())
        ended = first is None
        while not self._queue.empty():
            more = self._queue.get_nowait()
            ended = ended or more is None
            batch.update(more or ())
        return batch if batch or not ended else None

    def pending(self) -> set[Change]:
        """The changes already queued, merged, without waiting."""
        batch: set[Change] = set()
        while not self._queue.empty():
            batch.update(self._queue.get_nowait() or ())
        return batch

    async def close(self) -> None:
        task, flag = self._task, self._flag
        self._task = self._flag = None
        if task is not None and flag is not None:
            flag.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class _ShowWatcher:
    """The state of one `watch_show`: what is watched, the last result handed over, and why
    the next load is due."""

    def __init__(
        self, path: str | os.PathLike[str], stop: _StopFlag, debounce_ms: int, step_ms: int,
        loading: Callable[[bool], object] | None = None,
    ) -> None:
        self.loading = loading
        self.path = path  # as the caller spelled it: error lines name the show that way
        self.show_path = Path(_norm(path))
        self.stop = stop
        self.watchers = _Watchers(stop, debounce_ms, step_ms)
        self.watch_set = _WatchSet.of([self.show_path], after_error=True)
        self.last: tuple[object, ...] | None = None  # fingerprint of what the caller has
        self.dirty = True  # a load is due without waiting for a change
        self.burst_since: float | None = None  # first load of a run of superseded loads
        self.good: LoadResult | None = None  # the last good load: its scenes are re-used

    async def start(self, initial: LoadResult | ShowErrors | None) -> None:
        # Arm the watches before loading, so that an edit made meanwhile is seen, not lost;
        # the first load is then the silent baseline, or catches up with `initial`.
        if initial is not None:
            if isinstance(initial, LoadResult):
                self.good = initial
            self.watch_set = _next_watch_set(self.show_path, initial, None)
            stats = await asyncio.to_thread(_stats, _assets(initial))
            self.last = _fingerprint(initial, stats)
        await self.watchers.ensure(self.watch_set.dirs)

    async def next_item(self) -> LoadResult | ShowErrors | None:
        """One round: wait for a relevant change, load, and return what to yield (or None)."""
        if not self.dirty and not await self._changed():
            return None
        self.dirty = False
        await _settle(self.watch_set.files, self.stop)
        if self.stop.is_set():
            return None
        if self.loading is not None:
            self.loading(True)
        try:
            result, seen, moved = await asyncio.to_thread(
                _load_and_stat, self.path, self.show_path, self.watch_set.files, self.good
            )
        finally:
            if self.loading is not None:
                self.loading(False)
        if isinstance(result, LoadResult):
            self.good = result
        self.watch_set = _next_watch_set(self.show_path, result, self.watch_set)
        if await self.watchers.ensure(self.watch_set.dirs):
            # Files in a newly watched folder may have changed before its watch was armed.
            self.dirty = await asyncio.to_thread(_stats, seen) != seen
        if self.dirty or self._superseded(moved):
            self.dirty = True
            return None
        self.burst_since = None
        fingerprint = _fingerprint(result, seen)
        if self.last is None:
            self.last = fingerprint
            return None
        if fingerprint == self.last:
            return None
        if isinstance(result, ShowErrors) and await self._still_saving():
            self.dirty = True
            return None
        self.last = fingerprint
        return result

    async def _changed(self) -> bool:
        batch = await self.watchers.next_batch(_POLL_S)
        if batch is None:
            if not self.stop.is_set():
                await self.watchers.ensure(self.watch_set.dirs)  # a folder may have come back
            return False
        return self.watch_set.relevant(batch)

    def _superseded(self, moved: bool) -> bool:
        """True when a save landed during the load: load again rather than hand over a version
        that is already gone — for a bounded time, so a file rewritten nonstop still shows."""
        now = asyncio.get_running_loop().time()
        if self.burst_since is not None and now - self.burst_since >= _MAX_DEFER_S:
            return False
        pending = self.watchers.pending()
        if moved or (pending and self.watch_set.relevant(pending)):
            self.burst_since = now if self.burst_since is None else self.burst_since
            return True
        return False

    async def _still_saving(self) -> bool:
        """An in-place save truncates, then writes: a load in between sees half a file.
        Errors are not urgent (the show plays on), so wait a moment for the rest of it."""
        batch = await self.watchers.next_batch(_ERROR_GRACE_S)
        return batch is not None and self.watch_set.relevant(batch)


async def watch_show(
    path: str | os.PathLike[str],
    *,
    stop_event: asyncio.Event | None = None,
    debounce_ms: int = 30,
    step_ms: int = 10,
    initial: LoadResult | ShowErrors | None = None,
    loading: Callable[[bool], object] | None = None,
) -> AsyncIterator[LoadResult | ShowErrors]:
    """Yield a new `LoadResult` after each edit of the show, or the `ShowErrors` of a bad edit.

    Watches the show file, its includes and its local asset files. A burst of saves less than
    `step_ms` apart (grouped for at most `debounce_ms`) becomes one load, and saves made while
    a load runs or while the caller handles a result are merged into the next one; loading runs
    in a worker thread. A save that changes nothing the show plays yields nothing.

    `initial` is the load the caller is playing: the baseline, and if the files changed since
    it was made the new version is yielded at once. Without it the show is loaded once first,
    silently. Never raises for a bad file. Ends when `stop_event` is set. `loading(True)` and
    `loading(False)` are called around each load (a big show's load can take a second).
    """
    stop = _StopFlag(stop_event)
    watcher = _ShowWatcher(path, stop, debounce_ms, step_ms, loading)
    try:
        await watcher.start(initial)
        while not stop.is_set():
            item = await watcher.next_item()
            if item is not None:
                yield item
    finally:
        stop.set()
        await watcher.watchers.close()
