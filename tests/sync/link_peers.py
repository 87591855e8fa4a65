"""Two Link peers in one process (run by test_link.py inside a loopback-only namespace).

Prints one JSON object: what each peer reported once they found each other, their beats at
one moment, and how long a tempo proposed by one took to reach the other.
"""

from __future__ import annotations

import asyncio
import json
import time

from showrunner.music.reading import TempoReading
from showrunner.sync.runner import TempoRunner
from showrunner.sync.sources import SourceContext, SourceOptions


async def main() -> None:
    context = SourceContext(clock=time.monotonic)
    a = TempoRunner(SourceOptions("link", bpm=120.0, beats_per_bar=4), context)
    readings: list[TempoReading] = []
    a.listen(readings.append)
    task_a = asyncio.create_task(a.run())
    await asyncio.sleep(0.3)
    b = TempoRunner(SourceOptions("link", bpm=90.0, beats_per_bar=4), context)
    task_b = asyncio.create_task(b.run())
    started = time.monotonic()
    while not (a.status().peers and b.status().peers):
        if time.monotonic() - started > 10:
            raise SystemExit("the peers never found each other")
        await asyncio.sleep(0.05)
    found = time.monotonic() - started
    await asyncio.sleep(1.5)
    sa, sb = a.status(), b.status()  # one moment: each extrapolates its latest reading
    proposed = time.monotonic()
    await b.set_bpm(133.0)
    while abs(a.status().bpm - 133.0) > 0.01:
        if time.monotonic() - proposed > 5:
            break
        await asyncio.sleep(0.005)
    followed = time.monotonic() - proposed
    rate_window = [r for r in readings if r.at >= proposed - 1.0 and r.at < proposed]
    bpm_after = a.status().bpm
    for _ in range(5):  # taps on b, 0.3 s apart: b proposes 200 bpm to the session
        await b.tap()
        await asyncio.sleep(0.3)
    await asyncio.sleep(0.2)
    tapped = [a.status().bpm, b.status().bpm]
    result = {
        "found_after": found,
        "peers": [sa.peers, sb.peers],
        "bpm": [sa.bpm, sb.bpm],
        "beat": [sa.beat, sb.beat],
        "bar": [sa.bar, sb.bar],
        "beat_in_bar": [sa.beat_in_bar, sb.beat_in_bar],
        "followed_after": followed,
        "bpm_after": bpm_after,
        "tapped": tapped,
        "readings_per_beat": len(rate_window) / (sa.bpm / 60.0),
        "sources": [sa.source, sb.source],
    }
    for task in (task_a, task_b):
        task.cancel()
    await asyncio.gather(task_a, task_b, return_exceptions=True)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
