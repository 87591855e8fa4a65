"""The run journal: JSON lines on disk as soon as they are written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from showrunner.live.journal import KINDS, Journal, read_journal


def test_each_line_is_on_disk_when_write_returns(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "run.jsonl"
    journal = Journal(path)
    journal.write({"planned_at": 1.5, "sent_at": 1.5004, "scene": "intro", "kind": "send",
                   "label": "enter", "message": {"paused": False}})
    # Read through a separate handle before closing: nothing is buffered.
    assert json.loads(path.read_text().splitlines()[0])["message"] == {"paused": False}
    journal.write({"kind": "end", "scene": "intro"})
    journal.close()
    records = read_journal(path)
    assert [r["kind"] for r in records] == ["send", "end"]
    assert journal.lines == 2
    assert "lines=2" in repr(journal)


def test_appends_to_an_existing_journal(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path) as journal:
        journal.write({"kind": "start"})
    with Journal(path) as journal:
        journal.write({"kind": "quit"})
    assert [r["kind"] for r in read_journal(path)] == ["start", "quit"]


def test_non_finite_numbers_become_null_and_odd_values_strings() -> None:
    stream = io.StringIO()
    journal = Journal(stream=stream)
    journal.write({"kind": "send", "planned_at": float("nan"), "path": Path("x")})
    record = json.loads(stream.getvalue())
    assert record == {"kind": "send", "planned_at": None, "path": "x"}
    journal.close()
    assert not stream.closed  # the caller's stream stays open


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"kind": "send"}\n{"kind": "se')
    assert read_journal(path) == [{"kind": "send"}]


def test_writing_after_close_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.close()
    journal.write({"kind": "send"})
    assert journal.lines == 0


def test_needs_exactly_one_destination(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Journal()
    with pytest.raises(ValueError):
        Journal(tmp_path / "a", stream=io.StringIO())


def test_kinds_cover_the_documented_ones() -> None:
    assert {"send", "session", "switch", "reconnect", "error", "cue", "hold", "resume", "end",
            "operator"} <= KINDS


def test_every_kind_the_package_records_is_known() -> None:
    """Each literal ``.record("kind"`` in the package names a kind of KINDS."""
    import re

    import showrunner

    root = Path(showrunner.__file__).parent
    used = {m.group(1) for path in root.rglob("*.py")
            for m in re.finditer(r'\.record\(\s*"([a-z_]+)"', path.read_text("utf-8"))}
    assert {"reload", "reload_error", "scene"} <= used
    assert used <= KINDS, sorted(used - KINDS)
