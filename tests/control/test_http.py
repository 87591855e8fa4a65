"""The HTTP control surface over real loopback HTTP: commands, token rule, events, preview."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cue_show import DROP, SCENES, TIMED, FakePlayer, playing, transitions_to, until_status
from PIL import Image

from showrunner.control.gate import Commands
from showrunner.control.http import ControlServer, needs_token
from showrunner.live.journal import read_journal
from showrunner.sim import Simulator, serve_sim
from showrunner.testing import MemoryJournal


def jpeg(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 18), color).save(out, "JPEG")
    return out.getvalue()


class Frames:
    def __init__(self, picture: bytes | None) -> None:
        self.picture = picture

    def latest_jpeg(self) -> bytes | None:
        return self.picture


@pytest.fixture
async def server() -> AsyncIterator[ControlServer]:
    async with ControlServer(FakePlayer(), journal=MemoryJournal()) as srv:
        yield srv


def client(srv: ControlServer, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=srv.url, timeout=5, **kw)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("localhost", False),
        ("::1", False),
        ("[::1]", False),
        ("0.0.0.0", True),
        ("::", True),
        ("", True),
        ("192.168.1.20", True),
        ("10.0.0.5", True),
        ("stage-laptop.local", True),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else str(v),
)
def test_needs_token(host: str, expected: bool) -> None:
    assert needs_token(host) is expected


# -- commands -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_and_go(server: ControlServer) -> None:
    async with client(server) as c:
        status = (await c.get("/api/status")).json()
        assert status["scene"] == "intro" and status["next"] == "storm"
        assert status["scenes"] == SCENES and status["connection"] == "connected"
        answer = await c.post("/api/go")
        assert answer.status_code == 200
        assert answer.json() == {"command": "go", "applied": True, "result": "applied"}
        assert (await c.get("/api/status")).json()["scene"] == "storm"


@pytest.mark.anyio
async def test_a_second_go_inside_the_window_is_debounced(server: ControlServer) -> None:
    player = server.player
    assert isinstance(player, FakePlayer)
    async with client(server) as c:
        assert (await c.post("/api/go")).json()["applied"] is True
        second = await c.post("/api/go")
    assert second.status_code == 200
    assert second.json() == {
        "command": "go", "applied": False, "result": "ignored", "reason": "debounced"
    }
    assert player.calls == ["go"]


@pytest.mark.anyio
async def test_a_repeated_id_is_applied_once(server: ControlServer) -> None:
    server.commands.min_go_interval = 0
    async with client(server) as c:
        assert (await c.post("/api/go", json={"id": "a1"})).json()["applied"] is True
        again = (await c.post("/api/go", json={"id": "a1"})).json()
        assert again == {
            "command": "go", "applied": False, "result": "ignored", "reason": "duplicate"
        }
        assert (await c.post("/api/go?id=a2")).json()["applied"] is True
    assert server.player.calls == ["go", "go"]  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_goto_back_hold_resume_panic(server: ControlServer) -> None:
    async with client(server) as c:
        assert (await c.post("/api/goto/calm")).json()["applied"] is True
        assert (await c.get("/api/status")).json()["scene"] == "calm"
        assert (await c.post("/api/back")).status_code == 200
        assert (await c.post("/api/hold")).json()["applied"] is True
        assert (await c.get("/api/status")).json()["held"] is True
        assert (await c.post("/api/resume")).status_code == 200
        assert (await c.get("/api/status")).json()["held"] is False
        assert (await c.post("/api/panic")).status_code == 200
    assert server.player.calls == [  # type: ignore[union-attr]
        ("goto", "calm"), "back", "hold", "resume", "panic"
    ]


@pytest.mark.anyio
async def test_scene_names_are_url_decoded() -> None:
    player = FakePlayer()
    async with ControlServer(player) as srv, client(srv) as c:
        answer = await c.post("/api/goto/no%20such%20scene")
    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown scene 'no such scene'"


@pytest.mark.anyio
async def test_error_answers(server: ControlServer) -> None:
    async with client(server) as c:
        unknown = await c.post("/api/goto/nowhere")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "command": "goto",
            "applied": False,
            "result": "ignored",
            "reason": "unknown scene",
            "error": "unknown scene 'nowhere'",
        }
        refused = await c.post("/api/back")
        assert refused.status_code == 409
        assert refused.json()["error"] == "nothing to go back to"
        reload = await c.post("/api/reload")
        assert reload.status_code == 501
        assert reload.json()["reason"] == "not supported"
        assert (await c.post("/api/dance")).status_code == 404
        assert (await c.get("/api/go")).status_code == 405
        assert (await c.post("/api/go", content=b"{nope")).status_code == 400
        assert (await c.post("/api/go", json=[1])).status_code == 400


@pytest.mark.anyio
async def test_reload_when_the_player_has_it() -> None:
    player = FakePlayer(reloadable=True)
    async with ControlServer(player) as srv, client(srv) as c:
        assert (await c.post("/api/reload")).json()["applied"] is True
    assert player.calls == ["reload"]


@pytest.mark.anyio
async def test_waiting_for_a_player_then_attached() -> None:
    async with ControlServer(None) as srv, client(srv) as c:
        waiting = await c.post("/api/go")
        assert waiting.status_code == 503
        assert (await c.get("/api/status")).json()["connection"] == "waiting"
        player = FakePlayer()
        srv.attach(player)
        assert (await c.post("/api/go")).json()["applied"] is True
        assert len(player.listeners) == 1
    assert player.listeners == []  # unsubscribed on exit


@pytest.mark.anyio
async def test_page_sources_are_journaled() -> None:
    journal = MemoryJournal()
    async with ControlServer(FakePlayer(), journal=journal) as srv, client(srv) as c:
        await c.post("/api/hold", json={"source": "page"})
        await c.post("/api/resume", json={"source": "keyboard"})  # not a source HTTP may claim
    assert [(r["command"], r["source"]) for r in journal.records] == [("hold", "page"), ("resume", "http")]


@pytest.mark.anyio
async def test_shared_commands_keep_one_debounce_window() -> None:
    commands = Commands(FakePlayer(), min_go_interval=10)
    async with ControlServer(None, commands=commands) as srv, client(srv) as c:
        assert srv.player is commands.player
        await commands.go(source="keyboard")
        assert (await c.post("/api/go")).json()["reason"] == "debounced"


# -- the token rule -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_required_token_is_checked() -> None:
    async with ControlServer(FakePlayer(), require_token=True, token="s3cret") as srv:
        async with client(srv) as c:
            assert (await c.get("/api/status")).status_code == 401
            refused = await c.post("/api/go")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            wrong = {"Authorization": "Bearer nope"}
            assert (await c.post("/api/go", headers=wrong)).status_code == 401
            good = {"Authorization": "Bearer s3cret"}
            assert (await c.post("/api/go", headers=good)).status_code == 200
            # Browsers can only put it in the URL, and only for reading.
            assert (await c.get("/api/status?token=s3cret")).status_code == 200
            assert (await c.get("/?token=s3cret")).status_code == 200
            assert (await c.get("/")).status_code == 401
            assert (await c.post("/api/hold?token=s3cret")).status_code == 401
            # The page's script and style are package files, not secrets.
            assert (await c.get("/static/operator.js")).status_code == 200
        assert srv.page_url == f"{srv.url}/?token=s3cret"
        assert srv.player.calls == ["go"]  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_missing_token_is_generated_and_announced_once() -> None:
    lines: list[str] = []
    async with ControlServer(FakePlayer(), require_token=True, announce=lines.append) as srv:
        assert srv.token and len(srv.token) >= 24 and srv.token_generated
        assert len(lines) == 1 and lines[0].startswith(f"control: {srv.url}/?token={srv.token} ")
        assert lines[0].count(srv.token) == 1
        async with client(srv, headers={"Authorization": f"Bearer {srv.token}"}) as c:
            assert (await c.get("/api/status")).status_code == 200


def test_the_bind_address_decides_whether_a_token_is_needed() -> None:
    assert ControlServer(None, host="0.0.0.0").token is not None
    assert ControlServer(None, host="192.168.1.20", token="t").token == "t"
    assert ControlServer(None, host="127.0.0.1").token is None
    assert ControlServer(None, host="127.0.0.1", token="given").token == "given"


@pytest.mark.anyio
async def test_a_given_token_is_required_on_loopback_too() -> None:
    async with ControlServer(FakePlayer(), token="given") as srv, client(srv) as c:
        assert (await c.get("/api/status")).status_code == 401
        assert srv.token_generated is False


@pytest.mark.anyio
async def test_other_pages_cannot_press_buttons(server: ControlServer) -> None:
    async with client(server) as c:
        evil = await c.post("/api/panic", headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403
        own = await c.post("/api/hold", headers={"Origin": server.url})
        assert own.status_code == 200
        rebound = await c.get("/api/status", headers={"Host": "evil.example"})
        assert rebound.status_code == 403
        local = await c.get("/api/status", headers={"Host": "localhost:1"})
        assert local.status_code == 200
    assert server.player.calls == ["hold"]  # type: ignore[union-attr]


# -- event stream ---------------------------------------------------------------------------------


async def read_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    event, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield event, json.loads(data)
            event, data = "message", ""


@pytest.mark.anyio
async def test_a_client_gets_a_status_event_after_go(server: ControlServer) -> None:
    async with client(server) as c, c.stream("GET", "/api/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = read_events(stream)
        kind, first = await anext(events)
        assert (kind, first["scene"]) == ("status", "intro")
        async with client(server) as other:
            await other.post("/api/go")
        seen: list[tuple[str, Any]] = []
        with anyio.fail_after(3):
            async for kind, data in events:
                seen.append((kind, data))
                logs = [d["text"] for k, d in seen if k == "log"]
                if kind == "status" and data["scene"] == "storm" and logs:
                    break
    logs = [d["text"] for k, d in seen if k == "log"]
    assert "GO from http: applied" in logs
    assert ("player", {"type": "scene", "scene": "storm"}) in seen


@pytest.mark.anyio
async def test_new_clients_get_recent_log_lines(server: ControlServer) -> None:
    async with client(server) as c:
        await c.post("/api/hold")
        async with c.stream("GET", "/api/events") as stream:
            events = read_events(stream)
            assert (await anext(events))[0] == "status"
            kind, line = await anext(events)
    assert kind == "log"
    assert line["text"] == "HOLD from http: applied"
    assert line["source"] == "http" and line["level"] == "info"


@pytest.mark.anyio
async def test_player_messages_become_log_lines() -> None:
    player = FakePlayer()
    async with ControlServer(player) as srv, client(srv) as c:
        async with c.stream("GET", "/api/events") as stream:
            events = read_events(stream)
            await anext(events)
            player.listeners[0]({"type": "error", "message": "Scope connection lost"})
            with anyio.fail_after(3):
                async for kind, data in events:  # noqa: B007  (read after the loop)
                    if kind == "log":
                        break
    assert data == {"at": None, "level": "error", "source": "player", "text": "Scope connection lost"}


@pytest.mark.anyio
async def test_stopping_the_server_ends_open_streams() -> None:
    srv = ControlServer(FakePlayer(), frames=Frames(jpeg("red")))
    loop = asyncio.get_running_loop()
    async with srv, client(srv) as c:
        async with c.stream("GET", "/api/events") as events, c.stream("GET", "/preview.mjpg"):
            await anext(read_events(events))
            started = loop.time()
            await srv.__aexit__(None, None, None)
            assert loop.time() - started < 1.5


# -- preview ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_preview_is_503_without_a_picture(server: ControlServer) -> None:
    async with client(server) as c:
        assert (await c.get("/preview.mjpg")).status_code == 503
        server.frames = Frames(None)
        assert (await c.get("/preview.mjpg")).status_code == 503


@pytest.mark.anyio
async def test_preview_streams_jpeg_parts() -> None:
    frames = Frames(jpeg("red"))
    async with ControlServer(FakePlayer(), frames=frames) as srv, client(srv) as c:
        async with c.stream("GET", "/preview.mjpg") as stream:
            kind = stream.headers["content-type"]
            assert kind == "multipart/x-mixed-replace; boundary=showrunnerframe"
            buffer = b""
            with anyio.fail_after(3):
                async for chunk in stream.aiter_raw():
                    buffer += chunk
                    if buffer.count(b"--showrunnerframe") >= 2:
                        frames.picture = jpeg("blue")
                    if buffer.count(b"--showrunnerframe") >= 3:
                        break
    parts = buffer.split(b"--showrunnerframe\r\n")[1:3]
    pictures = []
    for part in parts:
        head, _, body = part.partition(b"\r\n\r\n")
        assert b"Content-Type: image/jpeg" in head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        pictures.append(Image.open(io.BytesIO(body[:length])).getpixel((16, 9)))
    red, blue = pictures
    assert red[0] > 200 and red[2] < 50  # type: ignore[index]
    assert blue[2] > 200 and blue[0] < 50  # type: ignore[index]


# -- page ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_page_and_its_files_are_served(server: ControlServer) -> None:
    async with client(server) as c:
        page = await c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<img id="preview" src="/preview.mjpg"' in page.text
        for asset in ("/static/operator.js", "/static/operator.css"):
            assert (await c.get(asset)).status_code == 200


def test_repr() -> None:
    assert repr(ControlServer(None, port=8765)) == "ControlServer('127.0.0.1:8765', token=no)"


# -- with the real player on the simulator --------------------------------------------------------





@contextlib.asynccontextmanager
async def live_show(
    tmp_path: Path, **control: Any
) -> AsyncIterator[tuple[Simulator, ControlServer]]:
    """`showrunner run` on a show that waits for GO, played against the simulator."""
    async with (
        serve_sim() as sim,
        ControlServer(None, **control) as server,
        playing(tmp_path, sim, server.attach, journal_path=tmp_path / "run.jsonl"),
    ):
        await until_status(
            server.commands.status, scene="preshow", connection="connected", mode="waiting"
        )
        yield sim, server


@pytest.mark.anyio
async def test_go_over_http_advances_the_real_show_once(tmp_path: Path) -> None:
    """GO reaches Scope as one prompt transition (docs/scope.md §3.3 `transition`); a second GO
    inside the debounce window changes nothing."""
    async with live_show(tmp_path, min_go_interval=5) as (sim, server), client(server) as c:
        async with c.stream("GET", "/api/events") as stream:
            events = read_events(stream)
            assert (await anext(events))[1]["scene"] == "preshow"
            assert (await c.post("/api/go")).json() == {
                "command": "go", "applied": True, "result": "applied", "detail": "first"
            }
            assert (await c.post("/api/go")).json()["reason"] == "debounced"
            with anyio.fail_after(5):
                async for kind, data in events:
                    if kind == "status" and data["scene"] == "first":
                        break
        await asyncio.sleep(0.3)  # room for a wrong second advance to show
        status = (await c.get("/api/status")).json()
        assert (status["scene"], status["next"], status["waiting_for"]) == ("first", "second", "go")
        assert transitions_to(sim, "a neon wave rising out of the harbour") == 1
        assert transitions_to(sim, "a slow aurora over a frozen sea") == 0
        assert (await c.post("/api/goto/nowhere")).status_code == 404
        # The player reloads the show file on request; nothing changed, so nothing is sent.
        assert (await c.post("/api/reload")).status_code == 200
    operator = [r for r in read_journal(tmp_path / "run.jsonl") if r.get("source") == "http"]
    assert [(r["command"], r["applied"], r["reason"]) for r in operator] == [
        ("go", True, None),
        ("go", False, "debounced"),
        ("goto", False, "unknown scene"),
        ("reload", True, None),
    ]


@pytest.mark.anyio
async def test_a_non_ascii_token_is_a_401_not_a_500() -> None:
    async with ControlServer(FakePlayer(), token="s3cret") as srv, client(srv) as c:
        answer = await c.get("/api/status", headers={"Authorization": "Bearer p\u00e4ss".encode()})
        assert answer.status_code == 401
        answer = await c.get("/api/status?token=%C3%A4%E2%82%AC")
        assert answer.status_code == 401


@pytest.mark.anyio
async def test_sizes_are_capped(server: ControlServer) -> None:
    """Big ids, names and bodies are refused before they reach the gate's memory or the journal."""
    journal = MemoryJournal()
    server.commands.journal = journal
    async with client(server) as c:
        big = await c.post("/api/go", json={"id": "x" * 1_000_000})
        assert big.status_code == 413
        long_id = await c.post("/api/go", json={"id": "x" * 129})
        assert long_id.status_code == 400
        name = await c.post("/api/goto/" + "n" * 60_000)
        assert name.status_code == 400 and name.json()["reason"] == "too long"
        assert (await c.post("/api/go", content=b"{" * 5000)).status_code == 413
    assert server.player.calls == []  # type: ignore[union-attr]
    assert journal.records == []
    assert len(server.commands._ids) == 0


@pytest.mark.anyio
async def test_a_named_cue_goes_through_the_gate(server: ControlServer) -> None:
    player = server.player
    assert isinstance(player, FakePlayer)
    async with client(server) as c:
        answer = await c.post("/api/cue/drop")
    assert answer.status_code == 200 and answer.json()["command"] == "cue"
    assert player.calls == [("cue", "drop")]


@pytest.mark.anyio
async def test_go_over_http_starts_the_next_timed_scene(tmp_path: Path) -> None:
    """Three timed 60 s scenes: GO answers what it started and Scope gets that scene's look."""
    async with serve_sim() as sim, ControlServer(None) as server, client(server) as c:
        async with playing(tmp_path, sim, server.attach, text=TIMED):
            await until_status(server.commands.status, scene="one", connection="connected")
            answer = await c.post("/api/go")
            assert answer.status_code == 200
            assert answer.json() == {
                "command": "go", "applied": True, "result": "applied", "detail": "two"
            }
            await until_status(server.commands.status, scene="two")
            with anyio.fail_after(5):
                while transitions_to(sim, "a lighthouse in a storm") != 1:
                    await asyncio.sleep(0.02)
            show = (await c.get("/api/show")).json()
            assert [s["trigger"] for s in show["scenes"]] == ["timed"] * 3
            assert show["scenes"][1]["prompts"] == [{"text": "a lighthouse in a storm", "weight": 1.0}]


@pytest.mark.anyio
async def test_post_cue_drop_starts_the_scene_waiting_for_it(tmp_path: Path) -> None:
    async with serve_sim() as sim, ControlServer(None) as server, client(server) as c:
        async with playing(tmp_path, sim, server.attach, text=DROP):
            await until_status(server.commands.status, scene="build", waiting_for="drop",
                               connection="connected")
            wrong = await c.post("/api/cue/rain")
            assert wrong.status_code == 409
            assert (wrong.json()["result"], wrong.json()["reason"]) == (
                "ignored", "not waiting for this cue"
            )
            answer = await c.post("/api/cue/drop")
            assert answer.status_code == 200 and answer.json()["detail"] == "drop"
            await until_status(server.commands.status, scene="drop")
            with anyio.fail_after(5):
                while transitions_to(sim, "a burst of light over the crowd") != 1:
                    await asyncio.sleep(0.02)


class FakeLive:
    """The run's live inputs as the control server sees them (`LivePanel`)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {"level": 0.0}
        self.learned: list[tuple[str, str | None]] = []

    def meters(self) -> dict[str, Any]:
        return {"inputs": [{"name": n, "value": v, "kind": "page", "age": 0.0}
                           for n, v in self.values.items()], "midi": None}

    def set_input(self, name: str, value: float) -> bool:
        if name not in self.values:
            return False
        self.values[name] = min(1.0, max(0.0, value))
        return True

    async def learn(self, action: str, name: str | None) -> dict[str, Any]:
        from showrunner.learn import LearnError

        if action == "jump":
            raise LearnError("unknown action 'jump'")
        self.learned.append((action, name))
        return {"note": 1, "do": action}


@pytest.mark.anyio
async def test_inputs_and_learn_over_http() -> None:
    live = FakeLive()
    async with ControlServer(FakePlayer()) as srv, client(srv) as c:
        assert (await c.get("/api/inputs")).json() == {"inputs": [], "midi": None}
        assert (await c.post("/api/inputs/level", json={"value": 0.5})).status_code == 503
        srv.live = live
        answer = await c.post("/api/inputs/level", json={"value": 1.5})
        assert answer.status_code == 200 and answer.json() == {"input": "level", "value": 1.0}
        assert (await c.get("/api/inputs")).json()["inputs"][0]["value"] == 1.0
        assert (await c.post("/api/inputs/nope", json={"value": 0.5})).status_code == 404
        for bad in ({"value": "x"}, {"value": True}, {}, [1]):
            assert (await c.post("/api/inputs/level", json=bad)).status_code == 400
        learned = await c.post("/api/controls", json={"action": "go"})
        assert learned.status_code == 200 and learned.json() == {"learned": {"note": 1, "do": "go"}}
        refused = await c.post("/api/controls", json={"action": "jump"})
        assert refused.status_code == 409 and refused.json() == {"error": "unknown action 'jump'"}
        assert (await c.post("/api/controls", json={"name": "x"})).status_code == 400
    assert live.learned == [("go", None)]


# -- tempo -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tempo_block_taps_and_set_tempos(server: ControlServer) -> None:
    """`tempo` is null until a tempo is attached; taps and set tempos answer 503 / 409 / 400 /
    200 as documented, each with a one-line error."""
    import time

    from showrunner.sync.runner import TempoRunner
    from showrunner.sync.sources import SourceContext, SourceOptions

    async with client(server) as http:
        assert (await http.get("/api/status")).json()["tempo"] is None
        early = await http.post("/api/tempo/tap")
        assert (early.status_code, early.json()["error"]) == (503, "no show running")
        fixed = TempoRunner(SourceOptions("fixed", bpm=96), SourceContext(time.monotonic))
        server.attach_tempo(fixed)
        refused = await http.post("/api/tempo/bpm", json={"bpm": 100})
        assert refused.status_code == 409
        assert refused.json()["error"].startswith("the fixed tempo cannot be changed here")
        manual = TempoRunner(SourceOptions("osc", bpm=96), SourceContext(time.monotonic))
        task = asyncio.create_task(manual.run())
        server.attach_tempo(manual)
        for body, code, error in [
            (b"{", 400, "the request body is not JSON"),
            (b"{}", 400, 'give the tempo as {"bpm": 128} or ?bpm=128'),
            (b'{"bpm": "x"}', 400, "a tempo is a number of bpm, not 'x'"),
        ]:
            answer = await http.post("/api/tempo/bpm", content=body)
            assert (answer.status_code, answer.json()["error"]) == (code, error)
        ok = await http.post("/api/tempo/bpm?bpm=140")
        assert (ok.status_code, ok.json()) == (200, {"command": "bpm", "applied": True, "bpm": 140.0})
        tempo = (await http.get("/api/status")).json()["tempo"]
        assert (tempo["source"], tempo["bpm"], tempo["peers"], tempo["error"]) == ("osc", 140.0, None, None)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
