"""What plays is what the report says: after every scene entry (natural, jump, section repeat,
show loop, BACK, GOTO, ``--from``/``--at``, reconnect, resume) Scope holds exactly the compiled
`state_at` for that moment.

The example shows play against the real simulator (WebRTC over loopback) on a FakeClock; the
generated shows (hypothesis) play into `SimSink`, the simulator's own `SimSession` merge
in-process without WebRTC, which is the same code the simulator runs per session.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from dry_live import Checked, Script, SimSink, play_and_compare

from showrunner.plan.compiler import compile_timeline
from showrunner.plan.start import StartPoint
from showrunner.plan.timeline import Timeline
from showrunner.show.load import load, load_text
from showrunner.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "shows").glob("*.yaml"))
LORAS = {"style": "/loras/style.safetensors", "grain": "/loras/grain.safetensors"}
ASSETS = {"ref": "/assets/ref.png", "other": "/assets/other.png"}


def compile_text(text: str) -> Timeline:
    return compile_timeline(load_text(text, path="t.yaml").show, source="t.yaml")


def play(timeline: Timeline, script: Script | None = None, limit: int = 40,
         **player_args: Any) -> Checked:
    sink = SimSink()

    async def run() -> Checked:
        return await play_and_compare(timeline, sink, lambda: sink.session, FakeClock(),
                                      loras=LORAS, assets=ASSETS, script=script, limit=limit,
                                      **player_args)

    return asyncio.run(run())


# -- the defects, one by one -------------------------------------------------------------------

GOTO_BACK = """
title: goto back
defaults: {pipeline: longlive}
scenes:
  - {name: a, prompts: one, duration: 1}
  - {name: b, prompts: two, duration: 1, manage_cache: false}
  - {name: c, prompts: three, duration: 1, goto: {scene: a, times: 1}}
  - {name: d, prompts: four, duration: 1}
"""


def test_a_goto_back_puts_manage_cache_back() -> None:
    """`b` turned manage_cache off; the jump back to `a` must turn it on again (Scope's
    default), not leave it off while the plan says on."""
    checked = play(compile_text(GOTO_BACK))
    assert [e[0] for e in checked.entries] == ["a", "b", "c", "a", "b", "c", "d"]
    assert checked.problems == []


SECTION_LORA = """
title: section lora
defaults:
  pipeline: longlive
  load: {lora_merge_mode: runtime_peft, loras: [{lora: style, scale: 0}]}
assets: {loras: {style: style.safetensors}, images: {ref: {server_path: /assets/ref.png}}}
scenes:
  - {name: intro, prompts: wave, vace: {refs: [ref], context_scale: 0.8}, duration: 1}
  - {name: verse, prompts: verse, duration: 1}
  - name: wash
    manage_cache: false
    prompts: wash
    keyframes: {lora.style: [{at: 0, value: 0}, {at: 1, value: 1.2}]}
    duration: 1
  - {name: outro, prompts: end, duration: 1}
sections: [{name: groove, start: verse, end: wash, repeat: 2}]
"""


def test_a_section_repeat_puts_the_lora_scale_and_cache_back() -> None:
    """performance.yaml's groove: jumping back to `verse` must send LoRA scale 0 and
    manage_cache true, which `wash` changed."""
    timeline = compile_text(SECTION_LORA)
    verse = timeline.scene("verse").state_in
    assert dict(verse.lora_scales) == {"style": 0.0}
    assert verse.params["manage_cache"] is True
    checked = play(timeline)
    assert [e[0] for e in checked.entries] == ["intro", "verse", "wash", "verse", "wash", "outro"]
    assert checked.problems == []


def test_back_goto_from_at_and_reconnect_enter_the_full_state() -> None:
    timeline = compile_text(SECTION_LORA)
    script = Script({2: ("goto", "wash"), 4: ("back",), 6: ("reconnect",), 7: ("goto", "intro")})
    assert play(timeline, script).problems == []
    for start in (StartPoint(scene="wash", offset=0.5), StartPoint(at=2.5)):
        checked = play(timeline, start=start)
        assert checked.problems == [] and checked.entries[0][1] == "seek"
