"""A TURN server on loopback for ICE tests: Debian's coturn (``/usr/bin/turnserver``).

It listens on 127.0.0.1 only (UDP, on a free port), relays from 127.0.0.1 only, and allows
loopback peers (coturn refuses them by default, and the simulator's only candidate is on
127.0.0.1). Static long-term credentials; no TCP, TLS, DTLS, CLI or web admin listeners; its
user database lives in the test's tmp_path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TURNSERVER = shutil.which("turnserver")
needs_turnserver = pytest.mark.skipif(
    TURNSERVER is None, reason="coturn is not installed (Debian: apt-get install coturn)"
)
USERNAME = "showrunner"
CREDENTIAL = "turn-test-secret"


@dataclass(frozen=True)
class Turn:
    """A running TURN server: its URL, credentials and process id."""

    url: str
    username: str
    credential: str
    pid: int

    def ice_server(self) -> dict[str, object]:
        return {"urls": [self.url], "username": self.username, "credential": self.credential}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    return inodes


def bound_addresses(pid: int) -> set[str]:
    """The local IPv4/IPv6 addresses of every UDP and TCP socket of process `pid` (Linux /proc)."""
    inodes = _socket_inodes(pid)
    found = set()
    for table in ("udp", "tcp", "udp6", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                address = fields[1].split(":")[0]
                found.add(_decode(address))
    return found


def _decode(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


@contextlib.contextmanager
def turn_server(tmp_path: Path) -> Iterator[Turn]:
    """Start coturn on 127.0.0.1 for the duration of the `with`."""
    assert TURNSERVER is not None
    port = _free_udp_port()
    log = tmp_path / "turnserver.log"
    args = [
        TURNSERVER, "-n",  # no configuration file: only what is below
        "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", str(port),
        "--allow-loopback-peers", "--no-multicast-peers",
        "--lt-cred-mech", "--user", f"{USERNAME}:{CREDENTIAL}", "--realm", "showrunner.test",
        "--no-tcp", "--no-tls", "--no-dtls", "--no-tcp-relay", "--no-cli",
        "--userdb", str(tmp_path / "turndb"), "--pidfile", str(tmp_path / "turnserver.pid"),
        "--log-file", str(log), "--simple-log", "--no-software-attribute",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10.0
        while f"127.0.0.1:{port}" not in _listening(proc.pid):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"turnserver did not start (exit {proc.poll()}): {text}")
            time.sleep(0.05)
        yield Turn(f"turn:127.0.0.1:{port}", USERNAME, CREDENTIAL, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listening(pid: int) -> set[str]:
    inodes = _socket_inodes(pid)
    found = set()
    for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            address, port = fields[1].split(":")
            found.add(f"{_decode(address)}:{int(port, 16)}")
    return found
