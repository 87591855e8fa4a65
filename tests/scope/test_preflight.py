"""scope/preflight.py: a show's needs against the pipeline schemas a server serves (here the
simulator's, which are Scope 0.2.4's own; docs/scope.md §2.4, §11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from showrunner.scope.client import ScopeClient
from showrunner.scope.preflight import Need, NeedKind, Problem, check, compare
from showrunner.sim import serve_sim

pytestmark = pytest.mark.anyio


@pytest.fixture
async def schemas(anyio_backend: str) -> AsyncIterator[dict[str, Any]]:
    async with serve_sim(port=0) as sim, ScopeClient(sim.url) as client:
        yield await client.pipeline_schemas()


async def test_every_kind_of_need_against_the_served_schemas(schemas: dict[str, Any]) -> None:
    needs = [
        Need(NeedKind.PIPELINE, "longlive", "defaults.pipeline"),
        Need(NeedKind.PARAM, "longlive", "scenes[0].noise_scale", "noise_scale", 0.7),
        Need(NeedKind.PARAM, "longlive", "scenes[1].vace_context_scale", "vace_context_scale", 2.5),
        Need(NeedKind.SIZE, "longlive", "defaults.load.height", "height", 8),
        Need(NeedKind.SIZE, "longlive", "defaults.load.width", "width", 576),
        Need(NeedKind.MODE, "controller-viz", "scenes[2].input_mode", "input_mode", "video"),
        Need(NeedKind.VACE, "controller-viz", "scenes[2].vace"),
        Need(NeedKind.LORA, "controller-viz", "scenes[2].load.loras"),
        Need(NeedKind.VACE, "longlive", "scenes[0].vace"),
        Need(NeedKind.LORA, "longlive", "defaults.load.loras"),
    ]
    report = compare(needs, schemas)
    assert report.problems == (
        Problem("error", "scenes[1].vace_context_scale",
                "vace_context_scale 2.5 is above the maximum 2 for pipeline longlive on the server"),
        Problem("error", "defaults.load.height",
                "height 8 is below the minimum 16 of pipeline longlive on the server"),
        Problem("error", "scenes[2].input_mode",
                "pipeline controller-viz on the server has no video mode (it supports: text)"),
        Problem("warning", "scenes[2].vace",
                "pipeline controller-viz on the server does not support VACE: the reference images "
                "are ignored"),
        Problem("error", "scenes[2].load.loras",
                "pipeline controller-viz on the server does not support LoRA"),
    )
    assert not report.ok
    assert report.verified[0] == "pipelines present: longlive (the server has 8)"


def test_a_missing_pipeline_is_named_once_with_what_the_server_has() -> None:
    schemas = {"passthrough": {}, "controller-viz": {}}
    needs = [
        Need(NeedKind.PIPELINE, "scribble", "scenes[3].pipeline"),
        Need(NeedKind.PARAM, "scribble", "scenes[3].noise_scale", "noise_scale", 0.5),
        Need(NeedKind.PIPELINE, "scribble", "scenes[5].pipeline"),
    ]
    report = compare(needs, schemas, "the Scope server at http://127.0.0.1:8000")
    assert report.problems == (Problem(
        "error", "scenes[3].pipeline", "the Scope server at http://127.0.0.1:8000 has no pipeline "
        "scribble (the show needs it); it has: controller-viz, passthrough"),)
    assert report.available == ("controller-viz", "passthrough")


async def test_check_asks_the_server(anyio_backend: str) -> None:
    async with serve_sim(port=0, pipelines=["passthrough"]) as sim, ScopeClient(sim.url) as client:
        report = await check(client, [Need(NeedKind.PIPELINE, "passthrough", "defaults.pipeline"),
                                      Need(NeedKind.MODE, "passthrough", "defaults.input_mode",
                                           "input_mode", "video")])
    assert report.ok and report.available == ("passthrough",)
    assert report.verified == ("pipelines present: passthrough (the server has 1)",
                               "input modes checked against the server's schemas: 1")
