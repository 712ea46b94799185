"""What the server records about each request in this process: Prometheus metrics and the access
log line. (The request journal, which the console reads, is the server's: ``filesapi.controls``.)

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set, which ``filesapi serve`` does
for ``--workers`` > 1) the counters and histograms are prometheus-client's multiprocess values:
each worker writes its own to files in that directory and a scrape of any worker sums them all,
so one scrape reports the whole server. Per-workspace storage is not a metric of any process: it
is read from the database at scrape time and reported once.

Nothing here ever records a key or a header value other than the user agent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from filesapi.config import METRICS_DIR_ENV
from filesapi.logs import line_writer
from filesapi.models import WorkspaceStats
from filesapi.records import Batch, RequestRecord

__all__ = ["FLUSH_BATCH", "FLUSH_SECONDS", "METRIC_METHODS", "Observer", "metric_method", "observe_many"]

access_log = logging.getLogger("filesapi.access")

FLUSH_SECONDS = 0.05
FLUSH_BATCH = 256


# Label values come from this closed set, never from the client: any other method (a client may send
# thousands of made-up ones) is counted as "other", so a scrape cannot be grown from outside.
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metric_method(method: str) -> str:
    return method if method in METRIC_METHODS else "other"


class Observer:
    """One per process. ``registry`` is this app's own, so tests can run many apps side by side."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["route", "method", "dialect", "status"]
        self.requests = Counter(
            "filesapi_requests",
            "Requests answered, by route, method, dialect and status",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "filesapi_request_duration_seconds",
            "Time to answer (until the last byte was handed to the server), by route and method",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "filesapi_received_bytes", "Request body bytes received", registry=self.registry
        )
        self.bytes_out = Counter("filesapi_sent_bytes", "Response body bytes sent", registry=self.registry)
        # Read when prometheus-client was imported, which chose then how its values are kept.
        self.shared_dir = os.environ.get(METRICS_DIR_ENV) or None
        self._children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}
        self._batch: Batch[tuple[float, RequestRecord]] = Batch(self._write, FLUSH_SECONDS, FLUSH_BATCH)
        # Nobody set logging up the server's way (setup_logging): keep logging's usual behaviour.
        self._direct_log = line_writer(access_log) is None

    def scrape(self, storage: Iterable[WorkspaceStats]) -> bytes:
        """The Prometheus exposition of every process of this server, plus ``storage`` (read from
        the database by the caller) as per-workspace gauges."""
        source: Collector = self.registry
        if self.shared_dir is not None:
            source = CollectorRegistry()
            MultiProcessCollector(source, self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(_Scrape(source, list(storage)))

    def record(self, record: RequestRecord) -> None:
        """Count the request and log its line: at once through ``logging`` when someone else set
        logging up (tests, an embedding app); else batched, every ``FLUSH_SECONDS`` or
        ``FLUSH_BATCH`` requests, with the metrics (a scrape flushes first)."""
        if self._direct_log:
            access_log.info(_message(record), extra={"request": record})
        self._batch.add((time.time(), record))

    def flush(self) -> None:
        self._batch.flush()

    def _write(self, pending: list[tuple[float, RequestRecord]]) -> None:
        durations: dict[tuple[str, str, str, int], list[float]] = {}
        bytes_in = bytes_out = 0
        for _, record in pending:
            key = (record.route, metric_method(record.method), record.dialect, record.status or 0)
            found = durations.get(key)
            if found is None:
                found = durations[key] = []
            found.append(record.duration_ms)
            bytes_in += record.bytes_in
            bytes_out += record.bytes_out
        for key, durations_ms in durations.items():
            children = self._children.get(key)
            if children is None:
                # The labelled children, found once per label set (labels() takes a lock and builds
                # keys); the sets are few: routes, methods, dialects and statuses are closed.
                children = self._children[key] = (
                    self.requests.labels(key[0], key[1], key[2], str(key[3])),
                    self.latency.labels(key[0], key[1]),
                )
            children[0].inc(len(durations_ms))
            observe_many(children[1], [ms / 1000 for ms in durations_ms])
        self.bytes_in.inc(bytes_in)
        self.bytes_out.inc(bytes_out)
        if self._direct_log:
            return
        write = line_writer(access_log)
        if write is not None:
            write([(created, _message(record), record.log_fields()) for created, record in pending])
        else:  # logging was set up anew since this process started: log through it
            for _, record in pending:
                access_log.info(_message(record), extra={"request": record})

    async def settle(self) -> None:
        """Make every request answered so far count: this process's at once, other workers'
        after their next flush."""
        self.flush()
        if self.shared_dir is not None:
            await asyncio.sleep(FLUSH_SECONDS * 2.5)


def observe_many(histogram: Histogram, amounts: list[float]) -> None:
    """``histogram.observe(a)`` for each of ``amounts``, with one update per bucket (a batch's
    requests mostly fall into two or three) instead of one per amount. The bucket is the first
    bound ``a`` is at most, as ``observe`` finds it (tests/test_hot_path.py holds the two equal)."""
    bounds: list[float] = histogram._upper_bounds
    per_bucket = [0] * len(bounds)
    for amount in amounts:
        per_bucket[bisect_left(bounds, amount)] += 1  # the last bound is +Inf
    histogram._sum.inc(math.fsum(amounts))
    for bucket, count in enumerate(per_bucket):
        if count:
            histogram._buckets[bucket].inc(count)


def _message(record: RequestRecord) -> str:
    return f"{record.method} {record.path} {record.status or 0} {record.duration_ms:.1f}ms"


class _Scrape:
    """One scrape: the request metrics of ``source`` and the storage gauges of this moment."""

    def __init__(self, source: Collector, storage: list[WorkspaceStats]) -> None:
        self.source = source
        self.storage = storage

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()
        by = ["workspace"]
        files = GaugeMetricFamily("filesapi_workspace_files", "Files stored, per workspace", labels=by)
        stored = GaugeMetricFamily("filesapi_workspace_bytes", "Bytes stored, per workspace", labels=by)
        for entry in self.storage:
            files.add_metric([entry.workspace.name], entry.files)
            stored.add_metric([entry.workspace.name], entry.bytes)
        yield files
        yield stored
