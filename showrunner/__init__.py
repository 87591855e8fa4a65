"""showrunner: run AI-video shows against a Daydream Scope server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Show",
    "ShowrunnerError",
    "Timeline",
    "__version__",
    "compile_timeline",
    "load_show",
]

if TYPE_CHECKING:
    from showrunner.errors import ShowrunnerError
    from showrunner.plan.compiler import compile_timeline
    from showrunner.plan.timeline import Timeline
    from showrunner.show.load import load_show
    from showrunner.show.model import Show

# Imported on first use so that `showrunner --help` and the simulator stay quick to start.
_LAZY = {
    "Show": "showrunner.show.model",
    "ShowrunnerError": "showrunner.errors",
    "Timeline": "showrunner.plan.timeline",
    "compile_timeline": "showrunner.plan.compiler",
    "load_show": "showrunner.show.load",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'showrunner' has no attribute {name!r}")
