"""The simulated pipeline manager: background loads, the reuse rule and the status traps.

docs/scope.md §2.2-§2.3 and §10: the POST returns at once and loads run in the background; the
first poll after it already reads `loading` (or `error` for an unknown id); `error` is
reported once, then `not_loaded`; `pipeline_id` is the first loaded instance key; the `error`
field is always null. The `stale_status` knob re-creates the race window of §2.3 on purpose.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from showrunner.sim import catalog

log = logging.getLogger(__name__)

WAN_STAGES = (
    "Initializing pipeline...",
    "Loading diffusion model...",
    "Loading text encoder...",
    "Loading VAE...",
)
VAE_TYPES = ("wan", "lightvae", "tae", "lighttae")
QUANTIZATIONS = (None, "fp8_e4m3fn")


class LoadFailed(Exception):
    """Why a simulated load ends in `error` (only logged, like Scope does)."""


@dataclass
class Faults:
    """Failure and timing knobs; change them at any time, they are read when used."""

    # Seconds one pipeline takes to load; None = realistic (2 s Wan, 0.02 s weight-free).
    load_time: float | None = 0.05
    # Pipeline ids (or instance keys) whose load ends in `error`; True = every load.
    fail_loads: set[str] | bool = False
    # Extra seconds added to every generated chunk ("slow chunks").
    chunk_delay: float = 0.0
    # How long after a load POST the status keeps answering the previous state. 0 = like the
    # real server, whose first poll already reads `loading` or `error` (docs/scope.md §10); set it
    # to re-create the race window of docs/scope.md §2.3.
    stale_status: float = 0.0
    # Seconds a model download takes.
    download_time: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.fail_loads, bool):
            self.fail_loads = set(self.fail_loads)


@dataclass
class Instance:
    key: str
    pipeline_id: str
    load_params: dict[str, Any]
    status: str = "loading"  # loading | loaded | error | not_loaded (an error already read)
    stage: str | None = None


def lora_adapters(load_params: dict[str, Any]) -> list[dict[str, Any]]:
    """The adapters a load asks for: path, scale and the merge mode that applies to each."""
    default_mode = load_params.get("lora_merge_mode") or "permanent_merge"
    adapters = []
    loras = load_params.get("loras")
    for item in loras if isinstance(loras, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        scale = item.get("scale", 1.0)
        adapters.append(
            {
                "path": item["path"],
                "scale": float(scale) if isinstance(scale, int | float) else 1.0,
                "merge_mode": item.get("merge_mode") or default_mode,
                "adapter_name": Path(item["path"]).stem,
            }
        )
    return adapters


class LoadManager:
    """Tracks loaded pipeline instances the way Scope's PipelineManager reports them.

    Each instance has a status: `loading`, `loaded`, `error`, or `not_loaded` (an `error`
    that has been read). Like pipeline_manager.py, the combined status is `loading` if any
    loads, else `error` if any failed, else `loaded` if every tracked instance is loaded,
    else `not_loaded`, and only loaded instances count for `pipeline_id` (docs/scope.md §2.3).
    """

    def __init__(
        self,
        faults: Faults,
        lora_paths: Callable[[], Iterable[str]],
        clock: Callable[[], float] = time.monotonic,
        offered: Callable[[str], bool] = lambda pipeline_id: True,
    ) -> None:
        self.faults = faults
        self._offered = offered  # whether the server has the pipeline (Simulator(pipelines=...))
        self._lora_paths = lora_paths
        self._clock = clock
        self.instances: dict[str, Instance] = {}
        self._request_params: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stale_until = 0.0
        self._stale: dict[str, Any] | None = None

    # -- requests ------------------------------------------------------------------------

    def request(self, entries: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        """Start loading `(key, pipeline_id, load_params)` entries; returns at once.

        The state changes before this returns, so the first poll after the POST reads
        `loading` (or `error` for an unknown id), never the previous status (docs/scope.md §10).
        The `stale_status` knob re-creates the race window of docs/scope.md §2.3 on purpose.
        """
        if self.faults.stale_status > 0:
            self._stale = self._snapshot(consume=False)
            if self._stale["status"] == "error":
                # An unread failure of the previous request is cleared by this one; the race
                # window shows a transient `not_loaded` rather than a stale `error`.
                self._stale["status"] = "not_loaded"
            self._stale_until = self._clock() + self.faults.stale_status
        else:
            self._stale = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._request_params = copy.deepcopy(entries[0][2]) if entries else None

        kept: dict[str, Instance] = {}
        new: list[Instance] = []
        old = {k: i for k, i in self.instances.items() if i.status == "loaded"}
        for key, pipeline_id, given in entries:
            params = given if given is not None else {}
            same = old.get(key)
            if same and same.pipeline_id == pipeline_id and same.load_params == params:
                kept[key] = old.pop(key)
                continue
            twin = next(
                (
                    k
                    for k, i in old.items()
                    if i.pipeline_id == pipeline_id and i.load_params == params and k not in kept
                ),
                None,
            )
            if twin is not None:
                moved = old.pop(twin)
                moved.key = key
                kept[key] = moved
                continue
            new.append(Instance(key, pipeline_id, copy.deepcopy(params)))
        # Kept instances keep their place; everything else (loaded instances not asked for,
        # errors read or unread) is dropped before the new loads start.
        survivors = {id(i) for i in kept.values()}
        ordered = [i for i in self.instances.values() if id(i) in survivors]
        self.instances = {i.key: i for i in [*ordered, *new]}
        # An unknown id fails at once, so a poll right after the POST already reads `error`.
        while new and self._info(new[0].pipeline_id) is None:
            unknown = new.pop(0)
            self._fail(unknown, LoadFailed(f"unknown pipeline id {unknown.pipeline_id!r}"))
        if new:
            self._task = asyncio.get_running_loop().create_task(self._load_all(new))

    def reset(self) -> None:
        """Forget everything (a server restart)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self.instances = {}
        self._request_params = None
        self._stale = None
        self._stale_until = 0.0

    def _fail(self, instance: Instance, exc: Exception) -> None:
        log.error("Failed to load pipeline %s: %s", instance.key, exc)
        instance.status, instance.stage = "error", None

    async def _load_all(self, pending: list[Instance]) -> None:
        # One after another; a failure does not stop the others (pipeline_manager.py).
        for instance in pending:
            try:
                await self._load_one(instance)
            except LoadFailed as exc:
                self._fail(instance, exc)
                continue
            instance.status, instance.stage = "loaded", None

    def _info(self, pipeline_id: str) -> catalog.PipelineInfo | None:
        return catalog.info(pipeline_id) if self._offered(pipeline_id) else None

    async def _load_one(self, instance: Instance) -> None:
        info = self._info(instance.pipeline_id)
        if info is None:
            raise LoadFailed(f"unknown pipeline id {instance.pipeline_id!r}")
        total = self.faults.load_time if self.faults.load_time is not None else info.load_time
        stages = WAN_STAGES if info.needs_weights else WAN_STAGES[:1]
        for stage in stages:
            instance.stage = stage
            await asyncio.sleep(max(total, 0.0) / len(stages))
        self._check(instance, info)

    def _check(self, instance: Instance, info: catalog.PipelineInfo) -> None:
        fail = self.faults.fail_loads
        if fail is True or (
            not isinstance(fail, bool) and (instance.pipeline_id in fail or instance.key in fail)
        ):
            raise LoadFailed("injected load failure")
        params = instance.load_params
        for dim in ("height", "width"):
            if dim not in params:
                continue
            value = params[dim]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LoadFailed(f"{dim} must be a positive integer, got {value!r}")
            if info.needs_weights and value % 16:
                raise LoadFailed(f"{dim}={value} is not divisible by 16")
        if info.needs_weights:
            if params.get("vae_type", "wan") not in VAE_TYPES:
                raise LoadFailed(f"unknown vae_type {params.get('vae_type')!r}")
            if params.get("quantization") not in QUANTIZATIONS:
                raise LoadFailed(f"unknown quantization {params.get('quantization')!r}")
        known = set(self._lora_paths())
        for adapter in lora_adapters(params):
            if adapter["path"] not in known:
                raise LoadFailed(f"LoRA file not found: {adapter['path']}")

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The body of `GET /api/v1/pipeline/status`; reading an `error` consumes it."""
        if self._stale is not None and self._clock() < self._stale_until:
            return copy.deepcopy(self._stale)
        self._stale = None
        return self._snapshot(consume=True)

    def combined(self) -> str:
        """The combined status, without the side effects of reading it."""
        states = [i.status for i in self.instances.values()]
        if "loading" in states:
            return "loading"
        if "error" in states:
            return "error"
        if states and all(s == "loaded" for s in states):
            return "loaded"
        return "not_loaded"

    def loaded(self) -> dict[str, Instance]:
        """Instances ready to stream, by key."""
        return {k: i for k, i in self.instances.items() if i.status == "loaded"}

    def _snapshot(self, *, consume: bool) -> dict[str, Any]:
        status = self.combined()
        if status == "error" and consume:
            # Reading `error` turns those entries into `not_loaded` (docs/scope.md §2.3): reported
            # once, and the request stays not loaded until the next one.
            for instance in self.instances.values():
                if instance.status == "error":
                    instance.status = "not_loaded"
        loaded = self.loaded()
        first = next(iter(loaded.values()), None)
        load_params = self._request_params
        if not load_params and first is not None:
            load_params = first.load_params
        adapters: dict[str, dict[str, Any]] = {}
        for instance in loaded.values():
            for adapter in lora_adapters(instance.load_params):
                adapters.setdefault(adapter["path"], adapter)
        loading = next((i for i in self.instances.values() if i.status == "loading"), None)
        return {
            "status": status,
            "pipeline_id": first.key if first is not None else None,
            "load_params": copy.deepcopy(load_params),
            "loaded_lora_adapters": list(adapters.values()) or None,
            "error": None,
            "loading_stage": loading.stage if loading is not None else None,
            "produces_video": True,
            "produces_audio": False,
        }
