"""The command line: each subcommand is a thin call; errors are one line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cue_show import FIRST, SECOND, SHOW, transitions_to

from showrunner.cli import main
from showrunner.show.schema import schema_text
from showrunner.sim import SimThread

ROOT = Path(__file__).resolve().parents[1]
SHOWS = sorted((ROOT / "shows").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "fixtures" / "scope"


def test_check_passes_every_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *map(str, SHOWS)]) == 0
    out = capsys.readouterr().out
    assert all(f"{p.name}: 0 errors" in out for p in SHOWS)


def test_check_reports_an_error_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = tmp_path / "bad.yaml"
    show.write_text("title: x\nscenes:\n  - name: a\n    duraton: 3\n")
    assert main(["check", str(show)]) == 1
    err = capsys.readouterr().err
    assert f"{show}:4:5: scenes[0]: unknown key 'duraton'; did you mean 'duration'?" in err
    assert "Traceback" not in err


def test_schema_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "schemas" / "show.schema.json").read_text("utf-8")
    assert schema_text()


def test_report_writes_text_html_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["report", str(ROOT / "shows/minimal.yaml"), "--html", str(html), "--json", str(data)]) == 0
    out = capsys.readouterr().out
    assert "dawn" in out and "noon" in out and "dusk" in out
    assert "<svg" in html.read_text("utf-8")
    assert json.loads(data.read_text("utf-8"))["format"] == "showrunner-report"


def test_report_at_prints_the_resolved_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(ROOT / "shows/minimal.yaml"), "--at", "noon+1"]) == 0
    assert "the same pine forest at noon" in capsys.readouterr().out


def test_report_of_a_broken_show_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    show = tmp_path / "bad.yaml"
    show.write_text("title: x\nscenes: 3\n")
    assert main(["report", str(show)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{show}:2:9: ") and err.count("\n") == 1


def test_import_writes_a_show_that_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported.yaml"
    assert main(["import", str(FIXTURES / "timeline-krea-shapes.json"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(out)]) == 0


def test_import_of_a_malformed_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    assert main(["import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def test_run_plays_a_short_show_on_the_embedded_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = tmp_path / "tiny.yaml"
    show.write_text(
        "title: tiny\nend: stop\nscenes:\n"
        "  - {name: a, prompts: red, duration: 0.6}\n"
        "  - {name: b, prompts: blue, duration: 0.6}\n"
    )
    journal = tmp_path / "j.jsonl"
    assert main(["run", str(show), "--journal", str(journal), "--control-port", "0"]) == 0
    lines = [json.loads(line) for line in journal.read_text("utf-8").splitlines()]
    sent = [line for line in lines if line["kind"] == "send"]
    assert [line["scene"] for line in sent] == ["b"]
    assert sent[0]["message"]["transition"]["target_prompts"] == [{"text": "blue", "weight": 1.0}]


BARS = (
    "title: in bars\nbpm: 240\nend: stop\nscenes:\n"  # one bar (4 beats) lasts a second
    "  - {name: intro, prompts: red, duration: 2.5 bars}\n"
    "  - {name: outro, prompts: blue, duration: 0.5}\n"
)


@pytest.mark.parametrize("at", ["intro+2 bars", "intro+2"])
def test_run_at_reads_positions_as_report_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str
) -> None:
    """`run --at` and `report --at` share one parser: bars in the offset use the show's bpm."""
    show = tmp_path / "bars.yaml"
    show.write_text(BARS)
    assert main(["report", str(show), "--at", at]) == 0
    assert "red" in capsys.readouterr().out
    journal = tmp_path / "j.jsonl"
    assert main(["run", str(show), "--at", at, "--journal", str(journal), "--control-port", "-1"]) == 0
    scenes = [line for line in _journal_lines(journal) if line["kind"] == "scene"]
    assert [(line["scene"], line["offset"]) for line in scenes] == [("intro", 2.0), ("outro", 0.0)]


def test_run_at_that_cannot_be_read_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    show = tmp_path / "bars.yaml"
    show.write_text(BARS)
    assert main(["run", str(show), "--at", "intro+soon", "--control-port", "-1"]) == 1
    err = capsys.readouterr().err
    assert "--at 'intro+soon': 'soon' is not a time" in err and "Traceback" not in err


def _journal_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _gate_lines(path: Path) -> list[dict[str, Any]]:
    """Operator lines written by the command gate (the player adds its own, without a source)."""
    return [r for r in _journal_lines(path) if r["kind"] == "operator" and "source" in r]


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_keys_in_the_terminal_are_debounced_and_journaled(tmp_path: Path) -> None:
    """Space twice in a row in a real terminal: one GO reaches Scope, the second is debounced."""
    show = tmp_path / "cues.yaml"
    show.write_text(SHOW)
    journal = tmp_path / "j.jsonl"
    sim_thread = SimThread("127.0.0.1", 0)
    sim = sim_thread.start()
    master, slave = os.openpty()
    output: list[bytes] = []
    process = subprocess.Popen(
        [sys.executable, "-m", "showrunner", "run", str(show), "--scope", sim.url,
         "--journal", str(journal), "--control-port", "-1"],
        stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
    )
    os.close(slave)

    def drain() -> None:  # the status line is redrawn 4 times a second; keep the pty empty
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            output.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        _wait_for(lambda: any(r["kind"] == "scene" and r["scene"] == "preshow"
                              for r in _journal_lines(journal)), "the show to start")
        os.write(master, b"  ")
        _wait_for(lambda: len(_gate_lines(journal)) == 2, "two operator lines")
        _wait_for(lambda: transitions_to(sim, FIRST) == 1, "the GO to reach Scope")
        os.write(master, b"q")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        sim_thread.stop()
    assert [(r["source"], r["command"], r["applied"], r["reason"]) for r in _gate_lines(journal)] == [
        ("keyboard", "go", True, None),
        ("keyboard", "go", False, "debounced"),
        ("keyboard", "quit", True, None),
    ]
    assert transitions_to(sim, FIRST) == 1
    assert transitions_to(sim, SECOND) == 0
    assert b"ignored" in b"".join(output)  # the operator is told why the second press did nothing


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("showrunner ")


def test_sim_on_a_taken_port_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sim", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"sim: cannot listen on 127.0.0.1:{port}: address already in use"


def test_run_on_a_taken_control_port_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    show = tmp_path / "tiny.yaml"
    show.write_text("title: tiny\nend: stop\nscenes:\n  - {name: a, prompts: red, duration: 0.2}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["run", str(show), "--control-port", str(port)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.strip().splitlines() == [
        f"control: cannot listen on 127.0.0.1:{port}: address already in use "
        "(choose another --control-port, or -1 for none)"
    ]


def test_run_resume_is_a_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    show = tmp_path / "tiny.yaml"
    show.write_text("title: tiny\nend: stop\nscenes:\n  - {name: a, prompts: red, duration: 0.2}\n")
    assert main(["run", str(show), "--resume", "--control-port", "-1"]) == 0
    assert "Starting from the top" in capsys.readouterr().out
