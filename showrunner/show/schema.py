"""The JSON Schema of show files, for editors (completion, hover help) and other tools.

It is generated from :class:`~showrunner.show.model.Show` and then widened to the *file* form: a
scenes item may also be an ``include`` or an ``each`` block, and any value may be a jinja2
template string (rendered when the show loads). ``schemas/show.schema.json`` is this schema,
written by ``showrunner schema > schemas/show.schema.json``; a test keeps the two equal.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from showrunner.show.model import Show

SCHEMA_ID = "urn:showrunner:show-schema:1"
_TEMPLATE_REF = {"$ref": "#/$defs/Template"}

_TEMPLATE: dict[str, Any] = {
    "type": "string",
    "pattern": r"\{\{|\{%",
    "description": "A jinja2 template ({{ expression }} or {% block %}), rendered when the show "
    "loads; a value that is exactly one {{ expression }} keeps the expression's type.",
}

_SCENE_INCLUDE: dict[str, Any] = {
    "type": "object",
    "title": "SceneInclude",
    "description": "Splice in the scenes of another YAML file (a list of scenes, or a mapping "
    "with `scenes:`), relative to this file.",
    "properties": {"include": {"type": "string", "minLength": 1}},
    "required": ["include"],
    "additionalProperties": False,
}

_SCENE_EACH: dict[str, Any] = {
    "type": "object",
    "title": "SceneGenerator",
    "description": "Make one scene per item: `scene` is a template rendered with the item as "
    "the `as` variable and `loop.index` / `loop.index0`.",
    "properties": {
        "each": {
            "anyOf": [
                {"type": "array"},
                {"type": "integer", "minimum": 0, "maximum": 1000},
                _TEMPLATE_REF,
            ],
            "description": "A list, a count N (0..N-1), or a template giving one.",
        },
        "as": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "default": "item",
            "description": "Name of the loop variable.",
        },
        "scene": {"$ref": "#/$defs/Scene"},
    },
    "required": ["each", "scene"],
    "additionalProperties": False,
}

_UNTEMPLATED = {"vars", "include"}  # vars hold data; include names files


def show_schema() -> dict[str, Any]:
    """The show-file JSON Schema (draft 2020-12)."""
    generated = Show.model_json_schema()
    defs: dict[str, Any] = generated.pop("$defs")
    for name, sub in defs.items():
        defs[name] = _templatable_object(sub)
    body = _templatable_object(generated)
    body["properties"]["scenes"] = {
        "type": "array",
        "minItems": 1,
        "items": {
            "anyOf": [
                {"$ref": "#/$defs/Scene"},
                {"$ref": "#/$defs/SceneInclude"},
                {"$ref": "#/$defs/SceneGenerator"},
            ]
        },
        "description": "The scenes in playing order: scenes, `include: file.yaml` items and "
        "`each:` generators.",
    }
    defs.update(Template=_TEMPLATE, SceneInclude=_SCENE_INCLUDE, SceneGenerator=_SCENE_EACH)
    for key in ("title", "description"):
        body.pop(key, None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "showrunner show file",
        "description": "A show for showrunner: scenes that set what a Daydream Scope server "
        "generates, with their timing and cues. Editor setup: put "
        "`# yaml-language-server: $schema=<path>/show.schema.json` on the first line.",
        **body,
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The schema as `showrunner schema` prints it (and as schemas/show.schema.json holds it)."""
    return json.dumps(show_schema(), indent=2, ensure_ascii=False) + "\n"


def _templatable_object(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    for name, prop in out.get("properties", {}).items():
        if name not in _UNTEMPLATED:
            out["properties"][name] = _templatable(prop)
    return out


def _templatable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or a template string; also inside list items and mapping values."""
    inner = _recurse(schema)
    if _accepts_any_string(inner):
        return inner
    notes: dict[str, Any] = {k: inner.pop(k) for k in ("title", "description", "default")
                             if k in inner}
    options = inner["anyOf"] if set(inner) == {"anyOf"} else [inner]
    return {"anyOf": [*options, _TEMPLATE_REF], **notes}


def _recurse(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [_recurse(s) for s in out[key]]
    if isinstance(out.get("items"), dict):
        out["items"] = _templatable(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _templatable(out["additionalProperties"])
    if isinstance(out.get("patternProperties"), dict):
        out["patternProperties"] = {
            k: _templatable(v) for k, v in out["patternProperties"].items()
        }
    return out


def _accepts_any_string(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "string":
        return not any(k in schema for k in ("pattern", "enum", "const", "minLength",
                                                "maxLength", "format"))
    return any(_accepts_any_string(s) for s in schema.get("anyOf", []))
