"""The store contracts, run against every embedded backend."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import filesapi.blobs.local as local_blobs
from filesapi.blobs import BlobNotFound, BlobStore, LocalBlobStore, MemoryBlobStore, open_blob_store
from filesapi.blobs.base import Checksum
from filesapi.blobs.local import shard_of
from filesapi.errors import BackendUnavailable
from filesapi.ids import IdClock
from filesapi.metadata import MetadataStore, open_metadata_store, schema
from filesapi.models import FileRecord
from servers_pg import PostgresServer
from store_contracts import BlobStoreTests, MetadataStoreTests


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _crc32c(data: bytes) -> str:
    checksum = Checksum()
    checksum.update(data)
    return checksum.hexdigest()


class TestMemoryBlobStore(BlobStoreTests):
    @pytest.fixture
    def store(self) -> BlobStore:
        return MemoryBlobStore()


class TestLocalBlobStore(BlobStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    async def test_layout_and_no_temp_leftovers(self, store: LocalBlobStore) -> None:
        async def one() -> AsyncIterator[bytes]:
            yield b"abc"

        await store.put("file_xyz", one())
        assert (store.root / "blobs" / "yz" / "file_xyz").read_bytes() == b"abc"
        assert list((store.root / "tmp").iterdir()) == []
        sent = Path(await store.send_path("file_xyz"))
        assert sent.parent == store.root / "sending" and sent.read_bytes() == b"abc"
        await store.delete("file_xyz")
        assert sent.read_bytes() == b"abc"  # a delete racing a send by path leaves the link readable
        with pytest.raises(BlobNotFound):
            await store.send_path("file_missing")

    async def test_file_ids_shard_by_time_and_concurrent_puts_all_land(self, store: LocalBlobStore) -> None:
        clock = IdClock()
        keys = [clock.new_file_id()[0] for _ in range(40)]
        assert len({shard_of(k) for k in keys}) <= 2  # made within moments: one folder (or two)

        async def one(data: bytes) -> AsyncIterator[bytes]:
            yield data

        infos = await asyncio.gather(*(store.put(k, one(k.encode())) for k in keys))
        assert [i.size for i in infos] == [len(k) for k in keys]
        for key in keys:
            assert (store.root / "blobs" / shard_of(key) / key).read_bytes() == key.encode()
        assert sorted([k async for k in store.iter_keys()]) == sorted(keys)

    async def test_sweep_incomplete_removes_old_temp_files(self, store: LocalBlobStore) -> None:
        stale = store.root / "tmp" / "file_old.1234.part"
        stale.write_bytes(b"half")
        os.utime(stale, (time.time() - 7200, time.time() - 7200))
        fresh = store.root / "tmp" / "file_new.5678.part"
        fresh.write_bytes(b"writing")
        assert await store.sweep_incomplete(3600) == 1
        assert not stale.exists() and fresh.exists()

    async def test_check_fails_when_the_folder_is_gone(self, store: LocalBlobStore) -> None:
        shutil.rmtree(store.root)
        with pytest.raises(BackendUnavailable):
            await store.check()

    async def test_a_large_blob_is_flushed_while_it_arrives(
        self, store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Flushes run beside the writes every step, one at a time, and the final fsync still
        comes after every byte: the stored blob is whole."""
        monkeypatch.setattr(local_blobs, "_EARLY_SYNC_STEP", 2 << 20)
        flushed: list[int] = []  # the file's size when each early flush ran
        real = local_blobs._datasync

        def datasync(fd: int) -> None:
            flushed.append(os.fstat(fd).st_size)
            real(fd)

        monkeypatch.setattr(local_blobs, "_datasync", datasync)
        data = os.urandom(9 << 20)
        step = 256 << 10

        async def arriving() -> AsyncIterator[bytes]:
            # The body holds back its last 4 MiB until a flush has run, as a slow client's would:
            # a flush started at 2 MiB could otherwise reach its thread after every write.
            for start in range(0, len(data), step):
                if start >= 5 << 20:
                    for _ in range(1000):
                        if flushed:
                            break
                        await asyncio.sleep(0.01)
                yield data[start : start + step]

        info = await store.put("file_big", arriving())
        assert info.size == len(data) and info.checksum == _crc32c(data)
        assert (store.root / "blobs" / "ig" / "file_big").read_bytes() == data
        # How many flushes start depends on how fast the disk finishes each (one at a time): the
        # first ran before the last byte, and they ran in order.
        assert flushed and flushed == sorted(flushed) and flushed[0] < len(data)

    async def test_a_failed_early_flush_fails_the_put(
        self, store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Linux reports a writeback error once per open file: the final fsync would succeed after
        it, so the early flush's error must fail the upload itself."""
        monkeypatch.setattr(local_blobs, "_EARLY_SYNC_STEP", 1 << 20)

        def failing(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(local_blobs, "_datasync", failing)
        with pytest.raises(BackendUnavailable, match="failed"):
            await store.put("file_doomed", _pieces(os.urandom(8 << 20), 1 << 20))
        await asyncio.sleep(0.05)  # the cleanup runs when the last thread is done
        assert not await store.exists("file_doomed")
        assert list((store.root / "tmp").iterdir()) == []

    async def test_an_abandoned_put_closes_its_file_only_after_its_flush(
        self, store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The upload fails while an early flush still runs on its thread: the fd stays open until
        the flush is done (a closed fd number could already be another upload's file)."""
        monkeypatch.setattr(local_blobs, "_EARLY_SYNC_STEP", 1 << 20)
        started, release = threading.Event(), threading.Event()
        seen: list[int] = []

        def slow(fd: int) -> None:
            started.set()
            release.wait(10)
            seen.append(os.fstat(fd).st_size)  # EBADF had the fd been closed under it

        monkeypatch.setattr(local_blobs, "_datasync", slow)

        async def failing() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * (1 << 20)
            await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
            raise RuntimeError("client went away")

        with pytest.raises(RuntimeError, match="went away"):
            await store.put("file_gone", failing())
        assert [p.suffix for p in (store.root / "tmp").iterdir()] == [".part"]  # kept for the flush
        release.set()
        for _ in range(100):
            if not list((store.root / "tmp").iterdir()):
                break
            await asyncio.sleep(0.02)
        assert seen and seen[0] >= 1 << 20
        assert list((store.root / "tmp").iterdir()) == []


class TestMemoryMetadataStore(MetadataStoreTests):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MetadataStore]:
        store = await open_metadata_store("memory://")
        yield store
        await store.close()


class TestSqliteMetadataStore(MetadataStoreTests):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MetadataStore]:
        store = await open_metadata_store(f"sqlite:///{tmp_path}/meta.db")
        yield store
        await store.close()


async def test_sqlite_runs_the_uploads_of_a_group_commit_in_a_few_statements(tmp_path: Path) -> None:
    """The writer thread holds the GIL for every statement it runs: the inserts a group commit
    gathers for one workspace go in as one UPDATE and one INSERT of many rows per table."""
    store = await open_metadata_store(f"sqlite:///{tmp_path}/meta.db")
    try:
        workspace = await store.ensure_workspace("w")
        statements: list[str] = []
        raw = store.runner._writer.connection.dbapi_connection  # type: ignore[attr-defined]
        raw.set_trace_callback(statements.append)
        clock = IdClock()
        records = []
        for _ in range(30):
            file_id, created = clock.new_file_id()
            records.append(
                FileRecord(
                    file_id,
                    workspace.id,
                    "a.txt",
                    "text/plain",
                    3,
                    created,
                    True,
                    "crc32c:0",
                    stored_inline=True,
                )
            )
        assert await asyncio.gather(*(store.insert_file(r, None, b"abc") for r in records)) == [True] * 30
        raw.set_trace_callback(None)
        inserts = [s for s in statements if s.startswith("INSERT INTO files")]
        assert 1 <= len(inserts) < 10  # 30 uploads, in as many batches as the writer took
        assert await store.used_bytes(workspace.id) == 90
        assert await store.existing_ids([r.id for r in records]) == {r.id for r in records}
    finally:
        await store.close()


class TestPostgresMetadataStore(MetadataStoreTests):
    @pytest.fixture
    async def store(self, postgres_server: PostgresServer) -> AsyncIterator[MetadataStore]:
        store = await open_metadata_store(postgres_server.create_database())
        yield store
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_migrations_build_exactly_the_declared_schema(
    backend: str, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = (
        f"sqlite:///{tmp_path}/m.db"
        if backend == "sqlite"
        else postgres_server.create_database(migrated=False)
    )
    store = await open_metadata_store(url)
    try:
        diff = await store.read(  # type: ignore[attr-defined]
            lambda conn: compare_metadata(MigrationContext.configure(conn), schema.metadata)
        )
    finally:
        await store.close()
    assert diff == []


def test_blob_urls(tmp_path: Path) -> None:
    assert isinstance(open_blob_store("memory://"), MemoryBlobStore)
    local = open_blob_store((tmp_path / "b").as_uri())
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "b"
    with pytest.raises(ValueError, match="unsupported"):
        open_blob_store("ftp://x")


async def test_unknown_metadata_url() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await open_metadata_store("mysql://x")


async def test_local_store_still_reads_the_first_layout(tmp_path: Path) -> None:
    """Folders written before the time-sharded layout keep working: read, list, delete."""
    store = LocalBlobStore(tmp_path / "blobs")
    file_id = IdClock().new_file_id()[0]
    legacy = tmp_path / "blobs" / "blobs" / file_id[-2:] / file_id
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"written by an older filesapi")
    assert await store.exists(file_id)
    assert b"".join([c async for c in await store.open(file_id)]) == b"written by an older filesapi"
    assert Path(await store.send_path(file_id)).read_bytes() == legacy.read_bytes()
    assert [k async for k in store.iter_keys()] == [file_id]
    await store.delete(file_id)
    assert not legacy.exists() and not await store.exists(file_id)
