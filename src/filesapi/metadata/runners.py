"""How a metadata store runs its queries on each database.

Every query of ``SqlMetadataStore`` is a plain function on a synchronous SQLAlchemy
``Connection``, run in one transaction by a runner:

- PostgreSQL: on the asyncpg pool, through ``AsyncConnection.run_sync``.
- SQLite file: reads inline on the event loop on a connection of their own (a point read is tens of
  microseconds, far cheaper than a thread hop; WAL gives every read a consistent snapshot), writes
  on one writer thread with a connection of its own (commits fsync, which must not block the loop;
  SQLite has one writer at a time anyway, so queueing writers here beats spinning on its lock).
- SQLite in memory: everything inline on one connection (no disk, nothing to wait for).

Backend errors are translated here, at the edge: callers see ``BackendUnavailable``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qs, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Engine, Executable, Select, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from filesapi.errors import BackendUnavailable, InvalidRequest
from filesapi.metadata.walindex import WalIndex, wal_index

__all__ = [
    "AsyncRunner",
    "MergeableWrite",
    "Runner",
    "SqliteRunner",
    "execute_fast",
    "execute_rows",
    "runner_for_url",
    "translated",
]

_T = TypeVar("_T")


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except DataError as exc:  # the database refused a value (a client's): not an outage to retry
        raise InvalidRequest("A value in the request cannot be stored.") from exc
    except DBAPIError as exc:
        raise BackendUnavailable(f"The metadata database failed: {type(exc.orig).__name__}.") from exc
    except SQLAlchemyError as exc:  # pool timeouts and the like
        raise BackendUnavailable(f"The metadata database failed: {type(exc).__name__}.") from exc
    except sqlite3.Error as exc:  # from statements run on SQLite's own connection (execute_fast)
        raise BackendUnavailable(f"The metadata database failed: {type(exc).__name__}.") from exc
    except OSError as exc:
        raise BackendUnavailable(f"The metadata database is unreachable: {exc.strerror or exc}.") from exc


_KEPT_READS = 16_384  # SqliteRunner.fetch_kept's results, at most (one small row each, mostly)
_Compiled = tuple[str, tuple[str, ...], Mapping[str, Any]]
_COMPILED: dict[tuple[str, Executable], _Compiled] = {}
_COLUMNS: dict[str, tuple[str, ...]] = {}  # the result columns of each precompiled read


def _compiled(statement: Executable, dialect: Dialect) -> _Compiled:
    """The statement's SQL for ``dialect``, its positional parameter names and the values it
    carries itself (SQLite renders a LIMIT with an OFFSET), compiled once per statement."""
    key = (dialect.name, statement)
    found = _COMPILED.get(key)
    if found is None:
        result = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        if result.positiontup is None:
            raise ValueError("only statements with named bound parameters can be precompiled")
        found = _COMPILED[key] = (result.string, tuple(result.positiontup), result.params)
    return found


def _raw_params(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    _, names, defaults = compiled
    return [params[n] if n in params else defaults[n] for n in names]


def execute_fast(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> int:
    """Run one write statement and return its rowcount. On SQLite it goes to the driver's own
    connection, precompiled: SQLAlchemy's execution machinery costs several times what SQLite
    takes for a one-row write, on the writer thread that shares the GIL with the event loop (the
    upload path). Elsewhere, the usual way."""
    if conn.dialect.name != "sqlite":
        return int(conn.execute(statement, params).rowcount)
    compiled = _compiled(statement, conn.dialect)
    raw: Any = conn.connection.dbapi_connection
    return int(raw.execute(compiled[0], _raw_params(compiled, params)).rowcount)


_ROWS_PER_INSERT = 50  # 11 columns a row stays under SQLite's oldest limit of 999 parameters
_MULTI_ROW: dict[tuple[str, int], str] = {}


def execute_rows(conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run a one-row INSERT for every row of ``rows``: on SQLite as INSERTs of many rows each
    (one statement, one step, one release of the GIL, where ``executemany`` takes one per row);
    elsewhere, the usual way."""
    if conn.dialect.name != "sqlite":
        conn.execute(statement, list(rows))
        return
    compiled = _compiled(statement, conn.dialect)
    raw: Any = conn.connection.dbapi_connection
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        sql = _MULTI_ROW.get((compiled[0], len(part)))
        if sql is None:
            head, sep, values = compiled[0].partition(" VALUES ")
            if not sep or not (values.startswith("(") and values.endswith(")")):
                raise ValueError(f"not a one-row INSERT: {compiled[0]}")
            sql = _MULTI_ROW[(compiled[0], len(part))] = f"{head} VALUES {', '.join([values] * len(part))}"
        raw.execute(sql, [value for row in part for value in _raw_params(compiled, row)])


class MergeableWrite(ABC):
    """A write (a ``Runner.write`` function) that SQLite's writer may run in one go with the
    others of its ``merge_key`` that the same group commit gathered: they ran concurrently, so any
    order is theirs. ``merge_key`` None: run alone, like any function. If ``run_merged`` raises,
    the group commit runs every write alone, so one failure undoes no other write."""

    merge_key: Hashable | None

    @abstractmethod
    def __call__(self, conn: Connection) -> Any:
        """The write alone."""

    @classmethod
    @abstractmethod
    def run_merged(cls, conn: Connection, writes: Sequence[Any]) -> list[Any]:
        """All of ``writes`` (two or more, of one key); their results, in order."""


class Runner(ABC):
    dialect: str

    @abstractmethod
    async def read(self, fn: Callable[[Connection], _T]) -> _T:
        """Run ``fn`` in a read transaction."""

    @abstractmethod
    async def write(self, fn: Callable[[Connection], _T]) -> _T:
        """Run ``fn`` in a write transaction, committed when it returns, rolled back if it raises."""

    async def fetch(self, statement: Select[Any], params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The rows of one read statement, as mappings from column name to value."""
        columns, rows = await self.fetch_tuples(statement, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    async def fetch_tuples(
        self, statement: Select[Any], params: Mapping[str, Any]
    ) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """The result's column names and its rows as plain tuples (the hot reads build their
        records from positions, without a mapping per row)."""

        def run(conn: Connection) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
            result = conn.execute(statement, params)
            return tuple(result.keys()), [tuple(row) for row in result]

        return await self.read(run)

    async def fetch_kept(
        self, statement: Select[Any], params: Mapping[str, Any]
    ) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """``fetch_tuples`` for the reads asked again and again (a file's row, a workspace's files
        version, an API key), which a runner may answer from what it read before when it knows
        nothing has changed since. The rows may be shared: callers must not change them."""
        return await self.fetch_tuples(statement, params)

    @abstractmethod
    async def close(self) -> None: ...


class AsyncRunner(Runner):
    """PostgreSQL through SQLAlchemy's asyncio extension (asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def read(self, fn: Callable[[Connection], _T]) -> _T:
        return await self.write(fn)

    async def write(self, fn: Callable[[Connection], _T]) -> _T:
        with translated():
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.engine.dispose()


class SqliteRunner(Runner):
    """SQLite. Writes go through group commit: every write waiting while the writer thread commits
    is run in the next transaction, and all of them are answered after that single commit, so N
    concurrent uploads cost one fsync of the WAL, not N, and each is acknowledged only once it is
    durable."""

    dialect = "sqlite"

    def __init__(self, engine: Engine, *, in_memory: bool) -> None:
        self.engine = engine
        self._in_memory = in_memory
        with translated():
            self._reader = engine.connect()
            self._writer = self._reader if in_memory else engine.connect()
        self._writer.info["filesapi_writer"] = True
        if not in_memory:  # in memory the one connection is the writer: it keeps its BEGIN
            self._reader.info["filesapi_reader"] = True
        # The reader's own sqlite3 connection, in autocommit: each statement its own snapshot.
        self._raw: Any = self._reader.connection.dbapi_connection
        self._thread = (
            None if in_memory else concurrent.futures.ThreadPoolExecutor(1, "filesapi-sqlite-writer")
        )
        self._pending: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # The reads kept (fetch_kept), all read under one version of the WAL index.
        self._index: WalIndex | None = None
        self._index_tried = in_memory  # in memory there is no WAL index to read
        self._kept: dict[Hashable, tuple[tuple[str, ...], list[Sequence[Any]]]] = {}
        self._kept_version: bytes | None = None

    @staticmethod
    def _transaction(conn: Connection, fn: Callable[[Connection], _T]) -> _T:
        with translated(), conn.begin():
            return fn(conn)

    async def read(self, fn: Callable[[Connection], _T]) -> _T:
        return self._transaction(self._reader, fn)

    async def fetch_tuples(
        self, statement: Select[Any], params: Mapping[str, Any]
    ) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """The hot reads: the statement compiled once to SQLite's SQL, run on the raw connection.
        SQLAlchemy's execution machinery cost several times the read itself (a point read: about
        70 us through it, about 10 us like this)."""
        if self._in_memory:  # one connection shared with the writer: stay on SQLAlchemy's path
            return await super().fetch_tuples(statement, params)
        compiled = _compiled(statement, self.engine.dialect)
        sql = compiled[0]
        try:
            cursor = self._raw.execute(sql, _raw_params(compiled, params))
            rows = cursor.fetchall()
        except (sqlite3.Error, OSError):
            with translated():  # the same errors as every other statement's
                raise
        columns = _COLUMNS.get(sql)
        if columns is None:
            columns = _COLUMNS[sql] = tuple(d[0] for d in cursor.description)
        return columns, rows

    async def fetch_kept(
        self, statement: Select[Any], params: Mapping[str, Any]
    ) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """Answered from what was read before while the WAL index says no connection of any
        process has committed since (``filesapi.metadata.walindex``): no statement, so the GIL is
        never let go. A result is kept under the version read before its statement ran, and served
        only while that is still the database's version: then nothing has committed since, so the
        statement saw exactly the database as it is."""
        index = self._index
        version = index.version() if index is not None else None
        if version is None:
            result = await self.fetch_tuples(statement, params)
            if not self._index_tried:
                self._open_index()
            return result
        try:
            key: Hashable = (statement, *params.items())
            if version == self._kept_version:
                found = self._kept.get(key)
                if found is not None:
                    return found
            else:
                self._kept = {}
                self._kept_version = version
        except TypeError:  # a parameter that cannot be a key (a list of ids)
            return await self.fetch_tuples(statement, params)
        result = await self.fetch_tuples(statement, params)
        if self._kept_version == version:
            if len(self._kept) >= _KEPT_READS:
                self._kept.clear()
            self._kept[key] = result
        return result

    def _open_index(self) -> None:
        """After the reader's first read (so its connection holds the database's WAL index open),
        map the index, if the database is a file in WAL mode; else keep nothing."""
        self._index_tried = True
        try:
            mode = self._raw.execute("PRAGMA journal_mode").fetchone()[0]
            path = next(row[2] for row in self._raw.execute("PRAGMA database_list") if row[1] == "main")
            if str(mode).lower() == "wal" and path:
                self._index = wal_index(path)
        except (sqlite3.Error, OSError, StopIteration):
            self._index = None

    async def write(self, fn: Callable[[Connection], _T]) -> _T:
        if self._thread is None:  # in memory: nothing to wait for, and one connection for all
            return self._transaction(self._writer, fn)
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await loop.run_in_executor(
                        self._thread, self._commit_batch, [fn for fn, _ in batch]
                    )
                except BaseException as exc:  # cancelled while committing: tell every waiter
                    outcomes = [(False, exc)] * len(batch)
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(value) if ok else future.set_exception(value)
        finally:
            self._flusher = None

    def _commit_batch(self, fns: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        """On the writer thread: all of them in one transaction and one commit. If any fails, the
        transaction is rolled back and each is run alone, so one failure undoes no other write."""
        try:
            with translated(), self._writer.begin():
                return self._run_all(fns)
        except Exception as exc:
            if len(fns) == 1:
                return [(False, exc)]
        outcomes: list[tuple[bool, Any]] = []
        for fn in fns:
            try:
                outcomes.append((True, self._transaction(self._writer, fn)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes

    def _run_all(self, fns: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        """Every write of a batch in the open transaction; ``MergeableWrite``s of one key together."""
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(fns)
        groups: dict[Hashable, list[tuple[int, MergeableWrite]]] = {}
        for i, fn in enumerate(fns):
            if isinstance(fn, MergeableWrite) and fn.merge_key is not None:
                groups.setdefault(fn.merge_key, []).append((i, fn))
            else:
                outcomes[i] = (True, fn(self._writer))
        for group in groups.values():
            writes = [write for _, write in group]
            values = (
                type(writes[0]).run_merged(self._writer, writes)
                if len(writes) > 1
                else [writes[0](self._writer)]
            )
            for (i, _), value in zip(group, values, strict=True):
                outcomes[i] = (True, value)
        return outcomes

    async def close(self) -> None:
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._writer.close)
            self._thread.shutdown()
        self._index = None  # read only while the reader is open (never closed: see walindex)
        self._reader.close()
        self.engine.dispose()


def _sqlite_engine(url: str, *, in_memory: bool) -> Engine:
    if in_memory:
        # One shared connection: an in-memory database lives and dies with its connection.
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling defers it badly).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the client hears 200 (NORMAL can lose it on power loss).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # The writer takes the write lock up front, so another process's writer waits (busy
        # timeout) instead of failing when a transaction that began by reading tries to write.
        # The reader issues no BEGIN at all: every read is one statement, which SQLite runs on
        # its own consistent snapshot, and a BEGIN round trip cost more than the read itself.
        if conn.info.get("filesapi_writer"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not conn.info.get("filesapi_reader"):
            conn.exec_driver_sql("BEGIN")

    return engine


# Each process (each --workers worker of each replica) holds at most POOL_SIZE + POOL_OVERFLOW
# connections: POOL_SIZE kept open once used, the overflow closed when returned.
POOL_SIZE = 10
POOL_OVERFLOW = 20


def _postgres_engine(parts: SplitResult) -> AsyncEngine:
    """``?pgbouncer=transaction``: the server sits behind PgBouncer in transaction pooling, where
    consecutive transactions may run on different server connections. asyncpg prepares every
    statement under a name (``__asyncpg_stmt_N__``) and caches it per connection, so a name
    prepared on one server connection is then missing (or taken) on another; this turns both
    caches off and names each statement uniquely (tests/test_pgbouncer.py)."""
    query = parse_qs(parts.query, keep_blank_values=True)
    pooled = query.pop("pgbouncer", [""])[-1]
    if pooled not in ("", "transaction"):
        raise ValueError(f"pgbouncer={pooled!r}: the one supported value is pgbouncer=transaction")
    connect_args: dict[str, Any] = {"timeout": 5, "command_timeout": 30}
    if pooled:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = lambda: f"__filesapi_{uuid.uuid4().hex}__"
        query["prepared_statement_cache_size"] = ["0"]
    rest = parts._replace(scheme="postgresql+asyncpg", query=urlencode(query, doseq=True))
    return create_async_engine(
        urlunsplit(rest),
        pool_pre_ping=True,  # a connection the database dropped is replaced, not handed out
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=10,
        connect_args=connect_args,
    )


def runner_for_url(url: str) -> Runner:
    """Map a filesapi metadata URL (``memory://``, ``sqlite:///path``, ``postgresql://...``) to a runner."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return SqliteRunner(_sqlite_engine("sqlite://", in_memory=True), in_memory=True)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:  # sqlite://relative/path is a common slip; treat host as the first segment
            path = parts.netloc + path
        if not path:
            raise ValueError(f"metadata URL {url!r} has no path")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteRunner(_sqlite_engine(f"sqlite:///{path}", in_memory=False), in_memory=False)
    if parts.scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return AsyncRunner(_postgres_engine(parts))
    raise ValueError(
        f"unsupported metadata URL {url!r} (use sqlite:///path, postgresql://user@host/db or memory://)"
    )
