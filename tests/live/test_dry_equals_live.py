"""What plays is what the report says: after every scene entry (natural, jump, section repeat,
show loop, BACK, GOTO, ``--from``/``--at``, reconnect, resume) Scope holds exactly the compiled
`state_at` for that moment.

The example shows play against the real simulator (WebRTC over loopback) on a FakeClock; the
generated shows (hypothesis) play into `SimSink`, the simulator's own `SimSession` merge
in-process without WebRTC, which is the same code the simulator runs per session.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dry_live import Checked, Script, SimSink, play_and_compare
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from showrunner.live.hours import OpeningHours
from showrunner.plan.compiler import compile_timeline
from showrunner.plan.saved import ResumeState
from showrunner.plan.start import StartPoint
from showrunner.plan.timeline import Timeline
from showrunner.scope.client import ScopeClient, ScopeSession
from showrunner.scope.headless import HeadlessSession
from showrunner.show.load import load, load_text
from showrunner.sim import SimThread, Simulator
from showrunner.sim.session import SimSession
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


def test_a_resume_enters_the_full_state() -> None:
    """A restarted run resumes mid-show (the wall clock says: 2.4 s into the show, in `wash`
    after a LoRA fade began) with the full state of that moment."""
    timeline = compile_text(SECTION_LORA)
    now = FakeClock().time()
    saved = ResumeState(show="t.yaml", show_hash="", origin=now - 2.4, scene="wash", index=2,
                        iteration=0, path=(("section:groove", 1),), part=0,
                        part_origin=now - 2.4, part_start=2.0)
    checked = play(timeline, start=StartPoint(resume=saved))
    assert checked.entries[0][:2] == ("wash", "resume") and checked.entries[0][2] > 0.3
    assert checked.problems == []


# -- generated shows ---------------------------------------------------------------------------

PROMPTS = ["fog", "rain", "neon", "sea", "glass"]


@st.composite
def scenes(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        scene: dict[str, Any] = {"name": f"s{i}", "duration": draw(st.sampled_from([1, 1.5, 2, 3]))}
        texts = draw(st.lists(st.sampled_from(PROMPTS), min_size=1, max_size=2, unique=True))
        scene["prompts"] = [{"text": t, "weight": draw(st.sampled_from([0.3, 1.0]))} for t in texts]
        if i and draw(st.booleans()):
            scene["cue"] = True
        if draw(st.integers(0, 3)) == 0:
            scene["manage_cache"] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            scene["loras"] = {draw(st.sampled_from(["style", "grain"])): draw(st.sampled_from([0, 0.5, 1.2]))}
        if draw(st.integers(0, 3)) == 0:
            scene["noise_scale"] = draw(st.sampled_from([0.2, 0.7, 0.9]))
        if draw(st.integers(0, 4)) == 0:
            scene["denoising_steps"] = draw(st.sampled_from([[1000, 500], [1000, 750, 500, 250]]))
        if draw(st.integers(0, 3)) == 0:
            vace: dict[str, Any] = {"context_scale": draw(st.sampled_from([0.5, 1.0, 1.5]))}
            if draw(st.booleans()):
                vace["refs"] = [draw(st.sampled_from(["ref", "other"]))]
            scene["vace"] = vace
        if draw(st.integers(0, 5)) == 0:
            scene["pipeline"] = draw(st.sampled_from(["longlive", "krea-realtime-video"]))
            if scene["pipeline"] == "krea-realtime-video" and draw(st.booleans()):
                scene["kv_cache_attention_bias"] = draw(st.sampled_from([0.2, 0.6]))
        if draw(st.integers(0, 6)) == 0:
            scene["reset_cache"] = True
        if draw(st.integers(0, 3)) == 0:
            target = draw(st.sampled_from(["lora.style", "lora.grain", "noise_scale",
                                           "vace_context_scale"]))
            top = 1.2 if target.startswith("lora") else 0.9
            scene["keyframes"] = {target: [
                {"at": 0, "value": draw(st.sampled_from([0, 0.3]))},
                {"at": scene["duration"], "value": top,
                 "ease": draw(st.sampled_from(["linear", "step", "ease-in-out"]))},
            ]}
        if draw(st.integers(0, 4)) == 0:
            scene["travel"] = [{"at": scene["duration"] / 2, "prompts": draw(st.sampled_from(PROMPTS))}]
        if draw(st.integers(0, 3)) == 0:
            scene["transition"] = draw(st.sampled_from(["cut", 1, {"steps": 2, "method": "linear"}]))
        out.append(scene)
    return out


@st.composite
def generated(draw: st.DrawFn) -> tuple[str, Script, StartPoint | None]:
    n = draw(st.integers(2, 6))
    body = draw(scenes(n))
    show: dict[str, Any] = {
        "title": "generated",
        "defaults": {
            "pipeline": "longlive",
            "load": {"lora_merge_mode": "runtime_peft",
                     "loras": [{"lora": "style", "scale": 0}, {"lora": "grain", "scale": 0.5}]},
        },
        "assets": {"loras": {"style": "style.safetensors", "grain": "grain.safetensors"},
                   "images": {"ref": {"server_path": "/assets/ref.png"},
                              "other": {"server_path": "/assets/other.png"}}},
        "scenes": body,
    }
    if draw(st.booleans()):
        show["defaults"]["manage_cache"] = draw(st.booleans())
    if n > 2 and draw(st.booleans()):
        first = draw(st.integers(0, n - 2))
        last = draw(st.integers(first, n - 1))
        show["sections"] = [{"name": "sec", "start": f"s{first}", "end": f"s{last}",
                             "repeat": draw(st.integers(2, 3))}]
    if draw(st.booleans()):
        at = draw(st.integers(1, n - 1))
        body[at]["goto"] = {"scene": f"s{draw(st.integers(0, at))}", "times": draw(st.integers(1, 2))}
    show["loop"] = draw(st.sampled_from([False, 2]))
    commands: dict[int, tuple[str, ...]] = {}
    for _ in range(draw(st.integers(0, 3))):
        command = draw(st.sampled_from([("back",), ("reconnect",), ("goto",)]))
        if command == ("goto",):
            command = ("goto", f"s{draw(st.integers(0, n - 1))}")
        commands[draw(st.integers(1, 8))] = command
    start: StartPoint | None = None
    match draw(st.integers(0, 5)):
        case 0:
            scene = f"s{draw(st.integers(0, n - 1))}"
            start = StartPoint(scene=scene, offset=draw(st.sampled_from([0, 0.5])))
        case 1:
            start = StartPoint(at=draw(st.sampled_from([0.4, 1.7, 3.2])))
    return json.dumps(show), Script(commands), start


@settings(max_examples=220, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(generated())
def test_generated_shows_play_what_the_plan_says(case: tuple[str, Script, StartPoint | None]) -> None:
    text, script, start = case
    timeline = compile_text(text)
    checked = play(timeline, script, limit=25, start=start or StartPoint())
    assert checked.problems == [], "\n".join([text, *checked.problems])


# -- the examples, on the real simulator -------------------------------------------------------


@pytest.fixture(scope="module")
def sim_thread() -> Iterator[Simulator]:
    # 240 fps: a chunk (one applied update) every 50 ms or less, so messages land quickly
    thread = SimThread("127.0.0.1", 0, load_time=0.02, fps=240.0)
    simulator = thread.start()
    yield simulator
    thread.stop()


EXAMPLE_SCRIPTS = {
    # after the 4th entry (the first wash) GOTO intro, then BACK, then a reconnect
    "performance.yaml": Script({4: ("goto", "intro"), 6: ("back",), 8: ("reconnect",)}),
    "gallery.yaml": Script({2: ("goto", "shore"), 4: ("reconnect",)}),
    "minimal.yaml": Script({2: ("back",)}),
    "club.yaml": Script({3: ("goto", "groove"), 5: ("reconnect",)}),
    "rehearsal.yaml": Script({3: ("goto", "warmup"), 5: ("reconnect",)}),
}


async def play_example(path: Path, url: str, transport: str,
                       current: Callable[[ScopeSession | HeadlessSession], SimSession | None]) -> Checked:
    result = load(path)
    timeline = compile_timeline(result.show, source=str(path))
    async with ScopeClient(url) as client:
        # No metrics watch, as play_and_compare turns the player's watchdog off: on a FakeClock
        # its wake-ups would add steps to every advance and change what the player sees.
        session: ScopeSession | HeadlessSession = (
            HeadlessSession(client, watch_period=1e6) if transport == "headless" else ScopeSession(client)
        )
        async with session:
            assets = {name: image.server_path or await client.upload_asset(path.parent / str(image.file))
                      for name, image in result.show.assets.images.items()}
            loras = {name: await client.resolve_lora(str(lora.path or lora.filename))
                     for name, lora in result.show.assets.loras.items()}
            # The gallery starts ten minutes before it closes (18:00 in Berlin): it closes into
            # its closed scene and opens again the next morning.
            clock = FakeClock(datetime(2026, 1, 1, 16, 50, tzinfo=UTC))
            hours = OpeningHours(result.show.hours) if result.show.hours is not None else None
            checked = await play_and_compare(
                timeline, session, lambda: current(session), clock, loras=loras, assets=assets,
                script=EXAMPLE_SCRIPTS[path.name], limit=16, wait=3.0, hours=hours,
            )
    assert len(checked.entries) >= 4
    if hours is not None:
        assert [e[1] for e in checked.entries if e[1] in ("closed", "open")] == ["closed", "open"]
    assert checked.problems == [], "\n".join(checked.problems)
    return checked


@pytest.mark.webrtc
@pytest.mark.anyio
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
async def test_examples_play_what_the_report_says_on_both_transports(
    path: Path, sim_thread: Simulator
) -> None:
    """Over WebRTC and over the headless session (docs/scope.md §2.8) Scope holds what the plan
    says after every entry, and both journals carry the same messages in the same order (the
    keyframe samples: see below)."""

    def over_webrtc(session: ScopeSession | HeadlessSession) -> SimSession | None:
        assert isinstance(session, ScopeSession)
        return sim_thread.sessions.get(session.session_id or "")

    def headless(session: ScopeSession | HeadlessSession) -> SimSession | None:
        run = sim_thread.headless
        return run.session if run is not None and run.running else None

    webrtc = await play_example(path, sim_thread.url, "webrtc", over_webrtc)
    # The WebRTC run's peer may still be closing (and leave `peers`) while the headless run
    # plays: what must hold is that the headless run opened no peer of its own.
    before = set(sim_thread.peers)
    mark = len(sim_thread.records)
    played = await play_example(path, sim_thread.url, "headless", headless)
    assert not [r for r in sim_thread.records[mark:] if "webrtc" in r.get("path", "")]
    assert set(sim_thread.peers) <= before
    # Which keyframe samples go out while the FakeClock steps to the next scene depends on how
    # the real I/O interleaves with its steps (two WebRTC runs differ there too): those are
    # compared with the plan, everything else between the two journals, except `lost` lines:
    # whether a write was acknowledged when its connection closed for the scripted reconnect
    # is the transport's timing (SCTP acknowledgements, HTTP answers).
    timeline = compile_timeline(load(path).show, source=str(path))
    for checked in (webrtc, played):
        for _kind, label, scene, offset, _ in checked.messages():
            if label == "keyframe":
                assert offset in {a.offset for a in timeline.scene(scene).actions if a.label == label}
    assert [m for m in played.messages() if m[1] != "keyframe" and m[0] != "lost"] == [
        m for m in webrtc.messages() if m[1] != "keyframe" and m[0] != "lost"
    ]
    assert len(played.messages()) > 4
