"""The resume state file: atomic replacement, tolerant reading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from showrunner.live.resume import (
    STATE_FILE_NAME,
    ResumeState,
    clear_state,
    default_state_path,
    read_state,
    show_hash,
    write_state,
)


def _state(**kw: object) -> ResumeState:
    base: dict[str, object] = dict(
        show="/shows/a.yaml", show_hash="abc", origin=1000.0, scene="b", index=1, iteration=2,
        path=(("section:chorus", 1),), part=3, part_origin=1100.0, cue="go", cue_scene="b",
        written_at=1105.0, part_origins={"3": 1100.0},
    )
    base.update(kw)
    return ResumeState(**base)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, _state())
    assert read_state(path) == _state()
    assert json.loads(path.read_text())["version"] == 1


def test_replacement_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, _state(scene="a"))
    inode = os.stat(path).st_ino
    write_state(path, _state(scene="c"))
    assert read_state(path) == _state(scene="c")
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@pytest.mark.parametrize(
    "content",
    ["", "{not json", '{"version": 99}', '{"version": 1, "show": "x"}', "[]"],
    ids=["empty", "garbage", "version", "missing-keys", "not-an-object"],
)
def test_bad_files_read_as_none(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    assert read_state(path) is None


def test_missing_file_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert read_state(path) is None
    clear_state(path)  # no error
    write_state(path, _state())
    clear_state(path)
    assert not path.exists()


def test_unwritable_folder_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    write_state(blocker / "state.json", _state())  # parent is a file: logged, not raised


def test_show_hash_follows_content(tmp_path: Path) -> None:
    show = tmp_path / "a.yaml"
    show.write_text("title: a\n")
    first = show_hash([show])
    assert show_hash([show]) == first
    show.write_text("title: b\n")
    assert show_hash([show]) != first
    assert show_hash([tmp_path / "missing.yaml"]) != first


def test_default_paths(tmp_path: Path) -> None:
    assert default_state_path(tmp_path / "show.yaml") == tmp_path.resolve() / STATE_FILE_NAME
    assert default_state_path(tmp_path / "s.yaml", tmp_path / "logs" / "run.jsonl") == (
        tmp_path / "logs" / "run.state.json"
    )
