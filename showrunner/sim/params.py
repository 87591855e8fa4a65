"""Request models of the simulated Scope API, and the data-channel key families.

The HTTP paths validate like Scope's Pydantic models do (422 with a FastAPI-shaped `detail`
list); the data channel validates nothing (docs/scope.md §3.2).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Removed by the frame processor before an update reaches a pipeline (docs/scope.md §3.2 step 4).
CONTROL_KEYS = frozenset(
    {
        "quantize_mode",
        "lookahead_ms",
        "output_sinks",
        "input_source",
        "modulations",
        "beat_cache_reset_rate",
        "bpm",
        "beat_phase",
        "bar_position",
        "beat_count",
        "is_playing",
        "_quantized",
    }
)

# What `GET /session/parameters` never shows: the control keys the frame processor takes out,
# except `_quantized`, which only the data channel removes (docs/scope.md §10.1).
HIDDEN_KEYS = CONTROL_KEYS - {"_quantized"}

# Consumed by the chunk that applies them (docs/scope.md §3.3, §8-L).
ONE_SHOT_KEYS = (
    "reset_cache",
    "vace_ref_images",
    "first_frame_image",
    "last_frame_image",
    "images",
    "lora_scales",
)


class PromptItem(BaseModel):
    text: str
    weight: float = Field(1.0, ge=0)


class Transition(BaseModel):
    target_prompts: list[PromptItem]
    # 4 on the validated HTTP paths; the data channel's default is 0 (docs/scope.md §8-I).
    num_steps: int = Field(4, ge=0)
    temporal_interpolation_method: Literal["linear", "slerp"] = "linear"


class LoRAScale(BaseModel):
    path: str
    scale: float = Field(..., ge=-10, le=10)


class Parameters(BaseModel):
    """Scope's runtime `Parameters` model; unknown keys pass through."""

    model_config = ConfigDict(extra="allow")

    pipeline_ids: list[str] | None = None
    input_mode: Literal["text", "video"] | None = None
    prompts: list[PromptItem] | None = None
    prompt_interpolation_method: Literal["linear", "slerp"] = "linear"
    transition: Transition | None = None
    denoising_step_list: list[int] | None = None
    noise_scale: float | None = Field(None, ge=0, le=1)
    noise_controller: bool | None = None
    manage_cache: bool | None = None
    reset_cache: bool | None = None
    kv_cache_attention_bias: float | None = Field(None, ge=0.01, le=1.0)
    base_seed: int | None = Field(None, ge=0)
    lora_scales: list[LoRAScale] | None = None
    vace_ref_images: list[str] | None = None
    vace_use_input_video: bool | None = None
    vace_context_scale: float = Field(1.0, ge=0, le=2)
    first_frame_image: str | None = None
    last_frame_image: str | None = None
    images: list[str] | None = None
    paused: bool | None = None
    ctrl_input: dict[str, Any] | None = None
    quantize_mode: Literal["none", "beat", "bar", "2_bar", "4_bar"] | None = None
    lookahead_ms: int | None = Field(None, ge=0)
    recording: bool | None = None
    node_id: str | None = None


class PipelineEntry(BaseModel):
    node_id: str
    pipeline_id: str
    load_params: dict[str, Any] | None = None


class LoadRequest(BaseModel):
    pipeline_ids: list[str] | None = None
    load_params: dict[str, Any] | None = None
    pipelines: list[PipelineEntry] | None = None


class OfferRequest(BaseModel):
    sdp: str
    type: str
    initialParameters: Parameters | None = None
    user_id: str | None = None
    connection_id: str | None = None
    connection_info: dict[str, Any] | None = None


class IceCandidate(BaseModel):
    candidate: str
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None


class IceCandidates(BaseModel):
    candidates: list[IceCandidate]


class ModelDownload(BaseModel):
    pipeline_id: str


class LoRAInstall(BaseModel):
    url: str
    filename: str | None = None


class StartRequest(BaseModel):
    """Body of `POST /api/v1/session/start` (Scope mcp_router.py; docs/scope.md §2.8).

    Nothing but the shape is checked: `input_mode` is any string, `prompts` any dicts."""

    pipeline_id: str | None = None
    input_mode: str = "text"
    prompts: list[dict[str, Any]] | None = None
    input_source: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    node_parameters: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _pipeline_or_graph(self) -> StartRequest:
        if self.pipeline_id is None and self.graph is None:
            raise ValueError("Either pipeline_id or graph must be provided")
        return self


class GraphNode(BaseModel):
    id: str
    type: Literal["source", "pipeline", "sink", "record", "node"]
    pipeline_id: str | None = None
    node_type_id: str | None = None
    params: dict[str, Any] | None = None
    source_mode: str | None = None
    source_name: str | None = None


class GraphEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_node: str = Field(..., alias="from")
    from_port: str
    to_node: str
    to_port: str
    kind: Literal["stream", "parameter"] = "stream"


class GraphConfig(BaseModel):
    """A session graph (Scope graph_schema.py), checked like `validate_structure`."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]

    def errors(self) -> list[str]:
        found: list[str] = []
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                found.append(f"Duplicate node ID: '{node.id}'")
            seen.add(node.id)
        if not any(n.type == "sink" for n in self.nodes):
            found.append("Graph must have at least one sink node")
        for node in self.nodes:
            if node.type == "pipeline" and not node.pipeline_id:
                found.append(f"Pipeline node '{node.id}' is missing pipeline_id")
            if node.type == "node" and not node.node_type_id:
                found.append(f"Node '{node.id}' is missing node_type_id")
        for edge in self.edges:
            if edge.from_node not in seen:
                found.append(f"Edge references non-existent source node: '{edge.from_node}'")
            if edge.to_node not in seen:
                found.append(f"Edge references non-existent target node: '{edge.to_node}'")
        return found


class TempoEnable(BaseModel):
    """Body of `POST /api/v1/tempo/enable` (docs/scope.md §6)."""

    source: Literal["link", "midi_clock"]
    midi_device: str | None = None
    bpm: float = Field(120.0, ge=20.0, le=300.0)
    beats_per_bar: int = Field(4, ge=1, le=16)


class TempoSetTempo(BaseModel):
    bpm: float = Field(..., ge=20.0, le=300.0)


def dump_parameters(model: Parameters) -> dict[str, Any]:
    """What Scope forwards: `model_dump(exclude_none=True)`, so the defaults are always there."""
    return model.model_dump(exclude_none=True)


def validation_detail(error: ValidationError, where: str = "body") -> list[dict[str, Any]]:
    """FastAPI's 422 `detail` list for a Pydantic error, made JSON-safe."""
    detail = []
    for item in error.errors(include_url=False, include_context=False):
        entry = {k: v for k, v in item.items() if k != "ctx"}
        entry["loc"] = [where, *item["loc"]]
        detail.append(entry)
    # `input` may hold anything the client sent; keep only what survives JSON.
    result: list[dict[str, Any]] = json.loads(json.dumps(detail, default=str))
    return result
