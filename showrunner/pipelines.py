"""What showrunner knows offline about Scope's built-in pipelines (Scope 0.2.4).

Used for preflight checks and for turning seconds into transition steps before any server is
reached. A pipeline that is not listed here (a plugin) is allowed; checks that need its facts are
skipped and say so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineInfo:
    id: str
    wan: bool  # Wan 2.1 based: sizes must divide by 16, runs only on a GPU
    frames_per_chunk: int  # output frames per pipeline call (docs/scope.md §3.3)
    typical_fps: float  # a planning figure for seconds -> chunks; the show's `fps` overrides it
    default_mode: str
    supported_modes: tuple[str, ...]
    height: int
    width: int
    text_steps: tuple[int, ...]
    video_steps: tuple[int, ...]
    video_height: int
    video_width: int
    transition_method: str
    transition_steps: int  # default temporal interpolation steps in text mode
    supports_prompts: bool
    supports_lora: bool
    supports_vace: bool
    supports_cache_management: bool
    supports_kv_cache_bias: bool
    supports_quantization: bool

    def default_steps(self, mode: str) -> tuple[int, ...]:
        return self.video_steps if mode == "video" else self.text_steps

    def default_size(self, mode: str) -> tuple[int, int]:
        """(height, width) Scope uses when the show sets none."""
        if mode == "video" and mode != self.default_mode:
            return self.video_height, self.video_width
        return self.height, self.width


def _wan(pid: str, **kw: object) -> PipelineInfo:
    base: dict[str, object] = dict(
        id=pid,
        wan=True,
        frames_per_chunk=12,
        typical_fps=16.0,
        default_mode="text",
        supported_modes=("text", "video"),
        height=320,
        width=576,
        text_steps=(1000, 750, 500, 250),
        video_steps=(1000, 750),
        video_height=512,
        video_width=512,
        transition_method="slerp",
        transition_steps=0,
        supports_prompts=True,
        supports_lora=True,
        supports_vace=True,
        supports_cache_management=True,
        supports_kv_cache_bias=False,
        supports_quantization=True,
    )
    base.update(kw)
    return PipelineInfo(**base)  # type: ignore[arg-type]


def _plain(pid: str, mode: str, frames: int, usage_pre: bool = False) -> PipelineInfo:
    return PipelineInfo(
        id=pid,
        wan=False,
        frames_per_chunk=frames,
        typical_fps=24.0,
        default_mode=mode,
        supported_modes=(mode,),
        height=512,
        width=512,
        text_steps=(1000, 750, 500, 250),
        video_steps=(1000, 750),
        video_height=512,
        video_width=512,
        transition_method="slerp",
        transition_steps=0,
        supports_prompts=False,
        supports_lora=False,
        supports_vace=False,
        supports_cache_management=False,
        supports_kv_cache_bias=False,
        supports_quantization=False,
    )


PIPELINES: dict[str, PipelineInfo] = {
    p.id: p
    for p in (
        _wan("longlive"),
        _wan("reward-forcing"),
        _wan("memflow"),
        # krea: 512x512 when height/width are omitted although its schema says 320x576 (§8-D).
        _wan(
            "krea-realtime-video",
            height=512,
            width=512,
            video_height=256,
            video_width=256,
            transition_method="linear",
            transition_steps=4,
            supports_kv_cache_bias=True,
        ),
        _wan(
            "streamdiffusionv2",
            frames_per_chunk=4,
            default_mode="video",
            height=512,
            width=512,
            text_steps=(1000, 750),
            video_steps=(750, 250),
        ),
        _plain("passthrough", "video", 4),
        _plain("gray", "video", 1),
        _plain("controller-viz", "text", 1),
    )
}

WAN_SIZE_MULTIPLE = 16


def lookup(pipeline_id: str) -> PipelineInfo | None:
    return PIPELINES.get(pipeline_id)
