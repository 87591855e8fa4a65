"""`showrunner run --tempo link` beside another Link peer (run by test_link.py inside a
loopback-only namespace): prints what the status API said as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from showrunner.app import RunOptions, run
from showrunner.music.reading import TempoReading
from showrunner.sync.link import LinkTempo


class Lines:
    def __init__(self) -> None:
        self.warned: list[str] = []

    def say(self, line: str) -> None:
        pass

    def warn(self, line: str) -> None:
        self.warned.append(line)


async def wait(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


async def main(folder: Path) -> None:
    show = folder / "show.yaml"
    show.write_text("title: link\nbpm: 100\ndefaults: {pipeline: controller-viz}\n"
                    "scenes:\n  - {name: groove, prompts: a pulsing grid}\n")
    peer = LinkTempo(100.0, 4, time.monotonic)
    heard: list[TempoReading] = []
    peer_task = asyncio.create_task(peer.run(heard.append))
    lines, stop = Lines(), asyncio.Event()
    options = RunOptions(show, stdin_tty=False, state_file=folder / "s.json", control_port=0,
                         tempo="link")
    task = asyncio.create_task(run(options, output=lines, stop_event=stop))
    url = await wait(lambda: asyncio.sleep(0, next(
        (w.split()[1].rstrip("/") for w in lines.warned if w.startswith("control: ")), None)),
        "the control page")
    async with httpx.AsyncClient(base_url=url) as http:

        async def tempo() -> dict[str, Any]:
            body: dict[str, Any] = (await http.get("/api/status")).json()["tempo"] or {}
            return body

        joined = await wait(lambda: _when(tempo(), lambda t: t.get("peers") == 1), "a peer")
        await peer.propose(140.0)
        followed = await wait(lambda: _when(tempo(), lambda t: abs(t["bpm"] - 140) < 0.01),
                              "the peer's tempo")
        answer = (await http.post("/api/tempo/bpm", json={"bpm": 150})).json()
        started = time.monotonic()
        while abs(heard[-1].bpm - 150.0) > 0.01 and time.monotonic() - started < 5:
            await asyncio.sleep(0.01)
        result = {"joined": joined, "followed": followed, "answer": answer,
                  "peer_bpm": heard[-1].bpm, "warned": lines.warned[1:]}
    stop.set()
    result["exit"] = await task
    peer_task.cancel()
    await asyncio.gather(peer_task, return_exceptions=True)
    print(json.dumps(result))


async def _when(read: Any, check: Any) -> Any:
    value = await read
    return value if check(value) else None


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
