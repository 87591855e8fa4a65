"""Value tracking: what the show has written so far, in file order, and the wire values it makes.

Like a lighting console's tracked values, a scene keeps every value an earlier scene (or the
defaults) wrote unless it writes its own. :class:`Written` is that running set before keyframes
move anything; the compiler turns it into a :class:`~showrunner.plan.state.State` per scene.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from showrunner import pipelines
from showrunner.plan.notes import Note
from showrunner.plan.state import (
    EMPTY,
    LORA_PREFIX,
    PARAM_KEYS,
    State,
    WeightedPrompt,
    load_scale,
    main_pipeline,
    merge_params,
)
from showrunner.plan.timeline import Curve
from showrunner.show.model import KEYFRAME_TARGET, LoadParams, Scene, Show

__all__ = [
    "Touched",
    "Written",
    "initial_written",
    "keyframe_curves",
    "load_params_of",
    "next_written",
    "runtime_defaults",
    "touched",
    "with_defaults",
    "with_load_scales",
    "written_after",
]

# Key order of `load_params` as sent (POST /api/v1/pipeline/load, the offer's load).
_LOAD_PARAMS_KEY_ORDER = (
    "height",
    "width",
    "base_seed",
    "vae_type",
    "quantization",
    "vace_enabled",
    "loras",
    "lora_merge_mode",
)
_RUNTIME_FIELDS = frozenset(
    {
        "denoising_steps",
        "noise_scale",
        "noise_controller",
        "manage_cache",
        "kv_cache_attention_bias",
        "vace_context_scale",
        "prompt_interpolation",
        "vace",
        "paused",
    }
)
_SAME_NAME_PARAMS = (
    "noise_scale",
    "noise_controller",
    "manage_cache",
    "kv_cache_attention_bias",
    "vace_context_scale",
)


# Scope's runtime defaults (docs/scope.md §2.4, §3.3) of the persistent keys that do not depend on
# the pipeline. `denoising_step_list` is the pipeline's (pipelines.py); `kv_cache_attention_bias`
# is krea's schema default there and the generator's neutral 1.0 elsewhere.
_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "noise_scale": 0.7,
        "noise_controller": True,
        "manage_cache": True,
        "vace_context_scale": 1.0,
        "prompt_interpolation_method": "linear",
        "vace_use_input_video": True,
        "paused": False,
    }
)
_KV_BIAS_KREA = 0.3
_KV_BIAS_NEUTRAL = 1.0
_PARAM_TARGETS = ("noise_scale", "vace_context_scale", "kv_cache_attention_bias")


class Touched(NamedTuple):
    """The tracked values a show sets anywhere (defaults, scenes, keyframes, LoRA fades).

    Every state carries all of them, at Scope's default where the show has not set one yet, so
    a jump into any scene puts each one back explicitly (a value set later in the show and
    still on the air would otherwise stay).
    """

    params: frozenset[str]  # wire keys (PARAM_KEYS)
    loras: tuple[str, ...]  # LoRA names whose runtime scale the show sets


def touched(show: Show) -> Touched:
    """What `show` touches, anywhere in the file."""
    keys: set[str] = set(_runtime_params(show.defaults))
    loras: dict[str, None] = {}
    for s in show.scenes:
        if s.model_fields_set & _RUNTIME_FIELDS:
            keys.update(_runtime_params(s))
        loras.update(dict.fromkeys(s.loras))
        for target in s.keyframes:
            if target in _PARAM_TARGETS:
                keys.add(target)
            elif target.startswith("lora."):
                loras[target[5:]] = None
                keys.add("manage_cache")  # a fade turns it off (actions.lora_fade)
    return Touched(frozenset(keys), tuple(loras))


def scene_touches(s: Scene) -> tuple[frozenset[str], tuple[str, ...]]:
    """What one scene adds to `touched` (wire keys, LoRA names in order): two scenes that add
    the same leave a show's `touched` as it was."""
    keys = set(_runtime_params(s)) if s.model_fields_set & _RUNTIME_FIELDS else set()
    loras = dict.fromkeys(s.loras)
    for target in s.keyframes:
        if target in _PARAM_TARGETS:
            keys.add(target)
        elif target.startswith("lora."):
            loras[target[5:]] = None
            keys.add("manage_cache")
    return frozenset(keys), tuple(loras)


def runtime_defaults(keys: frozenset[str], chain: tuple[str, ...], mode: str) -> Mapping[str, Any]:
    """Scope's default of each of `keys` on `chain` in `mode` (unknown ones are left out)."""
    info = pipelines.lookup(main_pipeline(chain))
    out: dict[str, Any] = {}
    for key in PARAM_KEYS:
        if key not in keys:
            continue
        if key == "denoising_step_list":
            if info is not None:
                out[key] = list(info.default_steps(mode))
        elif key == "kv_cache_attention_bias":
            if info is not None:
                out[key] = _KV_BIAS_KREA if info.supports_kv_cache_bias else _KV_BIAS_NEUTRAL
        else:
            out[key] = _DEFAULTS[key]
    return MappingProxyType(out)


def with_defaults(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> Mapping[str, Any]:
    """`params` with the defaults of the keys it has not set (the same object when none)."""
    missing = {k: v for k, v in defaults.items() if k not in params}
    return merge_params(params, missing) if missing else params


def with_load_scales(
    scales: Mapping[str, float], names: tuple[str, ...], load_params: Mapping[str, Any]
) -> Mapping[str, float]:
    """`scales` with the load scale of each touched, loaded LoRA it has not set."""
    if not names:
        return scales
    missing: dict[str, float] = {}
    for lora in load_params.get("loras") or ():
        name = str(lora.get("path", ""))[len(LORA_PREFIX) :]
        if name in names and name not in scales:
            missing[name] = float(lora.get("scale", 1.0))
    return MappingProxyType({**scales, **missing}) if missing else scales


def written_after(
    written: Mapping[str, Any], out: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Mapping[str, Any]:
    """What stays written after a scene that ends in `out` (defaults it never moved are not
    written: a later pipeline brings its own)."""
    kept = {k: v for k, v in out.items() if k in written or k not in defaults or defaults[k] != v}
    if kept.keys() == written.keys() and all(written[k] == v for k, v in kept.items()):
        return written
    return MappingProxyType(kept)


class Written(NamedTuple):
    """Values as the show has written them so far (file order), before keyframes move them."""

    chain: tuple[str, ...]
    load: LoadParams
    mode: str | None  # None = the main pipeline's default mode
    prompts: tuple[WeightedPrompt, ...]
    params: Mapping[str, Any]
    loras: Mapping[str, float]
    refs: tuple[str, ...]
    source: Mapping[str, Any] | None = None  # input_source, as written (sent in video mode only)


def _runtime_params(values: Any) -> dict[str, Any]:
    """Wire keys a RuntimeParams-like object (defaults or a scene) sets."""
    out: dict[str, Any] = {}
    steps = getattr(values, "denoising_steps", None)
    if steps is not None:
        out["denoising_step_list"] = list(steps)
    for key in _SAME_NAME_PARAMS:
        value = getattr(values, key, None)
        if value is not None:
            out[key] = value
    if getattr(values, "prompt_interpolation", None) is not None:
        out["prompt_interpolation_method"] = values.prompt_interpolation
    vace = getattr(values, "vace", None)
    if vace is not None:
        if vace.context_scale is not None:
            out["vace_context_scale"] = vace.context_scale
        if vace.use_input_video is not None:
            out["vace_use_input_video"] = vace.use_input_video
    if getattr(values, "paused", None) is not None:
        out["paused"] = values.paused
    return out


def initial_written(show: Show) -> Written:
    """What the defaults write before the first scene."""
    d = show.defaults
    params = _runtime_params(d)
    return Written(
        chain=tuple(d.pipeline),
        load=d.load,
        mode=d.input_mode,
        prompts=(),
        params=MappingProxyType({k: params[k] for k in PARAM_KEYS if k in params}),
        loras=EMPTY,
        refs=(),
        source=_source(d.input_source),
    )


def next_written(s: Scene, prev: Written) -> Written:
    """`prev` with what scene `s` writes; unchanged values are the same objects."""
    chain = tuple(s.pipeline) if s.pipeline else prev.chain
    load = prev.load
    if s.load is not None:
        update = {k: getattr(s.load, k) for k in LoadParams.model_fields if getattr(s.load, k) is not None}
        if update:
            load = prev.load.model_copy(update=update)
    prompts = prev.prompts
    if s.prompts:
        prompts = tuple([WeightedPrompt(p.text, p.weight) for p in s.prompts])
    params = prev.params
    own = _runtime_params(s) if s.model_fields_set & _RUNTIME_FIELDS else None
    if own:
        params = merge_params(prev.params, own)
    loras = prev.loras
    if s.loras:
        loras = MappingProxyType({**prev.loras, **s.loras})
    refs = prev.refs
    if s.vace is not None and s.vace.refs is not None:
        refs = tuple(s.vace.refs)
    source = _source(s.input_source) if s.input_source is not None else prev.source
    return Written(chain, load, s.input_mode or prev.mode, prompts, params, loras, refs, source)


def _source(given: Any) -> Mapping[str, Any] | None:
    """An `input_source` setting as its wire mapping."""
    return MappingProxyType(given.model_dump(exclude_none=True)) if given is not None else None


def load_params_of(w: Written, mode: str, prev: State | None) -> Mapping[str, Any]:
    """The wire `load_params` of `w` in `mode`; `prev`'s own mapping when they are equal."""
    info = pipelines.lookup(main_pipeline(w.chain))
    load = w.load
    out: dict[str, Any] = {}
    height, width = load.height, load.width
    if info is not None:
        default_h, default_w = info.default_size(mode)
        height = height if height is not None else default_h
        width = width if width is not None else default_w
    values: dict[str, Any] = {
        "height": height,
        "width": width,
        "base_seed": load.base_seed,
        "vae_type": load.vae_type,
        "vace_enabled": load.vace_enabled,
        "lora_merge_mode": load.lora_merge_mode,
    }
    for key in _LOAD_PARAMS_KEY_ORDER:
        if key == "quantization":
            if load.quantization is not None:
                out[key] = None if load.quantization == "none" else load.quantization
        elif key == "loras":
            if load.loras is not None:
                out[key] = [
                    {"path": LORA_PREFIX + lo.lora, "scale": lo.scale}
                    | ({"merge_mode": lo.merge_mode} if lo.merge_mode else {})
                    for lo in load.loras
                ]
        elif values[key] is not None:
            out[key] = values[key]
    if prev is not None and prev.load_params == out:
        return prev.load_params  # share: equal states, identical JSON
    return MappingProxyType(out)


def keyframe_curves(
    s: Scene, w: Written, load_params: Mapping[str, Any], warnings: list[str]
) -> tuple[Curve, ...]:
    """The scene's keyframed values, each starting from the value tracked so far."""
    if not s.keyframes:
        return ()
    out: list[Curve] = []
    for target, frames in s.keyframes.items():
        match = KEYFRAME_TARGET.match(target)
        if match is None or not frames:
            warnings.append(Note(f"keyframes {target!r} ignored (unknown target or no keyframes)",
                                 ("keyframes", target)))
            continue
        ordered = tuple(sorted(frames, key=lambda k: k.at))
        start: float | None
        if match.group("lora"):
            name = match.group("lora")
            start = w.loras.get(name)
            if start is None:
                loaded = State((), load_params, "text")
                start = load_scale(loaded, name)
        elif match.group("prompt"):
            index = int(match.group("prompt"))
            if index >= len(w.prompts):
                warnings.append(Note(f"keyframes {target!r} ignored: there are only {len(w.prompts)} "
                                     "prompts", ("keyframes", target)))
                continue
            start = w.prompts[index].weight
        else:
            start = w.params.get(target)
        out.append(Curve(target, start, ordered))
    return tuple(out)
