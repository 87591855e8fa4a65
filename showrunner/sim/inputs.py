"""Server-side input sources: a `video_file` decoded with PyAV, looping (docs/scope.md §3.3, §7, §10).

Scope's VideoFileInputSource (core/inputs/video_file.py) opens the file by path, else by name
or stem among the video assets, decodes it at the file's own rate and seeks back to the start
at the end. A source that cannot be opened is only logged: the session then has no source.
Only passthrough and gray show the input frames (`INPUT_PIPELINES`); the simulator's other
pipelines keep drawing their own picture.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
from PIL import Image

from showrunner.sim.assets import ASSET_TYPES

log = logging.getLogger(__name__)

VIDEO_FILE = "video_file"
DEFAULT_RATE = 30.0  # when a file does not say its rate


def _gray(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")


# What a pipeline makes of each input frame (docs/scope.md §7): passthrough returns it unchanged,
# gray turns it to grayscale.
INPUT_PIPELINES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "passthrough": lambda image: image,
    "gray": _gray,
}


def source_config(initial: dict[str, Any]) -> dict[str, Any] | None:
    """The `video_file` source a session starts with, or None.

    Either `initialParameters.input_source` (`{"enabled": true, "source_type": "video_file",
    "source_name": …}`) or, as in docs/scope.md §10, a graph source node with
    `source_mode: "video_file"` (graph source nodes win, like Scope's FrameProcessor.start).
    """
    graph = initial.get("graph")
    if isinstance(graph, dict) and isinstance(graph.get("nodes"), list):
        for node in graph["nodes"]:
            if isinstance(node, dict) and node.get("type") == "source":
                if node.get("source_mode") == VIDEO_FILE and node.get("source_name"):
                    return {"enabled": True, "source_type": VIDEO_FILE,
                            "source_name": str(node["source_name"])}
                return None
    config = initial.get("input_source")
    if isinstance(config, dict) and config.get("enabled"):
        return config
    return None


def resolve_video(name: str, assets_dir: Path) -> Path | None:
    """A path that is a file, else a video asset whose name or stem matches."""
    path = Path(name)
    if path.is_file():
        return path
    if not assets_dir.is_dir():
        return None
    stem = Path(name).stem
    for candidate in sorted(assets_dir.rglob("*")):
        if ASSET_TYPES.get(candidate.suffix.lower()) != "video" or not candidate.is_file():
            continue
        if candidate.name == name or candidate.stem == stem:
            return candidate
    return None


class SourceClosed(EOFError):
    """A read after `close` (PyAV would crash the process on a closed container)."""


class VideoFileSource:
    """A video file decoded frame by frame, from the start again at its end.

    Reads and `close` may come from different worker threads (a runtime swap closes the old
    file while a chunk is being read); the lock orders them and a closed source refuses to read.
    """

    source_type = VIDEO_FILE

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._container: Any = av.open(str(path))
        try:
            streams = self._container.streams.video
            if not streams:
                raise ValueError(f"no video stream in {path}")
            self._stream: Any = streams[0]
            rate = self._stream.average_rate or self._stream.guessed_rate
            self.fps = float(rate) if rate else DEFAULT_RATE
            self.width = int(self._stream.width)
            self.height = int(self._stream.height)
            self._frames: Iterator[Any] = self._container.decode(self._stream)
        except Exception:
            self._container.close()
            raise

    def read(self) -> Image.Image:
        """The next frame as RGB; after the last one, the first again."""
        with self._lock:
            return self._read()

    def _read(self) -> Image.Image:
        if self._closed:
            raise SourceClosed(f"{self.path} is closed")
        try:
            frame = next(self._frames)
        except StopIteration:
            self._container.seek(0)
            self._frames = self._container.decode(self._stream)
            frame = next(self._frames, None)
            if frame is None:
                raise EOFError(f"no frame in {self.path}") from None
        image: Image.Image = frame.to_image()
        return image.convert("RGB") if image.mode != "RGB" else image

    def read_many(self, count: int) -> list[Image.Image]:
        """`count` frames in one go (a close waits for the batch)."""
        with self._lock:
            return [self._read() for _ in range(count)]

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._container.close()


def open_source(config: dict[str, Any], assets_dir: Path) -> VideoFileSource | None:
    """Open the source a config names; None (logged, like Scope) when it cannot be opened."""
    kind = config.get("source_type", "")
    name = config.get("source_name", "")
    if kind != VIDEO_FILE:
        log.error("input source %r is not available in the simulator", kind)
        return None
    path = resolve_video(str(name), assets_dir) if name else None
    if path is None:
        log.error("Video file not found: %s", name)
        return None
    try:
        source = VideoFileSource(path)
    except Exception as exc:
        log.error("Error opening video file %r: %s", str(name), exc)
        return None
    log.info("Input source enabled: %s -> %r (%dx%d, %.3g fps)",
             VIDEO_FILE, str(name), source.width, source.height, source.fps)
    return source
