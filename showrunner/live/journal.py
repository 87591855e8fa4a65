"""The run journal: one JSON object per line for everything the player did, flushed at once.

A line is on disk when :meth:`Journal.write` returns, so a crash loses nothing already
played. A `Rotation` keeps a journal that runs for months bounded: by size, by day, or both,
the file is renamed ``NAME.1`` (the older ones shift to ``NAME.2`` …) and a new one begun, and
only the newest `keep` old files are kept.

The fields are described in docs/operating.md ("The journal"); the core ones are ``planned_at``
and ``sent_at`` (unix seconds), ``scene``, ``kind``, ``label`` and ``message`` (the exact dict
that went to Scope).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

__all__ = ["KINDS", "Journal", "RecordWriter", "Rotation", "parse_size", "read_journal"]

log = logging.getLogger("showrunner.live.journal")

KINDS = frozenset(
    {
        "start",  # the run began (show, Scope URL, start position)
        "scene",  # a scene occurrence became live
        "session",  # the first session opened (initialParameters in `message`)
        "switch",  # a pipeline switch (close, load, reconnect) for a scene or jump with another setup
        "send",  # one data-channel message (with `items` when it carries several merged updates)
        "lost",  # a message written but never acknowledged before its connection closed
        "cue",  # a cue fired (GO or a named cue)
        "operator",  # an operator command (go, back, goto, hold, panic, resume, quit)
        "hold",  # timed progression stopped (operator hold/panic, or closed hours)
        "resume",  # timed progression continued
        "closed",  # opening hours: closed
        "hook",  # a lifecycle hook ran (`name`, `ok`, its output or HTTP status)
        "outage",  # no picture while the show should play, for `alerts.after` seconds
        "recovered",  # the picture is back after an outage
        "alert",  # an outage or recovery message posted to the webhook
        "midi",  # the MIDI device found, lost or not openable
        "open",  # opening hours: open again
        "watchdog",  # the watchdog found a problem with the session
        "reconnect",  # a reconnection attempt (ok or failed)
        "error",  # something failed and was skipped; the show went on
        "reload",  # an edit of the show file was applied (docs/operating.md: "Journal lines")
        "reload_error",  # an edit of the show file was refused for its errors; the show played on
        "end",  # the show reached its end (stop or hold)
        "quit",  # the run ended
    }
)


class RecordWriter(Protocol):
    """Where the player's records go: a `Journal`, or ``showrunner.testing.MemoryJournal``."""

    def write(self, record: Mapping[str, Any]) -> None: ...


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3,
          "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``50MB``, ``500k``, ``1GiB`` or ``1048576`` (k, M, G: powers of 1000; KiB,
    MiB, GiB: of 1024). ValueError, with the accepted forms, for anything else."""
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: write bytes or a number with kB, MB, GB "
                         "(or KiB, MiB, GiB), such as 50MB")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{text!r}: the size must be at least one byte")
    return size


@dataclass(frozen=True)
class Rotation:
    """When the journal file starts afresh: over `max_bytes`, at a new day (`daily`), or both;
    `keep` old files are kept (``NAME.1`` the newest)."""

    max_bytes: int | None = None
    daily: bool = False
    keep: int = 10

    def __post_init__(self) -> None:
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self.keep < 0:
            raise ValueError("keep must be 0 or more")


class Journal:
    """Appends JSON lines to `path` (or a stream); a context manager that closes the file.

    With a `rotation` (a path only), the file is rotated before a line that would take it over
    `rotation.max_bytes`, and before the first line of a new day by `today` (the run's clock).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        stream: IO[str] | None = None,
        rotation: Rotation | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        if (path is None) == (stream is None):
            raise ValueError("give a journal path or a stream")
        if rotation is not None and path is None:
            raise ValueError("only a journal file rotates")
        self.path = Path(path) if path is not None else None
        self._owned = path is not None
        self.rotation = rotation
        self._today = today
        self._size = 0
        self._day: date | None = None
        self.rotations = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
            self._size = self._file.tell()
            self._day = self._started_day(self.path)
        else:
            self._file = stream
        self.lines = 0

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "<stream>"
        return f"Journal({where!r}, lines={self.lines})"

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record as a line and flush it. Never raises: a full disk must not stop the show."""
        if self._file is None:
            return
        try:
            line = json.dumps(
                {k: _finite(v) for k, v in record.items()},
                ensure_ascii=False,
                separators=(", ", ": "),
                default=str,
            )
            data = line + "\n"
            if self.rotation is not None:
                self._rotate_if_due(len(data.encode("utf-8")))
            file = self._file
            assert file is not None  # a failed rotation raises OSError
            file.write(data)
            file.flush()
            self._size += len(data.encode("utf-8")) if self.rotation is not None else 0
            self.lines += 1
        except (OSError, ValueError, TypeError) as exc:
            log.error("cannot write the journal %s: %s", self.path or "<stream>", exc)

    def _started_day(self, path: Path) -> date:
        """The day the current file began: today for a new or empty one, else the day of its
        last change (a journal continued after a restart rotates if that was before today)."""
        with contextlib.suppress(OSError):
            if self._size > 0:
                return date.fromtimestamp(path.stat().st_mtime)
        return self._today()

    def _rotate_if_due(self, adding: int) -> None:
        rotation = self.rotation
        assert rotation is not None and self.path is not None
        today = self._today()
        new_day = rotation.daily and self._day is not None and today != self._day
        too_big = rotation.max_bytes is not None and self._size > 0 and (
            self._size + adding > rotation.max_bytes)
        if self._size > 0 and (new_day or too_big):
            self._rotate()
        self._day = today

    def _rotate(self) -> None:
        """NAME → NAME.1, NAME.1 → NAME.2, …; the one past `keep` is removed; a new NAME."""
        assert self.rotation is not None and self.path is not None and self._file is not None
        self._file.close()
        self._file = None
        keep, path = self.rotation.keep, self.path
        old = path.with_name(f"{path.name}.{keep}") if keep else path
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
        for number in range(keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                path.with_name(f"{path.name}.{number}").rename(
                    path.with_name(f"{path.name}.{number + 1}"))
        if keep:
            path.rename(path.with_name(f"{path.name}.1"))
        self._file = path.open("a", encoding="utf-8")
        self._size = 0
        self.rotations += 1

    def close(self) -> None:
        """Close the file (a stream given by the caller stays open)."""
        file, self._file = self._file, None
        if file is not None and self._owned:
            try:
                file.close()
            except OSError as exc:
                log.error("cannot close the journal %s: %s", self.path, exc)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every record of a journal file (a torn last line, from a crash, is skipped)."""
    return list(_records(Path(path)))


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s:%d: skipping a torn journal line", path, number)
                continue
            if isinstance(record, dict):
                yield record
