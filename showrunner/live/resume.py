"""The state file that lets a restarted run pick the show up where the wall clock says it is.

Written at every scene start, atomically (temp file, fsync, ``os.replace``, then an fsync of
the folder), so a power cut leaves either the old or the new file, never half of one. It
holds only what is needed to find the position again: which show (path and content hash),
when the show and the current part started (unix time), and which occurrence was playing.

Only a state file is ever replaced or removed: the path must be absent or hold a showrunner
state file already (a regular file, read with a byte limit). Anything else there (notes, a
device, a FIFO, a folder, a symlink) is refused before the show starts (`state_file_problem`)
and left alone by every write and by the clearing at the end of a show.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from showrunner.plan.saved import ResumeState
from showrunner.show.files import FileProblem, ReadPolicy, file_kind, read_bytes

__all__ = [
    "MAX_STATE_BYTES",
    "STATE_FILE_SUFFIX",
    "ResumeState",
    "StateWriter",
    "clear_state",
    "default_state_path",
    "read_state",
    "show_hash",
    "state_file_problem",
    "write_state",
]

log = logging.getLogger("showrunner.live.resume")

STATE_FILE_SUFFIX = ".showrunner-state.json"
# A state file is a few hundred bytes; a file past this is something else.
MAX_STATE_BYTES = 64 * 1024


def show_hash(files: Iterable[Path]) -> str:
    """A content hash of the show file and its includes (a changed show does not resume)."""
    digest = hashlib.sha256()
    for path in files:
        path = Path(path)
        digest.update(str(path.name).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def default_state_path(show_path: Path) -> Path:
    """The state file of one show: ``.NAME.showrunner-state.json`` beside it."""
    path = Path(show_path).resolve()
    return path.with_name(f".{path.stem}{STATE_FILE_SUFFIX}")


def _is_state(data: bytes) -> bool:
    """Whether `data` is a showrunner state file (of any version)."""
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and "version" in body and "show" in body and "show_hash" in body


def _read(path: Path) -> bytes | str:
    """The content of the regular file `path` (at most MAX_STATE_BYTES), or why it cannot be
    read; FileNotFoundError when nothing is there."""
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        return f"{path} is {file_kind(mode)}, not a state file"
    try:
        return read_bytes(path, ReadPolicy(limit=MAX_STATE_BYTES))
    except FileProblem as problem:
        if problem.message == "file not found":
            raise FileNotFoundError(path) from None
        if problem.message.startswith("file is too large"):
            return f"{path} is too large (over {MAX_STATE_BYTES // 1024} KiB) for a state file"
        return f"{path}: {problem.message}"


def state_file_problem(path: Path) -> str | None:
    """None when `path` may hold the state file (nothing is there, or a showrunner state file
    is); else one line saying why not. Checked before the show starts."""
    path = Path(path)
    try:
        data = _read(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot check the state file {path}: {(exc.strerror or str(exc)).lower()}"
    if isinstance(data, str):
        return f"{data}; choose another --state-file"
    if not _is_state(data):
        return (f"{path} is not a showrunner state file; it is left alone: choose another "
                "--state-file (or remove the file)")
    return None


def write_state(path: Path, state: ResumeState) -> None:
    """Replace the state file atomically; logs (never raises) on failure: the show goes on.

    Nothing but a state file is ever replaced (`state_file_problem`)."""
    path = Path(path)
    problem = state_file_problem(path)
    if problem is not None:
        log.error("not writing the state file: %s", problem)
        return
    text = json.dumps(state.to_json(), indent=2)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        log.error("cannot write the state file %s: %s", path, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a folder be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StateWriter:
    """Writes the state file in order on one worker thread, off the event loop (each write
    ends with an fsync, too slow for the loop that sends the show)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._last: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"StateWriter({str(self.path)!r})"

    def write(self, state: ResumeState) -> None:
        """Queue `state` for writing (written at once when no event loop runs)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            write_state(self.path, state)
            return
        if self._worker is None:
            self._worker = concurrent.futures.ThreadPoolExecutor(1, "showrunner-state")
        self._last = loop.run_in_executor(self._worker, write_state, self.path, state)

    async def close(self, *, clear: bool = False) -> None:
        """Wait for the queued writes; with `clear`, then remove the file (a finished show
        starts from the top next time)."""
        if self._last is not None:
            await asyncio.gather(self._last, return_exceptions=True)
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        if clear:
            clear_state(self.path)


def read_state(path: Path) -> ResumeState | None:
    """The saved state, or None when there is none or it cannot be read (logged)."""
    path = Path(path)
    try:
        content = _read(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring the state file %s: %s", path, exc)
        return None
    if isinstance(content, str):
        log.warning("ignoring the state file: %s", content)
        return None
    try:
        data = json.loads(content)
    except ValueError as exc:
        log.warning("ignoring the state file %s: %s", path, exc)
        return None
    try:
        return ResumeState.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring the state file %s: %s", path, exc)
        return None


def clear_state(path: Path) -> None:
    """Remove the state file (after a finished show, so the next run starts from the top);
    whatever else is at `path` stays."""
    problem = state_file_problem(path)
    if problem is not None:
        log.error("not removing the state file: %s", problem)
        return
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("cannot remove the state file %s: %s", path, exc)
