"""The blob store interface shared by every backend, and the checksum every backend computes."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import crc32c

from filesapi.models import BlobInfo

__all__ = ["CHECKSUM_ALGORITHM", "BlobNotFound", "BlobStore", "ByteRange", "Checksum", "Chunk", "check_key"]

# What uploads stream through: bytes, or views into the request's own chunks (no copy).
Chunk = bytes | memoryview

CHECKSUM_ALGORITHM = "crc32c"
_KEY = re.compile(r"[A-Za-z0-9_]{1,128}")


class BlobNotFound(Exception):
    """The store holds no blob under that key."""


def check_key(key: str) -> str:
    """Keys are ids this server made; refuse anything that could walk a path or name a bucket."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class Checksum:
    """CRC32C over a stream, at about 13 GB/s here (hardware CRC), cheap next to the disk.

    CRC32C is the checksum S3-compatible stores can verify themselves, so one value serves the
    whole path. It guards against corruption, not tampering.
    """

    __slots__ = ("_value", "size")

    def __init__(self) -> None:
        self._value = 0
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._value = crc32c.crc32c(data, self._value)
        self.size += len(data)

    def hexdigest(self) -> str:
        return f"{CHECKSUM_ALGORITHM}:{self._value:08x}"

    def info(self) -> BlobInfo:
        return BlobInfo(size=self.size, checksum=self.hexdigest())

    @staticmethod
    def of(data: bytes | memoryview) -> BlobInfo:
        """The size and checksum of bytes that are all here."""
        return BlobInfo(size=len(data), checksum=f"{CHECKSUM_ALGORITHM}:{crc32c.crc32c(data):08x}")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` .. ``end`` inclusive, as in an HTTP Range header."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class BlobStore(ABC):
    """Async storage of immutable blobs under server-made keys."""

    @abstractmethod
    async def put(self, key: str, chunks: AsyncIterable[Chunk]) -> BlobInfo:
        """Store the stream under ``key`` durably, all or nothing.

        If iterating ``chunks`` raises, nothing is left under ``key`` and the error propagates.
        """

    @abstractmethod
    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        """Return an iterator over the blob's bytes (or the range). Raises ``BlobNotFound`` at once,
        before any byte is produced, when the blob is missing."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the blob; removing a missing blob is not an error."""

    @abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abstractmethod
    def iter_keys(self) -> AsyncIterator[str]:
        """Every stored key, in no particular order (for sweeping)."""

    @abstractmethod
    async def check(self) -> None:
        """Raise ``BackendUnavailable`` unless the store can be used right now (for /readyz)."""

    async def sweep_incomplete(self, older_than_seconds: float) -> int:
        """Remove what interrupted writes left (temp files, unfinished multipart uploads) that is
        older than ``older_than_seconds``. Returns how many were removed."""
        return 0

    async def download_url(self, key: str, *, content_type: str, content_disposition: str) -> str | None:
        """A URL the client may fetch the whole blob from by itself (a redirect target), answered
        with these Content-Type and Content-Disposition headers; None when downloads go through
        this server (the default)."""
        return None

    async def send_path(self, key: str) -> str | None:
        """A filesystem path the HTTP server may send by itself (ASGI pathsend), when the store has
        one; it stays readable for a while even if the blob is deleted meanwhile. Raises
        ``BlobNotFound`` when the blob is missing."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections and handles."""
