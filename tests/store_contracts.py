"""Reusable contract tests for stores (the zarr pattern): a backend's test module subclasses
``BlobStoreTests`` or ``MetadataStoreTests`` and provides one fixture, ``store``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import crc32c
import pytest

from filesapi.blobs import BlobNotFound, BlobStore, ByteRange
from filesapi.errors import BackendUnavailable
from filesapi.ids import IdClock
from filesapi.metadata import MetadataStore
from filesapi.models import ApiKey, FileRecord


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(store: BlobStore, key: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join([chunk async for chunk in await store.open(key, byte_range)])


class BlobStoreTests:
    async def test_put_then_read(self, store: BlobStore) -> None:
        info = await store.put("file_a", _chunks(b"hello ", b"", b"world"))
        assert info.size == 11
        assert info.checksum == f"crc32c:{crc32c.crc32c(b'hello world'):08x}"
        assert await _read(store, "file_a") == b"hello world"
        assert await store.exists("file_a")

    async def test_large_blob_in_many_chunks(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 20_000  # 5 MB: several write batches and read chunks
        pieces = [data[i : i + 65_536] for i in range(0, len(data), 65_536)]
        info = await store.put("file_big", _chunks(*pieces))
        assert info.size == len(data)
        assert await _read(store, "file_big") == data
        assert await _read(store, "file_big", ByteRange(1_000_000, 3_500_000)) == data[1_000_000:3_500_001]

    async def test_ranges(self, store: BlobStore) -> None:
        await store.put("file_r", _chunks(b"0123456789"))
        assert await _read(store, "file_r", ByteRange(0, 0)) == b"0"
        assert await _read(store, "file_r", ByteRange(3, 6)) == b"3456"
        assert await _read(store, "file_r", ByteRange(9, 9)) == b"9"

    async def test_empty_blob(self, store: BlobStore) -> None:
        info = await store.put("file_empty", _chunks())
        assert info.size == 0
        assert await _read(store, "file_empty") == b""

    async def test_missing_blob(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFound):
            await store.open("file_missing")
        assert not await store.exists("file_missing")
        await store.delete("file_missing")  # idempotent

    async def test_delete(self, store: BlobStore) -> None:
        await store.put("file_d", _chunks(b"x"))
        await store.delete("file_d")
        assert not await store.exists("file_d")
        with pytest.raises(BlobNotFound):
            await store.open("file_d")

    async def test_failed_stream_leaves_nothing(self, store: BlobStore) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield b"a" * (3 << 20)
            raise RuntimeError("client went away")

        with pytest.raises(RuntimeError, match="client went away"):
            await store.put("file_broken", broken())
        assert not await store.exists("file_broken")
        assert [k async for k in store.iter_keys()] == []

    async def test_cancelled_stream_leaves_nothing(self, store: BlobStore) -> None:
        gate = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield b"b" * (2 << 20)
            gate.set()
            await asyncio.sleep(3600)
            yield b"never"

        task = asyncio.create_task(store.put("file_cancel", slow()))
        await gate.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # a write in flight on a thread finishes, then cleans up
        assert not await store.exists("file_cancel")

    async def test_keys(self, store: BlobStore) -> None:
        for key in ("file_k1", "file_k2", "file_k3"):
            await store.put(key, _chunks(key.encode()))
        assert sorted([k async for k in store.iter_keys()]) == ["file_k1", "file_k2", "file_k3"]

    async def test_check_passes_on_a_working_store(self, store: BlobStore) -> None:
        await store.check()

    async def test_sweep_incomplete_keeps_finished_blobs(self, store: BlobStore) -> None:
        await store.put("file_done", _chunks(b"done"))
        await store.sweep_incomplete(0)
        assert await _read(store, "file_done") == b"done"

    @pytest.mark.parametrize("key", ["../x", "a/b", "", "x" * 200, "file_é"])
    async def test_refuses_unsafe_keys(self, store: BlobStore, key: str) -> None:
        with pytest.raises(ValueError):
            await store.put(key, _chunks(b"x"))


def record(file_id: str, workspace_id: str, size: int = 10, **extra: object) -> FileRecord:
    fields: dict[str, object] = {
        "id": file_id,
        "workspace_id": workspace_id,
        "filename": "f.txt",
        "mime_type": "text/plain",
        "size_bytes": size,
        "created_at_us": 1,
        "downloadable": True,
        "checksum": "crc32c:00000000",
    } | extra
    return FileRecord(**fields)  # type: ignore[arg-type]


class MetadataStoreTests:
    @pytest.fixture
    def clock(self) -> IdClock:
        return IdClock()

    async def _add(
        self, store: MetadataStore, clock: IdClock, workspace_id: str, n: int, **extra: object
    ) -> list[str]:
        ids = []
        for _ in range(n):
            file_id, created = clock.new_file_id()
            assert await store.insert_file(
                record(file_id, workspace_id, created_at_us=created, **extra), None
            )
            ids.append(file_id)
        return ids

    async def test_workspaces(self, store: MetadataStore) -> None:
        ws = await store.ensure_workspace("team-a")
        assert ws.id.startswith("wrkspc_")
        assert await store.ensure_workspace("team-a") == ws
        assert await store.find_workspace("team-a") == ws
        assert await store.find_workspace(ws.id) == ws
        assert await store.find_workspace("nope") is None

    async def test_concurrent_ensure_workspace_makes_one(self, store: MetadataStore) -> None:
        results = await asyncio.gather(*(store.ensure_workspace("racy") for _ in range(10)))
        assert len({w.id for w in results}) == 1

    async def test_insert_get_and_round_trip_fields(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("w")
        file_id, created = clock.new_file_id()
        rec = record(
            file_id,
            ws.id,
            size=123,
            created_at_us=created,
            scope_id="sesn_1",
            expires_at_us=created + 5,
            downloadable=False,
            filename="résumé.pdf",
            mime_type="application/pdf",
        )
        assert await store.insert_file(rec, None)
        assert await store.get_file(ws.id, file_id) == rec
        assert await store.used_bytes(ws.id) == 123

    async def test_other_workspace_sees_nothing(self, store: MetadataStore, clock: IdClock) -> None:
        a = await store.ensure_workspace("a")
        b = await store.ensure_workspace("b")
        (file_id,) = await self._add(store, clock, a.id, 1)
        assert await store.get_file(b.id, file_id) is None
        assert (await store.list_files(b.id, limit=10)).files == []
        assert await store.get_files(b.id, [file_id]) == []
        assert await store.hide_file(b.id, file_id, 1) is None
        assert await store.get_file(a.id, file_id) is not None

    async def test_quota_check_is_atomic(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("q")

        async def one() -> bool:
            file_id, created = clock.new_file_id()
            return await store.insert_file(record(file_id, ws.id, size=100, created_at_us=created), 1000)

        results = await asyncio.gather(*(one() for _ in range(30)))
        assert results.count(True) == 10
        assert await store.used_bytes(ws.id) == 1000
        assert len((await store.list_files(ws.id, limit=100)).files) == 10

    async def test_a_failing_write_does_not_undo_concurrent_ones(
        self, store: MetadataStore, clock: IdClock
    ) -> None:
        # SQLite commits concurrent writes together: one failing must not take the others with it.
        ws = await store.ensure_workspace("batch")
        (existing,) = await self._add(store, clock, ws.id, 1)
        fresh = [clock.new_file_id() for _ in range(6)]
        writes = [store.insert_file(record(fid, ws.id, created_at_us=ts), None) for fid, ts in fresh[:3]]
        writes.append(store.insert_file(record(existing, ws.id, created_at_us=1), None))  # duplicate id
        writes += [store.insert_file(record(fid, ws.id, created_at_us=ts), None) for fid, ts in fresh[3:]]
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert isinstance(results[3], BackendUnavailable)
        assert results[:3] + results[4:] == [True] * 6
        listed = {f.id for f in (await store.list_files(ws.id, limit=100)).files}
        assert listed == {existing} | {fid for fid, _ in fresh}
        assert await store.used_bytes(ws.id) == 7 * 10

    async def test_concurrent_inserts_into_two_workspaces_all_land(
        self, store: MetadataStore, clock: IdClock
    ) -> None:
        """Many at once, as a group commit gathers them (SQLite runs those of one workspace in a few
        statements): every row, every inline byte, each workspace charged exactly its own."""
        first, second = await store.ensure_workspace("one"), await store.ensure_workspace("two")
        made: list[tuple[str, str, int, bytes | None]] = []
        writes = []
        for n in range(40):
            file_id, created = clock.new_file_id()
            workspace = first if n % 3 else second
            content = bytes([n]) * n if n % 2 else None
            made.append((file_id, workspace.id, n, content))
            writes.append(
                store.insert_file(
                    record(
                        file_id,
                        workspace.id,
                        size=n,
                        created_at_us=created,
                        stored_inline=content is not None,
                    ),
                    None,
                    content,
                )
            )
        assert await asyncio.gather(*writes) == [True] * 40
        for workspace in (first, second):
            expected = sum(size for _, owner, size, _ in made if owner == workspace.id)
            assert await store.used_bytes(workspace.id) == expected
        for file_id, owner, size, content in made:
            got = await store.get_file(owner, file_id)
            assert got is not None and got.size_bytes == size and got.stored_inline == (content is not None)
            assert await store.inline_content(file_id) == content

    async def test_inserts_into_a_missing_workspace_are_refused(
        self, store: MetadataStore, clock: IdClock
    ) -> None:
        ids = [clock.new_file_id() for _ in range(3)]
        results = await asyncio.gather(
            *(store.insert_file(record(fid, "wrkspc_missing", created_at_us=ts), None) for fid, ts in ids)
        )
        assert results == [False] * 3
        assert await store.existing_ids([fid for fid, _ in ids]) == set()

    async def test_paging(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("p")
        ids = await self._add(store, clock, ws.id, 7)
        newest = ids[::-1]
        page = await store.list_files(ws.id, limit=3)
        assert ([f.id for f in page.files], page.has_more) == (newest[:3], True)
        page = await store.list_files(ws.id, limit=3, after_id=newest[2])
        assert ([f.id for f in page.files], page.has_more) == (newest[3:6], True)
        page = await store.list_files(ws.id, limit=3, after_id=newest[5])
        assert ([f.id for f in page.files], page.has_more) == (newest[6:], False)
        page = await store.list_files(ws.id, limit=3, before_id=newest[6])
        assert ([f.id for f in page.files], page.has_more) == (newest[3:6], True)
        page = await store.list_files(ws.id, limit=3, before_id=newest[2])
        assert ([f.id for f in page.files], page.has_more) == (newest[:2], False)
        page = await store.list_files(ws.id, limit=10, after_id=newest[0], before_id=newest[4])
        assert [f.id for f in page.files] == newest[1:4]

    async def test_scope_filter(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("s")
        await self._add(store, clock, ws.id, 2)
        scoped = await self._add(store, clock, ws.id, 3, scope_id="sesn_x")
        page = await store.list_files(ws.id, limit=2, scope_id="sesn_x")
        assert [f.id for f in page.files] == scoped[::-1][:2]
        assert page.has_more

    async def test_get_files(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("g")
        ids = await self._add(store, clock, ws.id, 4)
        got = await store.get_files(ws.id, [ids[0], ids[2], "file_missing"])
        assert [f.id for f in got] == [ids[2], ids[0]]

    async def test_hide_and_purge(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("h")
        (file_id,) = await self._add(store, clock, ws.id, 1)
        hidden = await store.hide_file(ws.id, file_id, 42)
        assert hidden is not None and hidden.id == file_id
        assert await store.hide_file(ws.id, file_id, 43) is None
        assert await store.get_file(ws.id, file_id) is None
        assert await store.used_bytes(ws.id) == 0
        assert await store.claim_hidden(10, now_us=100, lease_us=50) == [file_id]
        await store.purge_file(file_id)
        assert await store.claim_hidden(10, now_us=1000, lease_us=50) == []
        assert await store.existing_ids([file_id]) == set()

    async def test_claims_are_leased(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("l")
        ids = await self._add(store, clock, ws.id, 5)
        for file_id in ids:
            await store.hide_file(ws.id, file_id, 1)
        first = await store.claim_hidden(3, now_us=100, lease_us=50)
        second = await store.claim_hidden(10, now_us=120, lease_us=50)
        assert sorted(first + second) == sorted(ids)
        assert not set(first) & set(second)
        assert await store.claim_hidden(10, now_us=149, lease_us=50) == []
        assert sorted(await store.claim_hidden(10, now_us=171, lease_us=50)) == sorted(ids)

    async def test_concurrent_claims_never_overlap(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("c")
        ids = await self._add(store, clock, ws.id, 40)
        for file_id in ids:
            await store.hide_file(ws.id, file_id, 1)
        claims = await asyncio.gather(*(store.claim_hidden(7, now_us=10, lease_us=1000) for _ in range(8)))
        flat = [i for claim in claims for i in claim]
        assert sorted(flat) == sorted(ids)

    async def test_expired_claim_and_purge(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("e")
        (expiring,) = await self._add(store, clock, ws.id, 1, expires_at_us=500, size=70)
        (lasting,) = await self._add(store, clock, ws.id, 1, size=30)
        assert await store.claim_expired(10, now_us=499, lease_us=10) == []
        claimed = await store.claim_expired(10, now_us=500, lease_us=10)
        assert [r.id for r in claimed] == [expiring]
        await store.mark_purged(expiring, 501)
        await store.mark_purged(expiring, 502)  # twice releases once
        assert await store.used_bytes(ws.id) == 30
        assert await store.get_file(ws.id, expiring) is not None  # metadata stays
        assert await store.claim_expired(10, now_us=10_000, lease_us=10) == []
        await store.hide_file(ws.id, expiring, 600)  # deleting it later releases nothing again
        assert await store.used_bytes(ws.id) == 30
        assert await store.existing_ids([expiring, lasting, "file_nope"]) == {expiring, lasting}

    async def test_hide_all(self, store: MetadataStore, clock: IdClock) -> None:
        a = await store.ensure_workspace("all-a")
        b = await store.ensure_workspace("all-b")
        await self._add(store, clock, a.id, 3)
        kept = await self._add(store, clock, b.id, 2)
        assert await store.hide_all(a.id, 5) == 3
        assert (await store.list_files(a.id, limit=10)).files == []
        assert await store.used_bytes(a.id) == 0
        assert [f.id for f in (await store.list_files(b.id, limit=10)).files] == kept[::-1]
        assert await store.hide_all(None, 6) == 2
        assert await store.used_bytes(b.id) == 0

    async def test_workspace_stats(self, store: MetadataStore, clock: IdClock) -> None:
        a = await store.ensure_workspace("stats-a")
        b = await store.ensure_workspace("stats-b")
        await self._add(store, clock, a.id, 3, size=5)
        (gone,) = await self._add(store, clock, b.id, 1, size=7)
        await store.hide_file(b.id, gone, 1)
        stats = {s.workspace.name: (s.files, s.bytes) for s in await store.workspace_stats()}
        assert stats["stats-a"] == (3, 15)
        assert stats["stats-b"] == (0, 0)

    async def test_exclusive(self, store: MetadataStore) -> None:
        async with store.exclusive("job") as first:
            assert first
            async with store.exclusive("job") as second:
                assert not second
            async with store.exclusive("other") as third:
                assert third
        async with store.exclusive("job") as again:
            assert again
        await store.check()

    async def test_purge_never_removes_a_visible_file(self, store: MetadataStore, clock: IdClock) -> None:
        ws = await store.ensure_workspace("v")
        (file_id,) = await self._add(store, clock, ws.id, 1)
        await store.purge_file(file_id)
        assert await store.get_file(ws.id, file_id) is not None

    async def test_keys(self, store: MetadataStore) -> None:
        ws = await store.ensure_workspace("k")
        key = ApiKey(key_id="kid1", workspace=ws, key_hash="h" * 64, created_at_us=5, label="ci")
        await store.add_key(key)
        assert await store.find_key("kid1") == key
        assert await store.find_key("nope") is None
        assert await store.list_keys() == [key]
        assert await store.revoke_key("kid1", 9)
        assert not await store.revoke_key("kid1", 10)
        found = await store.find_key("kid1")
        assert found is not None and found.revoked_at_us == 9

    async def test_secret_is_created_once(self, store: MetadataStore) -> None:
        values = iter(["first", "second"])
        assert await store.secret("s", lambda: next(values)) == "first"
        assert await store.secret("s", lambda: next(values)) == "first"
