"""`run_show` end to end: the embedded simulator, recovery, quitting, auth, assets, resume.

Everything runs against the real simulator over loopback (docs/scope.md §2.1, §2.6, §2.9, §4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from showrunner.app import RunOptions, StreamOutput, run, run_show
from showrunner.live.journal import read_journal
from showrunner.live.player import Player
from showrunner.live.resume import read_state
from showrunner.plan.compiler import compile_timeline
from showrunner.settings import Settings
from showrunner.show.load import load
from showrunner.sim import SimThread, Simulator
from showrunner.testing import FakeClock

pytestmark = pytest.mark.webrtc


def write(tmp_path: Path, text: str, name: str = "show.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def offers(sim: Simulator) -> list[dict[str, Any]]:
    return [
        r["json"]["initialParameters"]
        for r in sim.records
        if r["kind"] == "http" and r["path"] == "/api/v1/webrtc/offer" and r["method"] == "POST"
    ]


def deletes(sim: Simulator) -> list[dict[str, Any]]:
    return [r for r in sim.records if r["kind"] == "http" and r["method"] == "DELETE"]


def prompts_of(message: dict[str, Any]) -> list[str]:
    if "transition" in message:
        return [p["text"] for p in message["transition"]["target_prompts"]]
    return [p["text"] for p in message.get("prompts", [])]


async def until(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)
    return value


@dataclass
class Running:
    """A `run_show` started in a task, with its player once it exists and a stop event."""

    task: asyncio.Task[int]
    stop: asyncio.Event
    players: list[Player] = field(default_factory=list)

    @property
    def player(self) -> Player:
        return self.players[0]

    async def at_scene(self, name: str) -> None:
        await until(lambda: self.players and self.players[0].status().scene == name)

    async def finish(self, timeout: float = 10.0) -> int:
        """Stop the run (as a service stop does) and return its exit code."""
        self.stop.set()
        return await asyncio.wait_for(self.task, timeout)


def start(show: Path, **options: Any) -> Running:
    """`run_show(show, stdin_tty=False, **options)` in a task, its player collected."""
    stop = asyncio.Event()
    players: list[Player] = []
    task = asyncio.create_task(run_show(
        show, stdin_tty=False, stop_event=stop, on_player=players.append, **options
    ))
    return Running(task, stop, players)


# The show plans keyframes at 16 fps, below the simulator's 24 fps for controller-viz, so the
# session's one-update-per-chunk pacing (§3.2 step 5) never has to merge two planned messages.
THREE = """
title: three looks
fps: 16
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: dawn, prompts: a forest at dawn, duration: 0.5}
  - name: noon
    prompts: the forest at noon
    duration: 0.6
    keyframes:
      noise_scale: [{at: 0, value: 0.2}, {at: 0.6, value: 0.8}]
  - {name: dusk, prompts: the forest at dusk, transition: cut, duration: 0.4}
"""


@pytest.mark.anyio
async def test_plays_on_the_embedded_simulator_and_journals_the_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No URL: the built-in simulator plays the show; every journal line matches the compiled
    timeline (scene, order, exact message, planned offset) and the run returns 0 at the end."""
    show = write(tmp_path, THREE)
    journal_path = tmp_path / "run.jsonl"
    code = await asyncio.wait_for(
        run_show(show, journal_path=journal_path, stdin_tty=False, state_file=tmp_path / "s.json"),
        20,
    )
    assert code == 0
    assert "built-in simulator" in capsys.readouterr().out
    timeline = compile_timeline(load(show).show)
    expected = [(s.name, a.offset, dict(a.message)) for s in timeline.scenes for a in s.actions]
    journal = read_journal(journal_path)
    played = [
        (r["scene"], r["offset"], r["message"])
        for r in journal
        if r["kind"] in ("send", "session")
    ]
    assert [(n, pytest.approx(o), m) for n, o, m in expected] == played
    starts = {r["scene"]: r["planned_at"] for r in journal if r["kind"] == "scene"}
    for record in journal:
        if record["kind"] == "send":
            offset = record["planned_at"] - starts[record["scene"]]
            # Unix times near 1.8e9 carry ~0.24 us of float resolution each; 10 us is still
            # far below any drift a chained sleep would show.
            assert offset == pytest.approx(record["offset"], abs=1e-5)
    assert starts["noon"] - starts["dawn"] == pytest.approx(0.5, abs=1e-5)
    assert starts["dusk"] - starts["dawn"] == pytest.approx(1.1, abs=1e-5)
    assert journal[-1]["kind"] == "quit"
    assert not (tmp_path / "s.json").exists()  # a finished show starts from the top next time


@pytest.mark.anyio
async def test_bad_show_prints_errors_and_returns_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = write(tmp_path, "title: broken\nscenes:\n  - {name: a, duraton: 3}\n")
    assert await run_show(show, stdin_tty=False) == 1
    assert "show.yaml:3" in capsys.readouterr().err


@pytest.mark.anyio
async def test_lines_for_the_user_go_through_the_output_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` with its control page: progress to the output's `say`, problems to its `warn`."""
    out, err = io.StringIO(), io.StringIO()
    output = StreamOutput(out, err)
    bad = write(tmp_path, "title: broken\nscenes:\n  - {name: a, duraton: 3}\n", "bad.yaml")
    assert await run(RunOptions(bad, stdin_tty=False), output=output) == 1
    assert "bad.yaml:3" in err.getvalue() and out.getvalue() == ""
    show = write(tmp_path, THREE)
    options = RunOptions(show, stdin_tty=False, state_file=tmp_path / "s.json", control_port=0)
    assert await asyncio.wait_for(run(options, output=output), 20) == 0
    assert "built-in simulator" in out.getvalue()
    assert "control: http://127.0.0.1:" in err.getvalue()
    captured = capsys.readouterr()  # the terminal's event lines are its own
    assert "built-in simulator" not in captured.out and "control:" not in captured.err


def test_run_options_check_reload_at(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reload_at must be 'now' or 'boundary'"):
        RunOptions(tmp_path / "show.yaml", reload_at="later")


RECOVER = """
title: recovery
defaults: {pipeline: controller-viz}
end: stop
scenes:
  - {name: before, prompts: before the storm, duration: 0.8}
  - {name: during, prompts: during the storm, duration: 5}
  - {name: after, prompts: after the storm, duration: 0.5}
"""


@pytest.mark.slow
@pytest.mark.anyio
async def test_recovers_from_a_scope_crash_without_help(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """The server dies mid-show and comes back a second later (§2.1 server_start_time): the
    watchdog reconnects by itself with the state of the wall-clock-correct scene (§9.6)."""
    show = write(tmp_path, RECOVER)
    journal_path = tmp_path / "run.jsonl"
    run = start(show, scope_url=sim_thread.url, journal_path=journal_path,
                state_file=tmp_path / "s.json")
    await run.at_scene("during")
    await asyncio.sleep(0.2)
    await sim_thread.crash()
    restart_from = len(sim_thread.records)
    await asyncio.sleep(1.0)
    await sim_thread.start()
    assert await asyncio.wait_for(run.task, 20) == 0
    after = sim_thread.records[restart_from:]
    offer = next(r for r in after if r["kind"] == "http" and r["path"] == "/api/v1/webrtc/offer")
    assert prompts_of(offer["json"]["initialParameters"]) == ["during the storm"]
    later = [r["message"] for r in after if r["kind"] == "data"]
    assert any(prompts_of(m) == ["after the storm"] for m in later)
    journal = read_journal(journal_path)
    kinds = [r["kind"] for r in journal]
    assert "watchdog" in kinds
    assert any(r["kind"] == "reconnect" and r["label"] == "ok" for r in journal)


@pytest.mark.anyio
async def test_stream_stopped_reconnects_at_once(sim_thread: Simulator, tmp_path: Path) -> None:
    """docs/scope.md §3.4, §10: the server says `stream_stopped` while its connection stays up
    and the video keeps coming: the watchdog takes it as the outage it announces and
    reconnects within one watchdog period, with the scene that plays (without the hint the
    session would look healthy and never be rebuilt)."""
    show = write(tmp_path, RECOVER)
    journal_path = tmp_path / "run.jsonl"
    run = start(show, scope_url=sim_thread.url, journal_path=journal_path,
                state_file=tmp_path / "s.json")
    await run.at_scene("during")
    await asyncio.sleep(0.3)
    offers_before = len(offers(sim_thread))
    told = asyncio.get_running_loop().time()
    assert await sim_thread.notify({"type": "stream_stopped"}) == 1
    await until(lambda: len(offers(sim_thread)) > offers_before, timeout=3.0)
    took = asyncio.get_running_loop().time() - told
    assert took < 1.5, f"reconnected {took:.2f} s after stream_stopped"
    assert prompts_of(offers(sim_thread)[-1]) == ["during the storm"]
    assert await asyncio.wait_for(run.task, 20) == 0
    journal = read_journal(journal_path)
    assert [r["label"] for r in journal if r["kind"] == "watchdog"] == ["Scope stopped the stream"]
    assert [r["label"] for r in journal if r["kind"] == "reconnect"] == ["ok"]


HOLD = """
title: hold
defaults: {pipeline: controller-viz}
scenes:
  - {name: only, prompts: a single look}
"""


@pytest.mark.anyio
async def test_stop_event_closes_the_session_and_returns_0(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    show = write(tmp_path, HOLD)
    run = start(show, scope_url=sim_thread.url, state_file=tmp_path / "s.json")
    await until(lambda: offers(sim_thread))
    await asyncio.sleep(0.3)
    assert await run.finish() == 0
    assert len(deletes(sim_thread)) == 1
    assert read_state(tmp_path / "s.json") is not None  # kept: a service stop is not the end


@pytest.mark.anyio
async def test_sigterm_closes_the_session_and_returns_0(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    show = write(tmp_path, HOLD)
    run = asyncio.create_task(
        run_show(show, scope_url=sim_thread.url, stdin_tty=False, state_file=tmp_path / "s.json")
    )
    await until(lambda: offers(sim_thread))
    await asyncio.sleep(0.3)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(run, 10) == 0
    assert len(deletes(sim_thread)) == 1


AUTH = """
title: auth
defaults: {pipeline: controller-viz}
end: stop
scope:
  auth: {env: SCOPE_TOKEN}
scenes:
  - {name: only, prompts: a look, duration: 0.2}
"""


@pytest.mark.anyio
async def test_auth_header_comes_from_the_named_variable(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = write(tmp_path, AUTH)
    no_token = Settings.from_environ({})
    assert await run_show(show, scope_url=sim_thread.url, settings=no_token, stdin_tty=False) == 1
    assert "SCOPE_TOKEN" in capsys.readouterr().err
    code = await run_show(show, scope_url=sim_thread.url, settings=Settings.from_environ({"SCOPE_TOKEN": "s3cret"}),  # noqa: E501
                          stdin_tty=False, state_file=tmp_path / "s.json")
    assert code == 0
    headers = [r["headers"] for r in sim_thread.records if r["kind"] == "http"]
    assert headers and all(h.get("authorization") == "Bearer s3cret" for h in headers)


ASSETS = """
title: assets
defaults:
  pipeline: longlive
  load: {loras: [{lora: water, scale: 0.8, merge_mode: runtime_peft}]}
end: stop
assets:
  images: {ref: ref.png}
  loras: {water: sim-watercolor}
scenes:
  - {name: only, prompts: a portrait, duration: 0.3, vace: {refs: [ref]}, loras: {water: 0.5}}
"""


@pytest.mark.anyio
async def test_local_images_are_uploaded_before_the_first_scene(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """Image assets go up and LoRAs are resolved first (§2.9, §2.10); what reaches Scope carries
    server paths, never `@asset:`/`@lora:` references."""
    Image.new("RGB", (16, 16), "red").save(tmp_path / "ref.png")
    show = write(tmp_path, ASSETS)
    code = await run_show(show, scope_url=sim_thread.url, stdin_tty=False,
                          state_file=tmp_path / "s.json")
    assert code == 0
    http = [r for r in sim_thread.records if r["kind"] == "http"]
    paths = [r["path"] for r in http]
    assert paths.index("/api/v1/assets") < paths.index("/api/v1/pipeline/load")
    assert paths.index("/api/v1/loras") < paths.index("/api/v1/pipeline/load")
    refs = offers(sim_thread)[0]["vace_ref_images"]
    assert len(refs) == 1 and not refs[0].startswith("@asset:") and refs[0].endswith(".png")
    load_body = next(r["json"] for r in http if r["path"] == "/api/v1/pipeline/load")
    lora_path = load_body["load_params"]["loras"][0]["path"]
    assert lora_path.startswith("/") and lora_path.endswith("sim-watercolor.safetensors")
    assert offers(sim_thread)[0]["lora_scales"] == [{"path": lora_path, "scale": 0.5}]


@pytest.mark.anyio
async def test_a_lora_the_server_lacks_is_an_error_before_the_show(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.new("RGB", (16, 16), "red").save(tmp_path / "ref.png")
    show = write(tmp_path, ASSETS.replace("sim-watercolor", "not-there"))
    assert await run_show(show, scope_url=sim_thread.url, stdin_tty=False) == 1
    assert "not-there" in capsys.readouterr().err
    assert offers(sim_thread) == []


RESUME = """
title: resumable
defaults: {pipeline: controller-viz}
scenes:
  - {name: one, prompts: look one, duration: 60}
  - {name: two, prompts: look two, duration: 60}
  - {name: three, prompts: look three, duration: 60}
"""


@pytest.mark.anyio
async def test_a_second_run_resumes_from_the_state_file(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = write(tmp_path, RESUME)
    clock = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    run = start(show, scope_url=sim_thread.url, clock=clock, journal_path=tmp_path / "run.jsonl")
    await run.at_scene("one")
    await clock.advance(70)
    state = tmp_path / ".show.showrunner-state.json"  # one per show, beside it
    await until(lambda: (s := read_state(state)) and s.scene == "two")
    assert await run.finish() == 0
    clock.jump_wall(70)  # back 140 s after the origin: "three", 20 s in
    before = len(offers(sim_thread))
    run = start(show, scope_url=sim_thread.url, clock=clock, journal_path=tmp_path / "run.jsonl",
                resume=True)
    await run.at_scene("three")
    assert run.player.status().position == pytest.approx(20.0)
    assert prompts_of(offers(sim_thread)[before]) == ["look three"]
    assert await run.finish() == 0
    assert "Resuming from" in capsys.readouterr().out


@pytest.mark.anyio
async def test_an_edited_show_does_not_resume(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = write(tmp_path, RESUME)
    state = tmp_path / "s.json"
    run = start(show, scope_url=sim_thread.url, state_file=state)
    await until(lambda: read_state(state))
    assert await run.finish() == 0
    show.write_text(RESUME.replace("look one", "look one edited"))
    run = start(show, scope_url=sim_thread.url, state_file=state, resume=True)
    await until(lambda: len(offers(sim_thread)) == 2)
    assert await run.finish() == 0
    assert "Ignoring" in capsys.readouterr().out
    assert prompts_of(offers(sim_thread)[1]) == ["look one edited"]


@pytest.mark.anyio
async def test_unreachable_scope_is_retried_until_quit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scope being down at start is not fatal: the run waits for it (and quits cleanly)."""
    Image.new("RGB", (8, 8)).save(tmp_path / "ref.png")
    show = write(tmp_path, ASSETS)
    run = start(show, scope_url="http://127.0.0.1:9", state_file=tmp_path / "s.json")
    await asyncio.sleep(0.8)
    assert not run.task.done()
    assert await run.finish(5) == 0
    assert "not reachable" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_rerun_starts_from_the_top_unless_asked_to_resume(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A performance run again starts at its first scene and says that --resume would not; the
    state file is one per show, beside it."""
    show = write(tmp_path, RESUME)
    other = write(tmp_path, RESUME.replace("look", "other look"), "other.yaml")
    clock = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    for path in (show, other):
        run = start(path, scope_url=sim_thread.url, clock=clock)
        await run.at_scene("one")
        await clock.advance(70)
        await run.at_scene("two")
        assert await run.finish() == 0
    assert read_state(tmp_path / ".show.showrunner-state.json").scene == "two"  # type: ignore[union-attr]
    assert read_state(tmp_path / ".other.showrunner-state.json") is not None
    capsys.readouterr()
    run = start(show, scope_url=sim_thread.url, clock=clock)
    await until(lambda: run.players and run.player.status().scene is not None)
    assert run.player.status().scene == "one"
    assert await run.finish() == 0
    out = capsys.readouterr().out
    assert "Starting from the top (--resume continues at two" in out


SCRIBBLE = """
title: scribble
defaults: {pipeline: scribble}
scenes:
  - {name: only, prompts: a line drawing, duration: 5}
"""


@pytest.mark.anyio
async def test_a_pipeline_the_server_lacks_stops_the_run_before_the_show(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = write(tmp_path, SCRIBBLE)
    code = await asyncio.wait_for(run_show(show, scope_url=sim_thread.url, stdin_tty=False), 10)
    assert code == 1
    err = capsys.readouterr().err
    line = next(li for li in err.splitlines() if "scribble" in li)
    assert "has no pipeline scribble" in line and "controller-viz" in line  # what it has
    assert "peer connection" not in err
    paths = [r["path"] for r in sim_thread.records if r["kind"] == "http"]
    assert "/api/v1/pipeline/load" not in paths and offers(sim_thread) == []


@pytest.mark.anyio
async def test_the_first_scene_waits_for_a_scope_that_is_not_there_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scope on a closed port: the status shows the first scene pending (not scenes advancing
    with no picture); when the server appears the show starts from its first scene."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    show = write(tmp_path, THREE.replace("end: stop\n", ""))
    stop = asyncio.Event()
    players: list[Player] = []
    run_task = asyncio.create_task(run_show(
        show, scope_url=f"http://127.0.0.1:{port}", stdin_tty=False, stop_event=stop,
        on_player=players.append, state_file=tmp_path / "s.json",
    ))
    await until(lambda: players)
    player = players[0]
    for _ in range(3):  # several seconds, longer than the whole show
        await asyncio.sleep(1.0)
        status = player.status()
        assert (status.mode, status.scene, status.next) == ("pending", None, "dawn")
        assert status.notice == f"waiting for Scope at http://127.0.0.1:{port}"
    thread = SimThread("127.0.0.1", port, load_time=0.02)
    sim = thread.start()
    try:
        await until(lambda: player.status().scene is not None, 20)
        assert player.status().scene == "dawn"
        await until(lambda: offers(sim))
        assert prompts_of(offers(sim)[0]) == ["a forest at dawn"]
        stop.set()
        assert await asyncio.wait_for(run_task, 10) == 0
    finally:
        thread.stop()
    err = capsys.readouterr().err
    assert err.count("Scope is not reachable") == 1  # once, not at every retry


@pytest.mark.anyio
async def test_a_taken_control_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    out, err = io.StringIO(), io.StringIO()
    show = write(tmp_path, THREE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = RunOptions(show, stdin_tty=False, control_port=port)
        assert await run(options, output=StreamOutput(out, err)) == 1
    assert err.getvalue().strip() == (
        f"control: cannot listen on 127.0.0.1:{port}: address already in use "
        "(choose another --control-port, or -1 for none)"
    )


@pytest.mark.anyio
async def test_a_generated_token_is_printed_once(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    show = write(tmp_path, THREE)
    options = RunOptions(show, stdin_tty=False, control_port=0, control_host="0.0.0.0",
                         state_file=tmp_path / "s.json")
    settings = Settings.from_environ({})
    assert await asyncio.wait_for(run(options, output=StreamOutput(out, err), settings=settings),
                                  20) == 0
    lines = [li for li in err.getvalue().splitlines() if "token=" in li]
    assert len(lines) == 1
    token = lines[0].split("token=")[1].split()[0]
    assert (out.getvalue() + err.getvalue()).count(token) == 1


@pytest.mark.anyio
async def test_a_go_while_scope_is_awaited_is_armed_and_applied_once_it_is_up(
    tmp_path: Path,
) -> None:
    """GO before the session is up is answered "queued" (armed), never "applied"; a second GO
    meanwhile is ignored; once Scope answers, the armed GO starts the second scene."""
    import socket

    from showrunner.control.gate import Commands

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    show = write(tmp_path, RESUME)
    stop = asyncio.Event()
    gate = Commands(None, min_go_interval=0)
    players: list[Player] = []
    run_task = asyncio.create_task(run_show(
        show, scope_url=f"http://127.0.0.1:{port}", stdin_tty=False, stop_event=stop,
        on_player=players.append, state_file=tmp_path / "s.json", commands=gate,
    ))
    await until(lambda: players)
    first = await gate.go(source="http")
    assert (first.applied, first.result, first.reason) == (False, "queued", "connecting")
    second = await gate.go(source="http")
    assert (second.result, second.reason) == ("ignored", "already armed")
    assert players[0].status().armed == "go"
    thread = SimThread("127.0.0.1", port, load_time=0.02)
    sim = thread.start()
    try:
        await until(lambda: players[0].status().scene == "two", 20)
        assert players[0].status().armed is None
        await until(lambda: any(prompts_of(r["message"]) == ["look two"]
                                for r in sim.records if r["kind"] == "data"))
        stop.set()
        assert await asyncio.wait_for(run_task, 10) == 0
    finally:
        thread.stop()


RELAYED = """
title: relayed
defaults: {{pipeline: controller-viz}}
end: stop
scope:
  url: {url}
  ice_servers: [{{urls: "{turn}"}}]
  ice_transport_policy: relay
scenes:
  - {{name: one, prompts: a forest at dawn, duration: 0.4}}
  - {{name: two, prompts: the forest at noon, duration: 0.3}}
"""


@pytest.mark.anyio
async def test_relay_only_through_turn_from_the_show_or_the_command_line(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """`scope.ice_servers` + `ice_transport_policy: relay` in the show, then the same from
    `--ice-server URL --ice-relay-only` (credentials from the environment): the show plays
    through coturn on 127.0.0.1 with relay candidates only (so every packet went through it);
    a keyword mixed with URLs, or relay only without a TURN server, is one line and exit 1."""
    from tests.turn import TURNSERVER, turn_server

    if TURNSERVER is None:
        pytest.skip("coturn is not installed (Debian: apt-get install coturn)")
    with turn_server(tmp_path) as turn:
        show = write(tmp_path, RELAYED.format(url=sim_thread.url, turn=turn.url))
        settings = Settings.from_environ({"SHOWRUNNER_TURN_USERNAME": turn.username,
                                          "SHOWRUNNER_TURN_CREDENTIAL": turn.credential})
        journal = tmp_path / "show.jsonl"
        code = await asyncio.wait_for(run_show(show, journal_path=journal, settings=settings,
                                               stdin_tty=False, state_file=tmp_path / "s.json"), 20)
        assert code == 0
        entered = [r["scene"] for r in read_journal(journal) if r["kind"] == "scene"]
        assert entered == ["one", "two"]
        assert not [r for r in read_journal(journal) if r["kind"] == "reconnect"]

        plain = write(tmp_path, THREE, "plain.yaml")
        options = RunOptions(plain, scope_url=sim_thread.url, journal_path=tmp_path / "cli.jsonl",
                             stdin_tty=False, state_file=tmp_path / "s2.json",
                             ice_servers=(turn.url,), ice_relay_only=True)
        out = StreamOutput(io.StringIO(), io.StringIO())
        assert await asyncio.wait_for(run(options, output=out, settings=settings), 20) == 0
        assert [r["scene"] for r in read_journal(tmp_path / "cli.jsonl") if r["kind"] == "scene"] == [
            "dawn", "noon", "dusk"]

        bad = RunOptions(plain, scope_url=sim_thread.url, stdin_tty=False,
                         state_file=tmp_path / "s3.json", ice_servers=("none", turn.url))
        err = io.StringIO()
        assert await run(bad, output=StreamOutput(io.StringIO(), err), settings=settings) == 1
        assert "--ice-server none cannot be combined" in err.getvalue()
        no_turn = RunOptions(plain, scope_url=sim_thread.url, stdin_tty=False,
                             state_file=tmp_path / "s4.json", ice_servers=("none",), ice_relay_only=True)
        err = io.StringIO()
        assert await run(no_turn, output=StreamOutput(io.StringIO(), err), settings=settings) == 1
        assert err.getvalue() == ("error: relay only (--ice-relay-only or scope.ice_transport_policy: "
                                  "relay) needs a TURN server, and the ICE servers given have none\n")


SOURCES = """
title: two clips
defaults:
  pipeline: passthrough
  input_mode: video
  input_source: {{source_type: video_file, source_name: "{red}"}}
end: stop
scenes:
  - {{name: red, duration: 1.5}}
  - {{name: blue, duration: 1.5, input_source: {{source_type: video_file, source_name: "{blue}"}}}}
"""


# -- the headless transport (docs/scope.md §2.8) ---------------------------------------------


def journal_messages(path: Path) -> list[tuple[str, str, str, Any]]:
    return [(r["kind"], r["label"], r["scene"], r["message"]) for r in read_journal(path)
            if r["message"] is not None]


def planned_updates(path: Path) -> list[tuple[str, str, float]]:
    """(scene, label, offset) of every planned update the journal says went out, the ones a
    write carried merged with a later one included (`items`), in order."""
    out: list[tuple[str, str, float]] = []
    for r in read_journal(path):
        if r["kind"] == "send":
            items = r.get("items") or [r]
            out += [(i["scene"], i["label"], round(float(i["offset"] or 0.0), 6)) for i in items]
    return out


@pytest.mark.anyio
async def test_headless_plays_the_same_journal_without_any_webrtc(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """`--transport headless`: no offer, no peer connection, no video; the session starts over
    HTTP, every update is a POST, and the journal carries the planned updates the WebRTC run's
    does, each alone with the plan's message (on a loaded machine the pacing may merge a late
    keyframe into the next write, in either run: the merged write lists what it carries)."""
    show = write(tmp_path, THREE)
    code = await asyncio.wait_for(
        run_show(show, scope_url=sim_thread.url, journal_path=tmp_path / "webrtc.jsonl",
                 stdin_tty=False, state_file=tmp_path / "s.json"), 20)
    assert code == 0
    before = set(sim_thread.peers)  # the WebRTC run's peer may still be closing
    mark = len(sim_thread.records)
    code = await asyncio.wait_for(
        run_show(show, scope_url=sim_thread.url, journal_path=tmp_path / "headless.jsonl",
                 stdin_tty=False, state_file=tmp_path / "s.json", transport="headless"), 20)
    assert code == 0
    records = sim_thread.records[mark:]
    assert not [r for r in records if "webrtc" in r.get("path", "") or r["kind"] == "data"]
    assert set(sim_thread.peers) <= before
    starts = [r["json"] for r in records if r["kind"] == "http" and r["path"] == "/api/v1/session/start"]
    assert [s["prompts"][0]["text"] for s in starts] == ["a forest at dawn"]
    posts = [r["json"] for r in records
             if r["kind"] == "http" and r["path"] == "/api/v1/session/parameters" and r["method"] == "POST"]
    assert prompts_of(posts[-1]) == ["the forest at dusk"]
    headless = journal_messages(tmp_path / "headless.jsonl")
    assert len(posts) == sum(kind == "send" for kind, *_ in headless)
    timeline = compile_timeline(load(show).show)
    plan = {(s.name, a.label, round(a.offset, 6)): dict(a.message) for s in timeline.scenes
            for a in s.actions if a.kind == "send"}
    assert planned_updates(tmp_path / "headless.jsonl") == planned_updates(tmp_path / "webrtc.jsonl")
    assert planned_updates(tmp_path / "headless.jsonl") == list(plan)
    for transport in ("webrtc", "headless"):
        for r in read_journal(tmp_path / f"{transport}.jsonl"):
            if r["kind"] == "send" and not r.get("items"):
                assert r["message"] == plan[(r["scene"], r["label"], round(float(r["offset"]), 6))]
            elif r["kind"] == "session":
                assert r["message"] == dict(timeline.scenes[0].actions[0].message)


CHAIN = """
title: chain
defaults: {pipeline: [passthrough, controller-viz]}
scenes:
  - {name: only, prompts: a look, duration: 0.2}
"""


@pytest.mark.anyio
async def test_a_scene_changes_the_input_source_of_the_running_session(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """Per-scene `input_source`: the second scene's file replaces the first in the same session
    (the message carries `reconnect: true`, without which Scope keeps the old file of the same
    type), and the picture shows it."""
    import httpx

    from tests.sim.test_input import BLUE, RED, near, write_solid

    red, blue = write_solid(tmp_path / "red.mp4", RED), write_solid(tmp_path / "blue.mp4", BLUE)
    show = write(tmp_path, SOURCES.format(red=red, blue=blue))
    run = start(show, scope_url=sim_thread.url, state_file=tmp_path / "s.json")

    async def pixel() -> tuple[int, ...]:
        async with httpx.AsyncClient(base_url=sim_thread.url) as client:
            response = await client.get("/api/v1/session/frame", params={"quality": 95})
        if response.status_code != 200:
            return (0, 0, 0)
        return tuple(Image.open(io.BytesIO(response.content)).convert("RGB").getpixel((32, 24)))

    await run.at_scene("red")
    seen_red = False
    for _ in range(40):
        if near(await pixel(), RED):
            seen_red = True
            break
        await asyncio.sleep(0.03)
    assert seen_red
    await run.at_scene("blue")
    seen_blue = False
    for _ in range(40):
        if near(await pixel(), BLUE):
            seen_blue = True
            break
        await asyncio.sleep(0.03)
    assert seen_blue
    assert await asyncio.wait_for(run.task, 20) == 0
    assert len(offers(sim_thread)) == 1  # one session all along
    sent = [r["message"] for r in sim_thread.records
            if r["kind"] == "data" and "input_source" in r["message"]]
    assert sent == [{"input_source": {"enabled": True, "source_type": "video_file",
                                      "source_name": str(blue), "reconnect": True}}]


# -- tempo ---------------------------------------------------------------------------------------

HOLDING = """
title: tempo
bpm: 124
defaults: {pipeline: controller-viz}
scenes:
  - {name: groove, prompts: a pulsing grid}
"""


class Lines:
    """An output that keeps the lines (the control page's URL comes as a warning line)."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.warned: list[str] = []

    def say(self, line: str) -> None:
        self.said.append(line)

    def warn(self, line: str) -> None:
        self.warned.append(line)

    def control_url(self) -> str | None:
        return next((w.split()[1].rstrip("/") for w in self.warned if w.startswith("control: ")),
                    None)


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.anyio
async def test_tempo_set_over_osc_and_tapped_over_http_shows_in_the_status(tmp_path: Path) -> None:
    """`--tempo osc`: OSC /showrunner/bpm sets the tempo, a bad value is one line and changes
    nothing; taps through the HTTP API set it too; the status carries the tempo block."""
    import httpx
    from pythonosc.udp_client import SimpleUDPClient

    show = write(tmp_path, HOLDING)
    lines, stop = Lines(), asyncio.Event()
    port = free_udp_port()
    options = RunOptions(show, stdin_tty=False, state_file=tmp_path / "s.json", control_port=0,
                         osc_port=port, tempo="osc")
    task = asyncio.create_task(run(options, output=lines, stop_event=stop))
    try:
        url = await until(lines.control_url, timeout=10)
        async with httpx.AsyncClient(base_url=url) as http:

            async def tempo() -> dict[str, Any]:
                body: dict[str, Any] = (await http.get("/api/status")).json()["tempo"]
                return body

            first = await until_async(tempo, lambda t: t is not None)
            assert (first["source"], first["bpm"], first["beats_per_bar"]) == ("osc", 124.0, 4)
            with contextlib.closing(SimpleUDPClient("127.0.0.1", port)) as sender:
                sender.send_message("/showrunner/bpm", 131.5)
                await until_async(tempo, lambda t: t["bpm"] == 131.5)
                sender.send_message("/showrunner/bpm", "fast")
                sender.send_message("/showrunner/bpm", 5000.0)
                await asyncio.sleep(0.2)
            assert (await tempo())["bpm"] == 131.5
            bad = await http.post("/api/tempo/bpm", json={"bpm": 10})
            assert (bad.status_code, bad.json()["error"]) == (400, "a tempo is 20 to 999 bpm, not 10")
            for _ in range(4):
                answer = await http.post("/api/tempo/tap")
                assert answer.status_code == 200
                await asyncio.sleep(0.4)
            tapped = await tempo()
            assert tapped["bpm"] == pytest.approx(150.0, rel=0.15)  # taps 0.4 s apart
            assert tapped["playing"] is True and tapped["bar"] >= 1
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


async def until_async(read: Any, check: Any, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met; last {value!r}")
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_a_scope_without_the_tempo_source_is_one_line_and_the_show_plays_on(
    tmp_path: Path,
) -> None:
    """tempo.source scope following a MIDI clock the simulator lacks (docs/scope.md §10.1: 400):
    one line, the fixed bpm in the status with the reason, and the show keeps playing."""
    import httpx

    show = write(tmp_path, HOLDING + "tempo: {source: scope, scope_follows: midi_clock}\n")
    lines, stop = Lines(), asyncio.Event()
    options = RunOptions(show, stdin_tty=False, state_file=tmp_path / "s.json", control_port=0)
    task = asyncio.create_task(run(options, output=lines, stop_event=stop))
    try:
        url = await until(lines.control_url, timeout=10)
        problem = await until(lambda: [w for w in lines.warned if w.startswith("tempo source")])
        assert problem == [
            "tempo source scope: Scope cannot follow midi_clock: Scope tempo enable: POST "
            f"{lines_sim_url(lines)}/api/v1/tempo/enable answered HTTP 400: Failed to create "
            "midi_clock tempo source. Install with: uv sync --extra midi; playing on the fixed "
            "124 bpm"
        ]
        async with httpx.AsyncClient(base_url=url) as http:
            status = await until_async(lambda: http.get("/api/status"),
                                       lambda r: r.json()["scene"] == "groove")
            tempo = status.json()["tempo"]
        assert (tempo["source"], tempo["bpm"]) == ("fixed", 124.0)
        assert tempo["error"] == problem[0].split("; playing")[0]
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


def lines_sim_url(lines: Lines) -> str:
    said = next(s for s in lines.said if "built-in simulator at" in s)
    return said.rsplit(" ", 1)[1]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["webrtc", "headless"])
async def test_scope_tempo_sync_is_followed_and_turned_off_at_the_end(
    tmp_path: Path, transport: str
) -> None:
    """tempo.source scope: Scope (the simulator) is asked to follow Link at the show's bpm, its
    beat (tempo_update messages over WebRTC, the tempo status read over the headless transport)
    drives the status, a set tempo reaches it, and the run's end turns tempo sync off again."""
    import httpx

    sim = SimThread("127.0.0.1", 0, load_time=0.02)
    simulator = sim.start()
    try:
        show = write(tmp_path, HOLDING + "tempo: {source: scope}\n")
        lines, stop = Lines(), asyncio.Event()
        options = RunOptions(show, scope_url=simulator.url, stdin_tty=False,
                             state_file=tmp_path / "s.json", control_port=0, transport=transport)
        task = asyncio.create_task(run(options, output=lines, stop_event=stop))
        try:
            url = await until(lines.control_url, timeout=10)
            async with httpx.AsyncClient(base_url=url) as http:

                async def tempo() -> dict[str, Any]:
                    body: dict[str, Any] = (await http.get("/api/status")).json()["tempo"] or {}
                    return body

                first = await until_async(tempo, lambda t: t.get("playing") is True, timeout=10)
                assert (first["source"], first["bpm"], first["error"]) == ("scope", 124.0, None)
                assert simulator.tempo.enabled and simulator.tempo.source == "link"
                answer = await http.post("/api/tempo/bpm", json={"bpm": 96})
                assert answer.status_code == 200
                await until_async(tempo, lambda t: t["bpm"] == 96.0)
                assert lines.warned[1:] == []
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 20) == 0
        assert not simulator.tempo.enabled
        offers = [r for r in simulator.records if "webrtc/offer" in r.get("path", "")]
        assert bool(offers) == (transport == "webrtc")
    finally:
        sim.stop()


@pytest.mark.anyio
async def test_what_headless_cannot_do_is_refused_before_anything_connects(
    sim_thread: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = write(tmp_path, CHAIN)
    code = await run_show(show, scope_url=sim_thread.url, stdin_tty=False, transport="headless")
    assert code == 1
    err = capsys.readouterr().err
    assert f"{show}:3:22: defaults.pipeline: the chain passthrough+controller-viz cannot play over " \
           "the headless transport" in err and err.rstrip().endswith("(--transport headless)")
    show = write(tmp_path, HOLD)
    code = await run_show(show, scope_url=sim_thread.url, stdin_tty=False, transport="headless",
                          record_video=tmp_path / "out.mp4")
    assert code == 1
    assert "error: --record-video records the video Scope sends back, and the headless transport " \
           "receives none" in capsys.readouterr().err
    assert not [r for r in sim_thread.records if r["kind"] == "http" and r["path"].startswith("/api/")]


@pytest.mark.slow
@pytest.mark.anyio
async def test_headless_recovers_from_a_scope_crash_at_the_wall_clock_scene(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """As over WebRTC: the server dies and comes back; the watchdog starts a new headless
    session with the state of the scene the wall clock says, and the show goes on."""
    show = write(tmp_path, RECOVER)
    journal_path = tmp_path / "run.jsonl"
    run = start(show, scope_url=sim_thread.url, journal_path=journal_path,
                state_file=tmp_path / "s.json",
                transport="headless")
    await run.at_scene("during")
    await asyncio.sleep(0.2)
    await sim_thread.crash()
    restart_from = len(sim_thread.records)
    await asyncio.sleep(1.0)
    await sim_thread.start()
    assert await asyncio.wait_for(run.task, 20) == 0
    after = sim_thread.records[restart_from:]
    started = next(r for r in after if r["kind"] == "http" and r["path"] == "/api/v1/session/start")
    assert prompts_of(started["json"]) == ["during the storm"]
    later = [r["json"] for r in after if r["kind"] == "http" and r["path"] == "/api/v1/session/parameters"
             and r["method"] == "POST"]
    assert any(prompts_of(m) == ["after the storm"] for m in later)
    assert not [r for r in sim_thread.records if "webrtc" in r.get("path", "")]
    journal = read_journal(journal_path)
    assert "watchdog" in [r["kind"] for r in journal]
    assert any(r["kind"] == "reconnect" and r["label"] == "ok" for r in journal)


@pytest.mark.anyio
async def test_the_page_preview_comes_from_session_frame_over_headless(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    """No video comes back over the headless transport: the control page's preview is Scope's
    `GET /api/v1/session/frame`, fetched only once the page asks for it (docs/scope.md §2.7)."""
    import httpx

    out, err = io.StringIO(), io.StringIO()
    show = write(tmp_path, HOLD)
    stop = asyncio.Event()
    options = RunOptions(show, scope_url=sim_thread.url, stdin_tty=False, control_port=0,
                         state_file=tmp_path / "s.json", transport="headless")
    task = asyncio.create_task(run(options, output=StreamOutput(out, err), stop_event=stop,
                                   settings=Settings.from_environ({})))
    try:
        line = await until(
            lambda: next((li for li in err.getvalue().splitlines() if "control: " in li), None)
        )
        page = line.split("control: ", 1)[1].strip()
        await until(lambda: sim_thread.headless is not None and sim_thread.headless.session.frames_sent)
        await asyncio.sleep(1.5)

        def frames_fetched() -> int:
            return sum(1 for r in sim_thread.records if r["kind"] == "http"
                       and r["path"] == "/api/v1/session/frame")

        assert frames_fetched() == 0  # nobody looked yet
        async with httpx.AsyncClient(base_url=page.split("/?")[0].rstrip("/"), timeout=5) as c:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                async with c.stream("GET", "/preview.mjpg") as response:
                    if response.status_code == 200:
                        chunk = b""
                        async for part in response.aiter_bytes():
                            chunk += part
                            if b"\xff\xd8" in chunk:
                                break
                        break
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.2)
        assert b"\xff\xd8" in chunk
        assert frames_fetched() >= 1
        assert not [r for r in sim_thread.records if "webrtc" in r.get("path", "")]
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


BARS = """
title: bars
bpm: 60
end: stop
defaults: {pipeline: controller-viz}
scenes:
  - {name: first, prompts: a slow pulse, duration: 2 bars}
  - {name: second, prompts: a fast pulse, duration: 0.3}
"""


@pytest.mark.anyio
async def test_a_live_tempo_stretches_the_bars_of_the_playing_show(tmp_path: Path) -> None:
    """`--tempo osc`: the tempo a source reports drives the player's musical time. Two bars at
    the show's 60 bpm last 8 s; set to 240 bpm just after the start they last about 2 s, and
    the status carries the new tempo."""
    import httpx

    show = write(tmp_path, BARS)
    lines, players = Lines(), []
    options = RunOptions(show, stdin_tty=False, state_file=tmp_path / "s.json", control_port=0,
                         tempo="osc")
    task = asyncio.create_task(run(options, output=lines, on_player=players.append))
    url = await until(lines.control_url, timeout=10)
    await until(lambda: players and players[0].status().scene == "first", 10)
    entered = asyncio.get_running_loop().time()
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/api/tempo/bpm", json={"bpm": 240})
        assert answer.status_code == 200
    await until(lambda: players[0].status().scene == "second", 7)
    took = asyncio.get_running_loop().time() - entered
    assert took < 5.0, f"two bars took {took:.2f} s: the live tempo was not followed"
    assert players[0].beat.tempo.bpm_at(players[0].clock.monotonic()) == 240.0
    assert await asyncio.wait_for(task, 20) == 0


@pytest.mark.anyio
async def test_a_midi_clock_drives_the_bars_of_the_show(tmp_path: Path, jack: str) -> None:
    """`tempo: {source: midi}` with the show's MIDI device: MIDI clock at 240 bpm from a JACK
    port plays two bars (8 s at the show's 60 bpm) in about 2 s."""
    import time

    import mido

    device: Any = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output(
        "Drum Machine e2eclock", virtual=True
    )
    show = write(tmp_path, BARS.replace("bpm: 60\n", "bpm: 60\ntempo: {source: midi}\n"
                                        "midi: {device: e2eclock, api: jack}\n"))
    lines, players = Lines(), []
    options = RunOptions(show, stdin_tty=False, state_file=tmp_path / "s.json", control_port=-1)
    task = asyncio.create_task(run(options, output=lines, on_player=players.append))

    async def send_clock() -> None:
        step = 60.0 / 240.0 / 24  # 24 clocks a beat at 240 bpm
        device.send(mido.Message("start"))
        t0, i = time.monotonic(), 0
        while True:
            i += 1
            await asyncio.sleep(max(0.0, t0 + i * step - time.monotonic()))
            device.send(mido.Message("clock"))

    clock: asyncio.Task[None] | None = None
    try:
        await until(lambda: players and players[0].status().scene == "first", 10)
        await asyncio.sleep(1.0)  # the clock's port is found (polled) before the clock starts
        clock = asyncio.create_task(send_clock())
        started = asyncio.get_running_loop().time()
        await until(lambda: players[0].status().scene == "second", 7)
        took = asyncio.get_running_loop().time() - started
        assert took < 5.0, f"two bars took {took:.2f} s: the MIDI clock was not followed"
        assert players[0].beat.tempo.bpm_at(players[0].clock.monotonic()) == pytest.approx(240, rel=0.2)
        # The clock stops before the run ends and closes its port: a JACK client closed while
        # a message is being delivered can hang the process (docs/operating.md, "Known limit
        # on JACK").
        clock.cancel()
        assert await asyncio.wait_for(task, 20) == 0
    finally:
        if clock is not None:
            clock.cancel()
        device.close()
    assert not [w for w in lines.warned if w.startswith("tempo source")]
