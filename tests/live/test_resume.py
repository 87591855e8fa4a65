"""The resume state file: atomic replacement, tolerant reading."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from showrunner.live.resume import (
    MAX_STATE_BYTES,
    STATE_FILE_SUFFIX,
    ResumeState,
    clear_state,
    default_state_path,
    read_state,
    show_hash,
    state_file_problem,
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


def test_unwritable_folder_does_not_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    write_state(blocker / "state.json", _state())  # parent is a file: logged, not raised
    assert "not writing the state file" in caplog.text and str(blocker) in caplog.text
    assert blocker.read_text() == "x"


def test_show_hash_follows_content(tmp_path: Path) -> None:
    show = tmp_path / "a.yaml"
    show.write_text("title: a\n")
    first = show_hash([show])
    assert show_hash([show]) == first
    show.write_text("title: b\n")
    assert show_hash([show]) != first
    assert show_hash([tmp_path / "missing.yaml"]) != first


def test_one_state_file_per_show(tmp_path: Path) -> None:
    assert default_state_path(tmp_path / "show.yaml") == (
        tmp_path.resolve() / f".show{STATE_FILE_SUFFIX}"
    )
    assert default_state_path(tmp_path / "other.yaml") != default_state_path(tmp_path / "show.yaml")


# -- only ever a state file ----------------------------------------------------------------------


def test_an_absent_file_or_a_state_file_may_be_used(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert state_file_problem(path) is None
    write_state(path, _state())
    assert state_file_problem(path) is None


@pytest.mark.parametrize("content", ["my notes\n", "", '{"title": "a show"}', "[1, 2]"],
                         ids=["text", "empty", "other-json", "json-list"])
def test_a_file_that_is_not_a_state_file_is_refused_and_left_alone(tmp_path: Path, content: str) -> None:
    """A --state-file pointed at someone's notes must neither overwrite them at the first scene
    nor delete them when an `end: stop` show finishes."""
    path = tmp_path / "notes.txt"
    path.write_text(content)
    problem = state_file_problem(path)
    assert problem is not None and str(path) in problem and "not a showrunner state file" in problem
    write_state(path, _state())
    clear_state(path)
    assert path.read_text() == content


def test_what_is_not_a_regular_file_is_refused_and_never_replaced(tmp_path: Path) -> None:
    """A device node became JSON once (os.replace swaps whatever is at the path): a FIFO, a
    folder, a symlink and a device are refused, and writing leaves them as they are."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    target = tmp_path / "real.json"
    write_state(target, _state())
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for path, words in ((fifo, "a FIFO"), (folder, "a directory"), (link, "a symbolic link"),
                        (Path("/dev/null"), "a device")):
        problem = state_file_problem(path)
        assert problem is not None and words in problem, problem
    write_state(fifo, _state())
    write_state(link, _state(scene="z"))
    clear_state(fifo)
    clear_state(link)
    assert fifo.is_fifo() and link.is_symlink() and read_state(target) == _state()


@pytest.mark.timeout(10)
def test_reading_is_bounded(tmp_path: Path) -> None:
    """/dev/full (or /dev/zero) never ends: reading it went on until MemoryError."""
    assert read_state(Path("/dev/full")) is None
    assert read_state(Path("/dev/zero")) is None
    big = tmp_path / "big.json"
    big.write_text('{"version": 1, "pad": "' + "x" * (MAX_STATE_BYTES + 10) + '"}')
    assert read_state(big) is None
    problem = state_file_problem(big)
    assert problem is not None and "too large" in problem


@pytest.mark.anyio
async def test_run_refuses_a_state_file_path_that_is_not_one_before_the_show(tmp_path: Path) -> None:
    """`showrunner run --state-file notes.txt`: one clear line, exit 1, nothing connected or
    touched."""
    from showrunner.app import RunOptions, StreamOutput, run

    show = tmp_path / "show.yaml"
    show.write_text("title: t\ndefaults: {pipeline: controller-viz}\n"
                    "scenes:\n  - {name: a, prompts: x, duration: 1}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    out, err = io.StringIO(), io.StringIO()
    options = RunOptions(show, state_file=notes, stdin_tty=False)
    assert await run(options, output=StreamOutput(out, err)) == 1
    assert err.getvalue().splitlines() == [
        f"error: {notes} is not a showrunner state file; it is left alone: choose another "
        "--state-file (or remove the file)"
    ]
    assert notes.read_text() == "mine" and out.getvalue() == ""
    options = RunOptions(show, state_file=Path("/dev/full"), stdin_tty=False)
    err.truncate(0)
    err.seek(0)
    assert await run(options, output=StreamOutput(out, err)) == 1
    assert err.getvalue() == "error: /dev/full is a device, not a state file; choose another --state-file\n"


POWER_CUT = """
title: power cut
loop: forever
hours:
  timezone: UTC
  open: [{start: "00:00", end: "24:00"}]
  closed: pause
defaults: {pipeline: controller-viz, load: {height: 64, width: 64}}
scenes:
  - {name: a, prompts: look a, duration: 3}
  - {name: b, prompts: look b, duration: 3}
  - {name: c, prompts: look c, duration: 3}
"""


def _scenes(journal: Path) -> list[dict[str, object]]:
    from showrunner.live.journal import read_journal

    return [r for r in read_journal(journal) if r["kind"] == "scene"] if journal.exists() else []


def _wait(predicate: object, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_after_a_power_cut_the_show_comes_back_at_the_wall_clock_scene(tmp_path: Path) -> None:
    """`showrunner run` of a looping show with opening hours is killed (SIGKILL: nothing is
    cleaned up) and started again, as a service manager does after a power cut: with no
    operator and no --resume it plays the scene the wall clock says, at the right offset."""
    import signal
    import subprocess
    import sys
    import time

    show = tmp_path / "show.yaml"
    show.write_text(POWER_CUT)

    def start(journal: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{journal}.out").open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "showrunner", "run", str(show), "--journal", journal,
                 "--state-file", "state.json", "--control-port", "-1"],
                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )

    with start("one.jsonl") as first:
        try:
            _wait(lambda: any(s["scene"] == "b" for s in _scenes(tmp_path / "one.jsonl")), 60)
        finally:
            first.send_signal(signal.SIGKILL)
    assert (tmp_path / "state.json").exists()
    time.sleep(3.5)  # the power comes back later: b (3-6 s) has played out by then
    with start("two.jsonl") as second:
        try:
            _wait(lambda: _scenes(tmp_path / "two.jsonl"), 60)
        finally:
            second.send_signal(signal.SIGTERM)
    assert second.returncode == 0

    origin = float(_scenes(tmp_path / "one.jsonl")[0]["planned_at"])  # type: ignore[arg-type]
    back = _scenes(tmp_path / "two.jsonl")[0]
    planned, at = float(back["planned_at"]), float(back["at"])  # type: ignore[arg-type]
    index = round((planned - origin) / 3.0)
    assert planned == pytest.approx(origin + 3.0 * index, abs=0.01)  # on the first run's grid
    assert index >= 2  # not from the top, nor where it was killed: where the clock went on to
    assert back["scene"] == "abc"[index % 3]
    assert planned <= at < planned + 3.0  # that scene is the one the wall clock says now
    assert float(back["offset"]) == pytest.approx(at - planned, abs=0.3)  # type: ignore[arg-type]
    assert "Resuming from state.json" in (tmp_path / "two.jsonl.out").read_text()
