"""Prometheus metrics: one registry per process, built by wiring, never at import.

Tests build many apps in one interpreter; a registry per `Metrics` keeps them from colliding in
prometheus-client's global registry. Workers keep plain counters of their own (`Worker.counts`,
`Compactor.stats`); collectors here read them at scrape time instead of the workers importing
prometheus.

The processes of `serve --workers N` share one folder of values instead (prometheus-client's
multiprocess mode): whichever of them a scrape reaches renders the sum of all.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_COUNT_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2500, 5000, 10000)


_shared_folder: list[Path] = []  # where this process keeps its values, once it shares them


def share_values(folder: Path) -> None:
    """Keep this process's metric values in `folder`, beside its sibling processes'. The library
    chooses where a metric keeps its value when the metric is made, so this comes before the
    process's first metric, once."""
    if _shared_folder:
        if _shared_folder[0] != folder:
            raise RuntimeError(f"metrics already shared in {_shared_folder[0]}, not {folder}")
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    values.ValueClass = values.MultiProcessValue()
    _shared_folder.append(folder)


class Metrics:
    """Every family a profefe process may export; a role only moves the ones it has. With
    `shared` (a folder the processes of one `serve` have in common), `render` gives the sum of
    every process's values."""

    def __init__(self, role: str, shared: Path | None = None) -> None:
        self.role = role
        self.shared = shared
        if shared is not None:
            share_values(shared)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("profefe_http_requests", "HTTP requests answered, by route (URL rule) and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("profefe_http_request_duration_seconds", "Time to answer, by route (URL rule)",
                                 ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ingested_bytes = Counter("profefe_ingested_bytes", "Bytes of accepted uploads, as sent", registry=r)
        self.ingested_profiles = Counter("profefe_ingested_profiles", "Uploads accepted (answered 200)", registry=r)
        self.publish_errors = Counter("profefe_kafka_produce_errors",
                                      "Uploads Kafka did not acknowledge (answered 503)", registry=r)
        self.merge_inputs = Histogram("profefe_merge_inputs", "Stored blobs (profiles or windows) read by one merge",
                                      buckets=_COUNT_BUCKETS, registry=r)
        self.batch_size = Histogram("profefe_indexer_batch_size", "Deliveries settled per indexer batch",
                                    buckets=_COUNT_BUCKETS, registry=r)
        self.batch_seconds = Histogram("profefe_indexer_batch_duration_seconds",
                                       "Time from poll to commit of one non-empty batch",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.consumer_lag = Gauge("profefe_kafka_consumer_lag", "Records behind the end of each assigned partition "
                                  "(end offset - position), sampled", ["partition"], registry=r)
        Gauge("profefe_build_info", "What is running", ["role"], multiprocess_mode="max",
              registry=r).labels(role).set(1)

    def render(self) -> bytes:
        if self.shared is None:
            return generate_latest(self.registry)
        every = CollectorRegistry()
        MultiProcessCollector(every, path=str(self.shared))
        return generate_latest(every)

    def watch(self, collector: Collector) -> None:
        """Read `collector` at every scrape; only this process sees it, so shared metrics refuse."""
        if self.shared is not None:
            raise RuntimeError("a scrape-time collector is seen by its own process only")
        self.registry.register(collector)

    def export_compactor(self, stats: Callable[[], object]) -> Callable[[], None]:
        """Export `Compactor.stats`; returns what to call after each pass. Read at every scrape, or
        when shared, copied into shared families by that call (the other processes cannot read
        this one's objects)."""
        if self.shared is None:
            self.watch(CompactorCollector(stats))
            return lambda: None
        copy = SharedCompactorStats(self.registry)
        return lambda: copy.update(stats())


class IndexerCollector(Collector):
    """`Worker.counts` as counters."""

    def __init__(self, counts: Callable[[], object]) -> None:
        self._counts = counts

    def collect(self) -> Iterable:
        c = self._counts()
        for name, attr, text in (
            ("profefe_indexer_batches", "batches", "Batches settled"),
            ("profefe_indexer_indexed", "indexed", "Records stored and committed"),
            ("profefe_indexer_dead_letters", "dead_lettered", "Records sent to the dead-letter topic"),
            ("profefe_indexer_retries", "retries", "Store or Kafka calls retried after Unavailable"),
        ):
            yield CounterMetricFamily(name, text, value=getattr(c, attr))


# `Compactor.stats`: (family, attribute, help), the counters then the gauges.
COMPACTOR_COUNTERS = (
    ("profefe_compactor_passes", "passes", "WindowBuilder passes finished"),
    ("profefe_compactor_windows_built", "windows_built", "Hourly and daily windows written"),
    ("profefe_compactor_windows_stale_rebuilt", "windows_rebuilt", "Windows rebuilt because they were stale"),
    ("profefe_compactor_days_built", "days_built", "Daily windows written"),
    ("profefe_compactor_failures", "failures", "Windows or passes that failed"),
    ("profefe_compactor_raw_pruned", "raw_pruned", "Raw profiles deleted by retention"),
    ("profefe_compactor_windows_dropped", "windows_dropped", "Windows deleted by retention"),
    ("profefe_compactor_orphans_swept", "orphans_swept", "Window blobs no row pointed to, deleted"),
)
COMPACTOR_GAUGES = (
    ("profefe_compactor_pending_hours", "pending", "Closed hours still to compact after the last pass"),
    ("profefe_compactor_lag_seconds", "lag_seconds", "How far the oldest pending hour lies behind now"),
    ("profefe_compactor_last_pass_duration_seconds", "last_pass_seconds", "Duration of the last pass"),
    ("profefe_compactor_last_pass_timestamp_seconds", "last_pass_at", "When the last pass started"),
)


class CompactorCollector(Collector):
    """`Compactor.stats` as counters and gauges."""

    def __init__(self, stats: Callable[[], object]) -> None:
        self._stats = stats

    def collect(self) -> Iterable:
        s = self._stats()
        for name, attr, text in COMPACTOR_COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(s, attr))
        for name, attr, text in COMPACTOR_GAUGES:
            yield GaugeMetricFamily(name, text, value=getattr(s, attr))


class SharedCompactorStats:
    """`Compactor.stats` copied into families, for metrics shared between processes: counters
    advance by what the stats gained since the last copy, gauges take the stats' value (one
    process runs the compactor, so the largest value of all processes is its)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counters = {attr: Counter(name, text, registry=registry) for name, attr, text in COMPACTOR_COUNTERS}
        self._gauges = {attr: Gauge(name, text, multiprocess_mode="max", registry=registry)
                        for name, attr, text in COMPACTOR_GAUGES}
        self._copied = dict.fromkeys(self._counters, 0)

    def update(self, stats: object) -> None:
        for attr, counter in self._counters.items():
            value = getattr(stats, attr)
            if value > self._copied[attr]:
                counter.inc(value - self._copied[attr])
                self._copied[attr] = value
        for attr, gauge in self._gauges.items():
            gauge.set(getattr(stats, attr))
