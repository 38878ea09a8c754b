"""Prometheus figures for operators: turns and their latency, how they ended, handoffs, the queue,
and failures per dependency (GET /metrics, bearer METRICS_TOKEN; off while the token is empty).

Labels stay few and fixed (channel from the sender id's prefix, outcome from a closed list), so
a busy day cannot blow up the series count; nothing personal is ever a label.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CHANNELS = ("web", "api", "wx", "wxmsg", "voice")  # widget, API clients, mini-program, WeChat messages, hotline
# How a turn ended: the bot answered; it asked which topic was meant; it could not help (fallback
# marker); the message went to the staff member in a handoff; the gateway answered from the
# knowledge base itself; nobody could (503); the input was refused (4xx).
OUTCOMES = ("answered", "clarified", "unanswered", "to_staff", "knowledge_base", "unavailable", "refused")
DEPENDENCIES = ("rasa", "actions", "redis", "core")
TURN_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 15.0)


def channel_of(sender_id: str) -> str:
    prefix = sender_id.split("-", 1)[0]
    return prefix if prefix in CHANNELS else "other"


class Metrics:
    """One registry per app, so tests that build several apps never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter("anju_turns", "Chat turns by channel and outcome", ["channel", "outcome"],
                             registry=self.registry)
        self.turn_seconds = Histogram("anju_turn_seconds", "Time from a citizen's message to the reply",
                                      ["channel"], buckets=TURN_BUCKETS, registry=self.registry)
        self.dependency_errors = Counter("anju_dependency_errors", "Failed calls per dependency", ["dependency"],
                                         registry=self.registry)
        self.handoffs = Counter("anju_handoffs", "Citizens put in the staff queue", ["channel"],
                                registry=self.registry)
        self.queue_waiting = Gauge("anju_queue_waiting", "Citizens waiting for staff now", registry=self.registry)
        self.queue_longest_wait = Gauge("anju_queue_longest_wait_seconds", "The longest current wait",
                                        registry=self.registry)
        for channel in (*CHANNELS, "other"):
            for outcome in OUTCOMES:
                self.turns.labels(channel, outcome)
            self.turn_seconds.labels(channel)
        for dependency in DEPENDENCIES:
            self.dependency_errors.labels(dependency)
        self._queue_probe: Optional[Callable[[], Awaitable[tuple[int, float]]]] = None

    def count_turn(self, sender_id: str, outcome: str) -> None:
        self.turns.labels(channel_of(sender_id), outcome).inc()

    @contextmanager
    def timed_turn(self, sender_id: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.turn_seconds.labels(channel_of(sender_id)).observe(time.perf_counter() - started)

    def failed(self, dependency: str) -> None:
        self.dependency_errors.labels(dependency).inc()

    def probe_queue_with(self, probe: Callable[[], Awaitable[tuple[int, float]]]) -> None:
        """`probe` returns (waiting now, longest wait in seconds); read at each scrape."""
        self._queue_probe = probe

    async def exposition(self) -> bytes:
        if self._queue_probe is not None:
            try:
                waiting, longest = await self._queue_probe()
            except Exception:  # a scrape must answer even while redis is down
                self.failed("redis")
            else:
                self.queue_waiting.set(waiting)
                self.queue_longest_wait.set(longest)
        return generate_latest(self.registry)


def outcome_of(messages: list[Any]) -> str:
    """answered / clarified / unanswered, from the markers the actions attach to their messages."""
    kinds = {(getattr(m, "custom", None) or {}).get("type") for m in messages}
    if "unanswered" in kinds:
        return "unanswered"
    if "clarify" in kinds:
        return "clarified"
    return "answered"
