"""Which ICE servers the WebRTC session to Scope uses (docs/scope.md §2.6, "ICE servers").

A Scope on this machine needs none: both ends have a host candidate on 127.0.0.1, and an empty
list keeps every packet on the machine. A Scope on another machine hands out the servers its own
UI uses at ``GET /api/v1/webrtc/ice-servers`` (a TURN server when it has credentials, else a
public STUN server); `IcePolicy` says which list a session uses:

- ``auto`` (the default): none for a loopback URL, the server's list otherwise;
- ``server``: the server's list, whatever the URL;
- ``none``: none (host candidates only);
- a list of servers given by the user (TURN credentials from the entry or the environment).

With ``relay_only`` the connection offers TURN relay candidates only (the ``relay`` transport
policy), for networks where nothing but the TURN server is reachable. Plain data here; aiortc's
own types are made from it in :mod:`showrunner.scope.rtc`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from showrunner.errors import ScopeProtocolError

__all__ = [
    "DEFAULT_ICE", "ICE_SCHEMES", "IceMode", "IcePolicy", "IceServer", "parse_served",
    "policy_from_words",
]

ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceMode(enum.StrEnum):
    """Where the ICE server list comes from."""

    AUTO = "auto"
    SERVER = "server"
    NONE = "none"
    LIST = "list"  # the servers given in `IcePolicy.servers`


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server (WebRTC's ``RTCIceServer``)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    @property
    def is_turn(self) -> bool:
        return any(u.startswith(("turn:", "turns:")) for u in self.urls)

    def with_credentials(self, username: str | None, credential: str | None) -> IceServer:
        """A TURN entry without credentials takes the given ones; anything else stays as it is."""
        if not self.is_turn or self.username is not None or self.credential is not None:
            return self
        return replace(self, username=username, credential=credential)


@dataclass(frozen=True)
class IcePolicy:
    """The ICE servers of a session and its transport policy."""

    mode: IceMode = IceMode.AUTO
    servers: tuple[IceServer, ...] = ()  # IceMode.LIST only
    relay_only: bool = False

    def asks_server(self, loopback: bool) -> bool:
        """Whether the server's list is needed (``GET /api/v1/webrtc/ice-servers``)."""
        return self.mode is IceMode.SERVER or (self.mode is IceMode.AUTO and not loopback)

    def choose(self, served: Sequence[IceServer] = ()) -> tuple[IceServer, ...]:
        """The servers to use, given the server's list (`served`, when `asks_server`)."""
        if self.mode is IceMode.LIST:
            return self.servers
        if self.mode is IceMode.NONE:
            return ()
        return tuple(served)

    def describe(self, loopback: bool) -> str:
        """A few words for logs and `check --scope`."""
        if self.mode is IceMode.LIST:
            text = "ICE servers " + ", ".join(u for s in self.servers for u in s.urls)
        elif self.asks_server(loopback):
            text = "the server's ICE servers"
        else:
            text = "no ICE servers (loopback)" if loopback and self.mode is IceMode.AUTO else "no ICE servers"
        return text + (", relay only" if self.relay_only else "")


DEFAULT_ICE = IcePolicy()


def parse_served(body: Mapping[str, Any], where: str) -> tuple[IceServer, ...]:
    """The ``iceServers`` of a ``GET /api/v1/webrtc/ice-servers`` answer (ScopeProtocolError
    when it has no such list); entries without usable ``urls`` are skipped."""
    entries = body.get("iceServers")
    if not isinstance(entries, list):
        raise ScopeProtocolError(f"Scope ICE servers: the answer of {where} has no 'iceServers' list")
    out: list[IceServer] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        urls = entry.get("urls")
        listed = [urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []
        kept = tuple(u for u in listed if isinstance(u, str) and u.startswith(ICE_SCHEMES))
        if not kept:
            continue
        username, credential = entry.get("username"), entry.get("credential")
        out.append(IceServer(kept, username if isinstance(username, str) else None,
                             credential if isinstance(credential, str) else None))
    return tuple(out)


def policy_from_words(
    words: Iterable[str],
    *,
    relay_only: bool = False,
    username: str | None = None,
    credential: str | None = None,
) -> IcePolicy | None:
    """The policy of ``--ice-server`` values (``auto``, ``server``, ``none`` or URLs, each URL
    one server; TURN credentials from `username` and `credential`); None when none was given.
    ValueError (one line) for a bad value or a keyword mixed with others."""
    given = [w.strip() for w in words]
    if not given:
        return None
    keywords = [w for w in given if w in ("auto", "server", "none")]
    if keywords:
        if len(given) > 1:
            raise ValueError(f"--ice-server {keywords[0]} cannot be combined with other --ice-server values")
        return IcePolicy(IceMode(keywords[0]), relay_only=relay_only)
    servers = []
    for url in given:
        if not url.startswith(ICE_SCHEMES):
            raise ValueError(f"--ice-server {url!r}: expected auto, server, none or a stun:, turn: "
                             "or turns: URL")
        servers.append(IceServer((url,)).with_credentials(username, credential))
    return IcePolicy(IceMode.LIST, tuple(servers), relay_only=relay_only)
