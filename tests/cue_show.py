"""A show that waits on GO cues, shared by the control-surface tests that play it for real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from showrunner.sim import Simulator

SHOW = """\
title: Cue test
end: hold
scenes:
  - name: preshow
    prompts: an empty harbour at night
    transition: cut
  - name: first
    cue: true
    prompts: a neon wave rising out of the harbour
    transition: cut
  - name: second
    cue: true
    prompts: a slow aurora over a frozen sea
    transition: cut
"""
FIRST = "a neon wave rising out of the harbour"
SECOND = "a slow aurora over a frozen sea"


def transitions_to(sim: Simulator, text: str) -> int:
    """How many data-channel messages asked the simulator to move to the prompt `text`."""
    count = 0
    for record in sim.records:
        message = record.get("message") if record.get("kind") == "data" else None
        if isinstance(message, dict) and isinstance(message.get("transition"), dict):
            targets = message["transition"].get("target_prompts") or []
            count += any(p.get("text") == text for p in targets)
    return count


async def until_status(
    status: Callable[[], Awaitable[dict[str, Any]]], **wanted: Any
) -> dict[str, Any]:
    """Poll a status source until every wanted field has the wanted value (10 s at most)."""
    with anyio.fail_after(10):
        while True:
            current = await status()
            if all(current[k] == v for k, v in wanted.items()):
                return current
            await asyncio.sleep(0.02)
