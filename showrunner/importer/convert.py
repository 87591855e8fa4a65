"""Turn Scope's own timeline files into a show file (docs/scope.md §5).

Two formats exist (§8-P): the legacy UI export ("Save timeline", v2.0/2.1: camelCase ``prompts[]``
segments plus ``settings``, §5.1) and the current ``.scope-workflow.json`` 1.0 (snake_case
``timeline.entries`` plus ``pipelines[]``, §5.2). Both describe segments on the UI's own clock. Each
segment becomes a timed scene that starts at the segment's start, with the transition the UI would
have played (§5.3), so the show shows the same looks at the same moments.

The YAML is written by hand: the output is small and regular, and writing it directly keeps the
key order, the comments and the quoting of prompts exactly as a person would write them.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from showrunner import pipelines
from showrunner.errors import ShowError, ShowErrors
from showrunner.show.explain import BOUNDS
from showrunner.show.model import Show, semantic_problems

__all__ = ["DEFAULT_SCHEMA_REF", "ImportResult", "import_data", "import_file"]

DEFAULT_SCHEMA_REF = "../schemas/show.schema.json"
_MAX_BYTES = 64 * 1024 * 1024

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ImportResult:
    """A converted show: the YAML text, what could not be carried over, and the input format.

    Each warning is one line, ``file:line:col: key.path: message``, pointing into the input.
    """

    yaml_text: str
    warnings: tuple[str, ...]
    kind: str  # "timeline-2.0" | "timeline-2.1" | "scope-workflow-1.0"


def import_file(
    path: str | Path, *, hold: bool = False, schema_ref: str = DEFAULT_SCHEMA_REF
) -> ImportResult:
    """Convert a Scope timeline export or workflow file; raises ShowErrors naming file and key."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise _one(source, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > _MAX_BYTES:
        raise _one(source, f"the file is larger than {_MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _one(source, f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    if not text.strip():
        raise _one(source, "the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _one(source, f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise _one(source, "not a timeline: JSON nested too deeply") from None
    return _convert(_Ctx(source, text), data, hold, schema_ref)


def import_data(
    data: Any, *, source: str, hold: bool = False, schema_ref: str = DEFAULT_SCHEMA_REF
) -> ImportResult:
    """Convert already-parsed JSON data; `source` names it in messages and gives the title."""
    return _convert(_Ctx(source, None), data, hold, schema_ref)


def _one(source: str, message: str, line: int = 1, col: int = 1) -> ShowErrors:
    return ShowErrors([ShowError(message, path=source, line=line, col=col)])


# ---------------------------------------------------------------------------------------------
# Messages that point into the JSON text
# ---------------------------------------------------------------------------------------------


class _Ctx:
    """Collects errors and warnings for one input, each pointing at a JSON path (and position)."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.text = text
        self.errors: list[ShowError] = []
        self.warnings: list[str] = []
        self.srcmap: dict[tuple[str | int, ...], JsonPath] = {}
        # container offset -> offsets of its members: each container is scanned at most once,
        # so a file with thousands of warnings is still located in linear time
        self._members: dict[int, dict[str | int, int]] = {}
        self._lines: list[int] | None = None  # offsets where lines start

    def error(self, where: JsonPath, message: str) -> None:
        line, col = self.line_col(where)
        self.errors.append(
            ShowError(message, path=self.source, line=line, col=col, key_path=_fmt(where))
        )

    def fatal(self, where: JsonPath, message: str) -> ShowErrors:
        self.error(where, message)
        return ShowErrors(self.errors)

    def warn(self, where: JsonPath, message: str) -> None:
        line, col = self.line_col(where)
        key = f"{_fmt(where)}: " if where else ""
        self.warnings.append(f"{self.source}:{line}:{col}: {key}{message}")

    def check(self) -> None:
        if self.errors:
            raise ShowErrors(self.errors)

    def line_col(self, where: JsonPath) -> tuple[int, int]:
        """(line, col) of the value at `where`, or of the deepest container that exists."""
        text = self.text
        if text is None:
            return 1, 1
        pos = _skip_ws(text, 0)
        for part in where:
            if pos not in self._members:
                self._members[pos] = _members(text, pos)
            if part not in self._members[pos]:
                break
            pos = self._members[pos][part]
        if self._lines is None:
            self._lines = [0, *(m.end() for m in re.finditer("\n", text))]
        line = bisect.bisect_right(self._lines, pos)
        return line, pos - self._lines[line - 1] + 1


def _fmt(where: JsonPath) -> str:
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _members(text: str, pos: int) -> dict[str | int, int]:
    """Offsets of the values in the object or array at `pos` (empty for a scalar)."""
    out: dict[str | int, int] = {}
    if pos >= len(text) or text[pos] not in "{[":
        return out
    is_object = text[pos] == "{"
    closer = "}" if is_object else "]"
    try:
        i, index = _skip_ws(text, pos + 1), 0
        while text[i] != closer:
            key: str | int = index
            if is_object:
                key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
                i = _skip_ws(text, _skip_ws(text, i) + 1)  # past the colon
            out[key] = i  # with duplicate keys the last one counts, as in json.loads
            _, i = _DECODER.raw_decode(text, i)
            i = _skip_ws(text, i)
            if text[i] == ",":
                i = _skip_ws(text, i + 1)
            index += 1
    except (ValueError, IndexError, RecursionError):
        pass  # the text parsed as JSON already; keep what was certain
    return out


# ---------------------------------------------------------------------------------------------
# The reading: what the file says, in show terms, before it is written out
# ---------------------------------------------------------------------------------------------


@dataclass
class _Segment:
    loc: JsonPath
    start: float
    end: float
    prompts: list[dict[str, Any]]
    steps: int | None
    method: str | None


@dataclass
class _Reading:
    """What was read from a Scope timeline or workflow file, before it becomes a show."""

    kind: str
    title: str
    chain: list[str] = field(default_factory=list)
    main: str = "longlive"
    chain_loc: JsonPath = ()
    pipeline_locs: dict[str, JsonPath] = field(default_factory=dict)
    values: dict[str, tuple[Any, JsonPath]] = field(default_factory=dict)  # "load.height" -> …
    lora_assets: dict[str, dict[str, str]] = field(default_factory=dict)
    lora_loads: list[tuple[dict[str, Any], JsonPath]] = field(default_factory=list)
    steps: tuple[int, JsonPath] | None = None  # the file's global transition default, if any
    method: tuple[str, JsonPath] | None = None
    segments: list[_Segment] = field(default_factory=list)
    holds_forever: bool = False
    notes: list[str] = field(default_factory=list)  # header comment lines


# Scope parameter name -> (show key, value kind). Keys are the API's snake_case names, which the
# workflow's `params` and the legacy `schemaFieldOverrides` both use.
_PARAMS: dict[str, tuple[str, str]] = {
    "height": ("load.height", "int"),
    "width": ("load.width", "int"),
    "base_seed": ("load.base_seed", "int"),
    "quantization": ("load.quantization", "str?"),
    "vae_type": ("load.vae_type", "str"),
    "vace_enabled": ("load.vace_enabled", "bool"),
    "lora_merge_mode": ("load.lora_merge_mode", "str"),
    "lora_merge_strategy": ("load.lora_merge_mode", "str"),  # the schema's name for it (§8-B)
    "denoising_step_list": ("denoising_steps", "steps"),
    "denoising_steps": ("denoising_steps", "steps"),
    "noise_scale": ("noise_scale", "number"),
    "noise_controller": ("noise_controller", "bool"),
    "manage_cache": ("manage_cache", "bool"),
    "kv_cache_attention_bias": ("kv_cache_attention_bias", "number"),
    "vace_context_scale": ("vace_context_scale", "number"),
    "prompt_interpolation_method": ("prompt_interpolation", "str"),
    "vace_use_input_video": ("vace.use_input_video", "bool"),
    "input_mode": ("input_mode", "str"),
}

# Legacy `settings` keys (lib/workflowSettings.ts PARAM_MAPPINGS, docs/scope.md §5.1).
_SETTINGS: dict[str, tuple[str, str]] = {
    "inputMode": ("input_mode", "str"),
    "seed": ("load.base_seed", "int"),
    "denoisingSteps": ("denoising_steps", "steps"),
    "noiseScale": ("noise_scale", "number"),
    "noiseController": ("noise_controller", "bool"),
    "manageCache": ("manage_cache", "bool"),
    "quantization": ("load.quantization", "str?"),
    "kvCacheAttentionBias": ("kv_cache_attention_bias", "number"),
    "loraMergeStrategy": ("load.lora_merge_mode", "str"),
}


def _value(ctx: _Ctx, value: Any, kind: str, where: JsonPath) -> tuple[bool, Any]:
    """Type-check one value; (False, None) after recording an error."""
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": _is_number(value),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "str?": value is None or isinstance(value, str),
        "steps": isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ),
    }[kind]
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return True, int(value)
    if not ok:
        expected = {"int": "an integer", "number": "a number", "bool": "true or false",
                    "str": "a string", "str?": "a string or null",
                    "steps": "a list of integers"}[kind]  # fmt: skip
        ctx.error(where, f"must be {expected} (got {_show(value)})")
        return False, None
    return True, value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _set(ctx: _Ctx, reading: _Reading, target: str, value: Any, where: JsonPath) -> None:
    if target == "load.quantization" and value is None:
        return  # null is Scope's default: nothing to say
    old = reading.values.get(target)
    if old is not None and old[0] != value:
        ctx.warn(where, f"overrides {_fmt(old[1])} ({_show(old[0])} -> {_show(value)})")
    reading.values[target] = (value, where)


def _apply(
    ctx: _Ctx, reading: _Reading, table: dict[str, tuple[str, str]], data: dict[str, Any],
    base: JsonPath, skip: frozenset[str] = frozenset(),
) -> None:  # fmt: skip
    for key, value in data.items():
        if key in skip:
            continue
        where = (*base, key)
        if key not in table:
            ctx.warn(where, "not imported: a show has no setting for it")
            continue
        target, kind = table[key]
        ok, value = _value(ctx, value, kind, where)
        if ok:
            _set(ctx, reading, target, value, where)


def _obj(ctx: _Ctx, value: Any, where: JsonPath, what: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.fatal(where, f"must be {what} (got {_show(value)})")
    return value


def _warn_unknown(ctx: _Ctx, data: dict[str, Any], known: set[str], base: JsonPath) -> None:
    for key in data:
        if key not in known:
            ctx.warn((*base, key), "unknown field, not imported")


# ---------------------------------------------------------------------------------------------
# Segments, prompts and LoRAs (shared by both formats)
# ---------------------------------------------------------------------------------------------


def _segment(
    ctx: _Ctx, raw: Any, where: JsonPath, keys: dict[str, str], known: set[str]
) -> _Segment | None:
    """Read one segment; `keys` maps start/end/prompts/steps/method to this format's names."""
    if not isinstance(raw, dict):
        ctx.error(where, f"must be an object (got {_show(raw)})")
        return None
    _warn_unknown(ctx, raw, {*keys.values(), *known}, where)
    times = []
    for name in ("start", "end"):
        key = keys[name]
        if key not in raw:
            ctx.error((*where, key), "missing")
        elif not _is_number(raw[key]) or raw[key] < 0:
            ctx.error((*where, key), f"must be a number of seconds >= 0 (got {_show(raw[key])})")
        else:
            times.append(raw[key])
    prompts = _prompts(ctx, raw, where, keys["prompts"])
    steps = raw.get(keys["steps"])
    if steps is not None and not (_is_number(steps) and float(steps).is_integer() and steps >= 0):
        ctx.error((*where, keys["steps"]), f"must be a whole number >= 0 (got {_show(steps)})")
        steps = None
    method = _method(ctx, raw.get(keys["method"]), (*where, keys["method"]))
    if len(times) < 2 or prompts is None:
        return None
    start, end = times
    if end < start:
        ctx.error((*where, keys["end"]), f"ends before it starts ({end} < {start})")
        return None
    return _Segment(where, start, end, prompts, None if steps is None else int(steps), method)


def _method(ctx: _Ctx, value: Any, where: JsonPath) -> str | None:
    if value is None or value in ("linear", "slerp"):
        return None if value is None else str(value)
    ctx.error(where, f"must be 'linear' or 'slerp' (got {_show(value)})")
    return None


def _prompts(ctx: _Ctx, raw: dict[str, Any], where: JsonPath, key: str) -> list[dict[str, Any]] | None:
    items = raw.get(key)
    if items is None and isinstance(raw.get("text"), str):
        # The editor's internal joined text; only an unclean export carries it instead of prompts.
        ctx.warn((*where, "text"), f"no `{key}`: the segment's text is used as one prompt")
        items = [{"text": raw["text"], "weight": 100}]
    if items is None:
        ctx.error((*where, key), "missing")
        return None
    if isinstance(items, str):
        items = [{"text": items, "weight": 100}]
    if not isinstance(items, list) or not items:
        ctx.error((*where, key), f"must be a non-empty list of {{text, weight}} (got {_show(items)})")
        return None
    out: list[dict[str, Any]] = []
    for j, item in enumerate(items):
        prompt = _prompt(ctx, item, (*where, key, j))
        if prompt is not None:
            out.append(prompt)
    if len(out) != len(items):
        return None
    if len(out) > 1 and all(p["weight"] == 0 for p in out):
        ctx.warn((*where, key), "every weight is 0: Scope cannot blend these prompts")
    return out


def _prompt(ctx: _Ctx, item: Any, where: JsonPath) -> dict[str, Any] | None:
    if isinstance(item, str):
        item = {"text": item}
    if not isinstance(item, dict):
        ctx.error(where, f"must be an object {{text, weight}} (got {_show(item)})")
        return None
    _warn_unknown(ctx, item, {"text", "weight"}, where)
    text = item.get("text")
    if not isinstance(text, str):
        ctx.error((*where, "text"), "missing" if text is None else f"must be a string (got {_show(text)})")
        return None
    # The UI writes weights 0-100; absent means its default of 100. Only ratios matter (§8-J).
    weight = item.get("weight", 100)
    if not _is_number(weight):
        ctx.error((*where, "weight"), f"must be a number (got {_show(weight)})")
        return None
    if weight < 0:
        ctx.error((*where, "weight"), f"must be >= 0 (got {weight})")
        return None
    return {"text": _clean_text(ctx, text, (*where, "text")), "weight": weight}


def _clean_text(ctx: _Ctx, text: str, where: JsonPath) -> str:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        ctx.warn(where, "contains broken UTF-16 characters; replaced with U+FFFD")
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def _lora_name(reading: _Reading, file: str) -> str:
    stem = re.split(r"[\\/]", file)[-1]
    stem = re.sub(r"\.(safetensors|ckpt|pt|pth|bin)$", "", stem, flags=re.IGNORECASE)
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", stem).strip("-.")[:60] or "lora"
    if not re.match(r"[A-Za-z0-9_]", name):
        name = f"lora-{name}"
    unique, n = name, 2
    while unique in reading.lora_assets:
        unique, n = f"{name}-{n}", n + 1
    return unique


def _lora(
    ctx: _Ctx, reading: _Reading, raw: Any, where: JsonPath, names: tuple[str, str, str], asset_key: str
) -> None:
    """One LoRA → an asset plus a load entry; `names` = this format's (file, scale, merge) keys."""
    file_key, scale_key, merge_key = names
    if not isinstance(raw, dict):
        ctx.error(where, f"must be an object (got {_show(raw)})")
        return
    known = {file_key, scale_key, merge_key, "id", "sha256", "provenance"}
    _warn_unknown(ctx, raw, known, where)
    file = raw.get(file_key)
    if not isinstance(file, str) or not file:
        ctx.error((*where, file_key), "missing" if file is None else "must be a non-empty string")
        return
    name = _lora_name(reading, file)
    reading.lora_assets[name] = {asset_key: file}
    entry: dict[str, Any] = {"lora": name}
    if scale_key in raw:
        ok, scale = _value(ctx, raw[scale_key], "number", (*where, scale_key))
        if ok:
            entry["scale"] = scale
    if raw.get(merge_key) is not None:
        ok, merge = _value(ctx, raw[merge_key], "str", (*where, merge_key))
        if ok:
            entry["merge_mode"] = merge
    reading.lora_loads.append((entry, where))


# ---------------------------------------------------------------------------------------------
# Format readers
# ---------------------------------------------------------------------------------------------

_LEGACY_SEGMENT = {"start": "startTime", "end": "endTime", "prompts": "prompts",
                   "steps": "transitionSteps", "method": "temporalInterpolationMethod"}  # fmt: skip
_WORKFLOW_SEGMENT = {"start": "start_time", "end": "end_time", "prompts": "prompts",
                     "steps": "transition_steps", "method": "temporal_interpolation_method"}  # fmt: skip


def _read_legacy(ctx: _Ctx, data: dict[str, Any]) -> _Reading:
    version = data.get("version")
    version = str(version) if _is_number(version) else version
    if version is None:
        s = data.get("settings")
        version = "2.1" if isinstance(s, dict) and "inputMode" in s else "2.0"
        ctx.warn((), f"no `version`: read as a v{version} timeline export")
    elif not isinstance(version, str) or not re.fullmatch(r"2\.\d+", version):
        raise ctx.fatal(("version",), f"unknown timeline version {_show(version)} (expected 2.0 or 2.1)")
    elif version not in ("2.0", "2.1"):
        ctx.warn(("version",), f"version {version} is newer than 2.1: read as 2.1")
        version = "2.1"
    reading = _Reading(kind=f"timeline-{version}", title=_title(ctx.source))
    _warn_unknown(ctx, data, {"prompts", "settings", "version", "exportedAt"}, ())
    raw_settings = data.get("settings")
    settings = {} if raw_settings is None else _obj(ctx, raw_settings, ("settings",))
    _read_settings(ctx, reading, settings)
    segments = data["prompts"]
    if not isinstance(segments, list):
        raise ctx.fatal(("prompts",), f"must be a list of segments (got {_show(segments)})")
    known = {"id", "text", "isLive", "color"}  # editor-internal fields (§5.1)
    for i, raw in enumerate(segments):
        seg = _segment(ctx, raw, ("prompts", i), _LEGACY_SEGMENT, known)
        if seg is not None:
            reading.segments.append(seg)
    if not segments:
        ctx.error(("prompts",), "no segments: a show needs at least one")
    return reading


def _read_settings(ctx: _Ctx, reading: _Reading, settings: dict[str, Any]) -> None:
    base: JsonPath = ("settings",)
    pipeline = settings.get("pipelineId")
    if pipeline is None:
        ctx.warn((*base, "pipelineId"), "missing: the show uses longlive")
        pipeline = "longlive"
    elif not isinstance(pipeline, str) or not pipeline:
        ctx.error((*base, "pipelineId"), f"must be a pipeline id (got {_show(pipeline)})")
        pipeline = "longlive"
    reading.chain, reading.main, reading.chain_loc = [pipeline], pipeline, (*base, "pipelineId")
    special = frozenset({"pipelineId", "resolution", "loras", "schemaFieldOverrides"})
    _apply(ctx, reading, _SETTINGS, settings, base, skip=special)
    if "resolution" in settings:
        resolution = _obj(ctx, settings["resolution"], (*base, "resolution"), "{height, width}")
        _warn_unknown(ctx, resolution, {"height", "width"}, (*base, "resolution"))
        _apply(ctx, reading, _PARAMS, {k: v for k, v in resolution.items() if k in ("height", "width")},
               (*base, "resolution"))  # fmt: skip
    loras = settings.get("loras") or []
    if not isinstance(loras, list):
        ctx.error((*base, "loras"), f"must be a list (got {_show(loras)})")
        loras = []
    for i, raw in enumerate(loras):
        _lora(ctx, reading, raw, (*base, "loras", i), ("path", "scale", "mergeMode"), "path")
    # After 2026-01-28 the seed lives here as `base_seed` (§5.1); it wins over a stale `seed`.
    overrides = _obj(ctx, settings.get("schemaFieldOverrides") or {}, (*base, "schemaFieldOverrides"))
    _apply(ctx, reading, _PARAMS, overrides, (*base, "schemaFieldOverrides"))


_WORKFLOW_KEYS = {
    "format", "format_version", "metadata", "pipelines", "timeline", "prompts",
    "interpolation_method", "transition_steps", "temporal_interpolation_method",
    "min_scope_version",
}  # fmt: skip


def _read_workflow(ctx: _Ctx, data: dict[str, Any]) -> _Reading:
    version = data.get("format_version")
    version = str(version) if _is_number(version) else version
    if version is None:
        ctx.warn((), "no `format_version`: read as 1.0")
    elif not isinstance(version, str) or not re.fullmatch(r"1(\.\d+)*", version):
        raise ctx.fatal(("format_version",), f"unsupported workflow version {_show(version)} (expected 1.0)")
    elif version not in ("1", "1.0"):
        ctx.warn(("format_version",), f"version {version} is newer than 1.0: read as 1.0")
    metadata = _obj(ctx, data.get("metadata") or {}, ("metadata",))
    name = metadata.get("name")
    title = name.strip() if isinstance(name, str) and name.strip() else _title(ctx.source)
    reading = _Reading(kind="scope-workflow-1.0", title=title)
    if isinstance(metadata.get("scope_version"), str):
        reading.notes.append(f"Exported by Scope {metadata['scope_version']}.")
    for key in ("graph", "nodes"):
        if data.get(key):
            ctx.warn((key,), "graph workflows are not imported: the show uses the `pipelines` list")
    _warn_unknown(ctx, data, _WORKFLOW_KEYS | {"graph", "nodes"}, ())
    _read_pipelines(ctx, reading, data.get("pipelines"))
    if data.get("interpolation_method") is not None:
        method = _method(ctx, data["interpolation_method"], ("interpolation_method",))
        if method:
            _set(ctx, reading, "prompt_interpolation", method, ("interpolation_method",))
    _read_global_transition(ctx, reading, data)
    _read_entries(ctx, reading, data)
    return reading


def _read_global_transition(ctx: _Ctx, reading: _Reading, data: dict[str, Any]) -> None:
    steps = data.get("transition_steps")
    if steps is not None:
        if _is_number(steps) and float(steps).is_integer() and steps >= 0:
            reading.steps = (int(steps), ("transition_steps",))
        else:
            ctx.error(("transition_steps",), f"must be a whole number >= 0 (got {_show(steps)})")
    method = _method(ctx, data.get("temporal_interpolation_method"), ("temporal_interpolation_method",))
    if method is not None:
        reading.method = (method, ("temporal_interpolation_method",))


def _read_entries(ctx: _Ctx, reading: _Reading, data: dict[str, Any]) -> None:
    timeline = data.get("timeline")
    entries: Any = None
    if timeline is not None:
        entries = _obj(ctx, timeline, ("timeline",), "an object or null").get("entries")
        _warn_unknown(ctx, timeline, {"entries"}, ("timeline",))
    if entries:
        if not isinstance(entries, list):
            raise ctx.fatal(("timeline", "entries"), f"must be a list (got {_show(entries)})")
        for i, raw in enumerate(entries):
            seg = _segment(ctx, raw, ("timeline", "entries", i), _WORKFLOW_SEGMENT, set())
            if seg is not None:
                reading.segments.append(seg)
        return
    # No timeline: the workflow is one live look, which a single scene that holds reproduces.
    prompts = _prompts(ctx, data, (), "prompts") if "prompts" in data else None
    if prompts is None:
        if "prompts" not in data:
            ctx.error(("timeline",), "no timeline entries and no prompts: nothing to import")
        return
    ctx.warn(("timeline",), "no timeline: one scene with the workflow's prompts, held until quit")
    reading.holds_forever = True
    reading.segments.append(_Segment(("prompts",), 0, 0, prompts, 0, None))


_PIPELINE_KEYS = {"pipeline_id", "pipeline_version", "source", "loras", "params", "role"}


def _read_pipelines(ctx: _Ctx, reading: _Reading, pipes: Any) -> None:
    if not isinstance(pipes, list) or not pipes:
        raise ctx.fatal(("pipelines",), "needs a list with at least one pipeline")
    roles: dict[str, list[tuple[str, int]]] = {"preprocessor": [], "main": [], "postprocessor": []}
    for i, raw in enumerate(pipes):
        where: JsonPath = ("pipelines", i)
        pipe = _obj(ctx, raw, where)
        _warn_unknown(ctx, pipe, _PIPELINE_KEYS, where)
        pid = pipe.get("pipeline_id")
        if not isinstance(pid, str) or not pid:
            ctx.error((*where, "pipeline_id"), "missing" if pid is None else "must be a pipeline id")
            continue
        role = pipe.get("role", "main" if len(pipes) == 1 else None)
        if role not in roles:
            what = "missing" if role is None else f"unknown role {_show(role)}"
            ctx.error((*where, "role"), f"{what} (expected main, preprocessor or postprocessor)")
            continue
        roles[role].append((pid, i))
        reading.pipeline_locs.setdefault(pid, (*where, "pipeline_id"))
        _read_source(ctx, pipe.get("source"), pid, (*where, "source"))
    mains = roles["main"]
    if len(mains) > 1:
        first = mains[0][1]
        ctx.error(("pipelines", mains[1][1], "role"), f"a second main pipeline (pipelines[{first}] is main)")
    if not mains:
        ctx.check()
        raise ctx.fatal(("pipelines",), "no pipeline has role 'main'")
    reading.chain = [pid for role in roles for pid, _ in roles[role]]
    reading.main = mains[0][0]
    reading.chain_loc = ("pipelines", mains[0][1], "pipeline_id")
    for role, members in roles.items():
        for _, i in members:
            _read_pipeline_params(ctx, reading, pipes[i], ("pipelines", i), role == "main")


def _read_pipeline_params(
    ctx: _Ctx, reading: _Reading, pipe: dict[str, Any], where: JsonPath, main: bool
) -> None:
    params = _obj(ctx, pipe.get("params") or {}, (*where, "params"))
    loras = pipe.get("loras") or []
    if not main:
        # A show has one set of load parameters for the whole chain (§8-K).
        if params:
            ctx.warn((*where, "params"), "not imported: only the main pipeline's params are")
        if loras:
            ctx.warn((*where, "loras"), "not imported: only the main pipeline's LoRAs are")
        return
    _apply(ctx, reading, _PARAMS, params, (*where, "params"))
    if not isinstance(loras, list):
        ctx.error((*where, "loras"), f"must be a list (got {_show(loras)})")
        return
    for j, raw in enumerate(loras):
        _lora(ctx, reading, raw, (*where, "loras", j), ("filename", "weight", "merge_mode"), "filename")


def _read_source(ctx: _Ctx, source: Any, pid: str, where: JsonPath) -> None:
    if not isinstance(source, dict) or source.get("type") in (None, "builtin"):
        return
    spec = source.get("package_spec") or source.get("plugin_name") or pid
    ctx.warn(where, f"{pid!r} comes from a {source.get('type')} plugin ({spec}): install it in Scope")


def _title(source: str) -> str:
    name = re.split(r"[\\/]", source)[-1]
    for suffix in (".scope-workflow.json", ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.strip() if name.strip() and not name.startswith("<") else "Imported timeline"


# ---------------------------------------------------------------------------------------------
# From what was read to a validated show
# ---------------------------------------------------------------------------------------------


def _convert(ctx: _Ctx, data: Any, hold: bool, schema_ref: str) -> ImportResult:
    if not isinstance(data, dict):
        raise ctx.fatal((), f"expected a JSON object at the top level (got {_json_type(data)})")
    fmt = data.get("format")
    if fmt is not None:
        if fmt != "scope-workflow":
            raise ctx.fatal(("format",), f"unknown format {_show(fmt)} (expected 'scope-workflow')")
        reading = _read_workflow(ctx, data)
    elif "prompts" in data and "pipelines" not in data:
        reading = _read_legacy(ctx, data)
    elif "pipelines" in data and ("timeline" in data or "format_version" in data):
        ctx.warn((), "no `format`: read as a .scope-workflow.json file")
        reading = _read_workflow(ctx, data)
    else:
        raise ctx.fatal((), "unknown format: expected a Scope timeline export (v2.0/2.1, with "
                            "`prompts` and `settings`) or a .scope-workflow.json file")  # fmt: skip
    ctx.check()
    segments, comments = _arrange(ctx, reading)
    ctx.check()
    doc = _document(ctx, reading, segments, hold)
    _validate(ctx, doc)
    name = re.split(r"[\\/]", ctx.source)[-1]
    header = [
        f"Imported from {name} ({_KIND_NAMES[reading.kind]}) with `showrunner import`.",
        "One scene per segment; `at` is the segment's start in seconds on the UI's clock.",
        *reading.notes,
    ]
    text = _emit(doc, comments, header, schema_ref)
    return ImportResult(yaml_text=text, warnings=tuple(ctx.warnings), kind=reading.kind)


_KIND_NAMES = {
    "timeline-2.0": "Scope timeline v2.0",
    "timeline-2.1": "Scope timeline v2.1",
    "scope-workflow-1.0": "Scope workflow 1.0",
}


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


def _arrange(ctx: _Ctx, reading: _Reading) -> tuple[list[_Segment], dict[int, list[str]]]:
    """Put segments in play order the way the UI plays them: gaps hold, overlaps cut short."""
    segments = reading.segments
    if reading.holds_forever:
        return segments, {}
    if any(b.start < a.start for a, b in itertools.pairwise(segments)):
        first = next(b for a, b in itertools.pairwise(segments) if b.start < a.start)
        ctx.warn(first.loc, "segments are not in time order: sorted by start time")
        segments = sorted(segments, key=lambda s: s.start)
    kept = []
    for seg in segments:
        if seg.end == seg.start:
            ctx.warn(seg.loc, "zero-length segment dropped (the UI drops them too)")
        else:
            kept.append(seg)
    if not kept:
        ctx.error(segments[0].loc if segments else (), "every segment is zero-length: nothing to play")
        return [], {}
    out: list[_Segment] = []
    comments: dict[int, list[str]] = {}
    for seg in kept:
        if out and seg.start <= out[-1].start:
            ctx.warn(out[-1].loc, f"never shows: {_fmt(seg.loc)} starts at the same time")
            out.pop()
        elif out and seg.start < out[-1].end:
            ctx.warn(seg.loc, f"starts at {_num(seg.start)} s, before {_fmt(out[-1].loc)} ends "
                              f"({_num(out[-1].end)} s): that one is cut short")  # fmt: skip
        elif out and seg.start > out[-1].end:
            gap = f"{_num(out[-1].end)}-{_num(seg.start)} s"
            ctx.warn(out[-1].loc, f"gap {gap} before the next segment: this look holds "
                                  "until it starts (as the UI keeps the last segment)")  # fmt: skip
            comments[len(out) - 1] = [f"The file has a gap at {gap}: this look holds through it."]
        out.append(seg)
    if out[0].start > 0:
        ctx.warn(out[0].loc, f"the first segment starts at {_num(out[0].start)} s: so does the show")
    return out, comments


def _defaults(ctx: _Ctx, reading: _Reading) -> tuple[dict[str, Any], tuple[int, str]]:
    """The `defaults` block, and the transition a segment without its own gets (§5.3)."""
    info = pipelines.lookup(reading.main)
    for pid in reading.chain:
        if pipelines.lookup(pid) is None:
            where = reading.pipeline_locs.get(pid, reading.chain_loc)
            ctx.warn(where, f"{pid!r} is not a pipeline showrunner knows (a plugin?)")
    values = reading.values
    mode: str | None = values["input_mode"][0] if "input_mode" in values else None
    if mode is None and info is not None:
        mode = info.default_mode
    if mode == "text":
        for key in ("noise_scale", "noise_controller"):
            if key in values:
                # Scope clears these in text mode (§3.3); keeping them only earns a lint warning.
                ctx.warn(values.pop(key)[1], "not imported: ignored by Scope in text mode")
    defaults: dict[str, Any] = {"pipeline": reading.chain[0] if len(reading.chain) == 1 else reading.chain}
    ctx.srcmap[("defaults", "pipeline")] = reading.chain_loc
    load: dict[str, Any] = {}
    for target, (value, where) in values.items():
        if target.startswith("vace."):
            continue
        keys = ("defaults", *target.split("."))
        ctx.srcmap[keys] = where
        (load if target.startswith("load.") else defaults)[keys[-1]] = value
    if reading.lora_loads:
        load["loras"] = [entry for entry, _ in reading.lora_loads]
        for i, (_, where) in enumerate(reading.lora_loads):
            ctx.srcmap[("defaults", "load", "loras", i)] = where
    if load:
        defaults["load"] = {k: load[k] for k in _SHOW_LOAD_KEY_ORDER if k in load}
    ordered = {k: defaults[k] for k in _DEFAULTS_ORDER if k in defaults}
    return ordered, _default_transition(ctx, reading, info, mode)


# Key order of `defaults.load` in the written show (file order, not the wire's).
_SHOW_LOAD_KEY_ORDER = ("height", "width", "base_seed", "quantization", "vae_type", "vace_enabled",
                        "lora_merge_mode", "loras")  # fmt: skip
_DEFAULTS_ORDER = ("pipeline", "input_mode", "load", "denoising_steps", "noise_scale",
                   "noise_controller", "manage_cache", "kv_cache_attention_bias",
                   "vace_context_scale", "prompt_interpolation")  # fmt: skip


def _default_transition(
    ctx: _Ctx, reading: _Reading, info: pipelines.PipelineInfo | None, mode: str | None
) -> tuple[int, str]:
    method = reading.method[0] if reading.method else info.transition_method if info else "slerp"
    if reading.steps is not None:
        return reading.steps[0], method
    if info is None:
        if any(seg.steps is None for seg in reading.segments[1:]):
            ctx.warn(reading.chain_loc, "segments without transition steps play as cuts "
                                     "(Scope's default for pipelines it does not describe)")  # fmt: skip
        return 0, method
    # krea blends 4 steps in text mode and cuts in video mode; every other pipeline cuts.
    return (info.transition_steps if mode == "text" else 0), method


def _document(ctx: _Ctx, reading: _Reading, segments: list[_Segment], hold: bool) -> dict[str, Any]:
    defaults, (steps, method) = _defaults(ctx, reading)
    doc: dict[str, Any] = {"title": _literal(reading.title), "defaults": defaults}
    if reading.lora_assets:
        doc["assets"] = {"loras": reading.lora_assets}
    scenes = []
    width = max(2, len(str(len(segments))))
    for i, seg in enumerate(segments):
        scene: dict[str, Any] = {"name": f"seg-{i + 1:0{width}d}", "at": seg.start}
        ctx.srcmap[("scenes", i)] = seg.loc
        ctx.srcmap[("scenes", i, "at")] = (*seg.loc, _start_key(seg))
        if not reading.holds_forever:
            end = segments[i + 1].start if i + 1 < len(segments) else seg.end
            scene["duration"] = _round(end - seg.start)
        scene["prompts"] = [_prompt_out(ctx, p, (*seg.loc, "prompts", j), i)
                            for j, p in enumerate(seg.prompts)]  # fmt: skip
        own = seg.steps if seg.steps is not None else steps
        # The first look has nothing to blend from: the UI locks it to 0 steps (§5.3).
        if i == 0 or own == 0:
            scene["transition"] = "cut"
        else:
            scene["transition"] = {"steps": own, "method": seg.method or method}
        if i == 0 and "vace.use_input_video" in reading.values:
            value, where = reading.values["vace.use_input_video"]
            scene["vace"] = {"use_input_video": value}
            ctx.srcmap[("scenes", 0, "vace", "use_input_video")] = where
        scenes.append(scene)
    doc["scenes"] = scenes
    doc["end"] = "hold" if hold or reading.holds_forever else "stop"
    return doc


def _start_key(seg: _Segment) -> str:
    return "startTime" if seg.loc and seg.loc[0] == "prompts" else "start_time"


def _prompt_out(ctx: _Ctx, prompt: dict[str, Any], where: JsonPath, scene: int) -> dict[str, Any]:
    ctx.srcmap[("scenes", scene, "prompts", where[-1])] = where
    text = _literal(prompt["text"])
    if text != prompt["text"]:
        ctx.warn((*where, "text"), "contains template markers: wrapped in {% raw %} to stay literal")
    return {"text": text, "weight": prompt["weight"]}


def _literal(text: str) -> str:
    """Protect text from the show loader's templating, which renders `{{ }}` and `{% %}`."""
    if any(mark in text for mark in ("{{", "{%", "{#")):
        return "{% raw %}" + text + "{% endraw %}"
    return text


def _round(seconds: float) -> float:
    # Subtraction leaves float noise (16.3 - 11.2 = 5.100000000000001); files use at most ms.
    return round(seconds, 6)


def _validate(ctx: _Ctx, doc: dict[str, Any]) -> None:
    """Check the show as the loader would; problems point back into the JSON file."""
    try:
        show = Show.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors():
            ctx.error(_origin(ctx, err["loc"]), _message(err))
        ctx.check()
        return
    for loc, message in semantic_problems(show):
        ctx.error(_origin(ctx, loc), message)
    ctx.check()


def _origin(ctx: _Ctx, loc: tuple[str | int, ...]) -> JsonPath:
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or "," in p)))
    for n in range(len(loc), 0, -1):
        if loc[:n] in ctx.srcmap:
            return ctx.srcmap[loc[:n]]
    return ()


def _message(err: Any) -> str:
    """The show loader's wording for the same problem, e.g. `must be <= 1 (got 5)`."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    suffix = "" if isinstance(got, dict | list) else f" (got {_show(got)})"
    if kind in BOUNDS:
        return f"must be {BOUNDS[kind]} {_num(next(iter(ctx.values())))}{suffix}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}{suffix}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    message = str(err["msg"])
    return message[:1].lower() + message[1:] + suffix


# ---------------------------------------------------------------------------------------------
# Writing YAML
# ---------------------------------------------------------------------------------------------

_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_FREE_TEXT = {"title", "text"}  # always quoted, so long prompts read the same wherever they are


def _emit(doc: dict[str, Any], comments: dict[int, list[str]], header: list[str], schema_ref: str) -> str:
    header = [re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", h) for h in (schema_ref, *header)]
    lines = [f"# yaml-language-server: $schema={header[0]}", *(f"# {h}" for h in header[1:]), ""]
    for key, value in doc.items():
        if key == "scenes":
            lines.append("")
            lines.append("scenes:")
            for i, scene in enumerate(value):
                if i:
                    lines.append("")
                lines.extend(f"  # {c}" for c in comments.get(i, []))  # numbers only
                lines.extend(_item(scene, 2, ("scenes", "-")))
            lines.append("")
        else:
            lines.extend(_entry(key, value, 0, (key,)))
    return "\n".join(lines).rstrip("\n") + "\n"


def _entry(key: str, value: Any, indent: int, path: tuple[str, ...]) -> list[str]:
    pad = " " * indent
    head = f"{pad}{_scalar(key)}:"
    if _inline(value, path):
        return [f"{head} {_flow(value, path)}"]
    if isinstance(value, dict):
        return [head, *(ln for k, v in value.items() for ln in _entry(k, v, indent + 2, (*path, k)))]
    return [head, *(ln for v in value for ln in _item(v, indent + 2, (*path, "-")))]


def _item(value: Any, indent: int, path: tuple[str, ...]) -> list[str]:
    pad = " " * indent
    if _inline(value, path):
        return [f"{pad}- {_flow(value, path)}"]
    inner = [ln for k, v in value.items() for ln in _entry(k, v, indent + 2, (*path, k))]
    inner[0] = f"{pad}- {inner[0][indent + 2 :]}"
    return inner


def _inline(value: Any, path: tuple[str, ...]) -> bool:
    if isinstance(value, list):
        return not value or all(not isinstance(v, dict | list) for v in value)
    if isinstance(value, dict):
        # Short records read best on one line: transitions, LoRA entries and assets.
        small = path[-1] in ("transition", "vace") or path[-2:] == ("loras", "-")
        return not value or small or (path[:2] == ("assets", "loras") and len(path) == 3)
    return True


def _flow(value: Any, path: tuple[str, ...]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v, path) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v, (*path, k))}" for k, v in value.items()) + "}"
    return _scalar(value, quote=path[-1] in _FREE_TEXT)


def _scalar(value: Any, quote: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value)
    text = str(value)
    if not quote and _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return _quote(text)


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:  # YAML readers disagree on exponents: write plain digits
        text = format(value, ".17f").rstrip("0").rstrip(".")
    return text


def _quote(text: str) -> str:
    """A YAML double-quoted scalar; every non-printing character is escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")  # fmt: skip
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
