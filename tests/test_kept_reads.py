"""SQLite's kept reads (``SqliteRunner.fetch_kept``): a file's row, a workspace's files version and
an API key are answered without a statement only while no connection of any process has committed
to the database since they were read (``filesapi.metadata.walindex``)."""

from __future__ import annotations

import mmap
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import inline_file
from filesapi.auth import create_key
from filesapi.ids import IdClock
from filesapi.metadata import open_metadata_store
from filesapi.metadata.sql import SqlMetadataStore
from filesapi.metadata.walindex import HEADER_BYTES, WalIndex, wal_index


class _Statements:
    """Counts the statements run on a store's reader connection."""

    def __init__(self, store: SqlMetadataStore) -> None:
        self.count = 0
        store.runner._raw.set_trace_callback(self._seen)  # type: ignore[attr-defined]

    def _seen(self, _sql: str) -> None:
        self.count += 1

    def since(self) -> int:
        count, self.count = self.count, 0
        return count


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqlMetadataStore, SqlMetadataStore, str]]:
    """Two stores on one SQLite file, as two workers of a server (and the file's path)."""
    path = str(tmp_path / "meta.db")
    here = await open_metadata_store(f"sqlite:///{path}")
    there = await open_metadata_store(f"sqlite:///{path}")
    assert isinstance(here, SqlMetadataStore) and isinstance(there, SqlMetadataStore)
    try:
        yield here, there, path
    finally:
        await here.close()
        await there.close()


async def test_a_kept_read_runs_no_statement_until_another_store_commits(stores) -> None:
    here, there, _ = stores
    workspace = await here.ensure_workspace("w")
    clock = IdClock()
    first, second = inline_file(clock, workspace.id), inline_file(clock, workspace.id)
    assert await there.insert_file(first, None, b"abc")
    statements = _Statements(here)

    for _ in range(2):  # (the first read also finds the WAL index; the second is kept)
        assert (await here.get_file(workspace.id, first.id)) == first
    assert statements.since() >= 2
    assert (await here.get_file(workspace.id, first.id)) == first
    assert await here.get_file(workspace.id, second.id) is None
    assert (await here.get_file(workspace.id, first.id)) == first
    assert statements.since() == 1  # only the new id's read: the kept one ran nothing

    assert await there.insert_file(second, None, b"abc")  # a file whose absence was read
    assert (await here.get_file(workspace.id, second.id)) == second
    assert await there.hide_file(workspace.id, first.id, 5) is not None
    assert await here.get_file(workspace.id, first.id) is None
    assert (await here.get_file(workspace.id, second.id)) == second
    assert statements.since() == 3  # each read after a commit ran its statement again
    assert await here.get_file("another workspace", second.id) is None  # isolation: its own key


async def test_a_commit_by_another_process_is_seen_at_once(stores) -> None:
    """A plain sqlite3 connection in another process (no filesapi code) deletes the file."""
    here, _, path = stores
    workspace = await here.ensure_workspace("w")
    record = inline_file(IdClock(), workspace.id)
    assert await here.insert_file(record, None, b"abc")
    assert (await here.get_file(workspace.id, record.id)) == record
    assert (await here.get_file(workspace.id, record.id)) == record
    script = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('UPDATE files SET deleted_at_us = 1 WHERE id = ?', (sys.argv[2],))\n"
    )
    subprocess.run([sys.executable, "-c", script, path, record.id], check=True, timeout=60)
    assert await here.get_file(workspace.id, record.id) is None


async def test_a_revoked_key_is_refused_by_every_store(stores) -> None:
    here, there, _ = stores
    created = await create_key(there, "w")
    assert (await here.find_key(created.record.key_id)) == created.record
    assert (await here.find_key(created.record.key_id)) == created.record
    assert await there.revoke_key(created.record.key_id, 7)
    found = await here.find_key(created.record.key_id)
    assert found is not None and found.revoked_at_us == 7


async def test_the_files_version_read_is_kept_too(stores) -> None:
    here, there, _ = stores
    workspace = await here.ensure_workspace("w")
    clock = IdClock()
    assert await there.insert_file(inline_file(clock, workspace.id), None, b"abc")
    await here.list_files(workspace.id, limit=20)  # (finds the WAL index)
    page = await here.list_files(workspace.id, limit=20)
    statements = _Statements(here)
    assert await here.list_files(workspace.id, limit=20) is page
    assert statements.since() == 0
    newer = inline_file(clock, workspace.id)
    assert await there.insert_file(newer, None, b"abc")
    assert (await here.list_files(workspace.id, limit=20)).files[0].id == newer.id


async def test_nothing_is_kept_in_memory_or_past_the_bound(tmp_path: Path, monkeypatch) -> None:
    from filesapi.metadata import runners

    memory = await open_metadata_store("memory://")
    try:
        workspace = await memory.ensure_workspace("w")
        record = inline_file(IdClock(), workspace.id)
        assert await memory.insert_file(record, None, b"abc")
        assert (await memory.get_file(workspace.id, record.id)) == record
        assert memory.runner._index is None and not memory.runner._kept  # type: ignore[attr-defined]
    finally:
        await memory.close()

    monkeypatch.setattr(runners, "_KEPT_READS", 2)
    store = await open_metadata_store(f"sqlite:///{tmp_path}/meta.db")
    try:
        workspace = await store.ensure_workspace("w")
        clock = IdClock()
        records = [inline_file(clock, workspace.id) for _ in range(5)]
        for record in records:
            assert await store.insert_file(record, None, b"abc")
        for _ in range(2):
            for record in records:
                assert (await store.get_file(workspace.id, record.id)) == record
                assert len(store.runner._kept) <= 2  # type: ignore[attr-defined]
    finally:
        await store.close()


def _index_file(tmp_path: Path, first: bytes, second: bytes) -> str:
    shm = tmp_path / "fake.db-shm"
    shm.write_bytes(first + second + bytes(32768 - 2 * HEADER_BYTES))
    return str(shm)


def test_the_index_version_is_none_while_its_copies_differ_or_before_it_is_built(tmp_path: Path) -> None:
    built = bytes(12) + b"\x01" + bytes(HEADER_BYTES - 13)
    other = bytes(8) + b"\x02" + bytes(3) + b"\x01" + bytes(HEADER_BYTES - 13)
    index = WalIndex(_index_file(tmp_path, built, built))
    assert index.version() == built
    # A commit under way: SQLite has written the second copy, not yet the first.
    with open(index.path, "r+b") as f, mmap.mmap(f.fileno(), 0) as shared:
        shared[HEADER_BYTES : 2 * HEADER_BYTES] = other
        assert index.version() is None
        shared[:HEADER_BYTES] = other
        assert index.version() == other
        not_built = bytes(HEADER_BYTES)
        shared[: 2 * HEADER_BYTES] = not_built + not_built
        assert index.version() is None
    index._close()
    assert index.version() is None
    (tmp_path / "short.db-shm").write_bytes(bytes(10))
    with pytest.raises(OSError):
        wal_index(str(tmp_path / "short.db"))


_KEEPS_ITS_LOCKS = """
import asyncio, sqlite3, subprocess, sys
from filesapi.ids import IdClock
from filesapi.metadata import open_metadata_store
from filesapi.models import FileRecord

OTHER = (
    "import sqlite3, sys\\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\\n"
    "db.execute('UPDATE files SET filename = ? WHERE id = ?', (sys.argv[2], sys.argv[3]))\\n"
    "db.close()\\n"
)

# SQLite's "this process has the index open" lock: a read lock on byte 128 of the -shm file
# (UNIX_SHM_DMS); a process that could take it for writing would rebuild (shrink) the index.
DMS_HOLDER = (
    "import fcntl, os, struct, sys\\n"
    "fd = os.open(sys.argv[1], os.O_RDWR)\\n"
    "got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 128, 1, 0))\\n"
    "print('free' if struct.unpack('hhqqi4x', got)[0] == fcntl.F_UNLCK else 'held')\\n"
)

async def main(path):
    first = await open_metadata_store(f"sqlite:///{path}")
    workspace = await first.ensure_workspace("w")
    file_id, created = IdClock().new_file_id()
    record = FileRecord(file_id, workspace.id, "a.txt", "text/plain", 3, created, True, "c", stored_inline=True)
    assert await first.insert_file(record, None, b"abc")
    second = await open_metadata_store(f"sqlite:///{path}")
    for _ in range(2):
        assert (await first.get_file(workspace.id, file_id)).filename == "a.txt"
        assert (await second.get_file(workspace.id, file_id)).filename == "a.txt"
    assert first.runner._index is second.runner._index  # one mapping of the file per process
    await second.close()  # a store closing must not let another process rebuild the index
    probe = subprocess.run([sys.executable, "-c", DMS_HOLDER, path + "-shm"], capture_output=True, text=True)
    assert probe.stdout.strip() == "held", probe.stdout + probe.stderr
    for name in ("b.txt", "c.txt"):  # each a process opening, writing and closing the database
        subprocess.run([sys.executable, "-c", OTHER, path, name, file_id], check=True, timeout=60)
        assert (await first.get_file(workspace.id, file_id)).filename == name
    await first.close()
    print("ok")

asyncio.run(main(sys.argv[1]))
"""


def test_the_index_s_file_is_never_closed_under_sqlite_s_locks(tmp_path: Path) -> None:
    """In a process of its own: closing a descriptor of the -shm file would drop SQLite's locks on
    it, and the next process to open the database would shrink the index under this one (SIGBUS)."""
    done = subprocess.run(
        [sys.executable, "-c", _KEEPS_ITS_LOCKS, str(tmp_path / "meta.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
