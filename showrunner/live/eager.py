"""Run a coroutine's first step synchronously, in the caller's task, and let a task carry on.

Separate from the player because it is plain asyncio machinery with its own subtleties
(Python 3.12's eager tasks would replace it), not show logic.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["start_eagerly"]

_T = TypeVar("_T")


def start_eagerly(coro: Coroutine[Any, Any, _T]) -> asyncio.Future[_T]:
    """Run `coro` up to its first real wait right now; a task carries on from there.

    A send that goes straight out (the usual case) then costs no trip through the event
    loop between the planned moment and the write. (Python 3.12 has eager tasks for this.)
    The coroutine's first step runs inside the caller's task, so a sink must not rely on
    ``asyncio.current_task()`` before its first ``await``.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()
    try:
        first = coro.send(None)
    except StopIteration as stop:
        done.set_result(stop.value)
        return done
    except Exception as exc:
        done.set_exception(exc)
        return done
    return asyncio.ensure_future(_carry_on(coro, first))


@types.coroutine
def _carry_on(coro: Coroutine[Any, Any, _T], waiting: Any) -> Generator[Any, Any, _T]:
    # Hands the future `coro` waits on to the task, then relays results and errors back.
    while True:
        try:
            value = yield waiting
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                waiting = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                waiting = coro.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
