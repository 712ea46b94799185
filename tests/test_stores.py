"""The store contracts, run against every embedded backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from filesapi.blobs import BlobStore, LocalBlobStore, MemoryBlobStore, open_blob_store
from filesapi.metadata import MetadataStore, open_metadata_store
from store_contracts import BlobStoreTests, MetadataStoreTests


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
        assert store.local_path("file_xyz") == str(store.root / "blobs" / "yz" / "file_xyz")
        assert store.local_path("file_missing") is None


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


def test_blob_urls(tmp_path: Path) -> None:
    assert isinstance(open_blob_store("memory://"), MemoryBlobStore)
    local = open_blob_store((tmp_path / "b").as_uri())
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "b"
    with pytest.raises(ValueError, match="unsupported"):
        open_blob_store("ftp://x")


async def test_unknown_metadata_url() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await open_metadata_store("mysql://x")
