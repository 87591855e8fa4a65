"""`showrunner service install`: the systemd unit it prints or writes, and that the command in
it plays the show (run for real, from the unit's working directory). Units only ever go into
temporary folders here."""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from showrunner.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
SHORT = "title: Short % show\nend: stop\nscenes:\n  - {name: a, prompts: red, duration: 0.3}\n"


def showrunner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "showrunner", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=env)


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string("\n".join(li for li in text.splitlines() if not li.startswith("#")))
    return parser


def exec_start(text: str) -> list[str]:
    """ExecStart as systemd reads it: %% is %, then words split and unquoted as by a shell."""
    return shlex.split(unit(text)["Service"]["ExecStart"].replace("%%", "%"))


def test_dry_run_prints_a_unit_that_restarts_and_resumes(tmp_path: Path) -> None:
    show = tmp_path / "my show%.yaml"
    show.write_text(SHORT)
    units = tmp_path / "units"
    done = showrunner("service", "install", str(show), "--dry-run", "--unit-dir", str(units),
                      "--", "--scope", "http://127.0.0.1:8000", "--control-port", "-1")
    assert done.returncode == 0, done.stderr
    assert not units.exists()  # nothing written
    assert done.stderr.strip() == f"(not written: {units / 'showrunner-my-show.service'})"
    service = unit(done.stdout)["Service"]
    assert service["Restart"] == "always"
    assert float(service["RestartSec"]) == 5
    assert service["WorkingDirectory"] == str(tmp_path)
    assert unit(done.stdout)["Install"]["WantedBy"] == "multi-user.target"
    assert unit(done.stdout)["Unit"]["Description"] == "showrunner: Short %% show"
    argv = exec_start(done.stdout)
    assert Path(argv[0]).name in ("showrunner", "python", Path(sys.executable).name)
    assert argv[argv.index("run"):] == ["run", str(show), "--resume", "--scope",
                                        "http://127.0.0.1:8000", "--control-port", "-1"]


def test_a_user_unit_is_written_where_systemd_looks_and_its_command_plays_the_show(
    tmp_path: Path,
) -> None:
    show = tmp_path / "shows" / "short.yaml"
    show.parent.mkdir()
    show.write_text(SHORT)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = showrunner("service", "install", str(show), "--user", "--restart", "on-failure",
                      "--restart-sec", "2", "--", "--control-port", "-1", "--journal", "j.jsonl",
                      env=env)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "config" / "systemd" / "user" / "showrunner-short.service"
    assert done.stdout.splitlines()[0] == f"wrote {path}"
    assert "systemctl --user daemon-reload && systemctl --user enable --now showrunner-short.service" in (
        done.stdout)
    text = path.read_text("utf-8")
    assert unit(text)["Service"]["Restart"] == "on-failure"
    assert unit(text)["Service"]["RestartSec"] == "2"
    assert unit(text)["Install"]["WantedBy"] == "default.target"
    # What systemd would start, from where it would start it:
    argv = exec_start(text)
    played = subprocess.run(argv, cwd=unit(text)["Service"]["WorkingDirectory"], capture_output=True,
                            text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert played.returncode == 0, played.stderr
    assert "scene a" in played.stdout
    assert (show.parent / "j.jsonl").exists()  # run options' paths are the show folder's


def test_a_broken_show_or_a_wrong_run_option_writes_no_unit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nscenes:\n  - name: a\n    duraton: 3\n")
    units = tmp_path / "units"
    done = showrunner("service", "install", str(bad), "--unit-dir", str(units))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{bad}:4:5: scenes[0]: unknown key 'duraton'; did you mean 'duration'?")
    good = tmp_path / "good.yaml"
    good.write_text(SHORT)
    done = showrunner("service", "install", str(good), "--unit-dir", str(units), "--", "--bogus")
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stderr
    assert not units.exists()


def test_a_unit_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    show = tmp_path / "short.yaml"
    show.write_text(SHORT)
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = showrunner("service", "install", str(show), "--unit-dir", str(blocker / "units"))
    assert done.returncode == 1
    assert done.stderr.startswith(f"service: cannot write {blocker / 'units'}/showrunner-short.service: ")
    assert len(done.stderr.splitlines()) == 1


def test_the_deploy_template_runs_a_show_with_options_run_accepts() -> None:
    text = (ROOT / "deploy" / "showrunner@.service").read_text("utf-8")
    service = unit(text)["Service"]
    assert service["Restart"] == "always" and service["RestartSec"] == "5"
    argv = shlex.split(service["ExecStart"].replace("%i", "gallery"))
    assert argv[1:4] == ["run", "shows/gallery.yaml", "--resume"]
    args = _parser().parse_args(argv[1:])
    assert args.resume and args.journal == "/var/log/showrunner/gallery.jsonl"


@pytest.mark.parametrize("name", ["gallery", "Tidal Garden", "ünïcode"])
def test_unit_names_are_systemd_names(tmp_path: Path, name: str) -> None:
    from showrunner.service import unit_name

    assert unit_name(tmp_path / f"{name}.yaml").isascii()
    assert " " not in unit_name(tmp_path / f"{name}.yaml")


def _dockerfile() -> tuple[list[str], str]:
    """The Dockerfile's CMD (its JSON array) and its health check's Python program."""
    import json
    import re

    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    check = re.search(r'^HEALTHCHECK .* CMD\s+python -c "(.*)"$', text, re.M)
    assert check is not None
    return cmd, check.group(1)


def test_the_dockerfile_runs_a_show_with_options_run_accepts() -> None:
    cmd, _ = _dockerfile()
    args = _parser().parse_args(cmd)
    assert args.command == "run" and args.resume and args.control_port == 8765
    assert args.state_file.startswith("/state/") and args.journal.startswith("/state/")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_docker_health_check_passes_on_a_ready_run_with_its_token(tmp_path: Path) -> None:
    import socket
    import time

    _, program = _dockerfile()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    show = tmp_path / "show.yaml"
    show.write_text("title: hold\nscenes:\n  - {name: a, prompts: red}\n")
    env = {**os.environ, "SHOWRUNNER_CONTROL_TOKEN": "sesame"}
    program = program.replace(":8765/", f":{port}/")
    with subprocess.Popen([sys.executable, "-m", "showrunner", "run", str(show), "--control-port",
                           str(port)], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as run:
        try:
            deadline = time.monotonic() + 60
            while subprocess.run([sys.executable, "-c", program], env=env, check=False,
                                 capture_output=True).returncode != 0:
                assert time.monotonic() < deadline, "never healthy"
                time.sleep(0.5)
            wrong = subprocess.run([sys.executable, "-c", program], check=False, capture_output=True,
                                   env={**env, "SHOWRUNNER_CONTROL_TOKEN": "wrong"})
            assert wrong.returncode != 0 and b"401" in wrong.stderr
        finally:
            run.terminate()
    assert run.returncode == 0
