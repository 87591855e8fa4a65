"""The Scope simulator in a process of its own (`showrunner sim --port 0`), as a real server runs:
the tests can stop it (SIGSTOP, a hung server) and let it go on (SIGCONT)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import showrunner

_READY = re.compile(r"Scope simulator on (http://\S+)")


class SimProcess:
    """A running `showrunner sim`; `url` is where it answers."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.stopped = False

    def __repr__(self) -> str:
        return f"SimProcess(pid={self.process.pid}, url={self.url!r}, stopped={self.stopped})"

    def stop(self) -> None:
        """SIGSTOP: the server hangs (no answers, no frames, nothing acknowledged)."""
        os.kill(self.process.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> None:
        """SIGCONT: it goes on where it stopped."""
        os.kill(self.process.pid, signal.SIGCONT)
        self.stopped = False


@contextlib.contextmanager
def sim_process(*, load_time: float = 0.02, record: Path | None = None,
                startup: float = 30.0) -> Iterator[SimProcess]:
    """Start the simulator in a child process and stop it afterwards (even when stopped)."""
    root = Path(showrunner.__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, "-m", "showrunner", "sim", "--port", "0", "--load-time", str(load_time)]
    if record is not None:
        command += ["--record", str(record)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env=env, cwd=root)
    reader: threading.Thread | None = None
    try:
        url = _wait_ready(process, startup)
        # Keep reading its log, so that a chatty simulator never blocks on a full pipe.
        assert process.stderr is not None
        reader = threading.Thread(target=process.stderr.read, daemon=True)
        reader.start()
        yield SimProcess(process, url)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if reader is not None:
            reader.join(5)
        if process.stderr is not None:
            process.stderr.close()


def _wait_ready(process: subprocess.Popen[str], startup: float) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + startup
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if match := _READY.search(line):
            return match.group(1)
    raise RuntimeError(f"the simulator did not start: {''.join(lines)[-2000:]}")
