"""The metadata store on SQLAlchemy Core, one schema for SQLite (file or memory) and PostgreSQL.

Each operation is a synchronous function on a SQLAlchemy ``Connection`` that a runner
(``filesapi.metadata.runners``) executes in one transaction, the way its database runs best.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from filesapi.errors import BackendUnavailable
from filesapi.ids import new_workspace_id
from filesapi.metadata import limits
from filesapi.metadata._rows import api_key, file_maker, file_record
from filesapi.metadata.base import MetadataStore
from filesapi.metadata.migrate import current_revision, ensure_schema
from filesapi.metadata.runners import (
    AsyncRunner,
    MergeableWrite,
    Runner,
    execute_fast,
    execute_rows,
    runner_for_url,
    translated,
)
from filesapi.metadata.schema import api_keys, files, inline_contents, server_secrets, workspaces
from filesapi.models import ApiKey, FilePage, FileRecord, Workspace, WorkspaceStats

__all__ = ["SqlMetadataStore"]

_T = TypeVar("_T")
_VISIBLE = files.c.deleted_at_us.is_(None)


# The list pages kept hold at most this many records together (pages of up to 1,000 records).
_KEPT_PAGE_RECORDS = 16_384


_KEYS = select(api_keys, workspaces.c.name.label("workspace_name")).join(
    workspaces, workspaces.c.id == api_keys.c.workspace_id
)

# The hot reads are built once with bound parameters: building a statement and its cache key
# costs more than SQLite takes to answer it (measured: 83 us per built-and-run point read,
# 25 us prepared).
_FIND_KEY = _KEYS.where(api_keys.c.key_id == bindparam("key_id"))
_GET_FILE = select(files).where(
    files.c.id == bindparam("file_id"), files.c.workspace_id == bindparam("workspace_id"), _VISIBLE
)
_GET_FILES = (
    select(files)
    .where(
        files.c.workspace_id == bindparam("workspace_id"),
        _VISIBLE,
        files.c.id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(files.c.id.desc())
)
_USED_BYTES = select(workspaces.c.used_bytes).where(workspaces.c.id == bindparam("workspace_id"))
_FIND_WORKSPACE = select(workspaces.c.id, workspaces.c.name).where(
    or_(workspaces.c.name == bindparam("name_or_id"), workspaces.c.id == bindparam("name_or_id"))
)


# Every change to the files a workspace lists raises its files_version in the same transaction.
_FILES_CHANGED = workspaces.c.files_version + 1
_FILES_VERSION = select(workspaces.c.files_version).where(workspaces.c.id == bindparam("workspace_id"))
_CHARGE = (
    update(workspaces)
    .where(workspaces.c.id == bindparam("workspace_id"))
    .values(used_bytes=workspaces.c.used_bytes + bindparam("size"), files_version=_FILES_CHANGED)
)
_CHARGE_WITHIN_QUOTA = _CHARGE.where(workspaces.c.used_bytes + bindparam("size") <= bindparam("quota"))
# The columns an upload writes, named as the FileRecord fields that fill them.
_FILE_FIELDS = (
    "id",
    "workspace_id",
    "filename",
    "mime_type",
    "size_bytes",
    "checksum",
    "created_at_us",
    "downloadable",
    "scope_id",
    "expires_at_us",
    "stored_inline",
)
_INSERT_FILE = insert(files).values({name: bindparam(name) for name in _FILE_FIELDS})
_INSERT_CONTENT = insert(inline_contents).values(file_id=bindparam("file_id"), content=bindparam("content"))
_INLINE_CONTENT = select(inline_contents.c.content).where(inline_contents.c.file_id == bindparam("file_id"))


@cache
def _list_query(after: bool, before: bool, scoped: bool) -> Select[Any]:
    """Newest first (or oldest first when paging toward newer files from ``before_id`` alone)."""
    query = select(files).where(files.c.workspace_id == bindparam("workspace_id"), _VISIBLE)
    if scoped:
        query = query.where(files.c.scope_id == bindparam("scope_id"))
    if after:
        query = query.where(files.c.id < bindparam("after_id"))
    if before:
        query = query.where(files.c.id > bindparam("before_id"))
    toward_newer = before and not after
    return query.order_by(files.c.id.asc() if toward_newer else files.c.id.desc()).limit(bindparam("limit"))


# The sweeper's and scrub's queries, as functions of their arguments (tests/test_query_plans.py
# asserts the index each uses, with every other hot query here).
_HIDDEN_ROWS = files.c.deleted_at_us.is_not(None)


def _expired_rows(now_us: int) -> Any:
    return _VISIBLE & files.c.purged_at_us.is_(None) & (files.c.expires_at_us <= now_us)


def _claim_query(condition: Any, order: Any, limit: int, now_us: int) -> Select[Any]:
    """``order``: the column of the partial index that holds exactly the candidates (``id`` for
    hidden rows, ``expires_at_us`` for expiring ones). Ordered by another column, PostgreSQL may walk
    the primary key and filter: measured at 10 million files, 1.6 s per claim of expired rows
    (1.4 million rows skipped), growing as purged rows pile up in front."""
    claimable = condition & or_(files.c.lease_until_us.is_(None), files.c.lease_until_us < now_us)
    # SKIP LOCKED: replicas sweeping at once each take different rows (SQLite ignores it and
    # serializes writers instead).
    return select(files).where(claimable).order_by(order).limit(limit).with_for_update(skip_locked=True)


def _scan_query(after_id: str | None, limit: int) -> Select[Any]:
    query = select(files).where(_VISIBLE, files.c.purged_at_us.is_(None))
    if after_id is not None:
        query = query.where(files.c.id > after_id)
    return query.order_by(files.c.id).limit(limit)


def _existing_ids_query(file_ids: Sequence[str]) -> Select[Any]:
    return select(files.c.id).where(files.c.id.in_(list(file_ids)))


class _MergeRefused(Exception):
    """The merged statements cannot stand for each write alone: run them one by one."""


class _InsertFile(MergeableWrite):
    """One upload's row (and inline bytes), charged to its workspace. Without a quota, the uploads
    of one workspace that a group commit gathers go in together: one UPDATE of the workspace by
    their total and one INSERT of many rows per table, not three statements each."""

    __slots__ = ("_charge", "_content", "_quota", "_row", "merge_key")

    def __init__(self, record: FileRecord, quota_bytes: int | None, content: bytes | None) -> None:
        self._row = {name: getattr(record, name) for name in _FILE_FIELDS}
        self._quota = quota_bytes
        self._content = content
        self._charge = {"workspace_id": record.workspace_id, "size": record.size_bytes, "quota": quota_bytes}
        # With a quota each upload is checked against what the ones before it left.
        self.merge_key = None if quota_bytes is not None else ("insert_file", record.workspace_id)

    def __call__(self, conn: Connection) -> bool:
        # The conditional UPDATE takes the workspace row's write lock first, so concurrent
        # inserts (in this process or another replica) are checked one after the other.
        charge = _CHARGE if self._quota is None else _CHARGE_WITHIN_QUOTA
        if execute_fast(conn, charge, self._charge) != 1:
            return False
        execute_fast(conn, _INSERT_FILE, self._row)
        if self._content is not None:
            execute_fast(conn, _INSERT_CONTENT, {"file_id": self._row["id"], "content": self._content})
        return True

    @classmethod
    def run_merged(cls, conn: Connection, writes: Sequence[_InsertFile]) -> list[bool]:
        total = sum(w._row["size_bytes"] for w in writes)
        if execute_fast(conn, _CHARGE, {"workspace_id": writes[0]._row["workspace_id"], "size": total}) != 1:
            raise _MergeRefused("the workspace is gone")  # alone, each answers False
        execute_rows(conn, _INSERT_FILE, [w._row for w in writes])
        inline = [{"file_id": w._row["id"], "content": w._content} for w in writes if w._content is not None]
        if inline:
            execute_rows(conn, _INSERT_CONTENT, inline)
        return [True] * len(writes)


def _find_workspace(conn: Connection, name_or_id: str) -> Workspace | None:
    row = conn.execute(_FIND_WORKSPACE, {"name_or_id": name_or_id}).first()
    return Workspace(id=row.id, name=row.name) if row else None


def _release(conn: Connection, workspace_id: str, size: int, *, listed: bool = False) -> None:
    """Give back ``size`` bytes of the workspace's quota; ``listed``: a listed file went."""
    values: dict[str, Any] = {"used_bytes": workspaces.c.used_bytes - size}
    if listed:
        values["files_version"] = _FILES_CHANGED
    conn.execute(update(workspaces).where(workspaces.c.id == workspace_id).values(values))


def _drop_content(conn: Connection, file_id: str) -> None:
    conn.execute(inline_contents.delete().where(inline_contents.c.file_id == file_id))


class SqlMetadataStore(MetadataStore):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._named_locks: dict[str, asyncio.Lock] = {}
        # The list pages this process answered: (workspace, limit, after, before, scope) ->
        # (the workspace's files version when read, the page). Pages and records are never changed.
        self._pages: dict[tuple[str, int, str | None, str | None, str | None], tuple[int, FilePage]] = {}
        self._kept_records = 0  # in those pages, counted as they were kept

    @classmethod
    async def open(cls, url: str, *, upgrade: bool = False) -> SqlMetadataStore:
        """Open the store, creating the schema in an empty database. An existing database on an
        older schema is refused (``SchemaOutOfDate``) unless ``upgrade`` is set."""
        store = cls.connect(url)
        try:
            await store.runner.write(lambda conn: ensure_schema(conn, auto_upgrade=upgrade))
        except BaseException:
            await store.close()
            raise
        return store

    @classmethod
    def connect(cls, url: str) -> SqlMetadataStore:
        """The store without looking at its schema (for `filesapi db current`)."""
        return cls(runner_for_url(url))

    async def read(self, fn: Callable[[Connection], _T]) -> _T:
        """Run ``fn`` on a connection in a read transaction (for admin tools and tests)."""
        return await self.runner.read(fn)

    async def close(self) -> None:
        await self.runner.close()

    # -- schema
    async def current_revision(self) -> str | None:
        return await self.runner.read(current_revision)

    # -- workspaces
    async def find_workspace(self, name_or_id: str) -> Workspace | None:
        return await self.runner.read(lambda conn: _find_workspace(conn, name_or_id))

    async def ensure_workspace(self, name: str) -> Workspace:
        found = await self.find_workspace(name)
        if found is not None:
            return found

        def create(conn: Connection) -> None:
            if _find_workspace(conn, name) is None:
                conn.execute(
                    insert(workspaces).values(
                        id=new_workspace_id(), name=name, used_bytes=0, created_at_us=time.time_ns() // 1000
                    )
                )

        try:
            await self.runner.write(create)
        except BackendUnavailable as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise  # else another process created it first: fine
        workspace = await self.find_workspace(name)
        assert workspace is not None
        return workspace

    async def used_bytes(self, workspace_id: str) -> int:
        params = {"workspace_id": workspace_id}
        return int(await self.runner.read(lambda conn: conn.scalar(_USED_BYTES, params)) or 0)

    async def workspace_stats(self) -> list[WorkspaceStats]:
        counts = (
            select(files.c.workspace_id, func.count().label("n"))
            .where(_VISIBLE)
            .group_by(files.c.workspace_id)
        )
        counted = counts.subquery()
        query = (
            select(workspaces.c.id, workspaces.c.name, workspaces.c.used_bytes, func.coalesce(counted.c.n, 0))
            .outerjoin(counted, counted.c.workspace_id == workspaces.c.id)
            .order_by(workspaces.c.name)
        )
        rows = await self.runner.read(lambda conn: conn.execute(query).all())
        return [WorkspaceStats(Workspace(id=r[0], name=r[1]), files=int(r[3]), bytes=int(r[2])) for r in rows]

    # -- files
    async def insert_file(
        self, record: FileRecord, quota_bytes: int | None, content: bytes | None = None
    ) -> bool:
        if (content is not None) != record.stored_inline:
            raise ValueError("content is given exactly for files stored inline")
        return await self.runner.write(_InsertFile(record, quota_bytes, content))

    async def inline_content(self, file_id: str) -> bytes | None:
        rows = await self.runner.fetch(_INLINE_CONTENT, {"file_id": file_id})
        return bytes(rows[0]["content"]) if rows else None

    async def get_file(self, workspace_id: str, file_id: str) -> FileRecord | None:
        columns, rows = await self.runner.fetch_kept(
            _GET_FILE, {"file_id": file_id, "workspace_id": workspace_id}
        )
        return file_maker(columns)(rows[0]) if rows else None

    async def list_files(
        self,
        workspace_id: str,
        *,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        scope_id: str | None = None,
    ) -> FilePage:
        # The workspace's files version first: a page read after it is at least as new as it, so
        # a page is never kept under a version newer than its own (at worst it is read again).
        found = await self.runner.fetch_kept(_FILES_VERSION, {"workspace_id": workspace_id})
        version = found[1][0][0] if found[1] else None
        key = (workspace_id, limit, after_id, before_id, scope_id)
        kept = self._pages.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        query = _list_query(after_id is not None, before_id is not None, scope_id is not None)
        params = {
            "workspace_id": workspace_id,
            "scope_id": scope_id,
            "after_id": after_id,
            "before_id": before_id,
            "limit": limit + 1,
        }
        columns, rows = await self.runner.fetch_tuples(query, params)
        toward_newer = before_id is not None and after_id is None
        make = file_maker(columns)
        records = [make(r) for r in rows[:limit]]
        if toward_newer:
            records.reverse()
        page = FilePage(files=records, has_more=len(rows) > limit)
        if version is not None:  # (no such workspace: nothing to keep)
            self._kept_records += len(records)
            if self._kept_records > _KEPT_PAGE_RECORDS:
                self._pages.clear()
                self._kept_records = len(records)
            self._pages[key] = (version, page)
        return page

    async def get_files(self, workspace_id: str, file_ids: Sequence[str]) -> list[FileRecord]:
        if not file_ids:
            return []
        params = {"workspace_id": workspace_id, "ids": list(file_ids)}
        rows = await self.runner.read(lambda conn: conn.execute(_GET_FILES, params).all())
        return [file_record(r) for r in rows]

    async def hide_file(self, workspace_id: str, file_id: str, now_us: int) -> FileRecord | None:
        hide = (
            update(files)
            .where(files.c.id == file_id, files.c.workspace_id == workspace_id, _VISIBLE)
            .values(deleted_at_us=now_us)
            .returning(*files.c)
        )

        def run(conn: Connection) -> FileRecord | None:
            row = conn.execute(hide).first()
            if row is None:
                return None
            record = file_record(row)
            # An expiry purge already released the bytes; the file was listed all the same.
            released = record.size_bytes if row._mapping["purged_at_us"] is None else 0
            _release(conn, workspace_id, released, listed=True)
            return record

        return await self.runner.write(run)

    async def hide_all(self, workspace_id: str | None, now_us: int) -> int:
        hide = update(files).where(_VISIBLE).values(deleted_at_us=now_us)
        zero = update(workspaces).values(used_bytes=0, files_version=_FILES_CHANGED)
        if workspace_id is not None:
            hide = hide.where(files.c.workspace_id == workspace_id)
            zero = zero.where(workspaces.c.id == workspace_id)

        def run(conn: Connection) -> int:
            hidden = conn.execute(hide).rowcount
            conn.execute(zero)
            return int(hidden)

        return await self.runner.write(run)

    async def purge_file(self, file_id: str) -> None:
        purge = files.delete().where(files.c.id == file_id, files.c.deleted_at_us.is_not(None))

        def run(conn: Connection) -> None:
            if conn.execute(purge).rowcount:
                _drop_content(conn, file_id)

        await self.runner.write(run)

    # -- sweeping
    async def _claim(
        self, condition: Any, order: Any, limit: int, now_us: int, lease_us: int
    ) -> list[Row[Any, Any]]:
        pick = _claim_query(condition, order, limit, now_us)

        def run(conn: Connection) -> list[Row[Any, Any]]:
            rows = list(conn.execute(pick).all())
            if rows:
                conn.execute(
                    update(files)
                    .where(files.c.id.in_([r._mapping["id"] for r in rows]))
                    .values(lease_until_us=now_us + lease_us)
                )
            return rows

        return await self.runner.write(run)

    async def claim_hidden(self, limit: int, now_us: int, lease_us: int) -> list[str]:
        rows = await self._claim(_HIDDEN_ROWS, files.c.id, limit, now_us, lease_us)
        return [r._mapping["id"] for r in rows]

    async def claim_expired(self, limit: int, now_us: int, lease_us: int) -> list[FileRecord]:
        return [
            file_record(r)
            for r in await self._claim(_expired_rows(now_us), files.c.expires_at_us, limit, now_us, lease_us)
        ]

    async def mark_purged(self, file_id: str, now_us: int) -> None:
        mark = (
            update(files)
            .where(files.c.id == file_id, files.c.purged_at_us.is_(None))
            .values(purged_at_us=now_us)
            .returning(files.c.workspace_id, files.c.size_bytes, files.c.deleted_at_us)
        )

        def run(conn: Connection) -> None:
            row = conn.execute(mark).first()
            if row is None:
                return
            _drop_content(conn, file_id)
            if row.deleted_at_us is None:  # a hidden file's bytes were released already
                _release(conn, row.workspace_id, row.size_bytes)

        await self.runner.write(run)

    async def scan_files(self, after_id: str | None, limit: int) -> list[FileRecord]:
        query = _scan_query(after_id, limit)
        return [file_record(r) for r in await self.runner.read(lambda conn: conn.execute(query).all())]

    async def quarantine(self, file_id: str, now_us: int) -> None:
        mark = (
            update(files)
            .where(files.c.id == file_id, files.c.quarantined_at_us.is_(None))
            .values(quarantined_at_us=now_us)
        )
        await self.runner.write(lambda conn: conn.execute(mark))

    async def existing_ids(self, file_ids: Sequence[str]) -> set[str]:
        if not file_ids:
            return set()
        query = _existing_ids_query(file_ids)
        return set(await self.runner.read(lambda conn: conn.scalars(query).all()))

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        if not isinstance(self.runner, AsyncRunner):  # SQLite: one process serves a database
            lock = self._named_locks.setdefault(name, asyncio.Lock())
            if lock.locked():
                yield False
                return
            async with lock:
                yield True
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with translated():
            async with self.runner.engine.connect() as conn:
                got = bool(await conn.scalar(select(func.pg_try_advisory_lock(key))))
                try:
                    yield got
                finally:
                    if got:
                        await conn.scalar(select(func.pg_advisory_unlock(key)))
                    await conn.commit()

    async def check(self) -> None:
        await self.runner.read(lambda conn: conn.scalar(select(1)))

    # -- keys
    async def add_key(self, key: ApiKey) -> None:
        row = insert(api_keys).values(
            key_id=key.key_id,
            workspace_id=key.workspace.id,
            key_hash=key.key_hash,
            label=key.label,
            created_at_us=key.created_at_us,
            revoked_at_us=key.revoked_at_us,
        )
        await self.runner.write(lambda conn: conn.execute(row))

    async def find_key(self, key_id: str) -> ApiKey | None:
        columns, rows = await self.runner.fetch_kept(_FIND_KEY, {"key_id": key_id})
        return api_key(dict(zip(columns, rows[0], strict=True))) if rows else None

    async def list_keys(self) -> list[ApiKey]:
        rows = await self.runner.read(
            lambda conn: conn.execute(_KEYS.order_by(api_keys.c.created_at_us)).all()
        )
        return [api_key(r) for r in rows]

    async def revoke_key(self, key_id: str, now_us: int) -> bool:
        revoke = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at_us.is_(None))
            .values(revoked_at_us=now_us)
        )
        return bool(await self.runner.write(lambda conn: conn.execute(revoke).rowcount == 1))

    # -- rate limits
    async def lease_tokens(
        self, client: str, rate: int, want: int, now_us: int, *, prune: bool = False
    ) -> tuple[int, float]:
        def run(conn: Connection) -> tuple[int, float]:
            if prune:
                limits.prune(conn, now_us)
            return limits.lease(conn, client, rate, want, now_us)

        return await self.runner.write(run)

    # -- secrets
    async def secret(self, name: str, create: Callable[[], str]) -> str:
        query = select(server_secrets.c.value).where(server_secrets.c.name == name)

        def get_or_create(conn: Connection) -> str:
            value = conn.scalar(query)
            if value is None:
                value = create()
                conn.execute(insert(server_secrets).values(name=name, value=value))
            return str(value)

        try:
            return await self.runner.write(get_or_create)
        except BackendUnavailable as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        # Another replica created it between our read and our insert: use theirs.
        return str(await self.runner.read(lambda conn: conn.scalar(query)))
