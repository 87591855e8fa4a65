"""What one simulated streaming session believes: its parameter queue, merged state and chunks.

Pure state, no I/O: the WebRTC layer feeds data-channel messages in with `receive()` and calls
`step()` once per generated chunk. The rules follow docs/scope.md §3.2-§3.3, §4.2-§4.4 and §8.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from showrunner.sim.params import CONTROL_KEYS, HIDDEN_KEYS, ONE_SHOT_KEYS

log = logging.getLogger(__name__)

QUEUE_SIZE = 8  # PipelineProcessor's parameter queue (docs/scope.md §3.2 step 5)
DEFAULT_FPS = 30.0  # FrameProcessor.get_fps() without a pipeline (Scope frame_processor.py)
MAX_FPS = 60.0  # Scope caps the pipeline_fps it reports (pipeline_processor.py)


@dataclass(frozen=True)
class Stream:
    """The pipeline chain a session started with; later loads never change it (docs/scope.md §4.2)."""

    pipeline_ids: tuple[str, ...]
    pipeline_id: str
    height: int
    width: int
    fps: float
    frames_per_chunk: int
    vace: bool = False
    manages_cache: bool = True
    lora_adapters: tuple[dict[str, Any], ...] = ()
    chain: tuple[str, ...] = ()  # the registry pipeline id of each element, in chain order

    @property
    def chunk_interval(self) -> float:
        return self.frames_per_chunk / self.fps


@dataclass
class _Transition:
    record: dict[str, Any]
    source: list[dict[str, Any]]
    target: list[dict[str, Any]]
    num_steps: int
    step: int = 0


def normalize_prompts(prompts: Any) -> list[dict[str, Any]] | None:
    """Prompt items with weights summing to 1, or None when the value is unusable."""
    if not isinstance(prompts, list):
        return None
    items = [p for p in prompts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not items:
        return None
    weights = []
    for p in items:
        w = p.get("weight", 1.0)
        weights.append(max(float(w), 0.0) if isinstance(w, int | float) else 1.0)
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(items), float(len(items))
    return [{"text": p["text"], "weight": w / total} for p, w in zip(items, weights, strict=True)]


def blend(
    source: list[dict[str, Any]], target: list[dict[str, Any]], t: float
) -> list[dict[str, Any]]:
    """Prompt weights part way (t in 0..1) from `source` to `target`, merged by text."""
    weights: dict[str, float] = {}
    for p in source:
        weights[p["text"]] = weights.get(p["text"], 0.0) + p["weight"] * (1.0 - t)
    for p in target:
        weights[p["text"]] = weights.get(p["text"], 0.0) + p["weight"] * t
    return [{"text": k, "weight": w} for k, w in weights.items() if w > 1e-9]


@dataclass(eq=False)
class SimSession:
    """One WebRTC session of the simulator, as seen by its pipeline processor."""

    session_id: str
    initial_parameters: dict[str, Any]
    stream: Stream | None = None
    no_video_reason: str | None = None
    pipeline_ids: list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    received: dict[str, Any] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    cache_resets: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    lora_scales: dict[str, float] = field(default_factory=dict)
    vace_ref: str | None = None
    ctrl: dict[str, Any] = field(default_factory=lambda: {"button": [], "mouse": [0.0, 0.0]})
    frames_in: int = 0  # frames taken from an input (metrics `frames_in`)
    frames_sent: int = 0  # new frames sent (metrics `frames_out`)
    frames_repeated: int = 0  # the frozen frame sent again while paused (docs/scope.md §10)
    chunk: int = 0
    paused: bool = False
    closed: bool = False
    created_at: float = field(default_factory=time.time)
    input_source_type: str = ""  # a connected server-side input source, "" for none
    on_pause_change: Callable[[bool], None] | None = None
    # How many entries each of the lists above (applied ... transitions) keeps, the newest;
    # None keeps all (what tests read). A long-running simulator keeps a few only.
    history: int | None = None
    resets: int = 0  # cache resets so far (shown in the picture), however many are kept

    def __post_init__(self) -> None:
        initial = {k: v for k, v in self.initial_parameters.items() if k not in CONTROL_KEYS}
        self.pipeline_ids = initial.get("pipeline_ids")
        self.params = copy.deepcopy(initial)
        self.received = copy.deepcopy(
            {k: v for k, v in self.initial_parameters.items() if k not in HIDDEN_KEYS}
        )
        self.paused = bool(initial.get("paused", False))
        if self.stream is not None:
            self.lora_scales = {a["path"]: float(a["scale"]) for a in self.stream.lora_adapters}
        self._queue: deque[dict[str, Any]] = deque()
        self._consumed: list[str] = []
        self._transition: _Transition | None = None
        self._last_prompts: Any = None
        self._has_embedding = False

    @property
    def chunk_interval(self) -> float:
        """Seconds per generated chunk (frames_per_chunk / fps); 0 when there is no video."""
        return self.stream.chunk_interval if self.stream is not None else 0.0

    def metrics(self, now: float | None = None) -> dict[str, Any]:
        """This session's entry in `GET /api/v1/session/metrics` (docs/scope.md §2.7, §10).

        Like FrameProcessor.get_frame_stats(): `fps_in`/`fps_out` are averages since the
        start, `pipeline_fps` is capped at 60 (30 without a pipeline), and a CPU server with
        no input source reports `input_source_type: ""`.
        """
        elapsed = (time.time() if now is None else now) - self.created_at
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_sent,
            "elapsed_seconds": elapsed,
            "fps_in": self.frames_in / elapsed if self.frames_in > 0 and elapsed > 0 else 0,
            "fps_out": self.frames_sent / elapsed if self.frames_sent > 0 and elapsed > 0 else 0,
            "pipeline_fps": min(self.stream.fps, MAX_FPS) if self.stream is not None else DEFAULT_FPS,
            "output_sinks": {},
            "input_source_enabled": bool(self.input_source_type),
            "input_source_type": self.input_source_type,
            "relay_mode": False,
        }

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def transition(self) -> dict[str, Any] | None:
        """The running transition: its record plus `step` done so far, or None."""
        if self._transition is None:
            return None
        return {**self._transition.record, "step": self._transition.step}

    # -- input ---------------------------------------------------------------------------

    def receive(self, message: Any) -> None:
        """Take one decoded data-channel message (or HTTP broadcast) the way Scope does."""
        if not isinstance(message, dict):
            log.error("parameter update is not a JSON object, dropped: %r", message)
            return
        self.received.update({k: v for k, v in message.items() if k not in HIDDEN_KEYS})
        update = {k: v for k, v in message.items() if k not in CONTROL_KEYS}
        if "paused" in update:
            # Applied to the output track at once, not through the queue (docs/scope.md §3.2 step 2).
            paused = bool(update.pop("paused"))
            self.params["paused"] = paused
            if paused != self.paused:
                self.paused = paused
                if self.on_pause_change is not None:
                    self.on_pause_change(paused)
        if not update:
            return
        if len(self._queue) >= QUEUE_SIZE:
            # Scope drops the update being put, i.e. the newest one.
            log.warning("parameter queue full (%d), dropping update", QUEUE_SIZE)
            self._keep(self.dropped, update)
            return
        self._queue.append(update)

    # -- one chunk -----------------------------------------------------------------------

    def step(self, now: float | None = None) -> dict[str, Any] | None:
        """Generate one chunk: apply at most one queued update; return it (or None)."""
        self.chunk += 1
        for key in self._consumed:
            self.params.pop(key, None)
        self._consumed = []
        if self.chunk == 1:
            self._reset_cache("init")
            self._apply(copy.deepcopy(self.params))
        update = self._queue.popleft() if self._queue else None
        if update is not None:
            self._apply(update)
            self._keep(self.applied, {"chunk": self.chunk, "at": time.time() if now is None else now,
                                      "update": update})
        self._advance_transition()
        self._has_embedding = True
        return update

    def _apply(self, update: dict[str, Any]) -> None:
        previous_steps = self.params.get("denoising_step_list")
        previous_mode = self.params.get("input_mode")
        self.params.update(update)
        self._consumed = [k for k in ONE_SHOT_KEYS if k in update]

        manage = bool(self.params.get("manage_cache", True)) and (
            self.stream is None or self.stream.manages_cache
        )
        reasons = []
        if update.get("reset_cache"):
            reasons.append("reset_cache")
        if self.chunk > 1 and "input_mode" in update and update["input_mode"] != previous_mode:
            reasons.append("input_mode")
        if manage and self.chunk > 1 and update.get("denoising_step_list", previous_steps) != (
            previous_steps
        ):
            reasons.append("denoising_step_list")
        if "lora_scales" in update:
            self._apply_lora_scales(update["lora_scales"])
            if manage:
                reasons.append("lora_scales")

        prompts_changed = False
        if "prompts" in update and update["prompts"] != self._last_prompts:
            # The pipeline compares against the last prompts it *received* (docs/scope.md §8-G).
            self._last_prompts = copy.deepcopy(update["prompts"])
            prompts_changed = normalize_prompts(update["prompts"]) is not None
        transition = update.get("transition")
        if (
            prompts_changed
            and not isinstance(transition, dict)
            and manage
            and self.chunk > 1
            and self.params.get("input_mode") == "video"
        ):
            reasons.append("prompts")
        for reason in reasons:
            self._reset_cache(reason)

        if isinstance(transition, dict):
            self._start_transition(transition)
        elif prompts_changed:
            self._cancel_transition()
            self.prompts = normalize_prompts(update["prompts"]) or self.prompts

        refs = update.get("vace_ref_images")
        if refs and isinstance(refs, list) and self.stream is not None and self.stream.vace:
            self.vace_ref = str(refs[-1])
        ctrl = update.get("ctrl_input")
        if isinstance(ctrl, dict):
            self._apply_ctrl(ctrl)

    def _reset_cache(self, reason: str) -> None:
        self._keep(self.cache_resets, {"chunk": self.chunk, "reason": reason})
        self.resets += 1
        self._has_embedding = False
        # A reference image only lives on through the KV cache (docs/scope.md §4.4).
        self.vace_ref = None

    def _keep(self, history: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        history.append(entry)
        if self.history is not None and len(history) > self.history:
            del history[: len(history) - self.history]

    def _apply_lora_scales(self, scales: Any) -> None:
        if self.stream is None or not isinstance(scales, list):
            return
        for item in scales:
            if not isinstance(item, dict):
                continue
            for adapter in self.stream.lora_adapters:
                if item.get("path") not in (adapter["path"], adapter.get("adapter_name")):
                    continue
                # Weights merged at load time cannot be rescaled (docs/scope.md §4.3).
                if adapter["merge_mode"] == "runtime_peft" and isinstance(
                    item.get("scale"), int | float
                ):
                    self.lora_scales[adapter["path"]] = float(item["scale"])

    def _apply_ctrl(self, ctrl: dict[str, Any]) -> None:
        if isinstance(ctrl.get("button"), list):
            self.ctrl["button"] = [str(b) for b in ctrl["button"]]
        mouse = ctrl.get("mouse")
        if isinstance(mouse, list) and len(mouse) == 2:
            try:
                self.ctrl["mouse"] = [self.ctrl["mouse"][i] + float(mouse[i]) for i in (0, 1)]
            except (TypeError, ValueError):
                log.warning("bad ctrl_input.mouse ignored: %r", mouse)

    def _start_transition(self, transition: dict[str, Any]) -> None:
        target = normalize_prompts(transition.get("target_prompts"))
        if target is None:
            log.error("transition without usable target_prompts ignored")
            self.params.pop("transition", None)
            return
        self._cancel_transition()
        steps = transition.get("num_steps", 0)  # 0 (a cut) on the data channel (docs/scope.md §8-I)
        num_steps = steps if isinstance(steps, int) and steps > 0 else 0
        record: dict[str, Any] = {
            "start_chunk": self.chunk,
            "end_chunk": None,
            "num_steps": num_steps,
            "target_prompts": target,
            "cancelled": False,
        }
        self._keep(self.transitions, record)
        if num_steps == 0 or not self._has_embedding or not self.prompts:
            # Nothing to interpolate from: snap (docs/scope.md §3.3).
            record["end_chunk"] = self.chunk
            self.prompts = target
            self.params.pop("transition", None)
            return
        self._transition = _Transition(record, self.prompts, target, num_steps)

    def _advance_transition(self) -> None:
        active = self._transition
        if active is None:
            return
        active.step += 1
        if active.step >= active.num_steps:
            self.prompts = active.target
            active.record["end_chunk"] = self.chunk
            self._transition = None
            # Self-clearing, and it never touches the persistent `prompts` (docs/scope.md §8-G).
            self.params.pop("transition", None)
        else:
            self.prompts = blend(active.source, active.target, active.step / active.num_steps)

    def _cancel_transition(self) -> None:
        if self._transition is not None:
            self._transition.record["end_chunk"] = self.chunk
            self._transition.record["cancelled"] = True
            self._transition = None
