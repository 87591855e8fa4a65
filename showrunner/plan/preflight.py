"""The compiler's view of a loaded show, positioned in its file: one truth for `check`,
`report` and `run`.

`compile_result` compiles a loaded show and gives every ShowError of the compiler the
file:line:col of the key it names. `plan_findings` is what `showrunner check` adds to the
linter's findings: the same errors, and the compile warnings the report lists (those the linter
already reports in its own words are left out).
"""

from __future__ import annotations

import re

from showrunner.errors import ShowError, ShowErrors
from showrunner.plan.compiler import Compiler, compile_timeline
from showrunner.plan.timeline import Timeline
from showrunner.show.lint import Finding
from showrunner.show.load import (
    LoadResult,
    format_key_path,
    key_location,
    note_at,
    source_location,
)
from showrunner.show.model import Loc

__all__ = ["compile_result", "located", "parse_key_path", "plan_findings"]

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\[\"([^\"]*)\"\]")
# Compile warnings the linter reports itself (lint.py: same problem, its own words).
_LINT_SAYS = frozenset({"unknown-pipeline", "lora-not-loaded", "lora-not-runtime"})


def parse_key_path(text: str) -> Loc:
    """"scenes[2].keyframes['lora.x']" -> ("scenes", 2, "keyframes", "lora.x")."""
    out: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            break
        name, index, quoted, dquoted = match.groups()
        if index is not None:
            out.append(int(index))
        else:
            out.append(name if name is not None else quoted if quoted is not None else dquoted)
        pos = match.end()
    return tuple(out)


def located(result: LoadResult, error: ShowError) -> ShowError:
    """`error` at the file, line and column of the key it names."""
    loc = parse_key_path(error.key_path)
    path, line, col = source_location(result, loc)
    note = note_at(result, loc)
    message = f"{error.message} {note}" if note else error.message
    return ShowError(message, path=path, line=line, col=col, key_path=error.key_path)


def compile_result(result: LoadResult, compiler: Compiler | None = None) -> Timeline:
    """Compile a loaded show; ShowErrors (positioned) for timing that cannot be played.

    A `compiler` kept between versions re-uses the scenes an edit does not touch.
    """
    compile_show = compiler.compile if compiler is not None else compile_timeline
    try:
        return compile_show(result.show, source=str(result.path))
    except ShowErrors as errors:
        raise ShowErrors([located(result, e) for e in errors.errors]) from None
    except ShowError as error:
        raise ShowErrors([located(result, error)]) from None


def plan_findings(result: LoadResult) -> list[Finding]:
    """The compiler's errors and warnings about a loaded show, as `check` findings."""
    try:
        timeline = compile_result(result)
    except ShowErrors as errors:
        return [Finding("error", "invalid", e.message, e.path, e.line, e.col, e.key_path)
                for e in errors.errors]
    out: list[Finding] = []
    for scene in timeline.scenes:
        for warning in scene.warnings:
            code = getattr(warning, "code", "plan")
            if code in _LINT_SAYS:
                continue
            own: Loc = getattr(warning, "loc", ())
            loc: Loc = ("scenes", scene.index, *own)
            # a keyframe target or a LoRA name is a key: point at it, not at its value
            where = key_location if own[:1] in (("keyframes",), ("loras",)) and len(own) == 2 else (
                source_location)
            path, line, col = where(result, loc)
            note = note_at(result, loc)
            text = f"{warning} {note}" if note else str(warning)
            out.append(Finding("warning", code, text, path, line, col, format_key_path(loc)))
    return out
