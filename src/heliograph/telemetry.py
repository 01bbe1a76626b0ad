"""Prometheus metrics of one running server (a registry per instance, so tests can run many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "heliograph_requests",
            "Proxied requests",
            ["provider", "status_class"],
            registry=self.registry,
        )
        self.overhead = Histogram(
            "heliograph_gateway_overhead_seconds",
            "Time spent in the gateway, excluding waiting on the provider",
            buckets=OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "heliograph_ingest_queue_depth", "Records waiting to be written", registry=self.registry
        )
        self.spool_files = Gauge(
            "heliograph_ingest_spool_files", "Batches waiting on disk", registry=self.registry
        )
        self.flush_latency = Histogram(
            "heliograph_ingest_flush_seconds", "Time to write one batch", registry=self.registry
        )
        self.rows_written = Counter(
            "heliograph_ingest_rows_written", "Rows written to the store", registry=self.registry
        )
        self.flush_failures = Counter(
            "heliograph_ingest_flush_failures", "Failed batch writes", registry=self.registry
        )
        self.quarantined = Counter(
            "heliograph_ingest_quarantined",
            "Records, rows or spooled lines set aside because they could not be stored",
            ["kind"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
