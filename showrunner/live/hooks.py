"""Lifecycle hooks and alert messages: commands and HTTP calls run in the background.

A hook (`show.model.Hook`) is a command (an argv list, or one string for ``/bin/sh`` with
``shell: true``) or an HTTP call. `HookRunner.fire` starts it in a task of its own and returns
at once: a hook that fails or hangs never stops or delays the picture. Its `timeout` kills the
command (or gives up the request); every run is one journal record ``{"kind": "hook", "name":
..., "ok": ...}`` with the exit code or HTTP status, the seconds it took and the command's output
(its last `OUTPUT_LIMIT` characters). ``${NAME}`` in arguments, URL, headers and JSON strings
is expanded from the environment (`Settings.expand`) when the hook runs; the journal shows them
unexpanded.

Alerts (`HookRunner.alert`) are POSTed as ``{"text": ..., "content": ...}``, which Slack and
Mattermost (``text``) and Discord (``content``) accept, with the same background and timeout
rules; each is journaled as ``{"kind": "alert", "ok": ...}``. HTTP goes through `WebClient`
(``scope.client.WebCalls`` in a run): this module never opens a socket itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from showrunner.errors import ShowrunnerError
from showrunner.live.events import EventLog
from showrunner.show.model import Hook, HttpCall

__all__ = ["ALERT_TIMEOUT", "OUTPUT_LIMIT", "HookRunner", "WebClient"]

log = logging.getLogger("showrunner.live.hooks")

OUTPUT_LIMIT = 2000  # characters of a command's output kept in the journal
ALERT_TIMEOUT = 10.0
_RETRY_PAUSE = 1.0  # seconds between two tries of an HTTP hook


class WebClient(Protocol):
    """What the hooks need of an HTTP client (``scope.client.WebCalls`` satisfies it)."""

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], json_body: Any, timeout: float
    ) -> int:
        """The HTTP status; raises ShowrunnerError when there is no answer."""
        ...


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    detail: dict[str, Any]
    text: str  # what happened, one line


def _action(hook: Hook) -> str:
    if hook.http is not None:
        return f"{hook.http.method} {hook.http.url}"
    command = hook.command
    return command if isinstance(command, str) else " ".join(command or ())


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return text[-OUTPUT_LIMIT:]


class HookRunner:
    """Runs hooks and posts alerts in the background, journaling each through `log`."""

    def __init__(
        self,
        log: EventLog,
        *,
        expand: Callable[[str], str],
        web: WebClient | None = None,
        retry_pause: float = _RETRY_PAUSE,
    ) -> None:
        self.log = log
        self.expand = expand
        self.web = web
        self.retry_pause = retry_pause
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"HookRunner(running={len(self._tasks)})"

    @property
    def running(self) -> int:
        """Hooks and alerts still running."""
        return len(self._tasks)

    def fire(self, name: str, hook: Hook | None) -> asyncio.Task[None] | None:
        """Start hook `name` in the background (None when the show has no such hook)."""
        if hook is None:
            return None
        return self._spawn(self._run(name, hook), f"showrunner-hook-{name}")

    def alert(self, url: str | None, text: str, *, name: str) -> asyncio.Task[None] | None:
        """POST `text` to the webhook `url` in the background (None without a webhook)."""
        if url is None:
            return None
        return self._spawn(self._alert(url, text, name), f"showrunner-alert-{name}")

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for what is running, then cancel the rest."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, name: str, hook: Hook) -> None:
        started = time.perf_counter()
        started_at = self.log.clock.time()
        try:
            if hook.http is not None:
                outcome = await self._http(hook.http, hook.timeout)
            else:
                outcome = await self._command(hook)
        except asyncio.CancelledError:
            outcome = _Outcome(False, {"error": "cancelled: the run ended"}, "cancelled: the run ended")
            self._journal(name, hook, outcome, started, started_at)
            raise
        except Exception as exc:  # a bug here must not reach the show
            log.exception("hook %s failed", name)
            outcome = _Outcome(False, {"error": str(exc)}, str(exc))
        self._journal(name, hook, outcome, started, started_at)

    def _journal(
        self, name: str, hook: Hook, outcome: _Outcome, started: float, started_at: float
    ) -> None:
        seconds = round(time.perf_counter() - started, 3)
        verdict = "ok" if outcome.ok else "failed"
        self.log.record(
            "hook", label=name, name=name, ok=outcome.ok, action=_action(hook),
            started_at=started_at, seconds=seconds,
            **outcome.detail, text=f"hook {name} {verdict}: {outcome.text} ({seconds:g} s)",
            level="info" if outcome.ok else "warning",
        )

    async def _command(self, hook: Hook) -> _Outcome:
        try:
            if isinstance(hook.command, str):
                proc = await asyncio.create_subprocess_shell(
                    self.expand(hook.command), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            else:
                argv = [self.expand(arg) for arg in hook.command or ()]
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                )
        except (OSError, ShowrunnerError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return _Outcome(False, {"error": reason}, f"cannot start: {reason}")
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), hook.timeout)
        except TimeoutError:
            _kill(proc)
            with contextlib.suppress(Exception):
                output, _ = await asyncio.wait_for(proc.communicate(), 2.0)
            error = f"killed after its timeout of {hook.timeout:g} s"
            return _Outcome(False, {"error": error, "code": proc.returncode}, error)
        except asyncio.CancelledError:
            _kill(proc)
            with contextlib.suppress(Exception):  # reap it: no zombie, no open pipe
                await asyncio.wait_for(proc.communicate(), 2.0)
            raise
        code = proc.returncode
        detail = {"code": code, "output": _tail(output)}
        return _Outcome(code == 0, detail, f"exit code {code}")

    async def _http(self, call: HttpCall, timeout: float) -> _Outcome:
        if self.web is None:
            return _Outcome(False, {"error": "no HTTP client in this run"}, "no HTTP client in this run")
        try:
            url = self.expand(call.url)
            headers = {k: self.expand(v) for k, v in call.headers.items()}
            body = self._expand_json(call.json_body)
        except ShowrunnerError as exc:
            return _Outcome(False, {"error": str(exc)}, str(exc))
        problem = ""
        for attempt in range(1, call.retries + 2):
            if attempt > 1:
                await asyncio.sleep(self.retry_pause)
            try:
                status = await self.web.request(call.method, url, headers=headers, json_body=body,
                                                timeout=timeout)
            except ShowrunnerError as exc:
                problem = str(exc)
                continue
            if 200 <= status < 300:
                return _Outcome(True, {"status": status, "attempts": attempt}, f"HTTP {status}")
            problem = f"HTTP {status}"
        return _Outcome(False, {"error": problem, "attempts": call.retries + 1}, problem)

    def _expand_json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.expand(value)
        if isinstance(value, list):
            return [self._expand_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self._expand_json(v) for k, v in value.items()}
        return value

    async def _alert(self, url: str, text: str, name: str) -> None:
        ok = False
        detail: dict[str, Any] = {"error": "no HTTP client in this run"}
        try:
            if self.web is not None:
                status = await self.web.request(
                    "POST", self.expand(url), headers={}, json_body={"text": text, "content": text},
                    timeout=ALERT_TIMEOUT,
                )
                ok = 200 <= status < 300
                detail = {"status": status} if ok else {"status": status, "error": f"HTTP {status}"}
        except ShowrunnerError as exc:
            detail = {"error": str(exc)}
        self.log.record("alert", label=name, name=name, ok=ok, message={"text": text}, **detail,
                        text=None if ok else f"alert not delivered: {detail.get('error')}",
                        level="warning")


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the command and what it started (it leads a process group of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
