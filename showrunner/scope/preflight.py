"""Checks of a Scope server against what a show needs, before the show starts.

`compare_pipelines` is pure (the pipeline ids a show needs against the body of
``GET /api/v1/pipelines/schemas``); `check_pipelines` asks the server. `showrunner run` stops
before the show when a pipeline is missing; a later ``showrunner check --scope URL`` can reuse
the same comparison (a plain ``check`` only warns about unknown ids: Scope has plugins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from showrunner.scope.client import ScopeClient

__all__ = ["PipelineCheck", "check_pipelines", "compare_pipelines"]


@dataclass(frozen=True)
class PipelineCheck:
    """The pipelines a show needs and the ones a server has."""

    needed: tuple[str, ...]  # in the order the show first uses them
    available: tuple[str, ...]  # sorted

    @property
    def missing(self) -> tuple[str, ...]:
        have = set(self.available)
        return tuple(p for p in self.needed if p not in have)

    @property
    def ok(self) -> bool:
        return not self.missing

    def message(self, where: str = "the Scope server") -> str:
        """One line for the user: what is missing and what the server has."""
        if self.ok:
            return f"{where} has every pipeline the show needs ({', '.join(self.needed)})"
        missing = ", ".join(self.missing)
        noun = "pipeline" if len(self.missing) == 1 else "pipelines"
        has = ", ".join(self.available) if self.available else "none"
        return f"{where} has no {noun} {missing} (the show needs it); it has: {has}"


def compare_pipelines(needed: Iterable[str], schemas: Mapping[str, Any]) -> PipelineCheck:
    """`needed` pipeline ids against `schemas` (``{pipeline_id: meta}``, as
    `ScopeClient.pipeline_schemas` returns it)."""
    return PipelineCheck(tuple(dict.fromkeys(needed)), tuple(sorted(schemas)))


async def check_pipelines(client: ScopeClient, needed: Iterable[str]) -> PipelineCheck:
    """Ask the server behind `client` for its pipelines and compare (ScopeError when it cannot
    be asked)."""
    return compare_pipelines(needed, await client.pipeline_schemas())
