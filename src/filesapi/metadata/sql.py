"""The metadata store on SQLAlchemy Core: SQLite (file or memory) today, PostgreSQL on the same schema.

Database errors are translated here, at the edge: callers see ``BackendUnavailable``, never a
driver exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import event, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from filesapi.errors import BackendUnavailable
from filesapi.ids import new_workspace_id
from filesapi.metadata.base import MetadataStore
from filesapi.metadata.migrate import ensure_schema
from filesapi.metadata.schema import api_keys, files, server_secrets, workspaces
from filesapi.models import ApiKey, FilePage, FileRecord, Workspace, WorkspaceStats

__all__ = ["SqlMetadataStore", "create_engine_for_url"]


def create_engine_for_url(url: str) -> AsyncEngine:
    """Map a filesapi metadata URL to an async SQLAlchemy engine."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        # One shared connection: an in-memory SQLite database lives and dies with its connection.
        engine = create_async_engine(
            "sqlite+aiosqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    elif parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:  # sqlite://relative/path is a common slip; treat host as the first segment
            path = parts.netloc + path
        if not path:
            raise ValueError(f"metadata URL {url!r} has no path")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30})
    elif parts.scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return create_async_engine(
            "postgresql+asyncpg://" + url.split("://", 1)[1],
            pool_pre_ping=True,  # a connection the database dropped is replaced, not handed out
            pool_size=10,
            max_overflow=20,
            pool_timeout=10,
            connect_args={"timeout": 5, "command_timeout": 30},
        )
    else:
        raise ValueError(
            f"unsupported metadata URL {url!r} (use sqlite:///path, postgresql://user@host/db or memory://)"
        )

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        if parts.scheme == "sqlite":
            cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the client hears 200 (NORMAL can lose it on power loss).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        raise BackendUnavailable(f"The metadata database failed: {type(exc.orig).__name__}.") from exc
    except SQLAlchemyError as exc:  # pool timeouts and the like
        raise BackendUnavailable(f"The metadata database failed: {type(exc).__name__}.") from exc
    except OSError as exc:
        raise BackendUnavailable(f"The metadata database is unreachable: {exc.strerror or exc}.") from exc


def _file(row: Row[Any, Any]) -> FileRecord:
    m = row._mapping
    return FileRecord(
        id=m["id"],
        workspace_id=m["workspace_id"],
        filename=m["filename"],
        mime_type=m["mime_type"],
        size_bytes=m["size_bytes"],
        created_at_us=m["created_at_us"],
        downloadable=bool(m["downloadable"]),
        checksum=m["checksum"],
        scope_id=m["scope_id"],
        expires_at_us=m["expires_at_us"],
        quarantined=m["quarantined_at_us"] is not None,
    )


def _workspace(row: Row[Any, Any]) -> Workspace:
    return Workspace(id=row._mapping["id"], name=row._mapping["name"])


_VISIBLE = files.c.deleted_at_us.is_(None)


class SqlMetadataStore(MetadataStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        in_memory = self._is_sqlite and engine.url.database in (None, "", ":memory:")
        # SQLite has one writer at a time; queueing writers here beats spinning on its busy lock.
        # In memory all calls share one connection, so reads queue too.
        self._write_lock = asyncio.Lock() if self._is_sqlite else None
        self._read_lock = self._write_lock if in_memory else None
        self._named_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    async def open(cls, url: str, *, upgrade: bool = False) -> SqlMetadataStore:
        """Open the store, creating the schema in an empty database. An existing database on an
        older schema is refused (``SchemaOutOfDate``) unless ``upgrade`` is set."""
        engine = create_engine_for_url(url)
        try:
            with _translated():
                await ensure_schema(engine, auto_upgrade=upgrade)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @asynccontextmanager
    async def _begin(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        lock = self._write_lock if write else self._read_lock
        async with lock or nullcontext():
            with _translated():
                async with self.engine.begin() as conn:
                    yield conn

    async def close(self) -> None:
        await self.engine.dispose()

    # -- workspaces
    async def find_workspace(self, name_or_id: str) -> Workspace | None:
        query = select(workspaces.c.id, workspaces.c.name).where(
            or_(workspaces.c.name == name_or_id, workspaces.c.id == name_or_id)
        )
        async with self._begin(write=False) as conn:
            row = (await conn.execute(query)).first()
        return _workspace(row) if row else None

    async def ensure_workspace(self, name: str) -> Workspace:
        query = select(workspaces.c.id, workspaces.c.name).where(workspaces.c.name == name)
        async with self._begin(write=False) as conn:
            row = (await conn.execute(query)).first()
        if row:
            return _workspace(row)
        try:
            async with self._begin(write=True) as conn:
                await conn.execute(
                    insert(workspaces).values(
                        id=new_workspace_id(), name=name, used_bytes=0, created_at_us=time.time_ns() // 1000
                    )
                )
        except BackendUnavailable as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise  # else another process created it first: fine
        async with self._begin(write=False) as conn:
            row = (await conn.execute(query)).one()
        return _workspace(row)

    async def used_bytes(self, workspace_id: str) -> int:
        async with self._begin(write=False) as conn:
            value = await conn.scalar(select(workspaces.c.used_bytes).where(workspaces.c.id == workspace_id))
        return int(value or 0)

    async def workspace_stats(self) -> list[WorkspaceStats]:
        counts = (
            select(files.c.workspace_id, func.count().label("n"))
            .where(_VISIBLE)
            .group_by(files.c.workspace_id)
            .subquery()
        )
        query = (
            select(workspaces.c.id, workspaces.c.name, workspaces.c.used_bytes, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.workspace_id == workspaces.c.id)
            .order_by(workspaces.c.name)
        )
        async with self._begin(write=False) as conn:
            rows = (await conn.execute(query)).all()
        return [WorkspaceStats(Workspace(id=r[0], name=r[1]), files=int(r[3]), bytes=int(r[2])) for r in rows]

    # -- files
    async def insert_file(self, record: FileRecord, quota_bytes: int | None) -> bool:
        charge = update(workspaces).where(workspaces.c.id == record.workspace_id)
        if quota_bytes is not None:
            charge = charge.where(workspaces.c.used_bytes + record.size_bytes <= quota_bytes)
        charge = charge.values(used_bytes=workspaces.c.used_bytes + record.size_bytes)
        async with self._begin(write=True) as conn:
            # The conditional UPDATE takes the workspace row's write lock first, so concurrent
            # inserts (in this process or another replica) are checked one after the other.
            if (await conn.execute(charge)).rowcount != 1:
                return False
            await conn.execute(
                insert(files).values(
                    id=record.id,
                    workspace_id=record.workspace_id,
                    filename=record.filename,
                    mime_type=record.mime_type,
                    size_bytes=record.size_bytes,
                    checksum=record.checksum,
                    created_at_us=record.created_at_us,
                    downloadable=record.downloadable,
                    scope_id=record.scope_id,
                    expires_at_us=record.expires_at_us,
                )
            )
        return True

    async def get_file(self, workspace_id: str, file_id: str) -> FileRecord | None:
        query = select(files).where(files.c.id == file_id, files.c.workspace_id == workspace_id, _VISIBLE)
        async with self._begin(write=False) as conn:
            row = (await conn.execute(query)).first()
        return _file(row) if row else None

    async def list_files(
        self,
        workspace_id: str,
        *,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        scope_id: str | None = None,
    ) -> FilePage:
        query = select(files).where(files.c.workspace_id == workspace_id, _VISIBLE)
        if scope_id is not None:
            query = query.where(files.c.scope_id == scope_id)
        if after_id is not None:
            query = query.where(files.c.id < after_id)
        if before_id is not None:
            query = query.where(files.c.id > before_id)
        toward_newer = before_id is not None and after_id is None
        query = query.order_by(files.c.id.asc() if toward_newer else files.c.id.desc()).limit(limit + 1)
        async with self._begin(write=False) as conn:
            rows = (await conn.execute(query)).all()
        records = [_file(r) for r in rows[:limit]]
        if toward_newer:
            records.reverse()
        return FilePage(files=records, has_more=len(rows) > limit)

    async def get_files(self, workspace_id: str, file_ids: Sequence[str]) -> list[FileRecord]:
        if not file_ids:
            return []
        query = (
            select(files)
            .where(files.c.workspace_id == workspace_id, _VISIBLE, files.c.id.in_(list(file_ids)))
            .order_by(files.c.id.desc())
        )
        async with self._begin(write=False) as conn:
            rows = (await conn.execute(query)).all()
        return [_file(r) for r in rows]

    async def hide_file(self, workspace_id: str, file_id: str, now_us: int) -> FileRecord | None:
        hide = (
            update(files)
            .where(files.c.id == file_id, files.c.workspace_id == workspace_id, _VISIBLE)
            .values(deleted_at_us=now_us)
            .returning(*files.c)
        )
        async with self._begin(write=True) as conn:
            row = (await conn.execute(hide)).first()
            if row is None:
                return None
            record = _file(row)
            if row._mapping["purged_at_us"] is None:  # an expiry purge already released the bytes
                await conn.execute(
                    update(workspaces)
                    .where(workspaces.c.id == workspace_id)
                    .values(used_bytes=workspaces.c.used_bytes - record.size_bytes)
                )
        return record

    async def hide_all(self, workspace_id: str | None, now_us: int) -> int:
        hide = update(files).where(_VISIBLE).values(deleted_at_us=now_us)
        release = update(workspaces).values(used_bytes=0)
        if workspace_id is not None:
            hide = hide.where(files.c.workspace_id == workspace_id)
            release = release.where(workspaces.c.id == workspace_id)
        async with self._begin(write=True) as conn:
            hidden = (await conn.execute(hide)).rowcount
            await conn.execute(release)
        return int(hidden)

    async def purge_file(self, file_id: str) -> None:
        async with self._begin(write=True) as conn:
            await conn.execute(
                files.delete().where(files.c.id == file_id, files.c.deleted_at_us.is_not(None))
            )

    async def _claim(self, condition: Any, limit: int, now_us: int, lease_us: int) -> list[Row[Any, Any]]:
        claimable = condition & or_(files.c.lease_until_us.is_(None), files.c.lease_until_us < now_us)
        # SKIP LOCKED: replicas sweeping at once each take different rows (SQLite ignores it and
        # serializes writers instead).
        pick = (
            select(files).where(claimable).order_by(files.c.id).limit(limit).with_for_update(skip_locked=True)
        )
        async with self._begin(write=True) as conn:
            rows = list((await conn.execute(pick)).all())
            if rows:
                await conn.execute(
                    update(files)
                    .where(files.c.id.in_([r._mapping["id"] for r in rows]))
                    .values(lease_until_us=now_us + lease_us)
                )
        return rows

    async def claim_hidden(self, limit: int, now_us: int, lease_us: int) -> list[str]:
        rows = await self._claim(files.c.deleted_at_us.is_not(None), limit, now_us, lease_us)
        return [r._mapping["id"] for r in rows]

    async def claim_expired(self, limit: int, now_us: int, lease_us: int) -> list[FileRecord]:
        expired = _VISIBLE & files.c.purged_at_us.is_(None) & (files.c.expires_at_us <= now_us)
        return [_file(r) for r in await self._claim(expired, limit, now_us, lease_us)]

    async def mark_purged(self, file_id: str, now_us: int) -> None:
        mark = (
            update(files)
            .where(files.c.id == file_id, files.c.purged_at_us.is_(None))
            .values(purged_at_us=now_us)
            .returning(files.c.workspace_id, files.c.size_bytes, files.c.deleted_at_us)
        )
        async with self._begin(write=True) as conn:
            row = (await conn.execute(mark)).first()
            if row is not None and row.deleted_at_us is None:  # a hidden file's bytes were released already
                await conn.execute(
                    update(workspaces)
                    .where(workspaces.c.id == row.workspace_id)
                    .values(used_bytes=workspaces.c.used_bytes - row.size_bytes)
                )

    async def scan_files(self, after_id: str | None, limit: int) -> list[FileRecord]:
        query = select(files).where(_VISIBLE, files.c.purged_at_us.is_(None))
        if after_id is not None:
            query = query.where(files.c.id > after_id)
        async with self._begin(write=False) as conn:
            rows = (await conn.execute(query.order_by(files.c.id).limit(limit))).all()
        return [_file(r) for r in rows]

    async def quarantine(self, file_id: str, now_us: int) -> None:
        async with self._begin(write=True) as conn:
            await conn.execute(
                update(files)
                .where(files.c.id == file_id, files.c.quarantined_at_us.is_(None))
                .values(quarantined_at_us=now_us)
            )

    async def existing_ids(self, file_ids: Sequence[str]) -> set[str]:
        if not file_ids:
            return set()
        async with self._begin(write=False) as conn:
            found = await conn.scalars(select(files.c.id).where(files.c.id.in_(list(file_ids))))
            return set(found.all())

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        if self._is_sqlite:
            lock = self._named_locks.setdefault(name, asyncio.Lock())
            if lock.locked():
                yield False
                return
            async with lock:
                yield True
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with _translated():
            async with self.engine.connect() as conn:
                got = bool(await conn.scalar(select(func.pg_try_advisory_lock(key))))
                try:
                    yield got
                finally:
                    if got:
                        await conn.scalar(select(func.pg_advisory_unlock(key)))
                    await conn.commit()

    async def check(self) -> None:
        async with self._begin(write=False) as conn:
            await conn.scalar(select(1))

    # -- keys
    async def add_key(self, key: ApiKey) -> None:
        async with self._begin(write=True) as conn:
            await conn.execute(
                insert(api_keys).values(
                    key_id=key.key_id,
                    workspace_id=key.workspace.id,
                    key_hash=key.key_hash,
                    label=key.label,
                    created_at_us=key.created_at_us,
                    revoked_at_us=key.revoked_at_us,
                )
            )

    def _keys_query(self) -> Any:
        return select(api_keys, workspaces.c.name.label("workspace_name")).join(
            workspaces, workspaces.c.id == api_keys.c.workspace_id
        )

    @staticmethod
    def _key(row: Row[Any, Any]) -> ApiKey:
        m = row._mapping
        return ApiKey(
            key_id=m["key_id"],
            workspace=Workspace(id=m["workspace_id"], name=m["workspace_name"]),
            key_hash=m["key_hash"],
            created_at_us=m["created_at_us"],
            revoked_at_us=m["revoked_at_us"],
            label=m["label"],
        )

    async def find_key(self, key_id: str) -> ApiKey | None:
        async with self._begin(write=False) as conn:
            row = (await conn.execute(self._keys_query().where(api_keys.c.key_id == key_id))).first()
        return self._key(row) if row else None

    async def list_keys(self) -> list[ApiKey]:
        async with self._begin(write=False) as conn:
            rows = (await conn.execute(self._keys_query().order_by(api_keys.c.created_at_us))).all()
        return [self._key(r) for r in rows]

    async def revoke_key(self, key_id: str, now_us: int) -> bool:
        revoke = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at_us.is_(None))
            .values(revoked_at_us=now_us)
        )
        async with self._begin(write=True) as conn:
            return bool((await conn.execute(revoke)).rowcount == 1)

    # -- secrets
    async def secret(self, name: str, create: Callable[[], str]) -> str:
        query = select(server_secrets.c.value).where(server_secrets.c.name == name)
        async with self._begin(write=False) as conn:
            value = await conn.scalar(query)
        if value is None:
            try:
                async with self._begin(write=True) as conn:
                    await conn.execute(insert(server_secrets).values(name=name, value=create()))
            except BackendUnavailable as exc:
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
            async with self._begin(write=False) as conn:
                value = await conn.scalar(query)
        return str(value)
