"""Run a command in a network namespace of its own with only loopback up, for Ableton Link.

Link finds peers by multicast on every interface; inside such a namespace nothing it sends
can leave the machine. Making one needs root and `unshare` and `ip`: where that is not possible
the test is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_SETUP = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec "$@"'


def _reason() -> str | None:
    """Why no loopback-only namespace can be made here (None: it can)."""
    if not sys.platform.startswith("linux"):
        return "Link tests need a Linux network namespace"
    if os.geteuid() != 0:
        return "Link tests need root to make a network namespace with only loopback (unshare --net)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "Link tests need `unshare` and `ip` (util-linux, iproute2) for a loopback-only namespace"
    probe = subprocess.run(["unshare", "--net", "sh", "-c", _SETUP, "sh", "true"],
                           capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return f"cannot make a loopback-only network namespace: {probe.stderr.strip()[:200]}"
    return None


def run_isolated(script: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `python script args` in a fresh network namespace with only loopback (skip if none)."""
    reason = _reason()
    if reason is not None:
        pytest.skip(reason)
    command = ["unshare", "--net", "sh", "-c", _SETUP, "sh", sys.executable, str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
