"""Turn pydantic validation errors into the one-line messages users read, each at a key path.

Separate from the loader because it knows the show model (field names, unions, shorthands) but
nothing about YAML: the loader maps each key path it returns to a file position.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from typing import Any, Union

from pydantic import BaseModel

from showrunner.show.model import LoadParams, Loc, Show


def short(value: Any, limit: int = 40) -> str:
    """A value as a message quotes it (YAML spelling for true/false/null), cut to `limit`."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, int | float):
        text = _num(value)
    elif isinstance(value, list):
        return "a list"
    elif isinstance(value, dict):
        return "a mapping"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int) and value.bit_length() > 64:
        return "a huge number"
    return repr(value)


_SIMPLE_TAGS = {"str", "int", "float", "bool", "none", "bytes", "decimal", "list", "dict", "any"}
_TYPE_ERRORS = {
    "bool_type": "true, false", "bool_parsing": "true, false",
    "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "string_type": "text", "list_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "none_required": "null",
}


_MISMATCH = {*_TYPE_ERRORS, "literal_error"}


def _is_tag(item: str | int) -> bool:
    """pydantic's names for union members and validator wrappers in error locations."""
    return isinstance(item, str) and (
        "[" in item or "-" in item or item in _SIMPLE_TAGS or item[:1].isupper()
    )


def _clean_loc(raw: tuple[Any, ...], data: Any) -> tuple[Loc, bool]:
    """Drop pydantic's tags, guided by the data actually written; True if it names a dict key."""
    out: list[str | int] = []
    node, in_data, is_key = data, True, False
    for item in raw:
        if item == "[key]":
            is_key = True
            continue
        in_dict = isinstance(node, dict) and item in node
        in_list = isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)
        if in_data and (in_dict or in_list):
            out.append(item)
            node = node[item]
        elif _is_tag(item):
            continue
        else:
            out.append(item)
            in_data = False
    return tuple(out), is_key


def messages(errors: list[Any], data: Any) -> Iterator[tuple[Loc, bool, str]]:
    """(key path, whether it names a key, message) for pydantic's `errors` about `data`."""
    groups: dict[tuple[Loc, bool], list[Any]] = {}
    cleaned = [(err, *_clean_loc(tuple(err["loc"]), data)) for err in errors]
    for err, loc, is_key in cleaned:
        if err["type"] in ("missing", "extra_forbidden"):
            is_key = err["type"] == "extra_forbidden"
        elif _is_tag(err["loc"][-1]) and err["type"] in _MISMATCH and any(
            len(other) > len(loc) and other[: len(loc)] == loc for _, other, _ in cleaned
        ):
            # A union member of another shape; the member that matched failed deeper: say that.
            continue
        groups.setdefault((loc, is_key), []).append(err)
    for (loc, is_key), group in groups.items():
        if len(group) > 1:
            specific = [e for e in group if e["type"] not in _MISMATCH]
            if specific:
                group = specific[:1]
        if len(group) > 1:
            yield loc, is_key, _union_message(group)
        elif group[0]["type"] == "missing":
            yield loc, True, f"missing required key {loc[-1]!r}"
        else:
            yield loc, is_key, _message(group[0], loc)


def _union_message(group: list[Any]) -> str:
    wanted: list[str] = []
    for err in group:
        if err["type"] == "literal_error":
            wanted.extend(str(err["ctx"]["expected"]).replace(" or ", ", ").split(", "))
        else:
            wanted.extend(_TYPE_ERRORS.get(err["type"], err["msg"].lower()).split(", "))
    wanted = list(dict.fromkeys(wanted))
    text = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else wanted[0]
    message = f"expected {text} (got {short(group[0]['input'])})"
    literals = [w.strip("'") for w in wanted if w.startswith("'")]
    return message + _hint(group[0]["input"], literals)


def _hint(value: Any, choices: list[str]) -> str:
    if not isinstance(value, str) or not choices:
        return ""
    hint = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean {hint[0]!r}?" if hint else ""


_PATTERN_HELP = {
    "A-Za-z0-9_][A-Za-z0-9_.": "is not a valid name (use letters, digits, '_', '.', '-')",
    "2[0-3]": "is not a time of day HH:MM (00:00 to 23:59, or 24:00)",
    "https?://": "is not an http:// or https:// URL",
    "[A-Za-z_][A-Za-z0-9_]*$": "is not an environment variable name",
}


def _message(err: Any, loc: Loc) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f" (got {short(value)})"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}{_key_hint(str(loc[-1]), _fields_at(loc[:-1]))}"
    if kind in BOUNDS:
        return f"must be {BOUNDS[kind]} {_num(next(iter(ctx.values())))}{got}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return _length_message(kind, ctx)
    if kind == "string_pattern_mismatch":
        for key, help_text in _PATTERN_HELP.items():
            if key in str(ctx.get("pattern", "")):
                return f"{short(value)} {help_text}"
        return f"{short(value)} does not match {ctx.get('pattern')}"
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", err["msg"]))
        return text + got if text.startswith("expected ") and "(got " not in text else text
    if kind == "literal_error":
        choices = [c.strip().strip("'") for c in
                   str(ctx.get("expected", "")).replace(" or ", ", ").split(", ")]
        return f"expected {ctx.get('expected')}{got}{_hint(value, choices)}"
    if kind == "finite_number":
        return f"must be a finite number{got}"
    if kind == "model_type" and ctx.get("class_name") in _SHORTHANDS:
        return f"expected {_SHORTHANDS[ctx['class_name']]}{got}"
    if kind in _TYPE_ERRORS:
        return f"expected {_TYPE_ERRORS[kind].replace(', ', ' or ')}{got}"
    msg = str(err["msg"])
    return msg[0].lower() + msg[1:] + got


# Names from Scope's API and docs that a show spells differently (docs/scope.md §8-B).
_ALIASES = {
    "seed": "base_seed",
    "steps": "denoising_steps",
    "denoising_step_list": "denoising_steps",
    "lora_merge_strategy": "lora_merge_mode",
    "lora_scales": "loras",
    "prompt": "prompts",
    "prompt_interpolation_method": "prompt_interpolation",
    "vace_ref_images": "vace",
    "first_frame_image": "first_frame",
    "last_frame_image": "last_frame",
    "num_steps": "steps",
    "temporal_interpolation_method": "method",
}


def _key_hint(key: str, fields: list[str]) -> str:
    alias = _ALIASES.get(key)
    if alias in fields:
        return f"; did you mean {alias!r}?"
    if "load" in fields and key in LoadParams.model_fields:
        return f"; it belongs under `load` (load.{key})"
    hint = difflib.get_close_matches(key, fields, n=1, cutoff=0.75)
    return f"; did you mean {hint[0]!r}?" if hint else ""


# Models that may also be written in a short form: say so when neither form was given.
_SHORTHANDS = {
    "After": "a scene name or {scene, offset}",
    "Goto": "a scene name or {scene, times}",
    "ImageAsset": "a file path or {file | server_path}",
    "LoraAsset": "a file name, a server path or {path | filename}",
    "Transition": "'cut', a duration or {duration | steps, method}",
    "Prompt": "text or {text, weight}",
}

# pydantic's bound error types -> the comparison the message names (the importer uses it too)
BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _length_message(kind: str, ctx: dict[str, Any]) -> str:
    n = ctx.get("min_length", ctx.get("max_length"))
    if kind == "string_too_short":
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return f"is too long (at most {n} characters)"
    word = "at least" if kind == "too_short" else "at most"
    return f"needs {word} {n} item{'s' if n != 1 else ''}"


def _fields_at(loc: Loc) -> list[str]:
    """Field names of the model at `loc` (for "did you mean" hints on unknown keys)."""
    tp: Any = Show
    for item in loc:
        tp = _step(tp, item)
        if tp is None:
            return []
    for model in _models_in(tp):
        return list(model.model_fields)
    return []


def _step(tp: Any, item: str | int) -> Any:
    for model in _models_in(tp):
        if isinstance(item, str) and item in model.model_fields:
            return model.model_fields[item].annotation
    for origin, args in _containers(tp):
        if origin is list and isinstance(item, int):
            return args[0]
        if origin is dict and isinstance(item, str):
            return args[1]
    return None


def _walk(tp: Any) -> Iterator[Any]:
    """`tp` and the types inside its unions and Annotated wrappers."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        yield from _walk(typing.get_args(tp)[0])
    elif origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            yield from _walk(arg)
    else:
        yield tp


def _models_in(tp: Any) -> Iterator[type[BaseModel]]:
    for t in _walk(tp):
        if isinstance(t, type) and issubclass(t, BaseModel):
            yield t


def _containers(tp: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    for t in _walk(tp):
        origin = typing.get_origin(t)
        if origin in (list, dict):
            yield origin, typing.get_args(t)
