"""The show-file model: what a show can ask of a Scope session, validated.

Times are stored as float seconds. Strings such as ``"1:30"``, ``"1m30s"``, ``"8 bars"`` and
``"16 beats"`` are converted while validating; bars and beats need the show's ``bpm``, which the
loader passes in the validation context (``{"bpm": …, "beats_per_bar": …}``). A time written in
bars or beats is a :class:`MusicalTime`: its seconds at the show's ``bpm`` (the nominal timing),
which also keeps the count of beats, so a live tempo can stretch it.

Scene values *track*, as on a lighting console: a value set in a scene stays in force in the
following scenes (in file order) until a later scene changes it. A jump (loop, goto, seek) sends
the full resolved state of its target, so playback never depends on the path taken.

Checks that need more than one field (names that must exist, ranges that depend on the pipeline)
live in :func:`semantic_problems`, which returns locations in the same form as pydantic errors so
the loader can point at the text the user wrote.
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from collections.abc import Container, Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from showrunner import pipelines

Loc = tuple[str | int, ...]  # a key path into the show data: ("scenes", 2, "transition")
Problem = tuple[Loc, str]
KEY = "[key]"  # ends a Problem's key path that is about the mapping key itself, not its value

# ---------------------------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------------------------

_UNIT_SECONDS = {"h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_UNITS = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|h|m|s)")
_UNITS_FULL = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*(?:ms|min|h|m|s))+\s*$")
_MUSICAL = re.compile(r"^(\d+(?:\.\d+)?)\s*(bars?|beats?)$")
_TIME_HELP = "a time: seconds (12.5), 'mm:ss', '1m30s', '500ms', '8 bars' or '16 beats'"
_MAX_SECONDS = 10 * 365 * 24 * 3600.0

TIME_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {
            "type": "string",
            "pattern": r"^\s*(\d+(\.\d+)?|(\d+:)?\d+:\d+(\.\d+)?|(\d+(\.\d+)?\s*(ms|min|h|m|s)\s*)+"
            r"|\d+(\.\d+)?\s*(bars?|beats?))\s*$",
        },
    ],
    "description": "Seconds as a number, or 'mm:ss', 'h:mm:ss', '1m30s', '500ms', "
    "'8 bars' or '16 beats' (bars and beats need the show's bpm).",
}


class MusicalTime(float):
    """A time written in bars or beats: its value is the seconds at the show's `bpm` (the
    nominal timing); `beats` keeps what was written, in beats (quarter notes)."""

    __slots__ = ("beats",)
    beats: float

    def __new__(cls, seconds: float, beats: float) -> MusicalTime:
        made = super().__new__(cls, seconds)
        made.beats = beats
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (MusicalTime, (float(self), self.beats))

    def __repr__(self) -> str:
        return f"MusicalTime({float(self)!r}, beats={self.beats!r})"


def is_musical(value: object) -> bool:
    """`value` is a time written in bars or beats (it follows a live tempo)."""
    return isinstance(value, MusicalTime)


def parse_time(value: object, bpm: float | None = None, beats_per_bar: int = 4) -> float:
    """Turn a written time into seconds; raises ValueError with a message for the user."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected {_TIME_HELP}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # a huge YAML integer; float() cannot hold it
            raise ValueError("is longer than ten years") from None
    elif isinstance(value, str):
        seconds = _parse_time_text(value.strip().lower(), value, bpm, beats_per_bar)
    else:
        raise ValueError(f"expected {_TIME_HELP}")
    if seconds != seconds or seconds < 0:
        raise ValueError("must be a time >= 0")
    if seconds > _MAX_SECONDS:
        raise ValueError("is longer than ten years")
    return seconds


def _parse_time_text(text: str, original: str, bpm: float | None, beats_per_bar: int) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    if clock := _CLOCK.match(text):
        hours, minutes, seconds = clock.groups()
        if hours is None and float(seconds) >= 60:
            raise ValueError(f"{original!r}: seconds must be below 60 in 'mm:ss'")
        if hours is not None and (int(minutes) >= 60 or float(seconds) >= 60):
            raise ValueError(f"{original!r}: minutes and seconds must be below 60 in 'h:mm:ss'")
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    if _UNITS_FULL.match(text):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _UNITS.findall(text))
    if musical := _MUSICAL.match(text):
        if not bpm:
            raise ValueError(f"{original!r} needs `bpm` at the top of the show")
        count = float(musical.group(1))
        beats = count * beats_per_bar if musical.group(2).startswith("bar") else count
        return MusicalTime(beats * 60.0 / bpm, beats)
    raise ValueError(f"{original!r} is not {_TIME_HELP}")


def _time_validator(value: object, info: ValidationInfo) -> float:
    ctx = info.context if isinstance(info.context, dict) else {}
    bpm = ctx.get("bpm")
    if not bpm and ctx.get("bpm_invalid") and isinstance(value, str):
        # The bpm error is reported on its own; say why bars cannot be converted here.
        if _MUSICAL.match(value.strip().lower()):
            raise ValueError(f"{value!r} cannot be converted because `bpm` is invalid")
    return parse_time(value, bpm, ctx.get("beats_per_bar") or 4)


def _time_wrap(value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> float:
    """Seconds as `_time_validator` makes them, checked by the field's constraints; a
    `MusicalTime` stays one (pydantic would make it a plain float)."""
    seconds = _time_validator(value, info)
    checked: float = handler(seconds)
    return seconds if isinstance(seconds, MusicalTime) else checked


Seconds = Annotated[float, WrapValidator(_time_wrap), WithJsonSchema(TIME_JSON_SCHEMA)]


_QUANTIZE = re.compile(r"^(?:(off|beat|bar)|(\d+)\s*(bars?|beats?))$")
QUANTIZE_HELP = "'beat', 'bar', 'N bars', 'N beats' or 'off'"


def _quantize(value: object) -> str:
    if not isinstance(value, str) or not _QUANTIZE.match(value.strip().lower()):
        raise ValueError(f"expected {QUANTIZE_HELP}")
    text = value.strip().lower()
    match = _QUANTIZE.match(text)
    if match is not None and match.group(2) is not None and int(match.group(2)) < 1:
        raise ValueError("must be at least 1 bar or beat")
    return text


Quantize = Annotated[
    str,
    BeforeValidator(_quantize),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*(off|beat|bar|\d+\s*(bars?|beats?))\s*$",
            "description": "The grid a change lands on: 'beat', 'bar', 'N bars', 'N beats'; 'off'.",
        }
    ),
]


def quantize_beats(text: str | None, beats_per_bar: int) -> float | None:
    """The grid of a `quantize` value in beats (None: off or absent)."""
    if text is None:
        return None
    match = _QUANTIZE.match(text)
    if match is None or match.group(1) == "off":
        return None
    if match.group(1) == "beat":
        return 1.0
    if match.group(1) == "bar":
        return float(beats_per_bar)
    count = float(match.group(2))
    return count * beats_per_bar if match.group(3).startswith("bar") else count


class _OrShorthand:
    """JSON Schema for a model that may also be written in a short form (a string, a number)."""

    def __init__(self, *short: dict[str, Any], description: str | None = None) -> None:
        self.short = short
        self.description = description

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = {"anyOf": [*self.short, handler(core_schema)]}
        if self.description:
            schema["description"] = self.description
        return schema


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


class Model(BaseModel):
    """Frozen, and unknown keys are errors (the loader adds a "did you mean" hint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Method = Literal["linear", "slerp"]
Ease = Literal["step", "linear", "ease-in", "ease-out", "ease-in-out", "cubic"]
MergeMode = Literal["permanent_merge", "runtime_peft"]
InputMode = Literal["text", "video"]


class Prompt(Model):
    """One weighted prompt. Scope normalises weights to sum 1, so only ratios matter."""

    text: str = Field(description="The prompt text (T5 keeps the first 512 tokens).")
    weight: float = Field(default=1.0, ge=0, le=1e6, description="Relative weight, >= 0.")


def _prompts_shorthand(value: object) -> object:
    if isinstance(value, str):
        return [{"text": value}]
    if isinstance(value, list):
        return [{"text": v} if isinstance(v, str) else v for v in value]
    if isinstance(value, tuple | dict | Prompt):
        return value  # pydantic says what is wrong with these
    raise ValueError("expected a prompt (text) or a list of prompts")


PromptItem = Annotated[Prompt, _OrShorthand({"type": "string"})]
Prompts = Annotated[
    list[PromptItem],
    BeforeValidator(_prompts_shorthand),
    _OrShorthand(
        {"type": "string"},
        description="A prompt, or a list of prompts (strings or {text, weight}) blended by weight.",
    ),
]


class Transition(Model):
    """How the picture moves into new prompts: over a duration or a number of chunks, or a cut."""

    duration: Seconds | None = Field(
        default=None, description="Blend time; converted to chunk steps with the pipeline's chunk rate."
    )
    steps: int | None = Field(default=None, ge=0, le=1000, description="Blend length in chunks; 0 = cut.")
    method: Method | None = Field(
        default=None, description="Temporal interpolation; the pipeline default when absent."
    )

    @model_validator(mode="after")
    def _one_length(self) -> Transition:
        if self.duration is not None and self.steps is not None:
            raise ValueError("give either `duration` or `steps`, not both")
        return self

    @property
    def is_cut(self) -> bool:
        return self.steps == 0 or self.duration == 0


def _transition_shorthand(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "cut":
        return {"steps": 0}
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"duration": value}
    return value


TransitionSpec = Annotated[
    Transition,
    BeforeValidator(_transition_shorthand),
    _OrShorthand(
        {"const": "cut"},
        *TIME_JSON_SCHEMA["anyOf"],
        description="'cut', a duration (e.g. '4s', '2 bars'), or {duration|steps, method}.",
    ),
]


def _steps_descending(value: list[int] | None) -> list[int] | None:
    if value is not None:
        if not value:
            raise ValueError("needs at least one step")
        if any(b >= a for a, b in itertools.pairwise(value)):
            raise ValueError("must be strictly descending, e.g. [1000, 750, 500, 250]")
    return value


DenoisingSteps = Annotated[
    list[Annotated[int, Field(ge=0, le=1000)]] | None,
    Field(description="Denoising step list, strictly descending within 0-1000."),
]


class RuntimeParams(Model):
    """Values Scope reads every chunk; they track from scene to scene until changed."""

    denoising_steps: DenoisingSteps = None
    noise_scale: float | None = Field(default=None, ge=0, le=1, description="Video mode only; 0-1.")
    noise_controller: bool | None = Field(default=None, description="Video mode only.")
    manage_cache: bool | None = Field(
        default=None, description="Automatic cache resets; LoRA-scale and step changes become cuts."
    )
    kv_cache_attention_bias: float | None = Field(
        default=None, ge=0.01, le=1.0, description="Reliance on past frames (krea); 0.01-1."
    )
    prompt_interpolation: Method | None = Field(
        default=None,
        description="Spatial blend of several prompts (Scope 0.2.4: no effect in the Wan pipelines).",
    )
    vace_context_scale: float | None = Field(default=None, ge=0, le=2, description="VACE strength, 0-2.")

    _check_steps = field_validator("denoising_steps")(_steps_descending)


def _pipeline_chain(value: object) -> object:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return value
    raise ValueError("expected a pipeline id or a list of pipeline ids")


PipelineChain = Annotated[
    list[str],
    BeforeValidator(_pipeline_chain),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ],
            "description": "A pipeline id, or an ordered chain [preprocessors…, main, "
            "postprocessors…].",
        }
    ),
    Field(min_length=1),
]


class LoraLoad(Model):
    """A LoRA loaded with the pipeline (adding/removing one means a reload)."""

    lora: str = Field(description="Name of a LoRA under `assets.loras`.")
    scale: float = Field(default=1.0, ge=-10, le=10, description="Scale at load, -10 to 10; 0 = off.")
    merge_mode: MergeMode | None = Field(
        default=None, description="Overrides `lora_merge_mode`; runtime_peft allows runtime scales."
    )


class LoadParams(Model):
    """Pipeline load parameters; changing any of them reloads the pipeline and reconnects."""

    height: int | None = Field(
        default=None, ge=1, le=4096, description="Output height in pixels (Wan pipelines: divisible by 16)."
    )
    width: int | None = Field(
        default=None, ge=1, le=4096, description="Output width in pixels (Wan pipelines: divisible by 16)."
    )
    base_seed: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="Random seed (Scope's `base_seed`; default 42)."
    )
    vae_type: Literal["wan", "lightvae", "tae", "lighttae"] | None = Field(
        default=None, description="VAE used to decode frames (Scope default 'wan')."
    )
    quantization: Literal["fp8_e4m3fn", "none"] | None = Field(
        default=None, description="'fp8_e4m3fn' or 'none'."
    )
    vace_enabled: bool | None = Field(default=None, description="Load VACE weights (Scope default true).")
    loras: list[LoraLoad] | None = Field(
        default=None, description="LoRAs loaded with the pipeline; changing this list reloads."
    )
    lora_merge_mode: MergeMode | None = Field(
        default=None, description="Default merge mode (Scope default permanent_merge)."
    )


class OutputSink(Model):
    """Scope sends its picture to another app (NDI, Spout or Syphon)."""

    enabled: bool = True
    name: str = Field(default="showrunner", min_length=1, description="Name other apps see.")


class InputSource(Model):
    """A server-side video input for video mode (§3.3 `input_source`)."""

    enabled: bool = True
    source_type: str = Field(
        description="video_file, ndi, spout, syphon or a plugin source", min_length=1
    )
    source_name: str = Field(min_length=1, description="File path or asset name, or sender name.")
    flip_vertical: bool | None = None


class Defaults(RuntimeParams):
    """The starting state of the show."""

    pipeline: PipelineChain = Field(
        default_factory=lambda: ["longlive"], description="Pipeline of the show (default longlive)."
    )
    load: LoadParams = Field(
        default_factory=LoadParams, description="Pipeline load settings (a change reloads)."
    )
    input_mode: InputMode | None = Field(default=None, description="The pipeline's default mode if absent.")
    transition: TransitionSpec | None = Field(
        default=None, description="Transition into scenes that name none (pipeline default if absent)."
    )
    output_sinks: dict[Literal["ndi", "spout", "syphon"], OutputSink] = Field(
        default_factory=dict, description="Send Scope's picture to NDI / Spout / Syphon."
    )
    input_source: InputSource | None = None


class Auth(Model):
    """An auth header for a Scope behind a proxy; the secret stays in the environment."""

    env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable that holds the token (never the token).",
    )
    header: str = Field(default="Authorization", min_length=1)
    scheme: str | None = Field(default="Bearer", description="Prefix before the token; null for none.")


class Timeouts(Model):
    connect: Seconds = Field(default=5.0, gt=0, description="Reaching the server.")
    request: Seconds = Field(default=10.0, gt=0, description="One HTTP request.")
    load: Seconds = Field(default=300.0, gt=0, description="Pipeline load, polled until loaded.")
    offer: Seconds = Field(default=15.0, gt=0, description="WebRTC offer/answer and connection.")
    first_frame: Seconds = Field(default=10.0, gt=0, description="The first video frame after connecting.")


_ICE_URL = r"^(stun|stuns|turn|turns):\S+$"
IceUrl = Annotated[str, Field(pattern=_ICE_URL)]


class IceServerSpec(Model):
    """A STUN or TURN server for the WebRTC connection (WebRTC's RTCIceServer)."""

    urls: Annotated[
        list[IceUrl],
        BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
        _OrShorthand({"type": "string", "pattern": _ICE_URL}),
    ] = Field(min_length=1, description="stun:, turn: or turns: URLs of one server (or one URL).")
    username: str | None = Field(default=None, description="TURN user (else SHOWRUNNER_TURN_USERNAME).")
    credential: str | None = Field(
        default=None, description="TURN password (else SHOWRUNNER_TURN_CREDENTIAL; better there)."
    )


Transport = Literal["webrtc", "headless"]


class ScopeTarget(Model):
    url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="Scope server URL; absent = the embedded simulator.",
    )
    auth: Auth | None = Field(default=None, description="Auth header for a Scope behind a proxy.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Seconds before giving up.")
    ice_servers: Literal["auto", "server", "none"] | list[IceServerSpec] = Field(
        default="auto",
        description="ICE servers of the WebRTC connection: auto (none on loopback, else the "
        "server's), server, none, or a list.",
    )
    ice_transport_policy: Literal["all", "relay"] = Field(
        default="all", description="relay: connect through the TURN server only."
    )
    transport: Transport = Field(
        default="webrtc",
        description="How the show reaches Scope: webrtc (a session whose video comes back) or "
        "headless (Scope's session without WebRTC, updates over HTTP, no video back).",
    )


class ImageAsset(Model):
    file: str | None = Field(default=None, description="Local file, relative to the show file; uploaded.")
    server_path: str | None = Field(default=None, description="A path that already exists on the server.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageAsset:
        if (self.file is None) == (self.server_path is None):
            raise ValueError("give exactly one of `file` or `server_path`")
        return self


class LoraAsset(Model):
    path: str | None = Field(default=None, description="Absolute path on the server.")
    filename: str | None = Field(default=None, description="File name, resolved with GET /api/v1/loras.")

    @model_validator(mode="after")
    def _exactly_one(self) -> LoraAsset:
        if (self.path is None) == (self.filename is None):
            raise ValueError("give exactly one of `path` or `filename`")
        return self


Image = Annotated[
    ImageAsset,
    BeforeValidator(lambda v: {"file": v} if isinstance(v, str) else v),
    _OrShorthand({"type": "string"}, description="A local file, or {file|server_path}."),
]
Lora = Annotated[
    LoraAsset,
    BeforeValidator(
        lambda v: ({"path": v} if v.startswith("/") else {"filename": v})
        if isinstance(v, str)
        else v
    ),
    _OrShorthand({"type": "string"}, description="A server path (/…), a filename, or {path|filename}."),
]

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
Name = Annotated[str, Field(pattern=_NAME, max_length=200)]


class Assets(Model):
    images: dict[Name, Image] = Field(
        default_factory=dict, description="Images by name (VACE references, first/last frames)."
    )
    loras: dict[Name, Lora] = Field(default_factory=dict, description="LoRA files by name.")


class Keyframe(Model):
    """A value at a time inside the scene; values between keyframes follow `ease`."""

    at: Seconds = Field(description="Offset from the scene's start.")
    value: float = Field(description="The value reached at `at`.")
    ease: Ease = Field(default="linear", description="Curve from the previous keyframe to this one.")


KEYFRAME_TARGET = re.compile(
    r"^(noise_scale|vace_context_scale|kv_cache_attention_bias|lora\.(?P<lora>[^.]+)"
    r"|prompt\.(?P<prompt>\d+)\.weight)$"
)
KEYFRAME_RANGES: dict[str, tuple[float, float]] = {
    "noise_scale": (0.0, 1.0),
    "vace_context_scale": (0.0, 2.0),
    "kv_cache_attention_bias": (0.01, 1.0),
    "lora": (-10.0, 10.0),
    "prompt": (0.0, 1e6),
}


class TravelStep(Model):
    """One stop of prompt travel inside a scene (A → B → C)."""

    at: Seconds = Field(description="Offset from the scene's start.")
    prompts: Prompts
    transition: TransitionSpec | None = Field(default=None, description="How to move into these prompts.")


class Vace(Model):
    refs: list[Name] | None = Field(
        default=None, description="Image assets used as VACE references; [] clears them."
    )
    context_scale: float | None = Field(default=None, ge=0, le=2, description="VACE strength, 0-2.")
    use_input_video: bool | None = Field(
        default=None, description="Video mode: the input video conditions VACE."
    )


class Goto(Model):
    """Jump to another scene when this one ends."""

    scene: Name = Field(description="Name of the scene to jump to.")
    times: int | None = Field(
        default=None, ge=1, description="How many times to jump; absent = every time (a loop)."
    )


class After(Model):
    """Start when another scene ends."""

    scene: Name = Field(description="Name of an earlier scene.")
    offset: Seconds = Field(default=0.0, description="Extra time after that scene's end.")


class Scene(RuntimeParams):
    """One look of the show and how it starts."""

    name: Name = Field(description="Unique scene name (letters, digits, _ . -); cues use it.")
    notes: str | None = Field(default=None, description="Free text for the operator and the report.")
    # timing
    duration: Seconds | None = Field(default=None, description="How long the scene plays.")
    at: Seconds | None = Field(
        default=None, description="Start time from the show start (or from the last cue)."
    )
    after: Annotated[
        After,
        BeforeValidator(lambda v: {"scene": v} if isinstance(v, str) else v),
        _OrShorthand({"type": "string"}),
    ] | None = Field(default=None, description="Start when another scene ends, plus an offset.")
    cue: bool | Name | None = Field(
        default=None, description="true/'go': wait for GO; a name: wait for that named cue (or GO)."
    )
    pre_wait: Seconds = Field(default=0.0, description="Delay between the trigger and the start.")
    quantize: Quantize | None = Field(
        default=None,
        description="GO, cues and GOTO into this scene land on this grid (overrides the show's).",
    )
    # picture
    prompts: Prompts | None = Field(default=None, description="What to generate; tracks to later scenes.")
    transition: TransitionSpec | None = Field(
        default=None, description="How the picture moves into this scene's prompts."
    )
    travel: list[TravelStep] = Field(
        default_factory=list, description="Prompt changes inside the scene, by offset."
    )
    keyframes: dict[str, list[Keyframe]] = Field(
        default_factory=dict,
        description="noise_scale, vace_context_scale, kv_cache_attention_bias, lora.<name>, "
        "prompt.<index>.weight -> keyframes.",
    )
    pipeline: PipelineChain | None = Field(
        default=None, description="Switch pipeline (a reload and reconnect: a gap in the output)."
    )
    load: LoadParams | None = Field(default=None, description="Overrides merged over the defaults.")
    input_mode: InputMode | None = Field(default=None, description="text or video (a change reconnects).")
    input_source: InputSource | None = Field(
        default=None, description="Server-side video input from this scene on (video mode only)."
    )
    vace: Vace | None = Field(default=None, description="VACE reference images and strength.")
    first_frame: Name | None = Field(default=None, description="Image asset the clip starts from.")
    last_frame: Name | None = Field(default=None, description="Image asset the clip heads towards.")
    loras: dict[Name, Annotated[float, Field(ge=-10, le=10)]] = Field(
        default_factory=dict, description="Runtime LoRA scales by asset name."
    )
    reset_cache: bool = Field(default=False, description="A hard cut at the start of this scene.")
    paused: bool | None = Field(default=None, description="Freeze the output on its last frame.")
    goto: Annotated[
        Goto,
        BeforeValidator(lambda v: {"scene": v} if isinstance(v, str) else v),
        _OrShorthand({"type": "string"}),
    ] | None = Field(default=None, description="After this scene, jump to another.")
    modulate: dict[str, ModulationSpec] = Field(
        default_factory=dict,
        description="Runtime value (as keyframes) -> input mapping; tracks to later scenes, "
        "'off' ends it.",
    )

    @model_validator(mode="after")
    def _timing(self) -> Scene:
        if self.at is not None and self.after is not None:
            raise ValueError("give either `at` or `after`, not both")
        if self.cue not in (None, False) and (self.at is not None or self.after is not None):
            raise ValueError("a cue scene starts on its trigger; drop `at`/`after`")
        return self

    @property
    def cue_name(self) -> str | None:
        """None for a timed scene, "go" for GO, else the named cue."""
        if self.cue in (None, False):
            return None
        if self.cue is True:
            return "go"
        return str(self.cue).lower() if str(self.cue).lower() == "go" else str(self.cue)


class Section(Model):
    """Scenes from `start` to `end` that play `repeat` times in all."""

    name: Name = Field(description="Unique section name.")
    start: Name = Field(description="First scene of the section.")
    end: Name = Field(description="Last scene of the section.")
    repeat: int = Field(default=2, ge=1, le=100000, description="Times the section plays in all.")


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = r"^([01]?\d|2[0-3]):[0-5]\d$|^24:00$"


class Window(Model):
    days: list[Day] | Literal["daily", "weekdays", "weekends"] = Field(
        default="daily", description="'daily', 'weekdays', 'weekends' or a list such as [mon, fri]."
    )
    start: str = Field(pattern=_HHMM, description="Opening time, HH:MM.")
    end: str = Field(pattern=_HHMM, description="Closing time, HH:MM (before start = past midnight).")

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("`start` and `end` are the same time")
        return self

    @property
    def weekdays(self) -> tuple[int, ...]:
        """Days as Python weekday numbers (Monday = 0)."""
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        if self.days == "daily":
            return tuple(range(7))
        if self.days == "weekdays":
            return (0, 1, 2, 3, 4)
        if self.days == "weekends":
            return (5, 6)
        return tuple(sorted({names.index(d) for d in self.days}))


class Hours(Model):
    """Opening hours of an installation; outside them the show pauses or plays a holding scene."""

    timezone: str | None = Field(default=None, description="IANA zone, e.g. Europe/Berlin; local if absent.")
    open: list[Window] = Field(min_length=1, description="Opening windows (any one opens).")
    closed: Literal["pause"] | Name = Field(
        default="pause", description="'pause', or the name of a scene played only while closed."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


# ---------------------------------------------------------------------------------------------
# Live inputs, MIDI controls and modulation
# ---------------------------------------------------------------------------------------------

_BEATS = re.compile(r"^(\d+(?:\.\d+)?)\s*(bars?|beats?)?$")
BEATS_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(bars?|beats?)?\s*$"},
    ],
    "description": "A length in beats (a number, '4 beats') or bars ('2 bars').",
}


def _beats_validator(value: object, info: ValidationInfo) -> float:
    ctx = info.context if isinstance(info.context, dict) else {}
    per_bar = ctx.get("beats_per_bar") or 4
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a number of beats, or '4 beats' or '2 bars'")
    if isinstance(value, str):
        match = _BEATS.match(value.strip().lower())
        if not match:
            raise ValueError(f"{value!r} is not a number of beats, or '4 beats' or '2 bars'")
        count = float(match.group(1))
        beats = count * per_bar if (match.group(2) or "").startswith("bar") else count
    else:
        beats = float(value)
    if not 0 < beats <= 100000:
        raise ValueError("must be more than 0 beats (and at most 100000)")
    return beats


Beats = Annotated[float, BeforeValidator(_beats_validator), WithJsonSchema(BEATS_JSON_SCHEMA)]
LfoShape = Literal["sine", "triangle", "saw", "ramp-down", "square", "random"]
Curve = Literal["linear", "ease-in", "ease-out", "ease-in-out"]


class Lfo(Model):
    """A beat LFO: a 0-1 wave locked to the tempo, one cycle every `every` beats."""

    shape: LfoShape = Field(default="sine", description="sine, triangle, saw, ramp-down, square, random.")
    every: Beats = Field(description="Cycle length: beats (4, '4 beats') or bars ('2 bars').")
    phase: float = Field(default=0.0, ge=0, lt=1, description="Offset into the cycle, 0-1.")


class LiveInput(Model):
    """A named live input, 0-1: set over OSC (/showrunner/input/<name>) or a MIDI control, or a
    beat LFO."""

    lfo: Lfo | None = Field(default=None, description="A beat LFO; absent: OSC and MIDI set it.")
    value: float = Field(default=0.0, ge=0, le=1, description="The value before anything sets it.")


class Modulation(Model):
    """Map an input (0-1) to a runtime value: through `curve` onto `range`, smoothed."""

    input: Name = Field(description="Name of an input under `inputs`.")
    range: tuple[float, float] = Field(description="[value at input 0, value at input 1].")
    curve: Curve = Field(default="linear", description="linear, ease-in, ease-out, ease-in-out.")
    attack: Seconds = Field(default=0.0, description="Time to follow a rising input (0: at once).")
    release: Seconds = Field(default=0.0, description="Time to follow a falling input (0: at once).")


def _modulation_shorthand(value: object) -> object:
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    if isinstance(value, str):
        raise ValueError("expected {input, range, ...} or 'off'")
    return value


ModulationSpec = Annotated[
    Modulation | None,
    BeforeValidator(_modulation_shorthand),
    _OrShorthand({"const": "off"}, description="A mapping {input, range, curve, attack, release}, "
                 "or 'off' to switch the one in force off."),
]

MidiCommand = Literal["go", "back", "hold", "resume", "panic"]


class Control(Model):
    """One control of a MIDI device: a note, a CC or a program change, and what it does."""

    note: int | None = Field(default=None, ge=0, le=127, description="Note number (a pad or key).")
    cc: int | None = Field(default=None, ge=0, le=127, description="Controller number (fader, knob, button).")
    program: int | None = Field(default=None, ge=0, le=127, description="Program change number.")
    channel: int | None = Field(default=None, ge=1, le=16, description="MIDI channel 1-16; absent: any.")
    do: MidiCommand | None = Field(default=None, description="go, back, hold, resume or panic.")
    goto: Name | None = Field(default=None, description="Jump to this scene.")
    cue: Name | None = Field(default=None, description="Fire this named cue.")
    input: Name | None = Field(default=None, description="A CC sets this input (value / 127).")

    @model_validator(mode="after")
    def _one_each(self) -> Control:
        if sum(v is not None for v in (self.note, self.cc, self.program)) != 1:
            raise ValueError("give exactly one of `note`, `cc` or `program`")
        if sum(v is not None for v in (self.do, self.goto, self.cue, self.input)) != 1:
            raise ValueError("give exactly one of `do`, `goto`, `cue` or `input`")
        if self.input is not None and self.cc is None:
            raise ValueError("only a `cc` can set an input")
        return self

    @property
    def key(self) -> tuple[str, int, int | None]:
        """(kind, number, channel): what the control listens to."""
        if self.note is not None:
            return ("note", self.note, self.channel)
        if self.cc is not None:
            return ("cc", self.cc, self.channel)
        return ("program", self.program or 0, self.channel)


class Midi(Model):
    """The MIDI controller the show listens to."""

    device: str = Field(min_length=1, description="Part of the device's name (case-insensitive).")
    api: Literal["alsa", "jack", "coremidi", "winmm"] | None = Field(
        default=None, description="MIDI system; absent: the platform's default."
    )


# Running an installation: GPU cost, lifecycle hooks, alerts
# ---------------------------------------------------------------------------------------------


class Cost(Model):
    """What the GPU behind one Scope server costs; `report` prints hours and cost from it."""

    per_hour: float = Field(gt=0, le=1_000_000, description="Price of one GPU hour, e.g. 0.95.")
    currency: str = Field(default="USD", pattern=r"^[A-Za-z]{1,8}$", description="Shown beside prices.")


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
_URL = r"^https?://[^\s/]+(/.*)?$"


class HttpCall(Model):
    """One HTTP request a hook makes; ``${NAME}`` in the url, headers and json is read from the
    environment when the hook runs (the secret stays out of the show)."""

    url: str = Field(pattern=_URL, description="http(s) URL; ${NAME} is an environment variable.")
    method: HttpMethod = Field(default="POST", description="GET, POST, PUT, PATCH or DELETE.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    json_body: Any = Field(default=None, alias="json", description="A JSON body to send.")
    retries: int = Field(default=0, ge=0, le=10, description="Tries again after a failure, this many times.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Hook(Model):
    """A command or an HTTP call run at a moment of the installation's day."""

    command: list[str] | str | None = Field(
        default=None,
        description="argv list (no shell), or one string run by /bin/sh when `shell: true`.",
    )
    shell: bool = Field(default=False, description="Run `command` (a string) through /bin/sh.")
    http: HttpCall | None = Field(default=None, description="An HTTP request instead of a command.")
    timeout: Seconds = Field(default=60.0, gt=0, description="Killed or given up after this long.")

    @model_validator(mode="after")
    def _one_action(self) -> Hook:
        if (self.command is None) == (self.http is None):
            raise ValueError("a hook needs exactly one of `command` and `http`")
        if isinstance(self.command, list) and not self.command:
            raise ValueError("`command` is an empty list")
        if isinstance(self.command, str) and not self.shell:
            raise ValueError("`command` as one string needs `shell: true` (or write an argv list)")
        if isinstance(self.command, list) and self.shell:
            raise ValueError("`shell: true` takes `command` as one string")
        return self


class BeforeOpen(Hook):
    lead: Seconds = Field(
        default=0.0, ge=0, le=86400, description="Runs this long before opening, e.g. '10 min'."
    )


class Hooks(Model):
    """Commands or HTTP calls run by `showrunner run` (never by check or report)."""

    before_open: BeforeOpen | None = Field(default=None, description="`lead` before opening (start the GPU).")
    after_close: Hook | None = Field(default=None, description="At closing time (stop the GPU).")
    on_outage: Hook | None = Field(default=None, description="Once when the picture is lost.")
    on_recover: Hook | None = Field(default=None, description="Once when the picture is back.")

    def named(self) -> dict[str, Hook | None]:
        """Each hook by its key, in this order."""
        return {"before_open": self.before_open, "after_close": self.after_close,
                "on_outage": self.on_outage, "on_recover": self.on_recover}


class Alerts(Model):
    """Outage and recovery messages posted to a chat webhook (Slack, Mattermost, Discord)."""

    webhook: str | None = Field(default=None, pattern=_URL, description="URL the messages are POSTed to.")
    after: Seconds = Field(default=30.0, gt=0, le=86400, description="No picture this long is an outage.")



TempoSourceName = Literal["fixed", "link", "scope", "midi", "tap", "osc"]


class Tempo(Model):
    """Where the show's tempo comes from while it plays (the `bpm` above is where it starts)."""

    source: TempoSourceName = Field(
        default="fixed",
        description="fixed: the show's bpm; link: Ableton Link; scope: Scope's own tempo sync; "
        "midi: MIDI clock; tap: tapped; osc: set by /showrunner/bpm.",
    )
    scope_follows: Literal["link", "midi_clock"] = Field(
        default="link", description="With source scope: what the Scope server follows."
    )
    tap_reset: float = Field(
        default=2.0, gt=0, le=10, description="Seconds without a tap that start a new tap count."
    )
    midi_clock: str | None = Field(
        default=None, min_length=1,
        description="With source midi: part of the name of the device sending MIDI clock "
        "(absent: `midi.device`).",
    )


Loop = Annotated[
    bool | Literal["forever"] | int,
    WithJsonSchema(
        {
            "anyOf": [{"type": "boolean"}, {"const": "forever"}, {"type": "integer", "minimum": 1}],
            "description": "false: play once; true or 'forever': loop; N: play N times.",
        }
    ),
]


class Show(Model):
    """A show file."""

    title: str = Field(min_length=1, description="Name of the show (reports, operator page).")
    bpm: float | None = Field(
        default=None, gt=0, le=999, description="Tempo; needed for times written in bars or beats."
    )
    beats_per_bar: int = Field(default=4, ge=1, le=16, description="Beats in one bar (default 4).")
    quantize: Quantize | None = Field(
        default=None, description="GO, cues, GOTO and timed starts land on the next beat or bar."
    )
    tempo: Tempo = Field(
        default_factory=Tempo, description="Where the tempo comes from while the show plays."
    )
    fps: float | None = Field(
        default=None, gt=0, le=240, description="Assumed pipeline fps for seconds -> chunks."
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Template variables.")
    include: dict[str, str] = Field(
        default_factory=dict, description="Variable name -> YAML file (e.g. a prompt library)."
    )
    scope: ScopeTarget = Field(
        default_factory=ScopeTarget, description="The Scope server (absent: the simulator)."
    )
    defaults: Defaults = Field(
        default_factory=Defaults, description="Pipeline, load settings and values at the start."
    )
    assets: Assets = Field(default_factory=Assets, description="Images and LoRAs, by name.")
    scenes: list[Scene] = Field(min_length=1, description="The scenes in playing order.")
    sections: list[Section] = Field(
        default_factory=list, description="Runs of scenes that play several times."
    )
    loop: Loop = False
    end: Literal["hold", "stop"] = Field(
        default="hold", description="At the end: keep the last look until quit, or stop and exit."
    )
    hours: Hours | None = Field(
        default=None, description="Opening hours of an installation; the show plays only inside them."
    )
    reload_at: Literal["now", "boundary"] = Field(
        default="now", description="Hot reload: apply edits to the playing scene now or at its end."
    )
    inputs: dict[Name, LiveInput] = Field(
        default_factory=dict, description="Named live inputs (OSC, MIDI, beat LFOs) for `modulate`."
    )
    midi: Midi | None = Field(default=None, description="The MIDI controller the show listens to.")
    controls: list[Control] = Field(
        default_factory=list, description="MIDI notes, CCs and program changes -> commands and inputs."
    )
    cost: Cost | None = Field(default=None, description="GPU price per hour, for the report.")
    hooks: Hooks = Field(
        default_factory=Hooks, description="Commands or HTTP calls at opening, closing and outages."
    )
    alerts: Alerts = Field(
        default_factory=Alerts, description="Where outage messages go, and after how long."
    )

    @field_validator("loop")
    @classmethod
    def _loop(cls, value: bool | str | int) -> bool | str | int:
        if not isinstance(value, bool) and isinstance(value, int) and value < 1:
            raise ValueError("loop count must be >= 1")
        return value

    @property
    def loop_count(self) -> int | None:
        """How many times the show plays: None = forever."""
        if self.loop is True or self.loop == "forever":
            return None
        if self.loop is False:
            return 1
        return int(self.loop)

    def scene_index(self, name: str) -> int:
        for i, scene in enumerate(self.scenes):
            if scene.name == name:
                return i
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Cross-field checks
# ---------------------------------------------------------------------------------------------


def semantic_problems(show: Show, checked: Container[int] = ()) -> list[Problem]:
    """Errors that involve several fields, with the location of the offending value.

    `checked`: ids of scenes already found without problems against the same assets (a reload
    that re-uses them): only their references to other scenes are checked again.
    """
    return (
        list(_names(show)) + list(_scene_refs(show, checked)) + list(_sizes(show))
        + list(_prompt_lists(show, checked))
        + list(_live_problems(show))
        + list(_quantize_needs_bpm(show))
        + transport_problems(show, show.scope.transport)
    )


def _quantize_needs_bpm(show: Show) -> Iterator[Problem]:
    if show.bpm is not None:
        return
    if show.quantize not in (None, "off"):
        yield ("quantize",), f"{show.quantize!r} needs `bpm` at the top of the show"
    for i, scene in enumerate(show.scenes):
        if scene.quantize not in (None, "off"):
            yield ("scenes", i, "quantize"), f"{scene.quantize!r} needs `bpm` at the top of the show"


def transport_problems(show: Show, transport: Transport) -> list[Problem]:
    """What `show` needs that `transport` cannot do (docs/scope.md §2.8): the headless session
    runs one pipeline, so a chain of pipelines needs WebRTC."""
    if transport != "headless":
        return []
    written: list[tuple[Loc, list[str]]] = [(("defaults", "pipeline"), show.defaults.pipeline)]
    written += [(("scenes", i, "pipeline"), s.pipeline) for i, s in enumerate(show.scenes) if s.pipeline]
    return [
        (loc, f"the chain {'+'.join(chain)} cannot play over the headless transport: Scope's "
              "headless session runs one pipeline; use transport webrtc for a chain")
        for loc, chain in written
        if len(chain) > 1
    ]


def _names(show: Show) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, scene in enumerate(show.scenes):
        if scene.name in seen:
            yield ("scenes", i, "name"), (
                f"duplicate scene name {scene.name!r} (first used by scenes[{seen[scene.name]}])"
            )
        else:
            seen[scene.name] = i
    section_names: set[str] = set()
    for i, section in enumerate(show.sections):
        if section.name in section_names:
            yield ("sections", i, "name"), f"duplicate section name {section.name!r}"
        section_names.add(section.name)
        for key in ("start", "end"):
            target = getattr(section, key)
            if target not in seen:
                yield ("sections", i, key), _unknown("scene", target, seen)
        if section.start in seen and section.end in seen and seen[section.start] > seen[section.end]:
            yield ("sections", i, "end"), f"scene {section.end!r} comes before {section.start!r}"
    if show.hours and show.hours.closed != "pause" and show.hours.closed not in seen:
        yield ("hours", "closed"), _unknown("scene", show.hours.closed, seen)
    for i, lora in enumerate(show.defaults.load.loras or []):
        if lora.lora not in show.assets.loras:
            yield ("defaults", "load", "loras", i, "lora"), _unknown(
                "LoRA asset", lora.lora, show.assets.loras
            )


def _scene_refs(show: Show, checked: Container[int]) -> Iterator[Problem]:
    names = {s.name: i for i, s in enumerate(show.scenes)}
    for i, scene in enumerate(show.scenes):
        if scene.after is None and scene.goto is None and id(scene) in checked:
            continue
        base: Loc = ("scenes", i)
        if scene.after is not None:
            if scene.after.scene not in names:
                yield (*base, "after", "scene"), _unknown("scene", scene.after.scene, names)
            elif names[scene.after.scene] >= i:
                yield (*base, "after", "scene"), (
                    f"scene {scene.after.scene!r} must come before {scene.name!r}"
                )
        if scene.goto is not None and scene.goto.scene not in names:
            yield (*base, "goto", "scene"), _unknown("scene", scene.goto.scene, names)
        if id(scene) in checked:
            continue
        if scene.vace is not None or scene.first_frame is not None or \
                scene.last_frame is not None or scene.loras or scene.load is not None:
            yield from _asset_refs(show, base, scene)
        if scene.keyframes:
            yield from _keyframe_problems(show, i, scene)
        if scene.travel:
            yield from _travel_problems(i, scene)


def _asset_refs(show: Show, base: Loc, scene: Scene) -> Iterator[Problem]:
    images, loras = show.assets.images, show.assets.loras
    refs = scene.vace.refs if scene.vace and scene.vace.refs else []
    for j, ref in enumerate(refs):
        if ref not in images:
            yield (*base, "vace", "refs", j), _unknown("image asset", ref, images)
    for key in ("first_frame", "last_frame"):
        ref = getattr(scene, key)
        if ref is not None and ref not in images:
            yield (*base, key), _unknown("image asset", ref, images)
    for name in scene.loras:
        if name not in loras:
            yield (*base, "loras", name), _unknown("LoRA asset", name, loras)
    for j, lora in enumerate((scene.load.loras or []) if scene.load else []):
        if lora.lora not in loras:
            yield (*base, "load", "loras", j, "lora"), _unknown("LoRA asset", lora.lora, loras)


def _keyframe_problems(show: Show, index: int, scene: Scene) -> Iterator[Problem]:
    for target, frames in scene.keyframes.items():
        loc: Loc = ("scenes", index, "keyframes", target)
        match = KEYFRAME_TARGET.match(target)
        if not match:
            yield (*loc, KEY), (
                f"unknown keyframe target {target!r}; use noise_scale, vace_context_scale, "
                "kv_cache_attention_bias, lora.<name> or prompt.<index>.weight"
            )
            continue
        kind = "lora" if match.group("lora") else "prompt" if match.group("prompt") else target
        if match.group("lora") and match.group("lora") not in show.assets.loras:
            yield (*loc, KEY), _unknown("LoRA asset", match.group("lora"), show.assets.loras)
        if not frames:
            yield loc, "needs at least one keyframe"
        low, high = KEYFRAME_RANGES[kind]
        last = -1.0
        for k, frame in enumerate(frames):
            if not low <= frame.value <= high:
                yield (*loc, k, "value"), f"must be between {low:g} and {high:g}"
            if frame.at < last:
                yield (*loc, k, "at"), "keyframes must be in time order"
            if scene.duration is not None and frame.at > scene.duration:
                yield (*loc, k, "at"), "is after the end of the scene"
            last = frame.at


def _travel_problems(index: int, scene: Scene) -> Iterator[Problem]:
    last = 0.0
    for k, step in enumerate(scene.travel):
        loc: Loc = ("scenes", index, "travel", k, "at")
        if step.at < last:
            yield loc, "travel stops must be in time order"
        if scene.duration is not None and step.at > scene.duration:
            yield loc, "is after the end of the scene"
        last = step.at


def _prompt_lists(show: Show, checked: Container[int]) -> Iterator[Problem]:
    """Scope normalises weights to sum 1 and has no safe meaning for an empty prompt list."""
    for i, scene in enumerate(show.scenes):
        if id(scene) in checked:
            continue
        prompts = scene.prompts
        if prompts is not None and not (prompts and all(p.text.strip() for p in prompts)
                                        and any(p.weight for p in prompts)):
            yield from _prompt_problems(prompts, ("scenes", i, "prompts"))
        for k, step in enumerate(scene.travel):
            yield from _prompt_problems(step.prompts, ("scenes", i, "travel", k, "prompts"))


def _prompt_problems(prompts: list[Prompt], loc: Loc) -> Iterator[Problem]:
    if not prompts:
        yield loc, "is an empty prompt list; give at least one prompt"
        return
    for j, prompt in enumerate(prompts):
        if not prompt.text.strip():
            yield (*loc, j, "text"), "prompt text is empty"
    if all(p.weight == 0 for p in prompts):
        yield loc, "all prompt weights are 0; at least one must be above 0"


def _sizes(show: Show) -> Iterator[Problem]:
    """Wan pipelines refuse sizes that do not divide by 16 (the load would end in `error`)."""
    chain = show.defaults.pipeline
    load = show.defaults.load
    yield from _size_problems(chain, load, ("defaults", "load"))
    for i, scene in enumerate(show.scenes):
        chain = scene.pipeline or chain
        if scene.load is not None:
            merged = load.model_copy(update=scene.load.model_dump(exclude_none=True))
            yield from _size_problems(chain, merged, ("scenes", i, "load"), scene.load)
            load = merged


def _size_problems(
    chain: list[str], load: LoadParams, loc: Loc, written: LoadParams | None = None
) -> Iterator[Problem]:
    wan = [p for p in chain if (info := pipelines.lookup(p)) is not None and info.wan]
    if not wan:
        return
    for key in ("height", "width"):
        value = getattr(load, key)
        if written is not None and getattr(written, key) is None:
            continue
        if value is not None and value % pipelines.WAN_SIZE_MULTIPLE:
            yield (*loc, key), (
                f"{value} is not divisible by {pipelines.WAN_SIZE_MULTIPLE} ({wan[0]} needs it)"
            )


def _unknown(what: str, name: str, known: dict[str, Any] | set[str]) -> str:
    import difflib

    hint = difflib.get_close_matches(name, list(known), n=1)
    suffix = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"unknown {what} {name!r}{suffix}"


def _live_problems(show: Show) -> Iterator[Problem]:
    """Controls and modulations name inputs, scenes and LoRAs that exist, with values in range."""
    names = {s.name for s in show.scenes} if show.controls else set()
    cues = {c for s in show.scenes if (c := s.cue_name) is not None} if show.controls else set()
    seen: dict[tuple[str, int, int | None], int] = {}
    for i, control in enumerate(show.controls):
        loc: Loc = ("controls", i)
        key = control.key
        clash = [j for k, j in seen.items()
                 if k[:2] == key[:2] and (k[2] is None or key[2] is None or k[2] == key[2])]
        if clash:
            yield (*loc, key[0]), f"{key[0]} {key[1]} is already mapped by controls[{clash[0]}]"
        seen[key] = i
        if control.goto is not None and control.goto not in names:
            yield (*loc, "goto"), _unknown("scene", control.goto, names)
        if control.cue is not None and control.cue not in cues:
            yield (*loc, "cue"), _unknown("cue", control.cue, cues)
        if control.input is not None:
            if control.input not in show.inputs:
                yield (*loc, "input"), _unknown("input", control.input, show.inputs)
            elif show.inputs[control.input].lfo is not None:
                yield (*loc, "input"), f"input {control.input!r} is an LFO; a control cannot set it"
    for i, scene in enumerate(show.scenes):
        for target, mapping in scene.modulate.items():
            loc = ("scenes", i, "modulate", target)
            match = KEYFRAME_TARGET.match(target)
            if not match:
                yield (*loc, KEY), (
                    f"unknown modulation target {target!r}; use noise_scale, vace_context_scale, "
                    "kv_cache_attention_bias, lora.<name> or prompt.<index>.weight"
                )
                continue
            if match.group("lora") and match.group("lora") not in show.assets.loras:
                yield (*loc, KEY), _unknown("LoRA asset", match.group("lora"), show.assets.loras)
            if mapping is None:
                continue
            if mapping.input not in show.inputs:
                yield (*loc, "input"), _unknown("input", mapping.input, show.inputs)
            kind = "lora" if match.group("lora") else "prompt" if match.group("prompt") else target
            low, high = KEYFRAME_RANGES[kind]
            for k, value in enumerate(mapping.range):
                if not low <= value <= high:
                    yield (*loc, "range", k), f"must be between {low:g} and {high:g}"
