"""The pipelines the simulator pretends to have, read from the packaged `pipelines.json`.

Runtime defaults (`pipelines.json` → `runtime`), each pipeline on its typical hardware:

- controller-viz: 1 frame per call at 60 fps. docs/scope.md §10: 50–60 frames/s on a CPU and
  `/session/metrics` `pipeline_fps` 60.0 (Scope caps its measured rate at 60).
- passthrough: chunks of 4 (docs/scope.md §7, `input_size=4`); gray: chunks of 1. Their rate
  follows the input: 30 fps (Scope's default) without one, the file's own rate with a
  `video_file` input source (docs/scope.md §10).
- longlive, krea-realtime-video, reward-forcing, memflow: 12 frames per call (3 latent
  frames × VAE 4); streamdiffusionv2: 4 (docs/scope.md §3.3). The contract has no measured GPU
  rate; 16 fps is Wan 2.1's output rate.

`Simulator(fps=...)` (`showrunner sim --fps`) sets one rate for every pipeline and
`load_time` one load time; `None` keeps these defaults (loads: 2 s Wan, 0.02 s weight-free).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PipelineInfo:
    """What the simulator needs to know to load, pace and size one pipeline."""

    id: str
    needs_weights: bool
    frames_per_chunk: int  # output frames per pipeline call (docs/scope.md §3.3, §7)
    fps: float  # frames per second on typical hardware (table above)
    load_time: float  # seconds, when the simulator's load_time is None
    default_height: int
    default_width: int
    min_dimension: int
    supports_prompts: bool
    supports_lora: bool
    supports_vace: bool
    supports_cache_management: bool
    default_mode: str
    estimated_vram_gb: float | None = None


@cache
def _document() -> dict[str, Any]:
    text = resources.files("showrunner.sim").joinpath("pipelines.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def schemas() -> dict[str, Any]:
    """The body of `GET /api/v1/pipelines/schemas` (a fresh copy the caller may change)."""
    return {"pipelines": copy.deepcopy(_document()["pipelines"])}


def pipeline_ids() -> list[str]:
    """Every pipeline id the simulator knows."""
    return sorted(_document()["pipelines"])


def info(pipeline_id: str) -> PipelineInfo | None:
    """Facts about one pipeline, or None when the id is unknown."""
    meta = _document()["pipelines"].get(pipeline_id)
    run = _document()["runtime"].get(pipeline_id)
    if meta is None or run is None:
        return None
    return PipelineInfo(
        id=pipeline_id,
        needs_weights=bool(run["needs_weights"]),
        frames_per_chunk=int(run["frames_per_chunk"]),
        fps=float(run["fps"]),
        load_time=float(run["load_time"]),
        default_height=int(run["default_height"]),
        default_width=int(run["default_width"]),
        min_dimension=int(meta["min_dimension"]),
        supports_prompts=bool(meta["supports_prompts"]),
        supports_lora=bool(meta["supports_lora"]),
        supports_vace=bool(meta["supports_vace"]),
        supports_cache_management=bool(meta["supports_cache_management"]),
        default_mode=str(meta["default_mode"]),
        estimated_vram_gb=(
            float(meta["estimated_vram_gb"]) if meta.get("estimated_vram_gb") is not None else None
        ),
    )
