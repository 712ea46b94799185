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

import itertools
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from filesapi.config import METRICS_DIR_ENV
from filesapi.models import WorkspaceStats

__all__ = ["METRIC_METHODS", "Observer", "RequestRecord", "metric_method"]

access_log = logging.getLogger("filesapi.access")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    seq: int
    time: float
    request_id: str
    method: str
    path: str
    route: str
    dialect: str
    status: int
    duration_ms: float
    bytes_in: int
    bytes_out: int
    workspace: str | None
    user_agent: str
    # Messages gateway calls: the files resolved (id, filename, media_type, size_bytes, block).
    files: list[dict[str, Any]] | None = None
    upstream_request_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: that deep-copies, and this runs for every logged request.
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))

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
        self._seq = itertools.count(1)
        self._children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}

    def scrape(self, storage: Iterable[WorkspaceStats]) -> bytes:
        """The Prometheus exposition of every process of this server, plus ``storage`` (read from
        the database by the caller) as per-workspace gauges."""
        source: Collector = self.registry
        if self.shared_dir is not None:
            source = CollectorRegistry()
            MultiProcessCollector(source, self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(_Scrape(source, list(storage)))

    def record(self, **fields: Any) -> RequestRecord:
        record = RequestRecord(seq=next(self._seq), **fields)
        method = metric_method(record.method)
        # The labelled children, found once per label set (labels() takes a lock and builds keys
        # on every call); the sets are few: routes, methods, dialects and statuses are closed.
        key = (record.route, method, record.dialect, record.status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(record.route, method, record.dialect, str(record.status)),
                self.latency.labels(record.route, method),
            )
        children[0].inc()
        children[1].observe(record.duration_ms / 1000)
        self.bytes_in.inc(record.bytes_in)
        self.bytes_out.inc(record.bytes_out)
        access_log.info(
            "%s %s %s %.1fms",
            record.method,
            record.path,
            record.status,
            record.duration_ms,
            extra={"request": record},  # formatters read its fields; no dict unless one is written
        )
        return record


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
