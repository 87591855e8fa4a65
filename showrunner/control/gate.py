"""Operator commands: one gate in front of the player, shared by HTTP, OSC, the page and keys.

Every way an operator can press GO ends up here, so the rules that make GO trustworthy live
in one place:

* **Debounce.** Two GOs closer than ``min_go_interval`` seconds are one press (a bouncing
  button, a double click, an OSC fader that sends twice): the second does nothing.
* **Idempotence.** A command may carry an id. A retry with an id that was already applied
  does nothing, so a client that lost the answer can safely send again.
* **Journal.** Every operator action is written down with its source (``http``, ``osc``,
  ``page``, ``keyboard``, ``midi``), whether it was applied, and why not.

The player's methods may be plain functions or coroutines; both are accepted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from showrunner.errors import CueError, ShowrunnerError, UnknownSceneError

log = logging.getLogger(__name__)

Source = Literal["http", "osc", "page", "keyboard", "midi"]
SOURCES: tuple[Source, ...] = ("http", "osc", "page", "keyboard", "midi")

#: Commands an operator may send, and whether each takes a scene name.
COMMANDS: Mapping[str, bool] = {
    "go": False,
    "cue": True,
    "back": False,
    "goto": True,
    "hold": False,
    "resume": False,
    "panic": False,
    "reload": False,
    "quit": False,
}

# Why a command was not applied. Each maps to one HTTP status in `control`.
DEBOUNCED = "debounced"
DUPLICATE = "duplicate"
UNKNOWN_SCENE = "unknown scene"
REFUSED = "refused"
NOT_SUPPORTED = "not supported"
NOT_READY = "not ready"
FAILED = "failed"
TOO_LONG = "too long"
PENDING = "pending"  # the player took the command but has not answered yet

#: Longest scene or cue name and command id taken from the network (longer ones are refused
#: before they reach the player, the journal or the id memory).
MAX_NAME = 200
MAX_ID = 128
#: How long a command waits for the player's answer before it is answered "queued".
ANSWER_WAIT = 5.0


class Status(Protocol):
    """The player's status as the control surfaces read it (`showrunner.live.status.PlayerStatus`).

    `to_json` is what the HTTP API and the event stream send (README: "Status").
    """

    @property
    def title(self) -> str | None: ...
    @property
    def scene(self) -> str | None: ...
    @property
    def next(self) -> str | None: ...
    @property
    def waiting_for(self) -> str | None: ...
    @property
    def countdown(self) -> float | None: ...
    @property
    def position(self) -> float | None: ...
    @property
    def mode(self) -> str | None: ...
    @property
    def held(self) -> bool: ...
    @property
    def connection(self) -> str: ...
    @property
    def scenes(self) -> Sequence[str]: ...
    @property
    def errors(self) -> Sequence[str]: ...
    @property
    def reload_errors(self) -> Sequence[str]: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NoShow:
    """The status while no player is attached: the player's shape, empty, connection "waiting"."""

    title: str | None = None
    scene: str | None = None
    scene_index: int | None = None
    iteration: int | None = None
    next: str | None = None
    waiting_for: str | None = None
    countdown: float | None = None
    position: float | None = None
    mode: str | None = None
    held: bool = False
    closed: bool = False
    connection: str = "waiting"
    scenes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    reload_errors: tuple[str, ...] = ()
    on_air: str | None = None
    armed: str | None = None
    remaining: float | None = None
    show_clock: float | None = None
    notice: str | None = None
    switching: str | None = None
    switch_estimate: float | None = None
    hours: str | None = None
    scope_url: str | None = None
    cues: tuple[str, ...] = ()
    plan: int = 0
    working: str | None = None
    work_progress: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class Controllable(Protocol):
    """What the control surfaces need from a player. Any method may return an awaitable.

    A player that cannot do a command raises NotImplementedError from it (answered "not
    supported"); one that refuses it now raises CueError ("refused"), or UnknownSceneError
    ("unknown scene" for a GOTO, "refused" for a BACK with nothing to go back to).
    """

    @property
    def journal(self) -> OperatorJournal | None:
        """The player's run journal; operator lines go there too when the gate has none."""
        ...

    def go(self) -> object: ...
    def cue(self, name: str) -> object: ...
    def back(self) -> object: ...
    def goto(self, name: str) -> object: ...
    def hold(self) -> object: ...
    def resume(self) -> object: ...
    def panic(self) -> object: ...
    def quit(self) -> object: ...

    def reload(self) -> object:
        """Re-read the show file (RELOAD)."""
        ...

    def status(self) -> Status | Awaitable[Status]: ...

    def show_info(self) -> dict[str, Any]:
        """The show's scenes for the page: names, triggers, lengths, prompts, notes."""
        ...

    def subscribe(self, callback: Callable[[dict[str, Any]], object]) -> Callable[[], None]:
        """Call `callback(event)` on every status change or event; returns an unsubscribe function."""
        ...


class Verdict(Protocol):
    """What a player may answer a command with (`showrunner.live.commands.Result`)."""

    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...


@dataclass(frozen=True)
class Outcome:
    """The answer to one operator command.

    `result` is ``applied`` (it happened; `detail` names the scene it started, if any),
    ``queued`` (kept until the player can: `reason` ``connecting`` or ``switching pipelines``)
    or ``ignored`` (`reason` says why; `error` or `detail` adds the player's words).
    """

    command: str
    applied: bool
    reason: str | None = None
    error: str | None = None
    result: str = ""
    detail: str | None = None

    def __post_init__(self) -> None:
        if not self.result:
            object.__setattr__(self, "result", "applied" if self.applied else "ignored")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "command": self.command, "applied": self.applied, "result": self.result
        }
        if self.reason is not None:
            body["reason"] = self.reason
        if self.detail is not None:
            body["detail"] = self.detail
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass(frozen=True)
class JournalEntry:
    """One operator action as it was received and what became of it."""

    at: float
    source: str
    command: str
    arg: str | None
    command_id: str | None
    applied: bool
    reason: str | None = None
    error: str | None = None
    result: str = ""
    detail: str | None = None

    def __post_init__(self) -> None:
        if not self.result:
            object.__setattr__(self, "result", "applied" if self.applied else "ignored")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_record(self) -> dict[str, Any]:
        """The run-journal line: kind "operator", time in ``sent_at`` like the player's lines."""
        return {
            "kind": "operator",
            "sent_at": self.at,
            "source": self.source,
            "command": self.command,
            "arg": self.arg,
            "id": self.command_id,
            "applied": self.applied,
            "reason": self.reason,
            "error": self.error,
            "result": self.result,
            "detail": self.detail,
            "label": self.text(),
        }

    def text(self) -> str:
        """A one-line summary for the operator's log view: ``GO from page: applied → verse``."""
        what = self.command.upper() + (f" {self.arg}" if self.arg is not None else "")
        if self.applied:
            verdict = "applied" + (f" → {self.detail}" if self.detail else "")
        else:
            verdict = f"{self.result or 'ignored'} ({self.reason or 'unknown'})"
            extra = self.error or self.detail
            if extra:
                verdict += f": {extra}"
        return f"{what} from {self.source}: {verdict}"


class OperatorJournal(Protocol):
    """Where operator actions are written down; `showrunner.live.journal.Journal` (the run journal)
    fits, so operator actions sit in the same file as everything the player did."""

    def write(self, record: Mapping[str, Any]) -> None: ...


def _call(player: Controllable, command: str, arg: str | None) -> object:
    """Call the player's method for `command` (a key of COMMANDS)."""
    match command:
        case "go":
            return player.go()
        case "cue":
            assert arg is not None
            return player.cue(arg)
        case "back":
            return player.back()
        case "goto":
            assert arg is not None
            return player.goto(arg)
        case "hold":
            return player.hold()
        case "resume":
            return player.resume()
        case "panic":
            return player.panic()
        case "reload":
            return player.reload()
        case "quit":
            return player.quit()
    raise ValueError(f"unknown command {command!r}")


async def resolve(value: object) -> Any:
    """`value`, awaited if it is awaitable (or a future of another thread): the player may be
    sync or async."""
    if isinstance(value, concurrent.futures.Future):
        value = asyncio.wrap_future(value)
    if inspect.isawaitable(value):
        return await value
    return value


def _verdict(value: object) -> Verdict | None:
    """The player's answer, when it gave one (a plain player answers None)."""
    if all(hasattr(value, name) for name in ("outcome", "reason", "detail")):
        return value  # type: ignore[return-value]
    return None


class Commands:
    """Debounced, idempotent, journaled operator commands in front of one player.

    `player` may be None until the show is running (`attach` sets it); commands sent before
    then are answered with reason "not ready". Safe to call from the event loop and from
    other threads (the checks that decide debounce and duplicates hold a lock and never await).
    """

    def __init__(
        self,
        player: Controllable | None = None,
        *,
        min_go_interval: float = 0.5,
        journal: OperatorJournal | None = None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        remember_ids: int = 1024,
        recent: int = 50,
    ) -> None:
        if min_go_interval < 0 or not math.isfinite(min_go_interval):
            raise ValueError("min_go_interval must be a finite number of seconds >= 0")
        self.player = player
        self.min_go_interval = float(min_go_interval)
        self.journal = journal
        self._clock = clock
        self._wallclock = wallclock
        self._lock = threading.Lock()
        self._last_go: float | None = None
        # Ids claimed by a command that is running or was applied; oldest forgotten first.
        self._ids: OrderedDict[str, bool] = OrderedDict()
        self._remember_ids = remember_ids
        self.recent: deque[JournalEntry] = deque(maxlen=recent)
        self._listeners: list[Callable[[JournalEntry], None]] = []

    def attach(self, player: Controllable | None) -> None:
        """Point the commands at a (new) player; None detaches.

        Without a journal of their own, operator lines go to the player's run journal, next
        to what the player did.
        """
        self.player = player
        if self.journal is None and player is not None:
            self.journal = player.journal

    def listen(self, callback: Callable[[JournalEntry], None]) -> Callable[[], None]:
        """Call `callback` with every journal entry; returns a function that stops it."""
        self._listeners.append(callback)

        def stop() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return stop

    async def status(self) -> Status:
        """The player's status (`NoShow` while no player is attached)."""
        if self.player is None:
            return NoShow()
        status: Status = await resolve(self.player.status())
        return status

    # -- the commands -------------------------------------------------------------------------

    async def go(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """Advance the show, unless debounced or already applied under `command_id`."""
        return await self.run("go", source=source, command_id=command_id)

    async def cue(
        self, name: str, *, source: str = "http", command_id: str | None = None
    ) -> Outcome:
        """Fire the named cue, if the show waits for it (debounced with GO)."""
        return await self.run("cue", name, source=source, command_id=command_id)

    async def back(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """Return to the previous scene."""
        return await self.run("back", source=source, command_id=command_id)

    async def goto(
        self, scene: str, *, source: str = "http", command_id: str | None = None
    ) -> Outcome:
        """Jump to the scene named `scene`."""
        return await self.run("goto", scene, source=source, command_id=command_id)

    async def hold(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """Stop the countdown where it is; the picture keeps running."""
        return await self.run("hold", source=source, command_id=command_id)

    async def resume(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """Continue after HOLD or PANIC."""
        return await self.run("resume", source=source, command_id=command_id)

    async def panic(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """The player's safe state, at once. Never debounced."""
        return await self.run("panic", source=source, command_id=command_id)

    async def reload(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """Re-read the show file, if the player supports it."""
        return await self.run("reload", source=source, command_id=command_id)

    async def quit(self, *, source: str = "http", command_id: str | None = None) -> Outcome:
        """End the show."""
        return await self.run("quit", source=source, command_id=command_id)

    async def run(
        self,
        command: str,
        arg: str | None = None,
        *,
        source: str = "http",
        command_id: str | None = None,
    ) -> Outcome:
        """Carry out `command` (a key of COMMANDS) with the rules above, and journal it."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
        if COMMANDS[command] != (arg is not None):
            raise ValueError(f"{command} {'needs' if COMMANDS[command] else 'takes no'} argument")
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        command_id = command_id or None
        if (arg is not None and len(arg) > MAX_NAME) or (
            command_id is not None and len(command_id) > MAX_ID
        ):
            # Never into the journal, the log or the id memory as it came.
            what = "name" if arg is not None and len(arg) > MAX_NAME else "id"
            limit = MAX_NAME if what == "name" else MAX_ID
            return self._done(command, _clip(arg), source, _clip(command_id), False, TOO_LONG,
                              f"the {what} is longer than {limit} characters")
        player = self.player
        if player is None:
            return self._done(command, arg, source, command_id, False, NOT_READY, "no show running")
        refusal, previous_go = self._claim(command, command_id)
        if refusal is not None:
            return self._done(command, arg, source, command_id, False, refusal)
        if command == "goto":
            assert arg is not None
            unknown = await self._unknown_scene(player, arg)
            if unknown:
                self._release(command, command_id, previous_go)
                return self._done(command, arg, source, command_id, False, UNKNOWN_SCENE, unknown)
        try:
            answer = await self._answer(_call(player, command, arg))
        except NotImplementedError as exc:
            self._release(command, command_id, previous_go)
            reason_text = str(exc) or f"this player cannot {command}"
            return self._done(command, arg, source, command_id, False, NOT_SUPPORTED, reason_text)
        except UnknownSceneError as exc:
            # GOTO named a scene that cannot be played; BACK had none to go back to (refused).
            self._release(command, command_id, previous_go)
            reason = UNKNOWN_SCENE if command == "goto" else REFUSED
            return self._done(command, arg, source, command_id, False, reason, str(exc))
        except CueError as exc:
            self._release(command, command_id, previous_go)
            return self._done(command, arg, source, command_id, False, REFUSED, str(exc))
        except ShowrunnerError as exc:
            self._release(command, command_id, previous_go)
            return self._done(command, arg, source, command_id, False, FAILED, str(exc))
        except Exception as exc:
            # A bug, not an operator mistake: written down, then raised to the caller.
            self._release(command, command_id, previous_go)
            self._done(command, arg, source, command_id, False, FAILED, repr(exc))
            raise
        if answer is None:
            return self._done(command, arg, source, command_id, True)
        outcome = answer.outcome if answer.outcome in ("applied", "queued") else "ignored"
        if outcome == "ignored":
            # Nothing moved (a wrong cue, nothing to go to): the next press is not debounced.
            self._release(command, None, previous_go)
        return self._done(command, arg, source, command_id, outcome == "applied", answer.reason,
                          result=outcome, detail=answer.detail)

    @staticmethod
    async def _answer(value: object) -> Verdict | None:
        """The player's answer to a command; "queued" (pending) when it takes too long."""
        if isinstance(value, concurrent.futures.Future):
            value = asyncio.wrap_future(value)
        if inspect.isawaitable(value):
            task = asyncio.ensure_future(value)
            try:
                value = await asyncio.wait_for(asyncio.shield(task), ANSWER_WAIT)
            except TimeoutError:
                return _Pending()
        return _verdict(value)

    # -- rules --------------------------------------------------------------------------------

    def _claim(self, command: str, command_id: str | None) -> tuple[str | None, float | None]:
        """Decide duplicate/debounce and reserve the id and GO time, without awaiting."""
        with self._lock:
            if command_id is not None and command_id in self._ids:
                return DUPLICATE, None
            previous_go = self._last_go
            if command in ("go", "cue"):
                now = self._clock()
                if previous_go is not None and now - previous_go < self.min_go_interval:
                    return DEBOUNCED, None
                self._last_go = now
            if command_id is not None:
                self._ids[command_id] = True
                while len(self._ids) > self._remember_ids:
                    self._ids.popitem(last=False)
            return None, previous_go

    def _release(self, command: str, command_id: str | None, previous_go: float | None) -> None:
        """Undo a claim for a command that did not happen, so a retry is not swallowed."""
        with self._lock:
            if command_id is not None:
                self._ids.pop(command_id, None)
            if command in ("go", "cue"):
                self._last_go = previous_go

    async def _unknown_scene(self, player: Controllable, scene: str) -> str | None:
        try:
            status: Status = await resolve(player.status())
            names = status.scenes
        except Exception:
            log.debug("status() failed while checking a goto", exc_info=True)
            return None
        if names and scene not in names:
            return f"unknown scene {scene!r}"
        return None

    def _done(
        self,
        command: str,
        arg: str | None,
        source: str,
        command_id: str | None,
        applied: bool,
        reason: str | None = None,
        error: str | None = None,
        *,
        result: str = "",
        detail: str | None = None,
    ) -> Outcome:
        entry = JournalEntry(
            at=self._wallclock(),
            source=source,
            command=command,
            arg=arg,
            command_id=command_id,
            applied=applied,
            reason=reason,
            error=error,
            result=result,
            detail=detail,
        )
        self.recent.append(entry)
        if self.journal is not None:
            try:
                self.journal.write(entry.to_record())
            except OSError:
                # A full disk must not stop the show; the log still has the action.
                log.exception("could not write the operator journal")
        log.info("operator: %s", entry.text())
        for listener in list(self._listeners):
            try:
                listener(entry)
            except Exception:
                log.exception("operator journal listener failed")
        return Outcome(command=command, applied=applied, reason=reason, error=error,
                       result=entry.result, detail=detail)

    def __repr__(self) -> str:
        return (
            f"Commands(player={type(self.player).__name__ if self.player else None}, "
            f"min_go_interval={self.min_go_interval!r}, journal={self.journal!r})"
        )


@dataclass(frozen=True)
class _Pending:
    outcome: str = "queued"
    reason: str | None = PENDING
    detail: str | None = None


def _clip(text: str | None, keep: int = 40) -> str | None:
    """A long name or id as the journal keeps it: its start and its length."""
    if text is None or len(text) <= keep:
        return text
    return f"{text[:keep]}… ({len(text)} characters)"


def json_safe(value: Any, _depth: int = 0) -> Any:
    """`value` with everything JSON cannot carry turned into strings (or None for NaN)."""
    if _depth > 20:
        return repr(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value, _depth + 1)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, _depth + 1) for v in value]
    return str(value)
