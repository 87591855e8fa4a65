"""The run journal: one JSON object per line for everything the player did, flushed at once.

A line is on disk when :meth:`Journal.write` returns, so a crash loses nothing already
played. The fields are described in README ("The journal"); the core ones are ``planned_at`` and
``sent_at`` (unix seconds), ``scene``, ``kind``, ``label`` and ``message`` (the exact dict
that went to Scope).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

__all__ = ["KINDS", "Journal", "RecordWriter", "read_journal"]

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


class Journal:
    """Appends JSON lines to `path` (or a stream); a context manager that closes the file."""

    def __init__(self, path: Path | None = None, *, stream: IO[str] | None = None) -> None:
        if (path is None) == (stream is None):
            raise ValueError("give a journal path or a stream")
        self.path = Path(path) if path is not None else None
        self._owned = path is not None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
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
            self._file.write(line + "\n")
            self._file.flush()
            self.lines += 1
        except (OSError, ValueError, TypeError) as exc:
            log.error("cannot write the journal %s: %s", self.path or "<stream>", exc)

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
