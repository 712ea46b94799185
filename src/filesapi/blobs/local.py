"""Blobs as files in a local folder, written crash-safely.

Layout under the root: ``blobs/<last two characters of the key>/<key>`` for published blobs and
``tmp/<key>.<random>.part`` while one is being written. A write goes to the temp file, is fsynced,
renamed into place and the directory fsynced: after a crash a blob is either complete or absent
(a leftover temp file is swept by ``filesapi gc``).

Disk writes and fsyncs run on worker threads so the event loop keeps parsing the next chunk while
the previous one is written (one write in flight per upload keeps the bytes in order).
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from filesapi.blobs.base import BlobNotFound, BlobStore, ByteRange, Checksum, check_key
from filesapi.errors import BackendUnavailable
from filesapi.models import BlobInfo

__all__ = ["LocalBlobStore"]

_WRITE_BATCH = 1 << 20
_READ_CHUNK = 1 << 20
_T = TypeVar("_T")


def _storage_error(exc: OSError) -> BackendUnavailable:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BackendUnavailable("The server's file storage is full.")
    return BackendUnavailable(f"The server's file storage failed: {exc.strerror or exc}.")


def _write_batch(fd: int, batch: list[bytes], checksum: Checksum) -> None:
    for chunk in batch:
        checksum.update(chunk)
    total = sum(len(c) for c in batch)
    written = os.writev(fd, batch)
    if written < total:  # short write: finish the rest the plain way
        rest = memoryview(b"".join(batch))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[str] = set()

    def _path(self, key: str) -> Path:
        return self._blobs / key[-2:] / key

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
        except OSError as exc:
            raise _storage_error(exc) from exc

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> BlobInfo:
        check_key(key)
        tmp = self._tmp / f"{key}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _storage_error(exc) from exc
        loop = asyncio.get_running_loop()
        checksum = Checksum()
        in_flight: asyncio.Future[None] | None = None
        fd_open = True
        published = False
        try:
            batch: list[bytes] = []
            batch_size = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                batch.append(chunk)
                batch_size += len(chunk)
                if batch_size >= _WRITE_BATCH:
                    if in_flight is not None:
                        await self._settle(in_flight)
                    in_flight = loop.run_in_executor(None, _write_batch, fd, batch, checksum)
                    batch, batch_size = [], 0
            if in_flight is not None:
                await self._settle(in_flight)
            if batch:
                await self._run(_write_batch, fd, batch, checksum)
            fd_open = False  # _fsync_close closes it even when fsync fails
            await self._run(_fsync_close, fd)
            await self._run(self._install, tmp, self._path(key))
            published = True
            return checksum.info()
        finally:
            if not published:
                self._discard(fd if fd_open else None, tmp, in_flight)

    @staticmethod
    async def _settle(future: asyncio.Future[None]) -> None:
        try:
            await asyncio.shield(future)
        except OSError as exc:
            raise _storage_error(exc) from exc

    def _install(self, tmp: Path, final: Path) -> None:
        shard = final.parent
        if shard.name not in self._known_dirs:
            if not shard.exists():
                shard.mkdir(exist_ok=True)
                _fsync_dir(self._blobs)
            self._known_dirs.add(shard.name)
        os.rename(tmp, final)
        _fsync_dir(shard)

    @staticmethod
    def _discard(fd: int | None, tmp: Path, in_flight: asyncio.Future[None] | None) -> None:
        """Drop a failed write. A write still running on its thread must finish before the fd is
        closed (a closed fd number can be reused by another upload), so cleanup waits for it."""

        def cleanup(_: object = None) -> None:
            if fd is not None:
                os.close(fd)
            tmp.unlink(missing_ok=True)

        if in_flight is not None and not in_flight.done():
            in_flight.add_done_callback(cleanup)
        else:
            cleanup()

    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        path = self._path(check_key(key))
        try:
            size = (await self._run_raw(os.stat, path)).st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise _storage_error(exc) from exc
        start, stop = (0, size) if byte_range is None else (byte_range.start, byte_range.end + 1)
        return self._read(key, path, start, stop)

    async def _run_raw(self, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _read(self, key: str, path: Path, start: int, stop: int) -> AsyncIterator[bytes]:
        try:
            fd = await self._run_raw(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise _storage_error(exc) from exc
        try:
            offset = start
            while offset < stop:
                chunk = await self._run(os.pread, fd, min(_READ_CHUNK, stop - offset), offset)
                if not chunk:
                    raise BackendUnavailable(f"Stored blob {key} is shorter than its metadata says.")
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def delete(self, key: str) -> None:
        path = self._path(check_key(key))
        await self._run(lambda: path.unlink(missing_ok=True))

    async def exists(self, key: str) -> bool:
        return await self._run(self._path(check_key(key)).is_file)

    async def iter_keys(self) -> AsyncIterator[str]:
        def scan() -> list[str]:
            return [p.name for shard in self._blobs.iterdir() if shard.is_dir() for p in shard.iterdir()]

        for key in await self._run(scan):
            yield key

    async def check(self) -> None:
        def probe() -> None:
            if not (self._blobs.is_dir() and os.access(self._tmp, os.W_OK)):
                raise OSError(errno.EACCES, f"{self.root} is not a writable blob folder")

        await self._run(probe)

    async def sweep_incomplete(self, older_than_seconds: float) -> int:
        def sweep() -> int:
            cutoff = time.time() - older_than_seconds
            removed = 0
            for path in self._tmp.iterdir():
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed

        return await self._run(sweep)

    def local_path(self, key: str) -> str | None:
        path = self._path(check_key(key))
        return str(path) if path.is_file() else None
