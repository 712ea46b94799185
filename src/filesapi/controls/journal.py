"""The request journal: one entry for every request the server answered, in every worker process.

Recording costs a list append on the hot path: each process writes its pending entries to the
server's shared SQLite file in one transaction every ``FLUSH_SECONDS`` (or at once past
``FLUSH_BATCH``), without fsync. A reader flushes its own process's entries first; with several
workers it also waits one flush interval, so requests answered before the read are in it. The last
``KEEP`` entries (at least) are kept. Keys are stored redacted, bodies never.
"""

from __future__ import annotations

import asyncio
import json
import marshal
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from filesapi.controls.shared import SharedState
from filesapi.records import JOURNAL_FIELDS, RequestRecord

__all__ = [
    "FLUSH_SECONDS",
    "KEEP",
    "OPERATIONS",
    "Journal",
    "JournalQuery",
    "operation_of",
    "redact_key",
    "sdk_of_headers",
]

FLUSH_SECONDS = 0.02
FLUSH_BATCH = 256
KEEP = 10_000
_TRIM_EVERY = 1000
OPERATIONS = ("upload", "list", "retrieve", "download", "delete", "messages")
_FILE = re.compile(r"/v1/files/[^/]+")
_CONTENT = re.compile(r"/v1/files/[^/]+/content")
_FAPI_KEY = re.compile(r"(sk-fapi-[1-9A-HJ-NP-Za-km-z]{12}-)")


def operation_of(method: str, path: str) -> str | None:
    """What a request does, from its method and path alone (before routing): an API operation,
    ``admin``, ``console``, or None (health checks, docs, metrics, unknown paths)."""
    if path == "/v1/files":
        return {"POST": "upload", "GET": "list"}.get(method)
    if path.startswith("/v1/files/"):
        if _CONTENT.fullmatch(path):
            return "download" if method in ("GET", "HEAD") else None
        if _FILE.fullmatch(path):
            return {"GET": "retrieve", "DELETE": "delete"}.get(method)
        return None
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "messages"
    if path.startswith("/v1/admin/"):
        return "admin"
    if path.startswith(("/v1/console/", "/console")):
        return "console"
    return None


def redact_key(key: str | None) -> str | None:
    """``sk-fapi-<key id>-…`` (the key id is public), else the first four characters and ``…``."""
    if not key:
        return None
    match = _FAPI_KEY.match(key)
    if match:
        return match.group(1) + "…"
    return (key[:4] if len(key) > 12 else "") + "…"


def sdk_of_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, Any] | None:
    """The official SDKs name themselves in ``x-stainless-*`` headers; None for other clients."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name.startswith(b"x-stainless-"):
            found[name[12:]] = value.decode("latin-1")[:64]
    if b"lang" not in found:
        return None
    runtime = " ".join(v for v in (found.get(b"runtime"), found.get(b"runtime-version")) if v)
    retry = found.get(b"retry-count", "")
    return {
        "language": found[b"lang"],
        "package_version": found.get(b"package-version"),
        "runtime": runtime or None,
        "retry_count": int(retry) if retry.isascii() and retry.isdigit() and len(retry) < 6 else None,
    }


@dataclass(frozen=True)
class JournalQuery:
    limit: int = 100
    before: str | None = None
    operation: str | None = None
    status: int | None = None
    method: str | None = None
    workspace: str | None = None
    request_id: str | None = None
    since_us: int | None = None


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class UnknownCursor(ValueError):
    pass


# The journal's columns beyond its own id and ws_seq: the fields queries filter on, then the rest
# packed with marshal (a JSON text per entry, or a column per field, cost more than the rest of the
# write; marshal is safe here: only this server's own processes, one Python, write and read it).
_COLUMNS = ("request_id", "started_us", "method", "operation", "status", "workspace", "workspace_id")
_PACKED = tuple(name for name in JOURNAL_FIELDS if name not in _COLUMNS)
_LIST = ", ".join(_COLUMNS)
_INSERT = f"INSERT INTO journal (ws_seq, {_LIST}, packed) VALUES (?, {', '.join('?' * len(_COLUMNS))}, ?)"  # noqa: S608
_SELECT = f"SELECT {_LIST}, packed FROM journal"  # noqa: S608 - constant


def _row(record: RequestRecord) -> list[Any]:
    return [
        None,
        record.request_id,
        record.started_us,
        record.method,
        record.operation,
        record.status,
        record.workspace,
        record.workspace_id,
        marshal.dumps(tuple([getattr(record, name) for name in _PACKED])),
    ]


def _entry(row: Sequence[Any]) -> dict[str, Any]:
    entry = dict(zip(_COLUMNS, row, strict=False))
    entry.update(zip(_PACKED, marshal.loads(row[-1]), strict=True))  # noqa: S302 - our own rows
    return {name: entry[name] for name in JOURNAL_FIELDS}


class Journal:
    def __init__(self, shared: SharedState, *, workers: int = 1) -> None:
        self.shared = shared
        self.workers = workers
        self.server_id = secrets.token_hex(4)  # the console's "process" token: one journal per server
        self._pending: list[RequestRecord] = []
        self._scheduled: asyncio.TimerHandle | None = None
        self._since_trim = 0

    # -- writing
    def append(self, record: RequestRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= FLUSH_BATCH:
            self.flush()
            return
        if self._scheduled is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        counts: dict[str, int] = {}
        for record in pending:
            if record.workspace is not None:
                counts[record.workspace] = counts.get(record.workspace, 0) + 1
        rows = [_row(record) for record in pending]
        with self.shared.transaction() as db:
            # One counter update per workspace per batch, then the batch's numbers are handed out.
            next_seq: dict[str, int] = {}
            for workspace, count in counts.items():
                last = db.execute(
                    "INSERT INTO journal_seqs VALUES (?, ?) ON CONFLICT(workspace) "
                    "DO UPDATE SET last = last + excluded.last RETURNING last",
                    (workspace, count),
                ).fetchone()[0]
                next_seq[workspace] = int(last) - count + 1
            for record, row in zip(pending, rows, strict=True):
                if record.workspace is not None:
                    row[0] = next_seq[record.workspace]
                    next_seq[record.workspace] += 1
            db.executemany(_INSERT, rows)
            self._since_trim += len(pending)
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                db.execute(
                    "DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - ?", (KEEP + _TRIM_EVERY,)
                )

    async def settle(self) -> None:
        """Make every request answered so far readable: this process's at once, other workers'
        after their next flush."""
        self.flush()
        if self.workers > 1:
            await asyncio.sleep(FLUSH_SECONDS * 2.5)

    def clear(self) -> None:
        self._pending.clear()
        with self.shared.transaction() as db:
            db.execute("DELETE FROM journal")

    # -- reading
    def entries(self, query: JournalQuery) -> tuple[list[dict[str, Any]], bool]:
        """Newest first, at most ``query.limit``, and whether older ones match too."""
        where: list[str] = []
        params: list[object] = []
        if query.before is not None:
            found = self.shared.read(
                "SELECT started_us, id FROM journal WHERE request_id = ? ORDER BY id DESC LIMIT 1",
                (query.before,),
            )
            if not found:
                raise UnknownCursor(query.before)
            started, row_id = found[0]
            where.append("(started_us < ? OR (started_us = ? AND id < ?))")
            params += [started, started, row_id]
        for column, value in (
            ("operation", query.operation),
            ("status", query.status),
            ("method", query.method),
            ("request_id", query.request_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.workspace is not None:
            where.append("(workspace = ? OR workspace_id = ?)")
            params += [query.workspace, query.workspace]
        if query.since_us is not None:
            where.append("started_us >= ?")
            params.append(query.since_us)
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_us DESC, id DESC LIMIT ?"
        rows = self.shared.read(sql, (*params, query.limit + 1))
        return [_entry(r) for r in rows[: query.limit]], len(rows) > query.limit

    def recent(
        self, workspace: str | None, after_seq: int, limit: int, *, include_console: bool
    ) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """For the console: entries newer than ``after_seq``, oldest first, at most ``limit`` (the
        newest), with their sequence numbers, and the newest sequence number. With ``workspace``
        the numbers are that workspace's own (they say nothing about other workspaces' traffic);
        without, the server's."""
        console = "" if include_console else " AND operation IS NOT 'console'"
        if workspace is None:
            rows = self.shared.read(
                f"SELECT id, {_LIST}, packed FROM journal WHERE id > ?{console} ORDER BY id DESC LIMIT ?",  # noqa: S608
                (after_seq, limit),
            )
            last = self.shared.read("SELECT MAX(id) FROM journal")[0][0]
        else:
            rows = self.shared.read(
                f"SELECT ws_seq, {_LIST}, packed FROM journal WHERE workspace = ? AND ws_seq > ?{console} "  # noqa: S608
                "ORDER BY ws_seq DESC LIMIT ?",
                (workspace, after_seq, limit),
            )
            found = self.shared.read("SELECT last FROM journal_seqs WHERE workspace = ?", (workspace,))
            last = found[0][0] if found else 0
        return [(int(str(r[0])), _entry(r[1:])) for r in reversed(rows)], int(str(last or 0))
