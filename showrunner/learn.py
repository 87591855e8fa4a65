"""Learn mode: map the control just pressed on the MIDI device to an action, in the show file.

The operator presses a pad, key, fader or program button; the page shows it (the last control
seen, `showrunner.midi.controls.Controls.last`), the operator picks an action, and the mapping is
written into the show file's `controls:` — in place of an earlier mapping of the same control,
else appended — keeping the file's comments and layout (`show.yaml.upsert_item`). The new text
is loaded and checked first: a mapping the show would refuse (an unknown scene, cue or input)
is answered with the loader's message and nothing is written. The file is replaced atomically,
and the hot reload takes it up like any other edit.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from showrunner.errors import ShowErrors, ShowrunnerError
from showrunner.midi.ports import MidiKind, MidiMessage
from showrunner.show.load import load_text
from showrunner.show.model import Control
from showrunner.show.yaml import YamlProblem, upsert_item

__all__ = ["ACTIONS", "LearnError", "learn", "mapping_for"]

#: What a learned control may do, and whether the action takes a name.
ACTIONS: Mapping[str, bool] = {
    "go": False, "back": False, "hold": False, "resume": False, "panic": False,
    "goto": True, "cue": True, "input": True,
}
_KINDS = {MidiKind.NOTE: "note", MidiKind.CC: "cc", MidiKind.PROGRAM: "program"}


class LearnError(ShowrunnerError):
    """A mapping that cannot be learned; the message says why, for the operator."""


def mapping_for(message: MidiMessage, action: str, name: str | None) -> dict[str, Any]:
    """The `controls:` entry mapping `message`'s control to `action` (with `name`)."""
    kind = _KINDS.get(message.kind)
    if kind is None:
        raise LearnError("press a pad, key, knob, fader or program button first")
    if action not in ACTIONS:
        raise LearnError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    if ACTIONS[action] != bool(name):
        raise LearnError(f"{action} {'needs' if ACTIONS[action] else 'takes no'} name")
    entry: dict[str, Any] = {kind: message.number}
    if message.channel is not None:
        entry["channel"] = message.channel
    if action in ("goto", "cue", "input"):
        entry[action] = name
    else:
        entry["do"] = action
    try:
        Control.model_validate(entry)
    except pydantic.ValidationError as exc:
        raise LearnError("; ".join(e["msg"] for e in exc.errors())) from None
    return entry


def learn(path: Path, entry: dict[str, Any]) -> str:
    """Write `entry` into the show file at `path`; returns the new text. LearnError when the
    show would not load with it (nothing is written then)."""
    text = path.read_text("utf-8")
    key = Control.model_validate(entry).key

    def same(old: Any) -> bool:
        try:
            return isinstance(old, Mapping) and Control.model_validate(dict(old)).key == key
        except pydantic.ValidationError:
            return False

    try:
        new = upsert_item(text, "controls", entry, same)
    except YamlProblem as exc:
        raise LearnError(f"{path.name}: cannot edit the show: {exc}") from None
    try:
        load_text(new, path=str(path), base_dir=path.parent)
    except ShowErrors as exc:
        raise LearnError(exc.errors[0].format() if exc.errors else str(exc)) from None
    _replace(path, new)
    return new


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".learn", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
