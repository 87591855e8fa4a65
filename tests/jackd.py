"""A private JACK server for MIDI tests: ``jackd -d dummy`` under a name of its own.

Linux machines without a sound card (no /dev/snd: no ALSA sequencer) still run JACK's dummy
driver, and rtmidi's JACK API gives virtual ports on it. Each test session starts one server
named after its process, so parallel runs do not meet; tests are skipped with the reason when
jackd is not installed or does not start.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_SERVERS = itertools.count(1)


@contextmanager
def jack_server() -> Iterator[str]:
    """Start a dummy JACK server; yields its name (set in JACK_DEFAULT_SERVER meanwhile)."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd is not installed (Debian: jackd2); MIDI tests need ALSA or JACK")
    from showrunner.midi.ports import MidiError, input_names

    name = f"showrunner-test-{os.getpid()}-{next(_SERVERS)}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"  # a client never starts a server of its own
    process = subprocess.Popen(
        [jackd, "--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                input_names("jack")
                break
            except MidiError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("jackd -d dummy did not start")
                time.sleep(0.1)
        yield name
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
