"""Hot reload of a show file: real edits in a temp folder, seen through `watch_show`.

Editors save in different ways (in place, write-temp-then-rename, vim's backup dance); every
test writes real files the way one of them does and checks what the watcher yields. A bad edit
must come back as a `ShowErrors` value, never as an exception: the show keeps playing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from watchfiles import Change

from showrunner.app import run_show
from showrunner.errors import ShowErrors
from showrunner.live.journal import read_journal
from showrunner.live.player import Player
from showrunner.reload.watch import _is_junk, _relevant, watch_show
from showrunner.show.load import LoadResult, load
from showrunner.sim import SimThread, Simulator

SHOW = """\
title: Reload test
include:
  lib: library/prompts.yaml
assets:
  images:
    ref: assets/ref.png
scenes:
  - name: intro
    prompts: "{{ lib.forest }}"
    duration: 4
  - include: library/scenes.yaml
"""
PROMPTS = "forest: a misty forest\n"
SCENES = """\
- name: outro
  prompts: the open sea
  duration: 4
"""

Item = LoadResult | ShowErrors


# ---------------------------------------------------------------------------------------------
# The pure filter
# ---------------------------------------------------------------------------------------------

DIR = "/shows"
WATCHED = [f"{DIR}/show.yaml", f"{DIR}/library/prompts.yaml", f"{DIR}/assets/ref.png"]


@pytest.mark.parametrize(
    ("changes", "open_dirs", "expected"),
    [
        ({(Change.modified, f"{DIR}/show.yaml")}, (), True),
        ({(Change.added, f"{DIR}/show.yaml"), (Change.deleted, f"{DIR}/.show.yaml.tmp")}, (), True),
        ({(Change.deleted, f"{DIR}/show.yaml")}, (), True),
        ({(Change.modified, f"{DIR}/library/prompts.yaml")}, (), True),
        ({(Change.modified, f"{DIR}/assets/ref.png")}, (), True),
        ({(Change.modified, f"{DIR}/library/../show.yaml")}, (), True),
        ({(Change.modified, f"{DIR}/other.yaml")}, (), False),
        ({(Change.added, f"{DIR}/.show.yaml.swp")}, (), False),
        ({(Change.added, f"{DIR}/show.yaml~")}, (), False),
        ({(Change.added, f"{DIR}/4913"), (Change.deleted, f"{DIR}/4913")}, (), False),
        ({(Change.modified, f"{DIR}/journal.jsonl")}, (), False),
        ({(Change.added, f"{DIR}/new.yaml")}, (DIR,), True),
        ({(Change.added, f"{DIR}/new.png")}, (DIR,), True),
        ({(Change.added, f"{DIR}/sub/new.yaml")}, (DIR,), False),
        ({(Change.modified, f"{DIR}/journal.jsonl")}, (DIR,), False),
        ({(Change.modified, f"{DIR}/.showrunner-state.json")}, (DIR,), False),
        ({(Change.added, f"{DIR}/.new.yaml.swx")}, (DIR,), False),
        ({(Change.added, f"{DIR}/new.yaml.tmp")}, (DIR,), False),
        ({(Change.added, f"{DIR}/.#new.yaml")}, (DIR,), False),
        ({(Change.added, f"{DIR}/.new.yaml.kate-swp")}, (DIR,), False),
        (set(), (DIR,), False),
    ],
    ids=[
        "show-modified",
        "atomic-rename",
        "show-deleted",
        "include-modified",
        "asset-modified",
        "unnormalised-path",
        "unwatched-yaml",
        "vim-swap",
        "backup-tilde",
        "vim-4913-probe",
        "journal",
        "new-yaml-after-error",
        "new-image-after-error",
        "subfolder-after-error",
        "journal-after-error",
        "state-file-after-error",
        "swx-after-error",
        "tmp-after-error",
        "emacs-lock-after-error",
        "kate-swap-after-error",
        "empty-batch",
    ],
)
def test_relevant(
    changes: set[tuple[Change, str]], open_dirs: tuple[str, ...], expected: bool
) -> None:
    assert _relevant(changes, WATCHED, open_dirs=open_dirs) is expected


@pytest.mark.parametrize(
    "name",
    [
        ".show.yaml.swp",
        ".show.yaml.swx",
        "show.yaml~",
        ".#show.yaml",
        "#show.yaml#",
        "4913",
        "show.yaml.tmp",
        "show.yaml.tmp.8812",
        ".show.yaml.kate-swp",
        "show.yaml___jb_tmp___",
        ".goutputstream-X1Y2Z3",
        ".DS_Store",
    ],
)
def test_editor_junk(name: str) -> None:
    assert _is_junk(f"{DIR}/{name}")


@pytest.mark.parametrize("name", ["show.yaml", "prompts.yml", "ref.png", "4913.yaml", "tmp.yaml"])
def test_not_junk(name: str) -> None:
    assert not _is_junk(f"{DIR}/{name}")


# ---------------------------------------------------------------------------------------------
# Real edits
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def show(tmp_path: Path) -> Path:
    (tmp_path / "library").mkdir()
    (tmp_path / "assets").mkdir()
    (tmp_path / "library" / "prompts.yaml").write_text(PROMPTS, "utf-8")
    (tmp_path / "library" / "scenes.yaml").write_text(SCENES, "utf-8")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "assets" / "ref.png")
    path = tmp_path / "show.yaml"
    path.write_text(SHOW, "utf-8")
    return path


class Watch:
    """Runs `watch_show` in a task and queues what it yields."""

    def __init__(self, path: Path, initial: Item | None, **kw: int) -> None:
        self.path = path
        self.initial = initial
        self.kw = kw
        self.items: asyncio.Queue[Item] = asyncio.Queue()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for item in watch_show(
            self.path, stop_event=self.stop, initial=self.initial, **self.kw
        ):
            self.items.put_nowait(item)

    async def next(self, timeout: float = 5.0) -> Item:
        return await asyncio.wait_for(self.items.get(), timeout)

    async def drain(self, quiet: float = 0.4) -> list[Item]:
        """Everything yielded until nothing more comes for `quiet` seconds."""
        got: list[Item] = []
        while True:
            try:
                got.append(await asyncio.wait_for(self.items.get(), quiet))
            except TimeoutError:
                return got


@pytest.fixture
async def watch(show: Path) -> AsyncIterator[Watch]:
    w = Watch(show, load(show))
    w.task = asyncio.create_task(w._run())
    # Asset files are compared from when the watch starts; let it start before editing.
    await asyncio.sleep(0.15)
    yield w
    w.stop.set()
    await asyncio.wait_for(w.task, 2.0)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")


def _result(item: Item) -> LoadResult:
    assert isinstance(item, LoadResult), f"expected a good load, got: {item}"
    return item


@pytest.mark.anyio
async def test_valid_edit_yields_the_new_show(show: Path, watch: Watch) -> None:
    _edit(show, "duration: 4", "duration: 6")
    result = _result(await watch.next())
    assert result.show.scenes[0].duration == 6.0
    assert await watch.drain() == []


@pytest.mark.anyio
async def test_invalid_edit_is_a_value_then_the_fix_applies(show: Path, watch: Watch) -> None:
    _edit(show, "duration: 4", "duration: -1")
    item = await watch.next()
    assert isinstance(item, ShowErrors)
    assert "scenes[0].duration: must be a time >= 0" in str(item)
    assert str(item).startswith(f"{show}:10:")
    _edit(show, "duration: -1", "duration: 5")
    assert _result(await watch.next()).show.scenes[0].duration == 5.0
    assert not watch.task.done()  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_yaml_syntax_error_is_a_value(show: Path, watch: Watch) -> None:
    _edit(show, "  - name: intro", "  - name: [intro")
    item = await watch.next()
    assert isinstance(item, ShowErrors)
    assert str(item).startswith(str(show))
    show.write_text(SHOW, "utf-8")
    assert _result(await watch.next()).show.scenes[0].name == "intro"


@pytest.mark.anyio
async def test_rapid_saves_give_few_results_ending_with_the_last(show: Path, watch: Watch) -> None:
    for i in range(20):
        _edit(show, "duration: 4" if i == 0 else f"duration: {10 + i - 1}", f"duration: {10 + i}")
        await asyncio.sleep(0.002)
    got = [_result(item) for item in await watch.drain()]
    assert 1 <= len(got) <= 5
    assert got[-1].show.scenes[0].duration == 29.0


@pytest.mark.anyio
async def test_atomic_rename_save(show: Path, watch: Watch) -> None:
    tmp = show.with_name(".show.yaml.tmp.4242")
    tmp.write_text(SHOW.replace("a misty", "x") .replace("duration: 4", "duration: 7", 1), "utf-8")
    os.replace(tmp, show)
    assert _result(await watch.next()).show.scenes[0].duration == 7.0
    # and again: the watch follows the new inode
    tmp.write_text(SHOW.replace("duration: 4", "duration: 8", 1), "utf-8")
    os.replace(tmp, show)
    assert _result(await watch.next()).show.scenes[0].duration == 8.0
    assert await watch.drain() == []


@pytest.mark.anyio
async def test_vim_style_save_with_backup_and_probe(show: Path, watch: Watch) -> None:
    folder = show.parent
    (folder / "4913").write_text("")
    (folder / "4913").unlink()
    (folder / ".show.yaml.swp").write_bytes(b"\0" * 64)
    os.rename(show, folder / "show.yaml~")
    show.write_text(SHOW.replace("duration: 4", "duration: 9", 1), "utf-8")
    (folder / "show.yaml~").unlink()
    assert _result(await watch.next()).show.scenes[0].duration == 9.0
    assert await watch.drain() == []


@pytest.mark.anyio
async def test_delete_then_recreate_is_not_an_error(show: Path, watch: Watch) -> None:
    show.unlink()
    await asyncio.sleep(0.05)  # longer than a watch batch: the deletion is seen on its own
    show.write_text(SHOW.replace("duration: 4", "duration: 11", 1), "utf-8")
    got = await watch.drain()
    assert [_result(i).show.scenes[0].duration for i in got] == [11.0]


@pytest.mark.anyio
async def test_edited_variable_include(show: Path, watch: Watch) -> None:
    (show.parent / "library" / "prompts.yaml").write_text("forest: a burning forest\n", "utf-8")
    result = _result(await watch.next())
    assert result.show.scenes[0].prompts is not None
    assert result.show.scenes[0].prompts[0].text == "a burning forest"


@pytest.mark.anyio
async def test_edited_scenes_include(show: Path, watch: Watch) -> None:
    _edit(show.parent / "library" / "scenes.yaml", "the open sea", "a stormy sea")
    result = _result(await watch.next())
    assert [s.name for s in result.show.scenes] == ["intro", "outro"]
    assert result.show.scenes[1].prompts is not None
    assert result.show.scenes[1].prompts[0].text == "a stormy sea"


@pytest.mark.anyio
async def test_error_inside_an_include_points_into_it(show: Path, watch: Watch) -> None:
    scenes = show.parent / "library" / "scenes.yaml"
    _edit(scenes, "duration: 4", "duration: soon")
    item = await watch.next()
    assert isinstance(item, ShowErrors)
    assert "scenes.yaml:3:" in str(item)
    scenes.write_text(SCENES, "utf-8")
    assert isinstance(await watch.next(), LoadResult)


@pytest.mark.anyio
async def test_edited_asset_yields_although_the_show_is_the_same(show: Path, watch: Watch) -> None:
    Image.new("RGB", (8, 8), "blue").save(show.parent / "assets" / "ref.png")
    result = _result(await watch.next())
    assert show.parent / "assets" / "ref.png" in result.files


@pytest.mark.anyio
async def test_new_include_is_watched_after_the_reload(show: Path, watch: Watch) -> None:
    extra = show.parent / "more"
    extra.mkdir()
    (extra / "coda.yaml").write_text("- name: coda\n  prompts: dusk\n  duration: 2\n", "utf-8")
    show.write_text(SHOW + "  - include: more/coda.yaml\n", "utf-8")
    assert [s.name for s in _result(await watch.next()).show.scenes] == ["intro", "outro", "coda"]
    _edit(extra / "coda.yaml", "dusk", "dawn")
    result = _result(await watch.next())
    assert result.show.scenes[2].prompts is not None
    assert result.show.scenes[2].prompts[0].text == "dawn"


@pytest.mark.anyio
async def test_missing_include_created_later_fixes_the_show(show: Path, watch: Watch) -> None:
    show.write_text(SHOW + "  - include: coda.yaml\n", "utf-8")
    item = await watch.next()
    assert isinstance(item, ShowErrors)
    (show.parent / "coda.yaml").write_text("- name: coda\n  prompts: dusk\n  duration: 2\n")
    assert [s.name for s in _result(await watch.next()).show.scenes][-1] == "coda"


@pytest.mark.anyio
async def test_saves_that_change_nothing_yield_nothing(show: Path, watch: Watch) -> None:
    show.write_text(SHOW, "utf-8")  # same bytes
    show.write_text(SHOW + "# a comment\n", "utf-8")  # same show
    (show.parent / "unrelated.txt").write_text("notes", "utf-8")
    (show.parent / ".show.yaml.swp").write_bytes(b"\0" * 64)
    assert await watch.drain() == []


@pytest.mark.anyio
async def test_same_error_twice_is_reported_once(show: Path, watch: Watch) -> None:
    _edit(show, "duration: 4", "duration: -1")
    assert isinstance(await watch.next(), ShowErrors)
    show.write_text(show.read_text("utf-8") + "# still broken\n", "utf-8")
    assert await watch.drain() == []


@pytest.mark.anyio
async def test_edit_before_the_watch_starts_is_caught_up(show: Path) -> None:
    baseline = load(show)
    _edit(show, "duration: 4", "duration: 12")
    stop = asyncio.Event()
    agen = watch_show(show, stop_event=stop, initial=baseline)
    item = await asyncio.wait_for(agen.__anext__(), 5.0)
    assert _result(item).show.scenes[0].duration == 12.0
    await agen.aclose()


@pytest.mark.anyio
async def test_without_initial_the_first_load_is_silent(show: Path) -> None:
    w = Watch(show, None)
    w.task = asyncio.create_task(w._run())
    try:
        assert await w.drain(0.3) == []
        _edit(show, "duration: 4", "duration: 13")
        assert _result(await w.next()).show.scenes[0].duration == 13.0
    finally:
        w.stop.set()
        await asyncio.wait_for(w.task, 2.0)


@pytest.mark.anyio
async def test_stop_event_ends_the_watch_promptly(show: Path) -> None:
    stop = asyncio.Event()
    items: list[Item] = []

    async def consume() -> None:
        async for item in watch_show(show, stop_event=stop):
            items.append(item)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert loop.time() - started < 0.5
    assert items == []


@pytest.mark.anyio
async def test_cancelling_the_consumer_leaves_no_watch_running(show: Path) -> None:
    async def consume() -> None:
        async for _item in watch_show(show):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    leftovers = [t for t in asyncio.all_tasks() if t.get_name().startswith("watch ")]
    assert leftovers == []


# ---------------------------------------------------------------------------------------------
# A real run against the simulator, edited while it plays
# ---------------------------------------------------------------------------------------------

LIVE = """\
title: Live edit
fps: 16
defaults: {pipeline: controller-viz}
scenes:
  - name: one
    prompts: a quiet harbour
    duration: 30
  - name: two
    prompts: a busy market
    duration: 30
  - name: three
    prompts: an empty street
    duration: 30
"""


class LiveRun:
    """`run_show` on a show in a temp folder, against a simulator in its own thread."""

    def __init__(self, folder: Path, sim: Simulator, text: str, **kw: Any) -> None:
        self.folder = folder
        self.sim = sim
        self.path = folder / "show.yaml"
        self.path.write_text(text, "utf-8")
        self.journal = folder / "run.jsonl"
        self.kw = kw
        self.stop = asyncio.Event()
        self.players: list[Player] = []
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> LiveRun:
        self.task = asyncio.create_task(
            run_show(
                self.path, scope_url=self.sim.url, journal_path=self.journal, stdin_tty=False,
                state_file=self.folder / "state.json", stop_event=self.stop,
                on_player=self.players.append, **self.kw,
            )
        )
        await until(lambda: self.players and self.player.status().scene is not None)
        await until(lambda: self.player.status().connection == "connected")
        await asyncio.sleep(0.2)  # the watch starts with the player
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        assert await asyncio.wait_for(self.task, 10) == 0

    @property
    def player(self) -> Player:
        return self.players[0]

    def edit(self, old: str, new: str) -> None:
        _edit(self.path, old, new)

    def received(self, text: str) -> list[dict[str, Any]]:
        """Data-channel messages that carry `text` (a prompt), in arrival order."""
        return [
            r["message"]
            for r in self.sim.records
            if r["kind"] == "data" and text in str(r["message"])
        ]

    def offers(self) -> list[dict[str, Any]]:
        return [
            r["json"]["initialParameters"]
            for r in self.sim.records
            if r["kind"] == "http" and r["path"] == "/api/v1/webrtc/offer" and r["method"] == "POST"
        ]

    def journal_lines(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in read_journal(self.journal) if r["kind"] == kind]


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)
    return value


@pytest.fixture
def sim() -> Iterator[Simulator]:
    thread = SimThread("127.0.0.1", 0, load_time=0.02)
    simulator = thread.start()
    yield simulator
    thread.stop()


def _prompts(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message["transition"]["target_prompts"]]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_valid_edit_reaches_scope_and_keeps_the_position(
    tmp_path: Path, sim: Simulator
) -> None:
    """A prompt edit of the playing scene goes out as one `transition` (docs/scope.md §3.3, §8-G);
    the scene and its offset stay; the journal holds the diff."""
    async with LiveRun(tmp_path, sim, LIVE) as run:
        before = run.player.status().position
        run.edit("a quiet harbour", "a harbour in a storm")
        sent = await until(lambda: run.received("a harbour in a storm"))
        assert _prompts(sent[0]) == ["a harbour in a storm"]
        status = run.player.status()
        assert status.scene == "one" and status.next == "two"
        assert status.position >= before
        assert 25 < status.countdown < 30
        reload = run.journal_lines("reload")[-1]
        assert reload["diff"]["changed"][0]["scene"] == "one"
        assert reload["diff"]["changed"][0]["fields"] == ["prompts"]
        assert [r["label"] for r in run.journal_lines("send")][-1] == "reload"


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_prompt_and_parameter_edit_is_one_message(
    tmp_path: Path, sim: Simulator
) -> None:
    """docs/scope.md §3.2 step 5: one combined message per change, not one per key."""
    async with LiveRun(tmp_path, sim, LIVE) as run:
        run.edit("a quiet harbour\n", "a foggy harbour\n    noise_scale: 0.4\n")
        sent = await until(lambda: run.received("a foggy harbour"))
        assert sent[0]["noise_scale"] == 0.4
        assert len(run.received("noise_scale")) == 1


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_invalid_edit_keeps_playing_and_is_reported(
    tmp_path: Path, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    async with LiveRun(tmp_path, sim, LIVE) as run:
        data_before = sum(1 for r in sim.records if r["kind"] == "data")
        run.edit("duration: 30", "duration: -5")
        errors = list(await until(lambda: run.player.status().reload_errors))
        assert errors == [f"{run.path}:7:15: scenes[0].duration: must be a time >= 0"]
        assert run.player.status().errors[-1] == errors[0]  # the terminal's status line
        assert run.player.status().scene == "one"
        assert run.journal_lines("reload_error")[-1]["errors"] == errors
        await asyncio.sleep(0.3)
        assert sum(1 for r in sim.records if r["kind"] == "data") == data_before
        assert "scenes[0].duration: must be a time >= 0" in capsys.readouterr().err
        # fixing the file applies normally and clears the report
        run.edit("duration: -5", "duration: 30")
        run.edit("a quiet harbour", "a harbour at night")
        await until(lambda: run.received("a harbour at night"))
        assert run.player.status().reload_errors == ()
        assert errors[0] not in run.player.status().errors


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_rapid_saves_end_with_the_last_version(tmp_path: Path, sim: Simulator) -> None:
    async with LiveRun(tmp_path, sim, LIVE) as run:
        text = run.path.read_text("utf-8")
        for i in range(15):
            run.path.write_text(text.replace("a quiet harbour", f"harbour take {i}"), "utf-8")
            await asyncio.sleep(0.003)
        await until(lambda: run.received("harbour take 14"))
        await asyncio.sleep(0.3)
        sends = [r for r in run.journal_lines("send") if r["label"] == "reload"]
        assert 1 <= len(sends) <= 4
        assert _prompts(sends[-1]["message"]) == ["harbour take 14"]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_atomic_rename_save(tmp_path: Path, sim: Simulator) -> None:
    async with LiveRun(tmp_path, sim, LIVE) as run:
        for take in ("first", "second"):
            tmp = run.path.with_name(f".show.yaml.{take}.tmp")
            tmp.write_text(LIVE.replace("a quiet harbour", f"{take} save"), "utf-8")
            os.replace(tmp, run.path)
            await until(lambda take=take: run.received(f"{take} save"))


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_edited_include(tmp_path: Path, sim: Simulator) -> None:
    (tmp_path / "prompts.yaml").write_text("harbour: a harbour at dawn\n", "utf-8")
    text = LIVE.replace("scenes:\n", "include: {lib: prompts.yaml}\nscenes:\n").replace(
        "a quiet harbour", '"{{ lib.harbour }}"'
    )
    async with LiveRun(tmp_path, sim, text) as run:
        assert run.received("a harbour at dawn") == [] and "a harbour at dawn" in str(run.offers())
        (tmp_path / "prompts.yaml").write_text("harbour: a harbour at dusk\n", "utf-8")
        await until(lambda: run.received("a harbour at dusk"))


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_pipeline_edit_reconnects(tmp_path: Path, sim: Simulator) -> None:
    """docs/scope.md §4.2: a new pipeline for the playing scene means close, load, new offer."""
    async with LiveRun(tmp_path, sim, LIVE) as run:
        run.edit("a quiet harbour\n", "a quiet harbour\n    pipeline: passthrough\n")
        await until(lambda: len(run.offers()) == 2)
        assert run.offers()[-1]["pipeline_ids"] == ["passthrough"]
        await until(lambda: run.player.status().connection == "connected")
        assert run.player.status().scene == "one"


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_shorter_scene_moves_the_next_one_up(tmp_path: Path, sim: Simulator) -> None:
    async with LiveRun(tmp_path, sim, LIVE) as run:
        run.edit("duration: 30", "duration: 1")  # shorter than where the scene already is
        await until(lambda: run.player.status().scene == "two")
        await until(lambda: run.received("a busy market"))


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_deleted_scene_moves_on_to_the_next(tmp_path: Path, sim: Simulator) -> None:
    async with LiveRun(tmp_path, sim, LIVE) as run:
        run.edit("  - name: one\n    prompts: a quiet harbour\n    duration: 30\n", "")
        await until(lambda: run.player.status().scene == "two")
        await until(lambda: run.received("a busy market"))
        assert run.journal_lines("reload")[-1]["diff"]["removed"] == ["one"]


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_boundary_waits_for_the_next_scene(tmp_path: Path, sim: Simulator) -> None:
    text = LIVE.replace("duration: 30", "duration: 1.5", 1)
    async with LiveRun(tmp_path, sim, text, reload_at="boundary") as run:
        run.edit("a quiet harbour", "a harbour later")
        run.edit("a busy market", "a market later")
        await until(lambda: run.journal_lines("reload"))
        await asyncio.sleep(0.2)
        assert run.received("a harbour later") == []  # the playing scene finishes as it was
        await until(lambda: run.player.status().scene == "two")
        sent = await until(lambda: run.received("a market later"))
        assert _prompts(sent[0]) == ["a market later"]
        assert run.received("a harbour later") == []  # never: the scene it was in is over
        assert run.player.status().countdown > 25


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_forced_reload(tmp_path: Path, sim: Simulator) -> None:
    async with LiveRun(tmp_path, sim, LIVE) as run:
        run.player.reload()  # nothing changed: a reload with an empty diff
        await until(lambda: run.journal_lines("reload"))
        assert run.journal_lines("reload")[-1]["diff"]["empty"] is True


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_edit_of_a_scene_waiting_for_go(tmp_path: Path, sim: Simulator) -> None:
    text = LIVE.replace("a busy market\n", "a busy market\n    cue: true\n")
    text = text.replace("duration: 30", "duration: 0.5", 1)
    async with LiveRun(tmp_path, sim, text) as run:
        await until(lambda: run.player.status().waiting_for == "go")
        run.edit("a busy market", "a market at night")
        await until(lambda: run.journal_lines("reload"))
        await asyncio.sleep(0.1)
        assert run.player.status().waiting_for == "go"  # the edit does not fire the cue
        run.player.go()
        sent = await until(lambda: run.received("a market at night"))
        assert _prompts(sent[0]) == ["a market at night"]
        assert run.player.status().scene == "two"


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_long_reload_shows_its_work_in_the_status(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload that takes long (here: every one) says what it does in the status, which the
    operator page shows, until it is done; the uploads say how far they are."""
    import showrunner.reload.apply

    monkeypatch.setattr(showrunner.reload.apply, "PROGRESS_AFTER_S", 0.0)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "ref.png")
    text = LIVE.replace("scenes:\n", "assets:\n  images: {ref: ref.png}\nscenes:\n", 1)
    async with LiveRun(tmp_path, sim, text) as run:
        seen: list[tuple[str | None, float | None]] = []

        def note(event: dict[str, Any]) -> None:
            status = run.player.status()
            seen.append((status.working, status.work_progress))

        run.player.subscribe(note)
        Image.new("RGB", (8, 8), "blue").save(tmp_path / "ref.png")
        run.edit("a quiet harbour", "a harbour at night")
        await until(lambda: run.received("a harbour at night"))
        await until(lambda: seen and seen[-1][0] is None)
        assert ("reloading the show", None) in seen
        assert ("uploading image 'ref'", 0.0) in seen
        assert run.player.status().working is None
        assert run.player.status().to_json()["working"] is None


@pytest.mark.anyio
async def test_live_edit_the_running_transport_cannot_play_is_refused(
    tmp_path: Path, sim: Simulator
) -> None:
    """Under `--transport headless` an edit that brings in a chain of pipelines loads (the show
    says webrtc) but cannot play: it is refused at its position and the show plays on; edits
    reach Scope as POSTs (docs/scope.md §2.8)."""
    async with LiveRun(tmp_path, sim, LIVE, transport="headless") as run:
        run.edit("  - name: two\n", "  - name: two\n    pipeline: [passthrough, controller-viz]\n")
        errors = list(await until(lambda: run.player.status().reload_errors))
        assert errors == [f"{run.path}:9:15: scenes[1].pipeline: the chain passthrough+controller-viz "
                          "cannot play over the headless transport: Scope's headless session runs one "
                          "pipeline; use transport webrtc for a chain (--transport headless)"]
        assert run.player.status().scene == "one"
        run.edit("    pipeline: [passthrough, controller-viz]\n", "")
        run.edit("a quiet harbour", "a harbour at night")

        def posted() -> list[Any]:
            return [r["json"] for r in sim.records if r["kind"] == "http"
                    and r["path"] == "/api/v1/session/parameters" and "harbour at night" in str(r["json"])]

        await until(posted)
        assert run.player.status().reload_errors == ()
        assert not run.offers()


@pytest.mark.webrtc
@pytest.mark.anyio
async def test_live_edit_of_what_is_read_at_start_says_it_waits_for_the_next_run(
    tmp_path: Path, sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tempo`, `midi`, `scope` and `alerts.after` are read when the run starts: an edit of them
    is applied with the rest of the file but says, at its key, that it waits for the next run
    (it used to be silently ignored)."""
    text = LIVE.replace("fps: 16\n", "fps: 16\ntempo: {source: fixed}\n")
    async with LiveRun(tmp_path, sim, text) as run:
        run.edit("tempo: {source: fixed}", "tempo: {source: tap}\nscope: {transport: headless}")
        run.edit("a quiet harbour", "a harbour at night")
        await until(lambda: run.received("a harbour at night"))
        err = capsys.readouterr().err
        path = run.path
    assert f"{path}:3:1: tempo: read when the run starts: the edit applies at the next run" in err
    assert f"{path}:4:1: scope: read when the run starts: the edit applies at the next run" in err
    assert "midi" not in err and "alerts" not in err
