"""What the player plays into: the `Sink` protocol (``ScopeSession`` satisfies it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Where the show goes: a Scope session (``ScopeSession``) or anything shaped like one.

    ``open`` starts a session on `chain` loaded with `load_params`; ``switch`` moves an open
    one to another pipeline setup (close, load, reconnect: contract §4.2); both return the
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
