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
    assert main(["report", str(ROOT / "shows/minimal.yaml"), "--html", str(html), "--json", str(data),
                 "--text"]) == 0
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


def test_run_transport_headless_plays_without_webrtc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = tmp_path / "tiny.yaml"
    show.write_text(
        "title: tiny\nend: stop\nscenes:\n"
        "  - {name: a, prompts: red, duration: 0.6}\n"
        "  - {name: b, prompts: blue, duration: 0.6}\n"
    )
    journal = tmp_path / "j.jsonl"
    assert main(["run", str(show), "--transport", "headless", "--journal", str(journal),
                 "--control-port", "-1"]) == 0
    assert "Transport: headless" in capsys.readouterr().out
    sent = [line for line in _journal_lines(journal) if line["kind"] == "send"]
    assert sent[0]["message"]["transition"]["target_prompts"] == [{"text": "blue", "weight": 1.0}]
    with pytest.raises(SystemExit):
        main(["run", str(show), "--transport", "carrier-pigeon"])
    assert "invalid choice: 'carrier-pigeon'" in capsys.readouterr().err


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


# ---------------------------------------------------------------------------------------------
# Bad inputs: one clear line, a non-zero exit, no traceback, bounded memory, nothing outside
# ---------------------------------------------------------------------------------------------


def _limit_memory() -> None:  # in the child: a read that never ends must not take the machine
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def _showrunner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command, in a child process; a generous timeout only keeps a hang from
    blocking the suite (bench/bench_bad_inputs.py measures how long each case takes)."""
    return subprocess.run(
        [sys.executable, "-m", "showrunner", *args], cwd=cwd, capture_output=True, text=True,
        timeout=60, preexec_fn=_limit_memory, check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


SECRET = "TOPSECRET-not-to-be-read"


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    """A show folder inside tmp_path, with a secret file next to it (outside the folder)."""
    (tmp_path / "secret.yaml").write_text(f"base: {SECRET}\n")
    (tmp_path / "secret.png").write_bytes(b"\x89PNG" + SECRET.encode())
    folder = tmp_path / "stage"
    folder.mkdir()
    return folder


def _show(folder: Path, text: str, name: str = "show.yaml") -> str:
    (folder / name).write_text(text)
    return name


UP = "../" * 40  # far enough to reach / from any tmp_path


CHECK_CASES = [
    ("fifo-show", "pipe.yaml:1:1: is a FIFO, not a regular file"),
    ("device-show", "zero.yaml:1:1: is a device, not a regular file"),
    ("fifo-include", "show.yaml:3:8: include.lib: included file 'pipe.yaml' is a FIFO, not a "
        "regular file"),
    ("device-include", "show.yaml:3:14: scenes[0].include: included file 'zero.yaml' is a "
        "device, not a regular file"),
    ("outside-include", f"show.yaml:3:8: include.lib: included file '{UP}etc/hostname' is "
        "outside the show's folder (allow its folder with --allow-path DIR)"),
    ("outside-symlink", "show.yaml:3:8: include.lib: included file 'link.yaml' is outside the "
        "show's folder (allow its folder with --allow-path DIR)"),
    ("outside-asset", "show.yaml:4:8: assets.images.a: image file '/etc/passwd' is outside the "
        "show's folder (allow its folder with --allow-path DIR)"),
    ("template-loops", "show.yaml:4:12: scenes[0].notes: template is too costly (more than "
        "1,000,000 steps)"),
    ("template-center", "show.yaml:4:12: scenes[0].notes: template not allowed: result would "
        "be too large"),
    ("template-power", "show.yaml:4:12: scenes[0].notes: template not allowed: result would "
        "be too large"),
    ("template-doubling", "show.yaml:4:12: scenes[0].notes: template not allowed: result "
        "would be too large"),
]


@pytest.mark.parametrize(("case", "expected"), CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_refuses_bad_inputs_in_one_line(stage: Path, case: str, expected: str) -> None:
    os.mkfifo(stage / "pipe.yaml")
    (stage / "zero.yaml").symlink_to("/dev/zero")
    (stage / "link.yaml").symlink_to(stage.parent / "secret.yaml")
    scene = "scenes:\n  - name: a\n"
    notes = {
        "template-loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
                          "{% endfor %}",
        "template-center": "{{ 'x'.center(10**9) }}",
        "template-power": "{{ ((9 ** 999) ** 999) ** 999 }}",
        "template-doubling": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                             "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    }
    args: list[str] = []
    if case == "fifo-show":
        path = "pipe.yaml"
    elif case == "device-show":
        path = "zero.yaml"
    elif case.endswith("-include") or case == "outside-symlink":
        target = {"fifo-include": "pipe.yaml", "outside-include": f"{UP}etc/hostname",
                  "outside-symlink": "link.yaml"}.get(case)
        if target is None:  # the device: /dev allowed, so that the device itself is refused
            path = _show(stage, "title: t\nscenes:\n  - include: zero.yaml\n")
            args = ["--allow-path", "/dev"]
        else:
            path = _show(stage, f"title: t\ninclude:\n  lib: {target}\n{scene}"
                                "    prompts: \"{{ lib.base }}\"\n")
    elif case == "outside-asset":
        path = _show(stage, "title: t\nassets:\n  images:\n    a: /etc/passwd\n"
                            f"{scene}    vace: {{refs: [a]}}\n")
    else:
        path = _show(stage, f"title: t\n{scene}    notes: {json.dumps(notes[case])}\n")
    done = _showrunner("check", path, *args, cwd=stage)
    assert _one_line(done) == expected
    assert done.stdout == f"{path}: 1 error, 0 warnings\n"
    assert SECRET not in done.stdout + done.stderr


def test_allow_path_lets_a_shared_folder_in(stage: Path) -> None:
    show = _show(stage, "title: t\ninclude:\n  lib: ../secret.yaml\nassets:\n  images:\n"
                        "    ref: ../secret.png\nscenes:\n  - name: a\n    prompts: \"{{ lib.base }}\"\n"
                        "    vace: {refs: [ref]}\n    duration: 1\n")
    refused = _showrunner("report", show, cwd=stage)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "show.yaml:3:8: include.lib: included file '../secret.yaml' is outside the show's folder "
        "(allow its folder with --allow-path DIR)",
        "show.yaml:6:10: assets.images.ref: image file '../secret.png' is outside the show's "
        "folder (allow its folder with --allow-path DIR)",
    ]
    shared = str(stage.parent)
    assert _showrunner("check", show, "--allow-path", shared, cwd=stage).returncode == 0
    allowed = _showrunner("report", show, "--allow-path", shared, cwd=stage)
    assert allowed.returncode == 0 and SECRET in allowed.stdout


def test_allow_path_must_be_a_folder(stage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    show = _show(stage, "title: t\nscenes:\n  - name: a\n")
    with pytest.raises(SystemExit) as exc:
        main(["check", str(stage / show), "--allow-path", str(stage / "nope")])
    assert exc.value.code == 2
    assert "--allow-path: not a folder" in capsys.readouterr().err


def test_run_never_uploads_an_asset_from_outside(stage: Path) -> None:
    show = _show(stage, "title: t\nend: stop\nassets:\n  images:\n    a: ../secret.png\n"
                        "scenes:\n  - name: a\n    prompts: red\n    vace: {refs: [a]}\n    duration: 1\n")
    sim_thread = SimThread("127.0.0.1", 0)
    sim = sim_thread.start()
    try:
        done = _showrunner("run", show, "--scope", sim.url, "--control-port", "-1", cwd=stage)
        records = list(sim.records)
    finally:
        sim_thread.stop()
    assert _one_line(done) == ("show.yaml:5:8: assets.images.a: image file '../secret.png' is "
                               "outside the show's folder (allow its folder with --allow-path DIR)")
    assert records == []  # nothing reached Scope, let alone an upload


def _no_permission(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked / "j.jsonl"
    return Path("/sys/j.jsonl")  # sysfs refuses new files even to root


JOURNAL_CASES = [
    ("directory", "it is a directory"),
    ("missing-folder", "/proc/nope: no such file or directory"),
    ("file-as-folder", "{tmp}/show.yaml is not a folder"),
    ("no-permission", "permission denied"),
    ("fifo", "it is a FIFO, not a regular file"),
    ("device", "it is a device, not a regular file"),
]


@pytest.mark.parametrize(("case", "reason"), JOURNAL_CASES, ids=[c[0] for c in JOURNAL_CASES])
def test_run_checks_the_journal_path_before_connecting(tmp_path: Path, case: str, reason: str) -> None:
    show = _show(tmp_path, "title: t\nend: stop\nscenes:\n  - name: a\n    prompts: red\n"
                           "    duration: 1\n")
    os.mkfifo(tmp_path / "pipe.jsonl")
    journal = {
        "directory": tmp_path,
        "missing-folder": Path("/proc/nope/j.jsonl"),
        "file-as-folder": tmp_path / "show.yaml" / "j.jsonl",
        "no-permission": _no_permission(tmp_path),
        "fifo": tmp_path / "pipe.jsonl",
        "device": Path("/dev/full"),
    }[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    done = _showrunner("run", show, "--journal", str(journal), "--control-port", "-1", cwd=tmp_path)
    line = _one_line(done)
    assert line == f"error: cannot write the journal {journal}: {reason.format(tmp=tmp_path)}"
    assert done.stdout == ""  # nothing started: no simulator, no Scope
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_usable_journal_in_a_new_folder_is_still_made(tmp_path: Path) -> None:
    show = _show(tmp_path, "title: t\nend: stop\nscenes:\n  - name: a\n    prompts: red\n"
                           "    duration: 0.3\n")
    journal = tmp_path / "logs" / "today" / "j.jsonl"
    assert main(["run", str(tmp_path / show), "--journal", str(journal), "--control-port", "-1"]) == 0
    assert any(line["kind"] == "scene" for line in _journal_lines(journal))


def test_run_uploads_an_image_from_an_allowed_folder(stage: Path) -> None:
    from PIL import Image

    shared = stage.parent / "shared"
    shared.mkdir()
    Image.new("RGB", (8, 8), "red").save(shared / "ref.png")
    show = _show(stage, "title: t\nend: stop\nassets:\n  images:\n    a: ../shared/ref.png\n"
                        "scenes:\n  - name: a\n    prompts: red\n    vace: {refs: [a]}\n"
                        "    duration: 0.3\n")
    sim_thread = SimThread("127.0.0.1", 0)
    sim = sim_thread.start()
    try:
        done = _showrunner("run", show, "--scope", sim.url, "--control-port", "-1",
                           "--allow-path", str(shared), cwd=stage)
        uploads = [r for r in sim.records if r.get("path") == "/api/v1/assets"]
    finally:
        sim_thread.stop()
    assert done.returncode == 0, done.stderr
    assert [u["query"]["filename"] for u in uploads] == ["ref.png"]


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


CPU_HOST = ["controller-viz", "gray", "passthrough"]  # what a Scope without a GPU lists (docs/scope.md §10)
NEEDS_LONGLIVE = """title: remote
defaults: {pipeline: controller-viz}
scenes:
  - {name: one, duration: 1}
  - {name: two, duration: 1, pipeline: longlive, prompts: a forest}
"""


def test_check_scope_names_a_missing_pipeline_where_the_show_asks_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --scope URL` runs the server check of `run` (scope/preflight.py): a pipeline the
    server lacks is an error at the key that asks for it, naming what the server has; exit 1.
    With every pipeline there: exit 0 and what was verified."""
    show = tmp_path / "remote.yaml"
    show.write_text(NEEDS_LONGLIVE)
    with SimThread(load_time=0.02, pipelines=CPU_HOST) as sim:
        assert main(["check", str(show), "--scope", sim.url]) == 1
        captured = capsys.readouterr()
        assert (f"{show}:5:40: scenes[1].pipeline: the Scope server at {sim.url} has no pipeline "
                "longlive (the show needs it); it has: controller-viz, gray, passthrough") in captured.err
        assert "pipelines present" not in captured.out
        show.write_text(NEEDS_LONGLIVE.replace("longlive", "passthrough"))
        assert main(["check", str(show), "--scope", sim.url]) == 0
        out = capsys.readouterr().out
        assert f"{show}: pipelines present: controller-viz, passthrough (the server has 3)" in out
        assert f"{show}: input modes checked against the server's schemas: 2" in out
        schema_reads = [r for r in sim.records if r["path"] == "/api/v1/pipelines/schemas"]
        assert len(schema_reads) == 2
        assert not [r for r in sim.records if r["path"] == "/api/v1/pipeline/load"]  # checks, never loads


def test_check_scope_on_an_unreachable_server_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = tmp_path / "remote.yaml"
    show.write_text(NEEDS_LONGLIVE)
    with SimThread() as sim:
        url = sim.url  # a port that was just free: closed once the simulator stops
    assert main(["check", str(show), "--scope", url]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot check against {url}: ")
    assert "cannot reach" in err[0]


def test_sim_offers_only_the_pipelines_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--port", "0", "--pipeline", "nonesuch"]) == 1
    assert "sim: the simulator knows no pipeline nonesuch (it knows: " in capsys.readouterr().err


def test_check_and_report_never_run_hooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mark = tmp_path / "ran"
    show = tmp_path / "hooks.yaml"
    hook = f'{{command: [touch, "{mark}"]}}'
    show.write_text(
        "title: hooks\nhours: {open: [{start: '10:00', end: '18:00'}]}\n"
        f"hooks: {{before_open: {hook}, after_close: {hook}, on_outage: {hook}, on_recover: {hook}}}\n"
        "scenes: [{name: a, prompts: p}]\n"
    )
    assert main(["check", str(show)]) == 0
    assert main(["report", str(show), "--json", str(tmp_path / "r.json"), "--text"]) == 0
    out = capsys.readouterr().out
    assert "Hooks (showrunner run only):" in out and f"touch {mark}" in out
    assert not mark.exists()


def test_run_rotates_its_journal_by_size(tmp_path: Path) -> None:
    show = tmp_path / "tiny.yaml"
    show.write_text(
        "title: tiny\nend: stop\nfps: 16\nscenes:\n"
        "  - {name: a, prompts: red, duration: 0.5}\n"
        "  - name: b\n    prompts: blue\n    duration: 1\n"
        "    keyframes: {noise_scale: [{at: 0, value: 0.2}, {at: 1, value: 0.8}]}\n"
    )
    journal = tmp_path / "logs" / "j.jsonl"
    assert main(["run", str(show), "--journal", str(journal), "--journal-max-size", "600",
                 "--journal-keep", "3", "--control-port", "-1"]) == 0
    parts = sorted(journal.parent.iterdir())
    assert [p.name for p in parts] == ["j.jsonl", "j.jsonl.1", "j.jsonl.2", "j.jsonl.3"]
    assert all(p.stat().st_size <= 600 for p in parts)  # about 1.6 kB of lines in all
    last = [json.loads(line) for line in journal.read_text("utf-8").splitlines()]
    assert last[-1]["kind"] == "quit"


@pytest.mark.parametrize(("args", "message"), [
    (["--journal", "j.jsonl", "--journal-max-size", "50XB"], "is not a size"),
    (["--journal", "j.jsonl", "--journal-keep", "-1"], "not a count"),
    (["--journal", "j.jsonl", "--journal-rotate", "weekly"], "invalid choice"),
])
def test_run_journal_rotation_options_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    show = tmp_path / "tiny.yaml"
    show.write_text("title: tiny\nend: stop\nscenes:\n  - {name: a, prompts: red, duration: 0.1}\n")
    with pytest.raises(SystemExit) as exited:
        main(["run", str(show), "--control-port", "-1", *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "j.jsonl").exists()


def test_run_journal_rotation_needs_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = tmp_path / "tiny.yaml"
    show.write_text("title: tiny\nend: stop\nscenes:\n  - {name: a, prompts: red, duration: 0.1}\n")
    assert main(["run", str(show), "--control-port", "-1", "--journal-rotate", "daily"]) == 2
    assert capsys.readouterr().err == (
        "run: --journal-max-size, --journal-rotate and --journal-keep need --journal FILE\n")


def test_run_under_a_service_manager_writes_whole_plain_lines_at_once(tmp_path: Path) -> None:
    """stdout a pipe and stdin not a terminal, as under systemd (journald): each line arrives
    when it is said (here while Scope is awaited and nothing else is printed), with no colour,
    cursor or status-line codes."""
    import signal
    import socket

    show = tmp_path / "slow.yaml"
    show.write_text("title: slow\nend: stop\nscenes:\n  - {name: a, prompts: red, duration: 4}\n")
    with socket.socket() as closed:  # a port of this machine that nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with subprocess.Popen(
            [sys.executable, "-m", "showrunner", "run", str(show), "--scope", url,
             "--control-port", "-1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=tmp_path, env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
                               "TERM": "xterm-256color", "FORCE_COLOR": "1"},
        ) as process:
            try:
                assert process.stdout is not None and process.stderr is not None
                import select

                said, _, _ = select.select([process.stdout], [], [], 30)
                assert said, "nothing on stdout while the run waits for Scope"
                first = process.stdout.readline()
                assert first.startswith("Starting from the top")
                waiting = process.stderr.readline()
                assert waiting.startswith(f"Scope is not reachable at {url}")
                assert process.poll() is None  # said while it waits, not flushed at the exit
            finally:
                process.send_signal(signal.SIGTERM)
                rest, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert not any(c in first + rest + waiting + err for c in "\x1b\r"), repr(first + rest + err)


def test_run_tempo_names_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--tempo` takes the sources the show format knows; one that cannot start (midi with no
    device named) is one line and the show plays to its end on the fixed bpm."""
    show = tmp_path / "tiny.yaml"
    show.write_text("title: tiny\nbpm: 132\nend: stop\ntempo: {source: link}\nscenes:\n"
                    "  - {name: a, prompts: red, duration: 0.4}\n")
    with pytest.raises(SystemExit) as caught:
        main(["run", str(show), "--tempo", "ableton"])
    assert caught.value.code == 2
    assert "--tempo: invalid choice: 'ableton'" in capsys.readouterr().err
    assert main(["run", str(show), "--tempo", "midi", "--control-port", "-1"]) == 0
    err = capsys.readouterr().err
    assert "tempo source midi: source midi needs the device sending clock: `tempo.midi_clock` " \
           "or `midi.device` in the show; playing on the fixed 132 bpm\n" in err
    assert "Traceback" not in err
