"""Prometheus metrics of the gateways (one registry per process, rendered at ``/metrics``).

Invariant: every metric lives in the registry of one :class:`Metrics` object (never the
global default registry), so several apps in one process (tests) do not collide; gauges
whose value lives elsewhere (queue depths, WebSocket clients) read it when scraped.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.orders = Counter(
            "tradewind_orders",
            "Orders submitted through the gateways, by result (rate() gives orders/s).",
            ["result"],
            registry=self.registry,
        )
        self.commands = Counter(
            "tradewind_commands",
            "Commands submitted to the core, by op and outcome.",
            ["op", "outcome"],
            registry=self.registry,
        )
        self.command_latency = Histogram(
            "tradewind_command_latency_seconds",
            "Time from submitting a command to the core until it is durable and applied.",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "tradewind_queue_depth",
            "Items waiting in an internal queue.",
            ["queue"],
            registry=self.registry,
        )
        self.ws_clients = Gauge(
            "tradewind_ws_clients", "Connected WebSocket clients.", registry=self.registry
        )
        self.core_up = Gauge(
            "tradewind_core_up",
            "1 while this process can reach the trading core (distributed: heard within the "
            "liveness period), else 0.",
            registry=self.registry,
        )

    def track_event_gaps(self, gaps: Callable[[], float]) -> None:
        """An API replica's count of holes in the core's event stream it follows (each
        one made its open-order index start again, ADR 0049)."""
        gauge = Gauge(
            "tradewind_event_stream_gaps",
            "Holes this replica saw in the core's event stream since it started (batches "
            "lost to it; its open-order index started again at each).",
            registry=self.registry,
        )
        gauge.set_function(gaps)

    def track_queue(self, name: str, depth: Callable[[], float]) -> None:
        self.queue_depth.labels(queue=name).set_function(depth)

    def track_ws_clients(self, count: Callable[[], float]) -> None:
        self.ws_clients.set_function(count)

    def track_core_up(self, up: Callable[[], bool]) -> None:
        self.core_up.set_function(lambda: 1.0 if up() else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
