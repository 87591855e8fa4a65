"""Hooks and alerts in the background: commands (argv, shell, timeout, output), HTTP calls
(retries, ${NAME} from the environment) to a local endpoint, each journaled once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from webhook import Webhook

from showrunner.live.events import EventLog
from showrunner.live.hooks import OUTPUT_LIMIT, HookRunner
from showrunner.scope.client import WebCalls
from showrunner.settings import Settings
from showrunner.show.model import Hook
from showrunner.testing import FakeClock, MemoryJournal

pytestmark = pytest.mark.anyio


@pytest.fixture
async def web() -> AsyncIterator[WebCalls]:
    async with WebCalls() as calls:
        yield calls


def _runner(journal: MemoryJournal, web: WebCalls | None = None, **env: str) -> HookRunner:
    settings = Settings.from_environ(env)
    return HookRunner(EventLog(FakeClock(), journal), expand=settings.expand, web=web, retry_pause=0.05)


def _hook(**data: Any) -> Hook:
    return Hook.model_validate(data)


def _hooks(journal: MemoryJournal) -> list[dict[str, Any]]:
    return [r for r in journal.records if r["kind"] == "hook"]


async def test_a_command_runs_without_a_shell_and_its_output_is_journaled(tmp_path: Path) -> None:
    journal = MemoryJournal()
    runner = _runner(journal, POD="pod-7")
    mark = tmp_path / "mark"
    task = runner.fire("before_open", _hook(command=["sh", "-c", 'echo "$0" > "$1"; echo started $0',
                                                     "${POD}", str(mark)]))
    assert task is not None
    await asyncio.wait_for(task, 10)
    assert mark.read_text() == "pod-7\n"
    [record] = _hooks(journal)
    assert record["name"] == "before_open" and record["ok"] is True and record["code"] == 0
    assert record["output"] == "started pod-7\n" and record["seconds"] >= 0
    assert record["action"].endswith("${POD} " + str(mark))  # journaled unexpanded


async def test_shell_commands_failures_and_missing_variables(tmp_path: Path) -> None:
    journal = MemoryJournal()
    runner = _runner(journal)
    tasks = [
        runner.fire("after_close", _hook(command="printf '%05000d' 7; exit 3", shell=True)),
        runner.fire("on_outage", _hook(command=["/nonexistent/stop-gpu"])),
        runner.fire("on_recover", _hook(command=["echo", "${UNSET_VARIABLE}"])),
    ]
    await asyncio.wait_for(asyncio.gather(*[t for t in tasks if t]), 10)
    records = {r["name"]: r for r in _hooks(journal)}
    assert records["after_close"]["ok"] is False and records["after_close"]["code"] == 3
    assert len(records["after_close"]["output"]) == OUTPUT_LIMIT
    assert records["on_outage"]["ok"] is False
    assert records["on_outage"]["error"] == "No such file or directory"
    assert records["on_recover"] == records["on_recover"] | {
        "ok": False, "error": "${UNSET_VARIABLE} is not set in the environment"}
    assert runner.fire("before_open", None) is None


async def test_a_hanging_command_is_killed_at_its_timeout_without_blocking() -> None:
    journal = MemoryJournal()
    runner = _runner(journal)
    started = time.perf_counter()
    task = runner.fire("before_open", _hook(command=["sleep", "30"], timeout=0.3))
    assert time.perf_counter() - started < 0.1  # fire returns at once
    assert task is not None and runner.running == 1
    await asyncio.wait_for(task, 5)
    [record] = _hooks(journal)
    assert record["ok"] is False and record["error"] == "killed after its timeout of 0.3 s"
    assert 0.3 <= record["seconds"] < 3
    assert runner.running == 0


async def test_http_hooks_expand_variables_and_retry(web: WebCalls) -> None:
    journal = MemoryJournal()
    runner = _runner(journal, web, TOKEN="s3cret", POD="p1")
    with Webhook(status=503) as down, Webhook() as up:
        hook = _hook(http={"url": up.url + "/pods/${POD}/start",
                           "headers": {"Authorization": "Bearer ${TOKEN}"},
                           "json": {"pod": "${POD}", "n": 2}})
        failing = _hook(http={"url": down.url + "/x", "method": "PUT", "retries": 2})
        await asyncio.wait_for(asyncio.gather(runner.fire("before_open", hook),  # type: ignore[arg-type]
                                              runner.fire("after_close", failing)), 10)
        assert [(r["method"], r["path"]) for r in up.requests] == [("POST", "/pods/p1/start")]
        assert up.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
        assert up.requests[0]["json"] == {"pod": "p1", "n": 2}
        assert len(down.requests) == 3 and down.requests[0]["method"] == "PUT"
    records = {r["name"]: r for r in _hooks(journal)}
    assert records["before_open"] | {"seconds": 0} == records["before_open"] | {
        "ok": True, "status": 200, "attempts": 1, "seconds": 0}
    assert "s3cret" not in str(journal.records)
    assert records["after_close"]["ok"] is False and records["after_close"]["error"] == "HTTP 503"
    assert records["after_close"]["attempts"] == 3


async def test_an_http_hook_that_hangs_gives_up_at_its_timeout(web: WebCalls) -> None:
    journal = MemoryJournal()
    runner = _runner(journal, web)
    with Webhook(delay=3) as slow:
        task = runner.fire("on_outage", _hook(http={"url": slow.url}, timeout=0.3))
        await asyncio.wait_for(task, 5)  # type: ignore[arg-type]
    [record] = _hooks(journal)
    assert record["ok"] is False and record["error"] == "no answer within 0.3 s"


async def test_alerts_post_text_and_content_and_failures_are_journaled(web: WebCalls) -> None:
    journal = MemoryJournal()
    runner = _runner(journal, web)
    with Webhook() as chat:
        await asyncio.wait_for(runner.alert(chat.url + "/hook", "Garden: no picture", name="outage"), 5)  # type: ignore[arg-type]
        assert chat.requests[0]["json"] == {"text": "Garden: no picture", "content": "Garden: no picture"}
    with Webhook(status=404) as wrong:
        await asyncio.wait_for(runner.alert(wrong.url, "x", name="recovered"), 5)  # type: ignore[arg-type]
    alerts = [r for r in journal.records if r["kind"] == "alert"]
    assert [(a["name"], a["ok"]) for a in alerts] == [("outage", True), ("recovered", False)]
    assert alerts[1]["error"] == "HTTP 404"
    assert runner.alert(None, "x", name="outage") is None


async def test_drain_cancels_what_still_runs() -> None:
    journal = MemoryJournal()
    runner = _runner(journal)
    runner.fire("before_open", _hook(command=["sleep", "30"], timeout=60))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(runner.drain(0.2), 5)
    [record] = _hooks(journal)
    assert record["ok"] is False and record["error"] == "cancelled: the run ended"
