"""The exception tree. Third-party exceptions are translated at the module that owns the engine."""

from __future__ import annotations

from collections.abc import Sequence


class ShowrunnerError(Exception):
    """Base of every error showrunner raises on purpose; its str() is one line for the user."""


class ShowError(ShowrunnerError):
    """One problem in a show file, pointing at the text the user wrote."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "<show>",
        line: int = 1,
        col: int = 1,
        key_path: str = "",
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.key_path = key_path
        super().__init__(self.format())

    def format(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ShowError({self.format()!r})"


class ShowErrors(ShowrunnerError):
    """Every problem found in a show file; loading reports all of them, not just the first."""

    def __init__(self, errors: Sequence[ShowError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(e.format() for e in self.errors))


class CueError(ShowrunnerError):
    """A cue that cannot be fired or an operator command that cannot be carried out now."""


class UnknownSceneError(ShowrunnerError):
    """A scene asked for by name (GOTO, ``--from``, ``--at SCENE``, BACK) that the show cannot play:
    no such scene, one that plays only while closed, or no previous scene to go back to."""


class PositionError(ShowrunnerError):
    """A position text (``--at``: seconds, ``mm:ss``, ``SCENE+OFFSET``) that cannot be parsed."""


class ScopeError(ShowrunnerError):
    """Talking to the Scope server failed."""


class ScopeConnectError(ScopeError):
    """The Scope server could not be reached, or the connection was lost."""


class ScopeTimeoutError(ScopeError):
    """A request or a wait (load, connect, first frame) ran out of time."""


class ScopeProtocolError(ScopeError):
    """The Scope server answered something docs/scope.md does not allow (bad status, bad JSON)."""


class ScopeLoadError(ScopeError):
    """A pipeline load ended in `error` (the reason is only in the Scope server's log)."""


class TempoSourceError(ShowrunnerError):
    """A tempo source that cannot run (Scope without Link, an unknown source); the show plays
    on at the fixed bpm."""
