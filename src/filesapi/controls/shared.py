"""The state one server shares across its worker processes: a runtime directory holding a SQLite
file (the request journal and the fault rules) and a one-page memory map (the clock's offset and
the fault rules' generation), so reading the clock or checking for new rules costs no system call.

``filesapi serve`` makes the directory before it starts its workers and removes it when it stops
(``FILESAPI_RUNTIME_DIR``); an app built without one makes its own. Nothing here is durable: the
SQLite file runs with ``synchronous=OFF`` (no fsync ever), and the directory goes with the server.
Replicas each have their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import shutil
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RUNTIME_DIR_ENV", "SharedState"]

RUNTIME_DIR_ENV = "FILESAPI_RUNTIME_DIR"
_PAGE = struct.Struct("<qqq")  # clock offset (us), fault rules generation, clock epoch
_SCHEMA_VERSION = 4
_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: readers keep decoded batches by id
    last_id INTEGER NOT NULL,  -- its newest entry's number (trimming goes by it)
    packed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_seqs (workspace TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal_ids (one INTEGER PRIMARY KEY CHECK (one = 1), last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS faults (
    id TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    rule TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    seen INTEGER NOT NULL DEFAULT 0
);
"""


class SharedState:
    def __init__(self, directory: str | None = None) -> None:
        self._owned = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="filesapi-run-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        page = self.directory / "page"
        fd = os.open(page, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < mmap.PAGESIZE:
                os.ftruncate(fd, mmap.PAGESIZE)
            self._map = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)
        self._lock_path = self.directory / "page.lock"
        self._db_lock = threading.Lock()
        self.db = sqlite3.connect(
            self.directory / "state.db", timeout=10, isolation_level=None, check_same_thread=False
        )
        self._set_wal()
        self.db.execute("PRAGMA synchronous=OFF")
        with self.transaction() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                # A directory an older filesapi left (nothing in it is durable): start it afresh.
                for table in ("journal", "journal_batches", "journal_seqs", "journal_ids"):
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def _set_wal(self) -> None:
        """WAL mode, which sticks to the file. Switching to it takes a lock that SQLite does not wait
        for: workers starting together on a new file can find it taken (``filesapi serve`` makes the
        file before it starts them; this covers anyone else)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialized with every other process of the server."""
        with self._db_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._db_lock:
            return self.db.execute(sql, params).fetchall()

    # -- the page
    def _page(self) -> tuple[int, int, int]:
        offset, generation, epoch = _PAGE.unpack_from(self._map, 0)
        return int(offset), int(generation), int(epoch)

    @contextlib.contextmanager
    def _page_update(self) -> Iterator[list[int]]:
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            values = list(self._page())
            yield values
            _PAGE.pack_into(self._map, 0, *values)

    @property
    def offset_us(self) -> int:
        return self._page()[0]

    @property
    def generation(self) -> int:
        return self._page()[1]

    @property
    def clock_epoch(self) -> int:
        return self._page()[2]

    def now_us(self) -> int:
        """The server's time: the real clock plus the offset ``advance`` added."""
        return time.time_ns() // 1000 + self._page()[0]

    def advance(self, microseconds: int) -> int:
        if microseconds < 0:
            raise ValueError("the clock never moves back")
        with self._page_update() as values:
            values[0] += microseconds
            return values[0]

    def reset_clock(self, *, new_epoch: bool) -> None:
        """Back to real time. ``new_epoch``: the store holds no files, so id floors may drop too."""
        with self._page_update() as values:
            values[0] = 0
            if new_epoch:
                values[2] += 1

    def bump_generation(self) -> None:
        with self._page_update() as values:
            values[1] += 1

    def close(self) -> None:
        with self._db_lock:
            self.db.close()
        self._map.close()
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)
