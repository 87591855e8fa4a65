"""The compiler's timing pass: when each scene starts and ends on its part's clock.

It reads the show's scene order, cues, ``at``/``after``, durations, sections and gotos, and
rejects timing that cannot be played (a ShowError pointing at the key). Values are tracked
afterwards (compiler.py); nothing here looks at prompts or pipelines.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from showrunner.errors import ShowError
from showrunner.plan.timeline import EPS, fmt_time
from showrunner.show.model import Scene, Section, Show, is_musical

__all__ = ["Timing", "time_show"]


@dataclass
class Timing:
    """Per scene (by file index): start and end on its part's clock, trigger text, notes."""

    names: dict[str, int]  # scene name -> file index of its first scene with that name
    closed: int | None  # the hours.closed scene, never in the normal flow
    flow: list[int]  # file indices of the scenes in the normal flow
    cues: list[str | None]  # each scene's cue name (None: timed)
    start: list[float | None]
    end: list[float | None]
    trigger: list[str]
    notes: dict[int, list[str]]  # scene index -> warnings about its timing
    sections: list[tuple[Section, int, int]]  # (section, first scene, last scene)
    # Musical time (docs/show-format.md "Musical time"): what follows a live tempo.
    inner_follows: list[bool] = field(default_factory=list)  # its length and actions
    start_follows: list[bool] = field(default_factory=list)  # its start, from the scene before


def follows_tempo(scene: Scene) -> bool:
    """Times inside `scene` (its length, keyframes, travel) follow a live tempo: its `duration`
    is written in bars or beats; without a `duration`, any keyframe, travel stop or transition is."""
    if scene.duration is not None:
        return is_musical(scene.duration)
    times: list[float | None] = [k.at for frames in scene.keyframes.values() for k in frames]
    times += [step.at for step in scene.travel]
    if scene.transition is not None:
        times.append(scene.transition.duration)
    return any(is_musical(t) for t in times)


def time_show(show: Show, path: str) -> Timing:
    """The timing of every scene; raises ShowError (at `path`) for timing that cannot play."""
    return _TimingPass(show, path).run()


class _TimingPass:
    def __init__(self, show: Show, path: str) -> None:
        self.show = show
        self.path = path
        self.names: dict[str, int] = {}
        for i, scene in enumerate(show.scenes):
            self.names.setdefault(scene.name, i)
        closed = show.hours.closed if show.hours is not None and show.hours.closed != "pause" else None
        self.closed = self._ref(closed, "hours.closed") if closed is not None else None
        self.flow = [i for i in range(len(show.scenes)) if i != self.closed]
        if not self.flow:
            raise self._error(
                "the closed-hours scene is the only scene; add one to play while open", "hours.closed"
            )
        self.cues = [scene.cue_name for scene in show.scenes]

    def _error(self, message: str, key_path: str) -> ShowError:
        return ShowError(message, path=self.path, key_path=key_path)

    def _ref(self, name: str, key_path: str) -> int:
        if name not in self.names:
            hint = difflib.get_close_matches(name, list(self.names), n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self._error(f"unknown scene {name!r}{suffix}", key_path)
        return self.names[name]

    def run(self) -> Timing:
        n = len(self.show.scenes)
        t = Timing(self.names, self.closed, self.flow, self.cues, [None] * n, [None] * n, [""] * n, {}, [])
        self._timing(t)
        self._musical(t)
        t.sections = self._sections(t)
        self._check_jumps(t)
        return t

    def _timing(self, t: Timing) -> None:
        scenes = self.show.scenes
        part = [0] * len(scenes)
        part_no = 0
        prev: int | None = None
        for pos, i in enumerate(self.flow):
            s = scenes[i]
            if self.cues[i] is not None and pos:
                part_no += 1
            part[i] = part_no
            start = self._start(i, s, prev, t, part)
            t.start[i] = start
            if prev is not None and self.cues[i] is None and (s.at is not None or s.after is not None):
                if scenes[prev].duration is None:
                    t.end[prev] = start
                elif (t.end[prev] or 0.0) > start + EPS:
                    t.notes.setdefault(prev, []).append(
                        f"cut short at {fmt_time(start)}: {s.name!r} starts before its duration is over"
                    )
                    t.end[prev] = start
            t.end[i] = start + s.duration if s.duration is not None else None
            prev = i
        if self.closed is not None:
            s = scenes[self.closed]
            t.start[self.closed] = 0.0
            t.end[self.closed] = s.duration
            t.trigger[self.closed] = "closed hours"

    def _musical(self, t: Timing) -> None:
        """Which scenes' insides and starts follow a live tempo (see `follows_tempo`)."""
        scenes = self.show.scenes
        t.inner_follows = [follows_tempo(s) for s in scenes]
        t.start_follows = [False] * len(scenes)
        prev: int | None = None
        for i in self.flow:
            s = scenes[i]
            if self.cues[i] is None:
                if s.at is not None:
                    t.start_follows[i] = is_musical(s.at)
                elif s.after is not None:
                    j = self.names[s.after.scene]
                    t.start_follows[i] = t.inner_follows[j] and (
                        not s.after.offset or is_musical(s.after.offset)
                    )
                elif prev is not None:
                    t.start_follows[i] = t.inner_follows[prev]
            prev = i

    def _start(self, i: int, s: Scene, prev: int | None, t: Timing, part: list[int]) -> float:
        scenes = self.show.scenes
        cue = self.cues[i]
        if cue is not None:
            t.trigger[i] = "GO" if cue == "go" else f"cue {cue}"
            return s.pre_wait
        if s.at is not None:
            t.trigger[i] = f"at {fmt_time(s.at)}"
            start = s.at + s.pre_wait
            before = t.start[prev] if prev is not None else None
            if prev is not None and before is not None and start < before - EPS:
                raise self._error(
                    f"starts at {fmt_time(start)}, before {scenes[prev].name!r} ({fmt_time(before)})",
                    f"scenes[{i}].at",
                )
            return start
        if s.after is not None:
            j = self._ref(s.after.scene, f"scenes[{i}].after.scene")
            key = f"scenes[{i}].after"
            if j >= i or j == self.closed:
                raise self._error(f"scene {s.after.scene!r} must come before {s.name!r}", key)
            if part[j] != part[i]:
                raise self._error(
                    f"{s.after.scene!r} plays before a cue, so its end is not on this part's clock; "
                    "use `at` (from the cue) instead",
                    key,
                )
            end = t.end[j]
            if end is None:
                raise self._error(f"{s.after.scene!r} has no end to start after; give it a `duration`", key)
            offset = f"+{fmt_time(s.after.offset)}" if s.after.offset else ""
            t.trigger[i] = f"after {s.after.scene}{offset}"
            return end + s.after.offset + s.pre_wait
        t.trigger[i] = "timed"
        if prev is None:
            return s.pre_wait
        end = t.end[prev]
        if end is None:
            p = scenes[prev]
            raise self._error(
                f"scene {p.name!r} has no duration, so {s.name!r} (which starts when it ends) "
                f"would never start; give {p.name!r} a `duration`, or {s.name!r} an `at`, "
                "`after` or `cue`",
                f"scenes[{prev}].duration",
            )
        return end + s.pre_wait

    def _sections(self, t: Timing) -> list[tuple[Section, int, int]]:
        out = []
        for k, section in enumerate(self.show.sections):
            first = self._ref(section.start, f"sections[{k}].start")
            last = self._ref(section.end, f"sections[{k}].end")
            if first > last:
                message = f"scene {section.end!r} comes before {section.start!r}"
                raise self._error(message, f"sections[{k}].end")
            if self.closed is not None and first <= self.closed <= last:
                raise self._error("a section cannot contain the closed-hours scene", f"sections[{k}]")
            if section.repeat > 1 and t.end[last] is None:
                raise self._error(
                    f"its last scene {section.end!r} never ends, so it cannot repeat; give it a `duration`",
                    f"sections[{k}]",
                )
            out.append((section, first, last))
        return out

    def _check_jumps(self, t: Timing) -> None:
        scenes = self.show.scenes
        for i in self.flow:
            s = scenes[i]
            if s.goto is not None:
                target = self._ref(s.goto.scene, f"scenes[{i}].goto.scene")
                if target == self.closed:
                    raise self._error("cannot go to the closed-hours scene", f"scenes[{i}].goto")
                if t.end[i] is None:
                    raise self._error(
                        f"scene {s.name!r} has `goto` but never ends; give it a `duration`",
                        f"scenes[{i}].goto",
                    )
        last = self.flow[-1]
        if self.show.loop_count != 1 and t.end[last] is None:
            raise self._error(
                f"the show loops, but its last scene {scenes[last].name!r} never ends; "
                "give it a `duration`",
                "loop",
            )
