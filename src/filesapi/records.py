"""What the server keeps of one answered request: one object, made once per request by the outermost
HTTP layer and read by everything that records requests (metrics, the access log, the journal).

"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

__all__ = ["JOURNAL_FIELDS", "LOG_FIELDS", "Batch", "RequestRecord"]

_T = TypeVar("_T")

# What a journal entry holds, in the order the journal's readers have always shown them.
JOURNAL_FIELDS = (
    "request_id",
    "started_us",
    "duration_ms",
    "method",
    "path",
    "route",
    "operation",
    "dialect",
    "status",
    "error_type",
    "workspace",
    "workspace_id",
    "api_key",
    "sdk",
    "user_agent",
    "fault",
    "worker",
    "bytes_in",
    "bytes_out",
    "upload",
    "files",
    "upstream_request_id",
)

# What an access log line holds beside its message (no key, not even redacted).
LOG_FIELDS = (
    "request_id",
    "method",
    "path",
    "route",
    "dialect",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
    "workspace",
    "user_agent",
    "files",
    "upstream_request_id",
)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times a plain one
class RequestRecord:
    request_id: str
    started_us: int
    duration_ms: float
    method: str
    path: str
    route: str
    operation: str | None
    dialect: str
    status: int | None  # None: the request ended before an answer started
    error_type: str | None
    workspace: str | None
    workspace_id: str | None
    api_key: str | None  # redacted
    sdk: dict[str, Any] | None
    user_agent: str
    fault: str | None
    worker: int
    bytes_in: int
    bytes_out: int
    upload: dict[str, Any] | None
    # Messages gateway calls: the files resolved (id, filename, media_type, size_bytes, block).
    files: list[dict[str, Any]] | None
    upstream_request_id: str | None

    @property
    def time(self) -> float:
        return self.started_us / 1e6

    def journal_entry(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in JOURNAL_FIELDS}

    def log_fields(self) -> dict[str, Any]:
        """LOG_FIELDS in order, then ``time`` (written out: one dict display, no loop; the order is
        checked by tests/test_hot_path.py)."""
        return {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "dialect": self.dialect,
            "status": self.status or 0,
            "duration_ms": self.duration_ms,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "workspace": self.workspace,
            "user_agent": self.user_agent,
            "files": self.files,
            "upstream_request_id": self.upstream_request_id,
            "time": self.started_us / 1e6,
        }


assert tuple(f.name for f in fields(RequestRecord)) == JOURNAL_FIELDS


class Batch(Generic[_T]):
    """What the recorders of requests (the metrics and access log, the journal) have in common:
    items gathered on the hot path at the cost of an append, and handed to ``write`` together, at
    most ``seconds`` after the first of them, or at once when ``size`` are waiting (or when no
    event loop runs to wait in)."""

    def __init__(self, write: Callable[[list[_T]], None], seconds: float, size: int) -> None:
        self._write = write
        self.seconds = seconds
        self.size = size
        self._items: list[_T] = []
        self._scheduled: asyncio.TimerHandle | None = None

    def add(self, item: _T) -> None:
        self._items.append(item)
        if len(self._items) >= self.size:
            self.flush()
        elif self._scheduled is None:
            try:
                self._scheduled = asyncio.get_running_loop().call_later(self.seconds, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        items, self._items = self._items, []
        if items:
            self._write(items)

    def clear(self) -> None:
        """Forget what waits (it is never written)."""
        self._items.clear()
