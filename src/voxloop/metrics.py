"""Prometheus metrics of one process: per-stage latency, turns, errors, active sessions."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from voxloop.audio import MS_PER_SECOND

# Turn stages are measured from the end of speech; a voice reply should start well under 1 s.
LATENCY_BUCKETS_SECONDS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 120.0)


class Metrics:
    """What `GET /metrics` shows; the pipeline records turns, the API records requests."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.turn_counts: Tally[str] = Tally()  # by outcome, for /health
        self.registry = CollectorRegistry()  # one per app, so several apps in a process agree
        self.stage_latency = Histogram(
            "voxloop_stage_latency_seconds",
            "Time from the start of a turn to the end of each stage "
            "(stt, llm_first_token, first_audio, total).",
            ["stage"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.turns = Counter(
            "voxloop_turns",
            "Turns that ended, by outcome (answered, cancelled, apologized).",
            ["outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "voxloop_errors",
            "Turns and requests that failed, by error kind.",
            ["kind"],
            registry=self.registry,
        )
        self.requests = Counter(
            "voxloop_api_requests",
            "HTTP API requests, by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.active_sessions = Gauge(
            "voxloop_active_sessions",
            "Pages with their live audio open, plus API requests in progress.",
            registry=self.registry,
        )

    def record_turn(self, timings_ms: dict[str, float], outcome: str) -> None:
        """Count a finished turn and observe each stage it reached."""
        self.turns.labels(outcome).inc()
        self.turn_counts[outcome] += 1
        for stage, ms in timings_ms.items():
            self.stage_latency.labels(stage).observe(ms / MS_PER_SECOND)

    def record_error(self, kind: str) -> None:
        """Count a failure of kind `kind` (the error's class name)."""
        self.errors.labels(kind).inc()

    def record_request(self, endpoint: str, status: int) -> None:
        """Count an API request by its answer."""
        self.requests.labels(endpoint, str(status)).inc()

    def count_active_sessions(self, count: Callable[[], float]) -> None:
        """Read the number of active sessions from `count` at every scrape."""
        self.active_sessions.set_function(count)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
