"""Blobs in a dict: for tests and ``--memory``. Lost when the process ends."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from filesapi.blobs.base import BlobNotFound, BlobStore, ByteRange, Checksum, Chunk, check_key
from filesapi.models import BlobInfo

__all__ = ["MemoryBlobStore"]

_CHUNK = 1 << 20


class MemoryBlobStore(BlobStore):
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    async def put(self, key: str, chunks: AsyncIterable[Chunk]) -> BlobInfo:
        check_key(key)
        checksum = Checksum()
        parts: list[Chunk] = []
        async for chunk in chunks:
            checksum.update(chunk)
            parts.append(bytes(chunk))
        self._blobs[key] = b"".join(parts)
        return checksum.info()

    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        try:
            data = self._blobs[check_key(key)]
        except KeyError:
            raise BlobNotFound(key) from None
        start, stop = (0, len(data)) if byte_range is None else (byte_range.start, byte_range.end + 1)
        return _slices(memoryview(data), start, stop)

    async def delete(self, key: str) -> None:
        self._blobs.pop(check_key(key), None)

    async def exists(self, key: str) -> bool:
        return check_key(key) in self._blobs

    async def check(self) -> None:
        return None

    async def iter_keys(self) -> AsyncIterator[str]:
        for key in list(self._blobs):
            yield key


async def _slices(view: memoryview, start: int, stop: int) -> AsyncIterator[bytes]:
    for offset in range(start, stop, _CHUNK):
        yield bytes(view[offset : min(offset + _CHUNK, stop)])
