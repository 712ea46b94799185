"""Blob stores: where file bytes live. Chosen by URL (``memory://``, ``file:///path``).

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
    raise ValueError(f"unsupported blob store URL {url!r} (use memory:// or file:///path)")
