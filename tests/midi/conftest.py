from __future__ import annotations

from collections.abc import Iterator

import pytest
from jack import jack_server


@pytest.fixture(scope="session")
def jack() -> Iterator[str]:
    """A dummy JACK server for this test session (skipped where jackd cannot run)."""
    with jack_server() as name:
        yield name
