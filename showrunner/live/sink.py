"""What the player plays into: the `Sink` protocol (``ScopeSession`` satisfies it), and
`PacedSink`, what a sink that paces its writes can tell besides (``ScopeSession`` does)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

LostWrite = tuple[int, float, dict[str, Any]]
"""(write number, unix time written, message) of a write the server never acknowledged."""

__all__ = ["LostWrite", "PacedSink", "Sink"]


@runtime_checkable
class Sink(Protocol):
    """Where the show goes: a Scope session (``ScopeSession``) or anything shaped like one.

    ``open`` starts a session on `chain` loaded with `load_params`; ``switch`` moves an open
    one to another pipeline setup (close, load, reconnect: docs/scope.md §4.2); both return the
    seconds without a picture. ``send`` returns (unix time the message was written, the exact
    dict written). The player runs a send's first step synchronously (see `start_eagerly`),
    so it must not rely on ``asyncio.current_task()`` before its first ``await``.
    """

    @property
    def connected(self) -> bool:
        """A cheap local check: the session is up (the watchdog asks ``liveness`` less often)."""
        ...

    async def open(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float: ...

    async def switch(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float: ...

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """`message` checked and made ready for the wire ahead of its moment (``send`` takes the
        result as it is); raises a ShowrunnerError for what ``send`` would refuse."""
        ...

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]: ...

    async def close(self) -> None: ...

    async def liveness(self) -> str | None:
        """None while the session is healthy, else a one-line reason."""
        ...


@runtime_checkable
class PacedSink(Sink, Protocol):
    """A `Sink` that paces its writes (one per chunk, merged while they wait) and says more
    about them and about the picture. The link uses these when the sink has them; a plain
    `Sink` plays the same show without them.

    What ``send`` returns for such a sink may carry ``write`` (its number among the sink's
    writes, from 1) and ``carries`` (how many sends were merged into that one write; each of
    them gets the same result), so the journal can give one line per message actually written.
    """

    async def send(self, message: Mapping[str, Any], *, entry: bool = True) -> tuple[float, dict[str, Any]]:
        """As `Sink.send`; `entry` ``False`` marks a timed update (a keyframe sample, a travel
        stop) that gives way to an expected entry and is merged into it."""
        ...

    def expect(self, at: float | None) -> None:
        """The show's next entry is planned at `at` (monotonic, on the clock the sink and the
        player share); None: none is planned."""
        ...

    def frame_age(self) -> float | None:
        """Seconds since the newest video frame; None while no frame is expected (no session,
        a paused picture, before the first frame). A local check: it never waits."""
        ...

    def take_lost(self) -> list[LostWrite]:
        """The writes the server had not acknowledged when their connection closed (each once)."""
        ...
