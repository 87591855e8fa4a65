"""Checks of a Scope server against what a show needs, before the show starts.

`showrunner run` (before the first scene) and ``showrunner check --scope URL`` run the same
check: the show's needs (`Need`: pipelines, load sizes, input modes, runtime values, VACE and
LoRA use, each with the key path that asks for it) against the server's
``GET /api/v1/pipelines/schemas`` (docs/scope.md §2.4). `compare` is pure; `check` asks the
server. The needs are plain data, made from a compiled show above this package (``app.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from showrunner.scope.client import ScopeClient

__all__ = ["Need", "NeedKind", "Preflight", "Problem", "check", "compare"]

# Runtime keys whose schema field has another name (docs/scope.md §2.4, §8-B).
_SCHEMA_NAME = {"denoising_step_list": "denoising_steps"}


class NeedKind(enum.StrEnum):
    PIPELINE = "pipeline"  # the pipeline must be there
    SIZE = "size"  # `key` (height | width) = `value` at load
    MODE = "mode"  # input mode `value`
    PARAM = "param"  # runtime value `key` = `value`
    VACE = "vace"  # VACE references are sent
    LORA = "lora"  # LoRAs are loaded


@dataclass(frozen=True)
class Need:
    """Something the show asks of one pipeline, and the key path in the show that asks it."""

    kind: NeedKind
    pipeline: str
    where: str  # e.g. "scenes[3].pipeline", "defaults.load.height"
    key: str = ""
    value: Any = None


@dataclass(frozen=True)
class Problem:
    """A need the server does not meet (an error), or one it meets only partly (a warning)."""

    severity: str  # "error" | "warning"
    where: str
    message: str


@dataclass(frozen=True)
class Preflight:
    """What the check found: the problems, what was verified, the pipelines the server has."""

    problems: tuple[Problem, ...]
    verified: tuple[str, ...]
    available: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def compare(needs: Iterable[Need], schemas: Mapping[str, Any], where: str = "the Scope server") -> Preflight:
    """`needs` against `schemas` (``{pipeline_id: meta}``, as `ScopeClient.pipeline_schemas`
    returns it); `where` names the server in messages."""
    available = tuple(sorted(schemas))
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    counts: dict[NeedKind, int] = dict.fromkeys(NeedKind, 0)
    pipelines: dict[str, None] = {}
    for need in needs:
        key = (need.kind, need.pipeline, need.key, repr(need.value))
        if key in seen:
            continue
        seen.add(key)
        meta = schemas.get(need.pipeline)
        if need.kind is NeedKind.PIPELINE:
            pipelines[need.pipeline] = None
            if meta is None:
                has = ", ".join(available) if available else "none"
                problems.append(Problem("error", need.where, f"{where} has no pipeline "
                                        f"{need.pipeline} (the show needs it); it has: {has}"))
            continue
        if not isinstance(meta, Mapping):
            continue  # reported once, as a missing pipeline
        counts[need.kind] += 1
        problem = _check(need, meta)
        if problem is not None:
            problems.append(problem)
    verified = _verified(tuple(pipelines), counts, available)
    return Preflight(tuple(problems), verified, available)


async def check(client: ScopeClient, needs: Iterable[Need]) -> Preflight:
    """Ask the server behind `client` for its pipelines and compare (ScopeError when it cannot be
    asked)."""
    return compare(needs, await client.pipeline_schemas(), f"the Scope server at {client.base_url}")


def _check(need: Need, meta: Mapping[str, Any]) -> Problem | None:
    name = need.pipeline
    if need.kind is NeedKind.MODE:
        modes = meta.get("supported_modes")
        if isinstance(modes, list) and modes and need.value not in modes:
            return Problem("error", need.where, f"pipeline {name} on the server has no {need.value} "
                           f"mode (it supports: {', '.join(map(str, modes))})")
        return None
    if need.kind is NeedKind.VACE:
        if meta.get("supports_vace") is False:
            return Problem("warning", need.where, f"pipeline {name} on the server does not support "
                           "VACE: the reference images are ignored")
        return None
    if need.kind is NeedKind.LORA:
        if meta.get("supports_lora") is False:
            return Problem("error", need.where, f"pipeline {name} on the server does not support LoRA")
        return None
    if need.kind is NeedKind.SIZE:
        least = meta.get("min_dimension")
        if isinstance(least, int) and isinstance(need.value, int) and need.value < least:
            return Problem("error", need.where, f"{need.key} {need.value} is below the minimum "
                           f"{least} of pipeline {name} on the server")
    field = _SCHEMA_NAME.get(need.key, need.key)
    prop = _properties(meta).get(field)
    if isinstance(prop, Mapping):
        reason = _out_of_range(need.value, prop)
        if reason is not None:
            return Problem("error", need.where, f"{need.key} {need.value!r} {reason} for pipeline "
                           f"{name} on the server")
    return None


def _properties(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    schema = meta.get("config_schema")
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return props if isinstance(props, Mapping) else {}


def _out_of_range(value: Any, prop: Mapping[str, Any]) -> str | None:
    """Why `value` is outside the JSON-Schema bounds of `prop` (numbers, or every item of a
    list of numbers), or None."""
    if isinstance(value, list):
        items = prop.get("items")
        bounds = items if isinstance(items, Mapping) else prop
        return next((r for v in value if (r := _out_of_range(v, bounds)) is not None), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    for option in prop.get("anyOf") or [prop]:
        if not isinstance(option, Mapping):
            continue
        low, high = option.get("minimum"), option.get("maximum")
        if isinstance(low, (int, float)) and value < low:
            return f"is below the minimum {low:g}"
        if isinstance(high, (int, float)) and value > high:
            return f"is above the maximum {high:g}"
    return None


def _verified(
    pipelines: Sequence[str], counts: Mapping[NeedKind, int], available: Sequence[str]
) -> tuple[str, ...]:
    lines = [f"pipelines present: {', '.join(pipelines) or 'none'} (the server has {len(available)})"]
    words = {NeedKind.SIZE: "load sizes", NeedKind.MODE: "input modes", NeedKind.PARAM: "runtime values",
             NeedKind.VACE: "VACE uses", NeedKind.LORA: "LoRA loads"}
    for kind, word in words.items():
        if counts[kind]:
            lines.append(f"{word} checked against the server's schemas: {counts[kind]}")
    return tuple(lines)
