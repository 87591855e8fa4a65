"""The player's event log: every event goes to the run journal and to the listeners, and the
most recent errors are kept for the status.

Listeners run after the step that made the event (``call_soon`` on the player's loop), never
inside the send path; a listener that fails is logged and the show goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from showrunner.live.clock import Clock
from showrunner.live.journal import RecordWriter

__all__ = ["EventLog", "Listener"]

log = logging.getLogger("showrunner.live.events")

Listener = Callable[[dict[str, Any]], object]
"""Called with each event: the journal record, plus ``text``/``level`` for a readable line and
``at`` (unix time); ``{"kind": "status"}`` when only the status changed."""

_ERRORS = 20


class EventLog:
    """Journals what the player does and tells the listeners (README: "The journal")."""

    def __init__(self, clock: Clock, journal: RecordWriter | None = None) -> None:
        self.clock = clock
        self.journal = journal
        self.errors: collections.deque[str] = collections.deque(maxlen=_ERRORS)
        self._listeners: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"EventLog(journal={self.journal!r}, listeners={len(self._listeners)})"

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run listeners on `loop` from now on, after the step that made each event."""
        self._loop = loop

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(event)` after every journaled event; returns an unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def record(
        self,
        kind: str,
        *,
        planned: float | None = None,
        sent_at: float | None = None,
        label: str | None = None,
        scene: str | None = None,
        message: Mapping[str, Any] | None = None,
        text: str | None = None,
        level: str | None = None,
        **extra: Any,
    ) -> None:
        """Journal one event (`planned` is monotonic, `sent_at` unix time); `text` is its line."""
        record: dict[str, Any] = {
            "planned_at": None if planned is None else self.unix(planned),
            "sent_at": sent_at,
            "scene": scene,
            "kind": kind,
            "label": label,
            "message": None if message is None else dict(message),
        }
        record.update((k, v) for k, v in extra.items() if v is not None)
        if sent_at is None:
            record["at"] = self.clock.time()  # when it happened (a `send` line has its sent_at)
        if self.journal is not None:
            self.journal.write(record)
        if text is not None and kind not in ("send",):
            log.info("%s", text)
        if self._listeners:
            event = dict(record)
            if text is not None:
                event["text"] = text
                event["level"] = level or ("error" if kind == "error" else "info")
            event["at"] = sent_at if sent_at is not None else record["at"]
            self._soon(event)

    def unix(self, monotonic: float) -> float:
        """The unix time of a moment on the clock's monotonic scale (how `planned` is journaled)."""
        return monotonic + self.clock.time() - self.clock.monotonic()

    def error(self, text: str, **fields: Any) -> None:
        """Journal an error (``kind: "error"``) and keep it for the status."""
        log.error("%s", text)
        self.errors.append(text)
        self.record("error", error=text, text=text, level="error", **fields)

    def status_changed(self) -> None:
        """Tell the listeners the status changed without an event of its own."""
        if self._listeners:
            self._soon({"kind": "status"})

    def _soon(self, event: dict[str, Any]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(self._notify, event)
        else:
            self._notify(event)

    def _notify(self, event: dict[str, Any]) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # a broken listener must not break the show
                log.exception("a player listener failed")
