"""The request journal: one entry for every request the server answered, in every worker process.

Recording costs a list append on the hot path: each process writes its pending entries to the
server's shared SQLite file, as one row, in one transaction every ``FLUSH_SECONDS`` (or at once
past ``FLUSH_BATCH``), without fsync. A reader flushes its own process's entries first; with
several workers it also waits one flush interval, so requests answered before the read are in it.
The last ``KEEP`` entries (at least) are kept. Keys are stored redacted, bodies never.
"""

from __future__ import annotations

import asyncio
import json
import marshal
import operator
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from filesapi.controls.shared import SharedState
from filesapi.records import JOURNAL_FIELDS, Batch, RequestRecord

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


# An entry, as kept: (id, ws_seq, then every field of JOURNAL_FIELDS in order). The entries of
# one flush are one row, packed with marshal (a row per entry cost most of the request's own
# recording; marshal is safe here: only this server's own processes, one Python, write and read
# it). Readers decode each batch once per process (a batch never changes) and filter in memory:
# the journal is at most about KEEP entries.
_values = operator.attrgetter(*JOURNAL_FIELDS)
_AT = {name: i + 2 for i, name in enumerate(JOURNAL_FIELDS)}
_STARTED, _REQUEST_ID, _OPERATION, _WORKSPACE, _WORKSPACE_ID = (
    _AT[name] for name in ("started_us", "request_id", "operation", "workspace", "workspace_id")
)
_Entry = tuple[Any, ...]


def _entry(kept: _Entry) -> dict[str, Any]:
    return dict(zip(JOURNAL_FIELDS, kept[2:], strict=True))


class Journal:
    def __init__(self, shared: SharedState, *, workers: int = 1) -> None:
        self.shared = shared
        self.workers = workers
        self.server_id = secrets.token_hex(4)  # the console's "process" token: one journal per server
        self._batch: Batch[RequestRecord] = Batch(self._write, FLUSH_SECONDS, FLUSH_BATCH)
        self._since_trim = 0
        self._decoded: dict[int, list[_Entry]] = {}  # batch id -> its entries, as read before

    # -- writing
    def append(self, record: RequestRecord) -> None:
        self._batch.add(record)

    def flush(self) -> None:
        self._batch.flush()

    def _write(self, pending: list[RequestRecord]) -> None:
        counts: dict[str, int] = {}
        for record in pending:
            if record.workspace is not None:
                counts[record.workspace] = counts.get(record.workspace, 0) + 1
        with self.shared.transaction() as db:
            # One counter update for the server and one per workspace per batch; the batch's
            # numbers are handed out from them.
            last = int(
                db.execute(
                    "INSERT INTO journal_ids VALUES (1, ?) ON CONFLICT(one) "
                    "DO UPDATE SET last = last + excluded.last RETURNING last",
                    (len(pending),),
                ).fetchone()[0]
            )
            first = last - len(pending) + 1
            next_seq: dict[str, int] = {}
            for workspace, count in counts.items():
                ws_last = db.execute(
                    "INSERT INTO journal_seqs VALUES (?, ?) ON CONFLICT(workspace) "
                    "DO UPDATE SET last = last + excluded.last RETURNING last",
                    (workspace, count),
                ).fetchone()[0]
                next_seq[workspace] = int(ws_last) - count + 1
            entries: list[_Entry] = []
            for at, record in enumerate(pending, first):
                seq = None
                if record.workspace is not None:
                    seq = next_seq[record.workspace]
                    next_seq[record.workspace] = seq + 1
                entries.append((at, seq, *_values(record)))
            db.execute(
                "INSERT INTO journal_batches (last_id, packed) VALUES (?, ?)", (last, marshal.dumps(entries))
            )
            self._since_trim += len(pending)
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                db.execute("DELETE FROM journal_batches WHERE last_id <= ?", (last - KEEP - _TRIM_EVERY,))

    async def settle(self) -> None:
        """Make every request answered so far readable: this process's at once, other workers'
        after their next flush."""
        self.flush()
        if self.workers > 1:
            await asyncio.sleep(FLUSH_SECONDS * 2.5)

    def clear(self) -> None:
        self._batch.clear()
        with self.shared.transaction() as db:
            db.execute("DELETE FROM journal_batches")

    # -- reading
    def _kept(self) -> list[_Entry]:
        """Every entry kept, oldest first. Batches this process has read before are not read again
        (a batch never changes, and batch ids are never reused)."""
        known = self._decoded
        newest = max(known, default=0)
        ids = [int(str(r[0])) for r in self.shared.read("SELECT id FROM journal_batches ORDER BY id")]
        fresh = self.shared.read("SELECT id, packed FROM journal_batches WHERE id > ? ORDER BY id", (newest,))
        for batch_id, packed in fresh:
            known[int(str(batch_id))] = marshal.loads(packed)  # type: ignore[arg-type]  # noqa: S302
        kept: list[_Entry] = []
        decoded: dict[int, list[_Entry]] = {}
        for batch_id in ids:
            batch = known.get(batch_id)
            if batch is not None:  # (a batch written after the id list was read waits a read)
                decoded[batch_id] = batch
                kept.extend(batch)
        self._decoded = decoded
        return kept

    def entries(self, query: JournalQuery) -> tuple[list[dict[str, Any]], bool]:
        """Newest first, at most ``query.limit``, and whether older ones match too."""
        kept = self._kept()
        if query.before is not None:
            found = [e for e in kept if e[_REQUEST_ID] == query.before]
            if not found:
                raise UnknownCursor(query.before)
            cursor = (found[-1][_STARTED], found[-1][0])
            kept = [e for e in kept if (e[_STARTED], e[0]) < cursor]
        for field, value in (
            ("operation", query.operation),
            ("status", query.status),
            ("method", query.method),
            ("request_id", query.request_id),
        ):
            if value is not None:
                at = _AT[field]
                kept = [e for e in kept if e[at] == value]
        if query.workspace is not None:
            kept = [e for e in kept if query.workspace in (e[_WORKSPACE], e[_WORKSPACE_ID])]
        if query.since_us is not None:
            kept = [e for e in kept if e[_STARTED] >= query.since_us]
        kept.sort(key=lambda e: (e[_STARTED], e[0]), reverse=True)
        return [_entry(e) for e in kept[: query.limit]], len(kept) > query.limit

    def recent(
        self, workspace: str | None, after_seq: int, limit: int, *, include_console: bool
    ) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """For the console: entries newer than ``after_seq``, oldest first, at most ``limit`` (the
        newest), with their sequence numbers, and the newest sequence number. With ``workspace``
        the numbers are that workspace's own (they say nothing about other workspaces' traffic);
        without, the server's."""
        kept = self._kept()
        newest = int(kept[-1][0]) if kept else 0
        if not include_console:
            kept = [e for e in kept if e[_OPERATION] != "console"]
        if workspace is None:
            shown = [(int(e[0]), e) for e in kept if e[0] > after_seq]
            last = newest
        else:
            shown = [(int(e[1]), e) for e in kept if e[_WORKSPACE] == workspace and e[1] > after_seq]
            found = self.shared.read("SELECT last FROM journal_seqs WHERE workspace = ?", (workspace,))
            last = int(str(found[0][0])) if found else 0
        shown.sort(key=lambda pair: pair[0])
        return [(seq, _entry(e)) for seq, e in shown[-limit:]] if limit > 0 else [], last
