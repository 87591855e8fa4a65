"""Prometheus metrics of a run, served as ``GET /metrics`` (docs/operating.md: "Metrics").

prometheus-client is confined here. Each run has its own `CollectorRegistry` (never the
process-wide one), so two runs in one process, as the tests make, do not share counters.

Counters follow the player's events (the records the journal gets: ``reconnect``, ``scene``,
``send``, ``reload``, ``reload_error``, ``error``, ``hook``, ``outage``); the gauges are read at
each scrape from the run's `Health` (the player's status and the session's frames).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from showrunner.control.monitor import Health

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Send lateness, seconds: a chunk is 62.5 ms at 16 fps; anything past a second is an outage.
_LATENESS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))
_MAX_LABEL = 100  # hook names come from the show file: keep labels short


class _Now(Collector):
    """The gauges read at scrape time from the latest `Health`."""

    def __init__(self) -> None:
        self.health: Health | None = None

    def collect(self) -> Iterator[Metric]:
        health = self.health
        if health is None:
            return
        yield GaugeMetricFamily("showrunner_connected", "1 while the Scope session is connected",
                                value=1.0 if health.connection == "connected" else 0.0)
        state = GaugeMetricFamily("showrunner_link_state", "The link to Scope: 1 for its state",
                                  labels=["state"])
        state.add_metric([health.connection], 1.0)
        yield state
        yield GaugeMetricFamily("showrunner_ready", "1 when connected with a fresh picture",
                                value=1.0 if health.ready else 0.0)
        yield GaugeMetricFamily("showrunner_seconds_without_picture",
                                "Seconds since the newest video frame, across reconnections",
                                value=health.without_picture)
        if health.frames_received is not None:
            yield CounterMetricFamily("showrunner_frames_received",
                                      "Video frames received from Scope",
                                      value=health.frames_received)
        yield GaugeMetricFamily("showrunner_uptime_seconds", "Seconds since the run started",
                                value=health.uptime)
        yield GaugeMetricFamily("showrunner_reload_errors_pending",
                                "Problems of the last show-file edit that failed (0: none)",
                                value=len(health.reload_errors))

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time; nothing to check ahead of it


class Metrics:
    """The counters of one run and its scrape-time gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._now = _Now()
        r.register(self._now)
        self.reconnects = Counter("showrunner_reconnects", "Reconnections to Scope that succeeded",
                                  registry=r)
        self.reconnect_failures = Counter("showrunner_reconnect_failures",
                                          "Reconnection attempts that failed", registry=r)
        self.lateness = Histogram("showrunner_send_lateness_seconds",
                                  "How late each message went to Scope after its planned time",
                                  buckets=_LATENESS_BUCKETS, registry=r)
        self.scene_changes = Counter("showrunner_scene_changes", "Scenes that became live",
                                     registry=r)
        self.reloads = Counter("showrunner_reloads", "Show-file edits applied", registry=r)
        self.reload_errors = Counter("showrunner_reload_errors",
                                     "Show-file edits refused for their errors", registry=r)
        self.errors = Counter("showrunner_errors", "Errors skipped while the show went on",
                              registry=r)
        self.outages = Counter("showrunner_outages", "Outages the run detected", registry=r)
        self.hook_runs = Counter("showrunner_hook_runs", "Hook runs", ["hook"], registry=r)
        self.hook_failures = Counter("showrunner_hook_failures", "Hook runs that failed", ["hook"],
                                     registry=r)

    def __repr__(self) -> str:
        return f"Metrics(registry={id(self.registry):#x})"

    def observe(self, event: Mapping[str, Any]) -> None:
        """Count one player event (a journal record)."""
        kind = event.get("kind")
        if kind == "send":
            planned, sent = event.get("planned_at"), event.get("sent_at")
            if isinstance(planned, int | float) and isinstance(sent, int | float):
                self.lateness.observe(max(0.0, sent - planned))
        elif kind == "scene":
            self.scene_changes.inc()
        elif kind == "reconnect":
            (self.reconnects if event.get("label") == "ok" else self.reconnect_failures).inc()
        elif kind == "reload":
            self.reloads.inc()
        elif kind == "reload_error":
            self.reload_errors.inc()
        elif kind == "error":
            self.errors.inc()
        elif kind == "outage":
            self.outages.inc()
        elif kind == "hook":
            name = str(event.get("name") or "?")[:_MAX_LABEL]
            self.hook_runs.labels(name).inc()
            if event.get("ok") is not True:
                self.hook_failures.labels(name).inc()

    def render(self, health: Health) -> bytes:
        """The text exposition format, with the gauges as `health` has them."""
        self._now.health = health
        return generate_latest(self.registry)
