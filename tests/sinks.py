"""`RecordingSink`: a test double of the `Sink` protocol that writes nothing anywhere and notes
the clock's time of every open, switch, prepare and write (sessions open at once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from showrunner.testing import FakeClock


class Wire(dict[str, Any]):
    """A message as `RecordingSink.prepare` made it (so a test can tell it was made ahead)."""


class RecordingSink:
    """Records (clock time, what) for every call of the Sink protocol; sessions open at once."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.prepared: list[tuple[float, Wire]] = []
        self.opened: list[tuple[float, list[str], dict[str, Any]]] = []
        self.switched: list[tuple[float, list[str], dict[str, Any]]] = []
        self.up = False
        self.problem: str | None = None  # what liveness() reports
        self.closed = False

    @property
    def connected(self) -> bool:
        return self.up

    async def open(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float:
        self.opened.append((self.clock.monotonic(), list(chain), dict(initial_parameters)))
        self.up = True
        return 0.0

    async def switch(
        self, chain: Sequence[str], load_params: Mapping[str, Any], initial_parameters: Mapping[str, Any]
    ) -> float:
        self.switched.append((self.clock.monotonic(), list(chain), dict(initial_parameters)))
        self.up, self.problem = True, None
        return 0.0

    def prepare(self, message: Mapping[str, Any]) -> dict[str, Any]:
        ready = Wire(message)
        self.prepared.append((self.clock.monotonic(), ready))
        return ready

    async def send(self, message: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        self.sent.append((self.clock.monotonic(), message))  # type: ignore[arg-type]
        return self.clock.time(), dict(message)

    async def close(self) -> None:
        self.closed, self.up = True, False

    async def liveness(self) -> str | None:
        return self.problem
