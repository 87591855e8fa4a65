"""The command line: each subcommand is a thin call; errors are one line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from showrunner.cli import main
from showrunner.schema import schema_text

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


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("showrunner ")
