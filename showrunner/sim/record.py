"""The recorder: every HTTP request and data-channel message, in memory and as JSON lines."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


class Recorder:
    """Appends records to `records` and, with a path, writes and flushes one JSON line each.

    With `keep=False` nothing stays in memory (`records` stays empty): a simulator that runs
    for days would otherwise grow by every request and message; the file still gets them all.
    """

    def __init__(self, path: Path | None = None, *, keep: bool = True) -> None:
        self.records: list[dict[str, Any]] = []
        self.path = path
        self.keep = keep
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")

    def add(self, record: dict[str, Any]) -> None:
        """Store one record; it is on disk when this returns."""
        with self._lock:
            if self.keep:
                self.records.append(record)
            if self._file is not None:
                try:
                    self._file.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
                    self._file.flush()
                except (OSError, ValueError) as exc:
                    log.error("cannot write record file %s: %s", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
