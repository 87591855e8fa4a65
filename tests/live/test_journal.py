"""The run journal: JSON lines on disk as soon as they are written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from showrunner.live.journal import KINDS, Journal, Rotation, parse_size, read_journal


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


def _lines(path: Path) -> list[int]:
    return [r["n"] for r in read_journal(path)]


def test_a_size_rotation_keeps_every_file_under_the_limit_and_only_the_newest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.jsonl"
    line = len(json.dumps({"kind": "send", "n": 10}, separators=(", ", ": "))) + 1
    with Journal(path, rotation=Rotation(max_bytes=3 * line, keep=2)) as journal:
        for n in range(10, 20):  # ten lines of the same length: three to a file
            journal.write({"kind": "send", "n": n})
        assert journal.rotations == 3
    assert _lines(path) == [19]
    assert _lines(tmp_path / "run.jsonl.1") == [16, 17, 18]
    assert _lines(tmp_path / "run.jsonl.2") == [13, 14, 15]
    assert not (tmp_path / "run.jsonl.3").exists()  # 10-12 were dropped: keep 2
    for part in tmp_path.iterdir():
        assert part.stat().st_size <= 3 * line


def test_a_line_larger_than_the_limit_still_goes_into_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, rotation=Rotation(max_bytes=20, keep=5)) as journal:
        journal.write({"kind": "send", "n": 1, "message": {"prompt": "x" * 100}})
        journal.write({"kind": "send", "n": 2, "message": {"prompt": "y" * 100}})
    assert _lines(path) == [2]
    assert _lines(tmp_path / "run.jsonl.1") == [1]


def test_a_daily_rotation_starts_a_new_file_on_the_first_line_of_a_new_day(
    tmp_path: Path,
) -> None:
    from datetime import date

    days = iter([date(2026, 3, 1)] * 3 + [date(2026, 3, 2)] * 2 + [date(2026, 3, 4)])
    path = tmp_path / "run.jsonl"
    with Journal(path, rotation=Rotation(daily=True, keep=1), today=lambda: next(days)) as journal:
        for n in range(5):  # the first call is the journal's own look at the day it starts
            journal.write({"kind": "scene", "n": n})
    assert _lines(tmp_path / "run.jsonl.1") == [2, 3]
    assert _lines(path) == [4]
    assert not (tmp_path / "run.jsonl.2").exists()


def test_a_journal_continued_on_a_later_day_rotates_before_its_first_line(tmp_path: Path) -> None:
    import os
    from datetime import date

    path = tmp_path / "run.jsonl"
    path.write_text('{"kind": "quit", "n": 0}\n')
    os.utime(path, (0, 1772409600))  # 2026-03-02 00:00 UTC: some time on 1 or 2 March locally
    with Journal(path, rotation=Rotation(daily=True), today=lambda: date(2026, 3, 5)) as journal:
        journal.write({"kind": "start", "n": 1})
    assert _lines(tmp_path / "run.jsonl.1") == [0] and _lines(path) == [1]


@pytest.mark.parametrize(("text", "size"), [("50MB", 50_000_000), ("500kB", 500_000),
                                            ("1GiB", 1 << 30), ("4096", 4096), ("1.5M", 1_500_000),
                                            ("2 mib", 2 << 20)])
def test_sizes_read_with_their_unit(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "50XB", "-3MB", "0", "5 5"])
def test_a_size_that_cannot_be_read_says_what_can(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_only_a_file_rotates() -> None:
    with pytest.raises(ValueError):
        Journal(stream=io.StringIO(), rotation=Rotation(max_bytes=10))
