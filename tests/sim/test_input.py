"""Server-side `video_file` input for passthrough/gray: the file's own frames (docs/scope.md §7, §10).

Each test writes its own tiny clip with PyAV into tmp_path: no binary file is committed.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from showrunner.sim import Simulator

pytestmark = [pytest.mark.anyio, pytest.mark.webrtc]

Connect = Callable[..., Awaitable[Any]]
RED, BLUE = (200, 30, 30), (30, 30, 200)


def write_clip(path: Path, *, size: tuple[int, int] = (64, 48), fps: int = 10, frames: int = 12) -> Path:
    """A clip whose first half is red and second half blue, encoded with PyAV (mpeg4)."""
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    for i in range(frames):
        image = Image.new("RGB", size, RED if i < frames // 2 else BLUE)
        for packet in stream.encode(av.VideoFrame.from_image(image)):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def source(name: str) -> dict[str, Any]:
    return {"enabled": True, "source_type": "video_file", "source_name": name}


async def load(sim: Simulator, pipeline_id: str, **params: Any) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        await client.post(
            "/api/v1/pipeline/load", json={"pipeline_ids": [pipeline_id], "load_params": params}
        )
    await sim.wait_for(lambda s: s.loads.combined() == "loaded")


async def frame(sim: Simulator) -> Image.Image:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/api/v1/session/frame", params={"quality": 95})
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content)).convert("RGB")


async def metrics(sim: Simulator, session_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        stats: dict[str, Any] = (await client.get("/api/v1/session/metrics")).json()["sessions"][
            session_id
        ]
    return stats


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


async def test_passthrough_plays_the_file_at_its_size_and_rate(
    sim: Simulator, sim_peer: Connect, tmp_path: Path
) -> None:
    """docs/scope.md §7 / §10: passthrough + `input_source` video_file → the file's frames, output
    size = input size (height/width ignored), at the file's rate, looping; metrics show the
    source; `input_source` is stripped from session/parameters."""
    clip = write_clip(tmp_path / "clip.mp4")
    await load(sim, "passthrough", height=512, width=512)
    peer = await sim_peer(sim.url, {"pipeline_ids": ["passthrough"], "input_source": source(str(clip))})
    await sim.wait_for(lambda s: peer.frames >= 3, timeout=10)
    assert peer.frame_size == (64, 48)
    session = sim.sessions[peer.session_id]
    assert session.stream is not None and session.stream.fps == 10.0
    seen = set()
    for _ in range(30):
        pixel = (await frame(sim)).getpixel((32, 24))
        seen |= {name for name, c in (("red", RED), ("blue", BLUE)) if near(pixel, c)}
        if seen == {"red", "blue"}:
            break
        await asyncio.sleep(0.1)
    assert seen == {"red", "blue"}
    await sim.wait_for(lambda s: session.frames_in > 12, timeout=5)  # it loops
    stats = await metrics(sim, peer.session_id)
    assert (stats["input_source_enabled"], stats["input_source_type"]) == (True, "video_file")
    assert stats["pipeline_fps"] == 10.0 and stats["frames_in"] > 12
    async with httpx.AsyncClient(base_url=sim.url) as client:
        params = (await client.get("/api/v1/session/parameters")).json()["parameters"]
    assert "input_source" not in params


async def test_gray_turns_the_file_gray(sim: Simulator, sim_peer: Connect, tmp_path: Path) -> None:
    """docs/scope.md §7: gray = grayscale of each input frame."""
    clip = write_clip(tmp_path / "clip.mp4")
    await load(sim, "gray")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["gray"], "input_source": source(str(clip))})
    await sim.wait_for(lambda s: peer.frames >= 2, timeout=10)
    r, g, b = (await frame(sim)).getpixel((32, 24))
    assert max(r, g, b) - min(r, g, b) <= 12
    assert 40 <= r <= 120  # the luma of the red or the blue, not the dark canvas


async def test_source_by_asset_name(sim: Simulator, sim_peer: Connect, tmp_path: Path) -> None:
    """docs/scope.md §3.3 / §10: `source_name` may name an uploaded asset (by name or stem)."""
    clip = write_clip(tmp_path / "rehearsal.mp4")
    async with httpx.AsyncClient(base_url=sim.url) as client:
        upload = await client.post(
            "/api/v1/assets", params={"filename": "rehearsal.mp4"}, content=clip.read_bytes()
        )
    assert upload.status_code == 200
    await load(sim, "passthrough")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["passthrough"], "input_source": source("rehearsal")})
    await sim.wait_for(lambda s: peer.frames >= 2, timeout=10)
    assert peer.frame_size == (64, 48)


async def test_graph_source_node_feeds_the_pipeline(
    sim: Simulator, sim_peer: Connect, tmp_path: Path
) -> None:
    """docs/scope.md §10: an `initialParameters.graph` with a video_file source node also works."""
    clip = write_clip(tmp_path / "clip.mp4")
    await load(sim, "passthrough")
    graph = {
        "nodes": [
            {"id": "input", "type": "source", "source_mode": "video_file", "source_name": str(clip)},
            {"id": "passthrough", "type": "pipeline", "pipeline_id": "passthrough"},
            {"id": "output", "type": "sink"},
        ],
        "edges": [
            {"from": "input", "from_port": "video", "to_node": "passthrough", "to_port": "video"},
            {"from": "passthrough", "from_port": "video", "to_node": "output", "to_port": "video"},
        ],
    }
    peer = await sim_peer(sim.url, {"pipeline_ids": ["passthrough"], "graph": graph})
    await sim.wait_for(lambda s: peer.frames >= 2, timeout=10)
    assert peer.frame_size == (64, 48)


async def test_missing_file_gives_no_frames(sim: Simulator, sim_peer: Connect, tmp_path: Path) -> None:
    """Scope core/inputs: a file that cannot be opened is only logged; no source, no frames."""
    await load(sim, "passthrough")
    peer = await sim_peer(
        sim.url, {"pipeline_ids": ["passthrough"], "input_source": source(str(tmp_path / "nope.mp4"))}
    )
    await asyncio.wait_for(peer.opened.wait(), 5)
    await asyncio.sleep(0.4)
    assert peer.frames == 0
    stats = await metrics(sim, peer.session_id)
    assert (stats["input_source_enabled"], stats["input_source_type"]) == (False, "")


async def test_text_mode_pipeline_ignores_the_file_but_reports_the_source(
    sim: Simulator, sim_peer: Connect, tmp_path: Path
) -> None:
    """docs/scope.md §10: sent to a text-mode session (controller-viz) the source is still started
    (wasted work); the picture is the pipeline's own."""
    clip = write_clip(tmp_path / "clip.mp4")
    await load(sim, "controller-viz", height=32, width=32)
    peer = await sim_peer(
        sim.url, {"pipeline_ids": ["controller-viz"], "input_source": source(str(clip))}
    )
    await sim.wait_for(lambda s: peer.frames >= 2, timeout=10)
    assert peer.frame_size == (32, 32)
    stats = await metrics(sim, peer.session_id)
    assert stats["input_source_type"] == "video_file" and stats["pipeline_fps"] == 60.0


def write_solid(path: Path, colour: tuple[int, int, int]) -> Path:
    """A short clip of one colour (PyAV, mpeg4)."""
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for _ in range(6):
        for packet in stream.encode(av.VideoFrame.from_image(Image.new("RGB", (64, 48), colour))):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


async def test_a_runtime_input_source_is_taken_as_scope_takes_it(
    sim: Simulator, sim_peer: Connect, tmp_path: Path
) -> None:
    """Scope's frame processor (server/frame_processor.py `_update_input_source`): another file
    of the same source type replaces the running one only with `"reconnect": true`, else it is
    ignored; `enabled: false` stops the source."""
    first, second = write_solid(tmp_path / "red.mp4", RED), write_solid(tmp_path / "blue.mp4", BLUE)
    await load(sim, "passthrough")
    peer = await sim_peer(sim.url, {"pipeline_ids": ["passthrough"], "input_source": source(str(first))})
    await sim.wait_for(lambda s: peer.frames >= 2, timeout=10)
    assert near((await frame(sim)).getpixel((32, 24)), RED)
    peer.channel.send(json.dumps({"input_source": source(str(second))}))
    await asyncio.sleep(0.5)
    assert near((await frame(sim)).getpixel((32, 24)), RED)  # same type, no reconnect: ignored
    peer.channel.send(json.dumps({"input_source": {**source(str(second)), "reconnect": True}}))
    for _ in range(50):
        if near((await frame(sim)).getpixel((32, 24)), BLUE):
            break
        await asyncio.sleep(0.05)
    assert near((await frame(sim)).getpixel((32, 24)), BLUE)
    peer.channel.send(json.dumps({"input_source": {**source(str(second)), "enabled": False}}))
    await sim.wait_for(lambda s: s.sessions[peer.session_id].input_source_type == "", timeout=5)
    stats = await metrics(sim, peer.session_id)
    assert stats["input_source_enabled"] is False


CLOSE_WHILE_READING = """
import sys, threading
from pathlib import Path
from showrunner.sim.inputs import SourceClosed, VideoFileSource

source = VideoFileSource(Path(sys.argv[1]))
source.read()
source.close()
source.close()  # twice is fine
try:
    source.read()
except SourceClosed as exc:
    print("read after close:", exc)
errors = []
for _ in range(20):  # a close from another thread while a batch is being read
    source = VideoFileSource(Path(sys.argv[1]))
    def batch(source=source):
        try:
            source.read_many(200)
        except SourceClosed:
            errors.append("closed")
    reader = threading.Thread(target=batch)
    reader.start()
    source.close()
    reader.join()
print("batches ended:", len(errors) <= 20)
"""


def test_a_closed_source_refuses_to_read_instead_of_crashing(tmp_path: Path) -> None:
    """A runtime `input_source` swap closes the old file while the chunk producer may still be
    reading it in a worker thread; PyAV crashes the process (SIGSEGV) on a closed container, so
    the source itself refuses. Run in a child process: a regression fails here, not the suite."""
    import subprocess
    import sys

    clip = write_clip(tmp_path / "clip.mp4")
    child = subprocess.run(
        [sys.executable, "-c", CLOSE_WHILE_READING, str(clip)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert f"read after close: {clip} is closed" in child.stdout
    assert "batches ended: True" in child.stdout
