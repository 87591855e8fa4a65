"""Preflight checks a show passes before any Scope server is reached (`showrunner check`).

A show can be valid and still not do what its author expects on Scope 0.2.4: a LoRA fade on a
LoRA Scope cannot re-scale, VACE references on a pipeline loaded without VACE, a pipeline switch
that blacks out the output while the new pipeline loads. These are warnings: the show runs, but
the author should know. Every finding points at the text that causes it.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from showrunner import pipelines
from showrunner.errors import ShowErrors
from showrunner.pipelines import PipelineInfo
from showrunner.show.load import LoadResult, format_key_path, load, note_at, source_location
from showrunner.show.model import LoadParams, Loc, Scene, Show

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem or risk, at a position in a show file."""

    severity: Severity
    code: str
    message: str
    path: str
    line: int
    col: int
    key_path: str

    def format(self) -> str:
        """`path:line:col: [warning: ]key.path: message`."""
        where = f"{self.path}:{self.line}:{self.col}: "
        if self.severity == "warning":
            where += "warning: "
        return f"{where}{self.key_path}: {self.message}" if self.key_path else where + self.message


Planner = Callable[[LoadResult], Sequence[Finding]]
"""What compiling a loaded show finds (``showrunner.plan.preflight.plan_findings``): `check`
reports it with the linter's findings, so it fails every show `report` and `run` refuse."""


def lint(result: LoadResult, plan: Planner | None = None) -> list[Finding]:
    """Preflight findings for a loaded show (and what `plan` finds), sorted by position."""
    checker = _Checker(result)
    checker.run()
    found = checker.findings + (list(plan(result)) if plan is not None else [])
    return sorted(found, key=lambda f: (f.path != str(result.path), f.path, f.line, f.col, f.code))


def check_paths(
    paths: Sequence[str], *, strict: bool = False, as_json: bool = False,
    plan: Planner | None = None, allow: Sequence[str | Path] = (),
) -> tuple[int, str, str]:
    """Run `showrunner check`: (exit code, stdout, stderr).

    Errors fail (exit 1); warnings are printed but pass unless `strict`. A directory means every
    `*.yaml`/`*.yml` file directly inside it. `plan` adds the compiler's findings. Shows may
    read files in their own folder and in the `allow` folders (``--allow-path``).
    """
    findings: list[Finding] = []
    summary: list[str] = []
    for path in _expand(paths):
        found = _check_one(path, plan, allow)
        findings.extend(found)
        errors = sum(f.severity == "error" for f in found)
        summary.append(f"{path}: {_count(errors, 'error')}, {_count(len(found) - errors, 'warning')}")
    failed = any(f.severity == "error" or strict for f in findings)
    if as_json:
        out = json.dumps([asdict(f) for f in findings], indent=2) + "\n"
        return int(failed), out, ""
    err = "".join(f.format() + "\n" for f in findings)
    return int(failed), "".join(line + "\n" for line in summary), err


def _expand(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            yield from (str(f) for f in found)
        else:
            yield path


def _check_one(path: str, plan: Planner | None, allow: Sequence[str | Path]) -> list[Finding]:
    try:
        result = load(path, allow=allow)
    except ShowErrors as exc:
        return [
            Finding("error", "invalid", e.message, e.path, e.line, e.col, e.key_path)
            for e in exc.errors
        ]
    return lint(result, plan)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _InForce:
    """What is in force while a scene plays (values track from scene to scene). Scenes that
    change none of it share one, and its pipeline facts are worked out once."""

    chain: tuple[str, ...]
    load: LoadParams
    input_mode: str | None
    manage_cache: bool | None

    @cached_property
    def infos(self) -> list[PipelineInfo] | None:
        """Facts of every pipeline in the chain; None when one is unknown (a plugin)."""
        infos = [pipelines.lookup(p) for p in self.chain]
        return None if any(i is None for i in infos) else [i for i in infos if i is not None]

    @cached_property
    def main(self) -> PipelineInfo | None:
        infos = self.infos
        if not infos:
            return None
        return next((i for i in infos if i.supports_prompts), infos[-1])

    @cached_property
    def mode(self) -> str | None:
        main = self.main
        return self.input_mode or (main.default_mode if main else None)


def _states(show: Show) -> list[_InForce]:
    d = show.defaults
    state = _InForce(tuple(d.pipeline), d.load, d.input_mode, d.manage_cache)
    out = []
    for scene in show.scenes:
        if scene.pipeline is None and scene.load is None and scene.input_mode is None and \
                scene.manage_cache is None:
            out.append(state)
            continue
        load_params = state.load
        if scene.load is not None:
            load_params = LoadParams.model_validate(
                {**state.load.model_dump(exclude_none=True),
                 **scene.load.model_dump(exclude_none=True)}
            )
        state = _InForce(
            tuple(scene.pipeline) if scene.pipeline else state.chain,
            load_params,
            scene.input_mode or state.input_mode,
            scene.manage_cache if scene.manage_cache is not None else state.manage_cache,
        )
        out.append(state)
    return out


class _Checker:
    def __init__(self, result: LoadResult) -> None:
        self.result = result
        self.show = result.show
        self.states = _states(result.show)
        self.findings: list[Finding] = []

    def add(self, severity: Severity, code: str, loc: Loc, message: str) -> None:
        path, line, col = source_location(self.result, loc)
        note = note_at(self.result, loc)
        text = f"{message} {note}" if note else message
        self.findings.append(Finding(severity, code, text, path, line, col, format_key_path(loc)))

    def run(self) -> None:
        self.unknown_pipelines()
        self.switches()
        for i, scene in enumerate(self.show.scenes):
            self.loras(i, scene)
            self.vace(i, scene)
            self.prompts(i, scene)
            self.noise(i, scene)
            self.input_source(i, scene)
        self.reachability()
        self.endless()
        self.live_inputs()

    # -- pipelines -----------------------------------------------------------------------------

    def unknown_pipelines(self) -> None:
        written: list[tuple[Loc, list[str]]] = [(("defaults", "pipeline"),
                                                 self.show.defaults.pipeline)]
        written += [(("scenes", i, "pipeline"), s.pipeline) for i, s in enumerate(self.show.scenes)
                    if s.pipeline]
        for loc, chain in written:
            for j, pid in enumerate(chain):
                if pipelines.lookup(pid) is None:
                    hint = difflib.get_close_matches(pid, list(pipelines.PIPELINES), n=1)
                    why = f"did you mean {hint[0]!r}? If it is a plugin, " if hint else "a plugin? "
                    self.add("warning", "unknown-pipeline", (*loc, j) if len(chain) > 1 else loc,
                             f"unknown pipeline {pid!r}; {why}checks that need its facts are "
                             "skipped")

    def switches(self) -> None:
        """Each pipeline or load change means teardown, load and reconnect: a gap in the output."""
        for i in range(1, len(self.states)):
            self._switch(self.states[i - 1], self.states[i], ("scenes", i), "")
        for i, scene in enumerate(self.show.scenes):
            if scene.goto is not None and scene.goto.scene in self._names:
                target = self._names[scene.goto.scene]
                self._switch(self.states[i], self.states[target], ("scenes", i, "goto"),
                             f"the jump to {scene.goto.scene!r} ")
        for k, section in enumerate(self.show.sections):
            if section.start in self._names and section.end in self._names:
                self._switch(self.states[self._names[section.end]],
                             self.states[self._names[section.start]], ("sections", k),
                             f"repeating section {section.name!r} ")
        if self.show.loop_count != 1 and len(self.states) > 1:
            self._switch(self.states[-1], self.states[0], ("loop",), "looping back ")

    def _switch(self, old: _InForce, new: _InForce, loc: Loc, prefix: str) -> None:
        # A scene's own switch points at its `pipeline`/`load`; a jump points at the jump.
        scene_loc = loc[:2] if loc[0] == "scenes" and not prefix else None
        if old.chain != new.chain:
            where = (*scene_loc, "pipeline") if scene_loc else loc
            self.add("warning", "pipeline-switch", where,
                     f"{prefix}switches pipeline {' + '.join(old.chain)} -> "
                     f"{' + '.join(new.chain)}: Scope reloads and reconnects, so the output stops "
                     "for the load time")
        elif old.load != new.load:
            changed = [k for k in LoadParams.model_fields
                       if getattr(old.load, k) != getattr(new.load, k)]
            where = (*scene_loc, "load") if scene_loc else loc
            self.add("warning", "reload", where,
                     f"{prefix}changes load settings ({', '.join(changed)}): Scope reloads the "
                     "pipeline and reconnects, so the output stops for the load time")

    @cached_property
    def _names(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.show.scenes)}

    # -- per scene -----------------------------------------------------------------------------

    def loras(self, i: int, scene: Scene) -> None:
        if not (scene.loras or scene.keyframes or scene.modulate):
            return  # changes no LoRA scale
        state = self.states[i]
        changes: list[tuple[str, Loc]] = [(name, ("scenes", i, "loras", name)) for name in scene.loras]
        changes += [(t.split(".", 1)[1], ("scenes", i, "keyframes", t))
                    for t in scene.keyframes if t.startswith("lora.")]
        changes += [(t.split(".", 1)[1], ("scenes", i, "modulate", t))
                    for t, m in scene.modulate.items() if t.startswith("lora.") and m is not None]
        loaded = {entry.lora: entry for entry in state.load.loras or []}
        for name, loc in changes:
            if name not in self.show.assets.loras:
                continue  # reported by validation
            entry = loaded.get(name)
            if entry is None:
                self.add("warning", "lora-not-loaded", loc,
                         f"LoRA {name!r} is not in `load.loras` here, so its scale cannot change")
                continue
            mode = entry.merge_mode or state.load.lora_merge_mode or "permanent_merge"
            if mode != "runtime_peft":
                self.add("warning", "lora-not-runtime", loc,
                         f"LoRA {name!r} is loaded with {mode}: Scope silently ignores runtime "
                         "scale changes (load it with merge_mode: runtime_peft)")
            # A fade under manage_cache is the compiler's to handle and report: it runs with
            # manage_cache off (plan/actions.py lora_fade, warning `lora-fade`).

    def vace(self, i: int, scene: Scene) -> None:
        state = self.states[i]
        uses: list[Loc] = []
        if scene.vace is not None and (scene.vace.refs or scene.vace.context_scale is not None
                                       or scene.vace.use_input_video):
            uses.append(("scenes", i, "vace"))
        uses += [("scenes", i, k) for k in ("first_frame", "last_frame") if getattr(scene, k)]
        if "vace_context_scale" in scene.keyframes:
            uses.append(("scenes", i, "keyframes", "vace_context_scale"))
        if not uses:
            return
        infos = state.infos
        if infos is not None and not any(info.supports_vace for info in infos):
            self.add("warning", "vace-unsupported", uses[0],
                     f"pipeline {' + '.join(map(repr, state.chain))} has no VACE; Scope drops "
                     "VACE inputs")
        elif state.load.vace_enabled is False:
            self.add("warning", "vace-disabled", uses[0],
                     "VACE is used but `vace_enabled` is false in the load settings; Scope drops "
                     "VACE inputs")

    def prompts(self, i: int, scene: Scene) -> None:
        main = self.states[i].main
        if main is None or main.supports_prompts:
            return
        for key in ("prompts", "travel"):
            if getattr(scene, key):
                self.add("warning", "prompts-unsupported", ("scenes", i, key),
                         f"pipeline {main.id!r} does not take prompts; they are ignored")

    def noise(self, i: int, scene: Scene) -> None:
        if self.states[i].mode != "text":
            return
        keys = [k for k in ("noise_scale", "noise_controller") if getattr(scene, k) is not None]
        locs: list[Loc] = [("scenes", i, k) for k in keys]
        if "noise_scale" in scene.keyframes:
            locs.append(("scenes", i, "keyframes", "noise_scale"))
        if scene.modulate.get("noise_scale") is not None:
            locs.append(("scenes", i, "modulate", "noise_scale"))
        if i == 0:
            locs += [("defaults", k) for k in ("noise_scale", "noise_controller")
                     if getattr(self.show.defaults, k) is not None]
        for loc in locs:
            self.add("warning", "noise-text-mode", loc,
                     f"{loc[-1]} only works in video mode; Scope ignores it in text mode")

    def input_source(self, i: int, scene: Scene) -> None:
        """A server-side input set for a scene that plays in text mode: showrunner does not send
        it there (Scope would start a decoder for a pipeline that reads no input)."""
        if self.states[i].mode != "text":
            return
        locs: list[Loc] = [("scenes", i, "input_source")] if scene.input_source is not None else []
        if i == 0 and self.show.defaults.input_source is not None:
            locs.append(("defaults", "input_source"))
        for loc in locs:
            self.add("warning", "input-source-text-mode", loc,
                     "the scene plays in text mode, where the input source is not sent (only a "
                     "video-mode session reads it)")

    def live_inputs(self) -> None:
        """Controls with no device to read them from; LFOs with no tempo of the show's own."""
        if self.show.controls and self.show.midi is None:
            self.add("warning", "controls-without-midi", ("controls",),
                     "no `midi: {device: …}` names the controller, so these controls never fire")
        for name, spec in self.show.inputs.items():
            if spec.lfo is not None and self.show.bpm is None:
                self.add("warning", "lfo-without-bpm", ("inputs", name, "lfo"),
                         "the show has no `bpm`: this LFO runs at 120 bpm")

    # -- flow ----------------------------------------------------------------------------------

    def _closed(self) -> str | None:
        hours = self.show.hours
        return hours.closed if hours is not None and hours.closed != "pause" else None

    def reachability(self) -> None:
        """Scenes the show can never play: after an unconditional goto, with no jump into them."""
        scenes, names, closed = self.show.scenes, self._names, self._closed()
        playable = [i for i, s in enumerate(scenes) if s.name != closed]
        if not playable:
            return
        nxt = {a: b for a, b in itertools.pairwise(playable)}
        seen, todo = set(), [playable[0]]
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            goto = scenes[i].goto
            if goto is not None and goto.scene in names:
                todo.append(names[goto.scene])
            if (goto is None or goto.times is not None) and i in nxt:
                todo.append(nxt[i])
        for i in playable:
            if i not in seen:
                jumps = [j for j in seen if j < i and (g := scenes[j].goto) and g.times is None]
                why = ""
                if jumps and (goto := scenes[max(jumps)].goto) is not None:
                    why = f" (scene {scenes[max(jumps)].name!r} always jumps to {goto.scene!r})"
                self.add("warning", "unreachable", ("scenes", i, "name"),
                         f"scene {scenes[i].name!r} is never reached{why}")

    def endless(self) -> None:
        """A show that never ends is right for an installation and a trap on stage."""
        if self.show.hours is not None:
            return
        why = "; fine for an installation (add `hours:` to say so), dangerous on stage"
        if self.show.loop_count is None:
            self.add("warning", "endless-loop", ("loop",), f"the show loops forever{why}")
            return
        names = self._names
        for i, scene in enumerate(self.show.scenes):
            goto = scene.goto
            if goto is not None and goto.times is None and names.get(goto.scene, i + 1) <= i:
                self.add("warning", "endless-loop", ("scenes", i, "goto"),
                         f"jumps back to {goto.scene!r} every time, so the show never ends{why}")
