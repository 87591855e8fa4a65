"""The player's link to Scope."""

from __future__ import annotations

import enum

__all__ = ["LinkState"]


class LinkState(enum.StrEnum):
    """Where the link to Scope stands (the status's ``connection``)."""

    STARTING = "starting"  # no session opened yet
    CONNECTING = "connecting"  # a session is being opened or switched
    CONNECTED = "connected"
    DOWN = "down"  # an open or switch failed; the watchdog reconnects
    RECONNECTING = "reconnecting"  # the watchdog is rebuilding the session
    CLOSED = "closed"  # the run is over
