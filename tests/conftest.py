from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environ() -> Iterator[None]:
    """Tests never see the developer's SHOWRUNNER_* settings."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("SHOWRUNNER_")}
    for k in saved:
        del os.environ[k]
    yield
    for k in [k for k in os.environ if k.startswith("SHOWRUNNER_")]:
        del os.environ[k]
    os.environ.update(saved)
