"""Blob stores: where file bytes live. Chosen by URL (``memory://``, ``file:///path``,
``s3://bucket/prefix?endpoint=...&region=...``).

A store knows its backend and nothing about the API's rules. It translates its backend's errors
into ``BlobNotFound`` or ``filesapi.errors.BackendUnavailable`` at its own edge.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from filesapi.blobs.base import BlobNotFound, BlobStore, ByteRange
from filesapi.blobs.local import LocalBlobStore
from filesapi.blobs.memory import MemoryBlobStore

__all__ = ["BlobNotFound", "BlobStore", "ByteRange", "LocalBlobStore", "MemoryBlobStore", "open_blob_store"]


def open_blob_store(url: str) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return MemoryBlobStore()
    if parts.scheme == "file":
        path = unquote(parts.path)
        if not path:
            raise ValueError(f"blob URL {url!r} has no path")
        return LocalBlobStore(path)
    if parts.scheme == "s3":
        from filesapi.blobs.s3 import S3BlobStore  # imported on demand: obstore is not needed locally

        return S3BlobStore.from_url(url)
    raise ValueError(
        f"unsupported blob store URL {url!r} (use memory://, file:///path or s3://bucket/prefix?endpoint=...)"
    )
