"""Blobs as files in a local folder, written crash-safely.

Layout under the root: ``tmp/<key>.<random>.part`` while a blob is being written, then
``blobs/<shard>/<key>``; ``sending/`` holds short-lived hard links of blobs being sent by path.
A write goes to the temp file, is fsynced, renamed into place and the
directory fsynced: after a crash a blob is either complete or absent (a leftover temp file is swept
by ``filesapi gc``).

The shard of a file id is the part of the id that changes every few seconds (``file_01`` ids start
with their creation time): uploads that run at the same time land in the same folder, so one fsync
of that folder covers all their renames (``_DirSyncer`` coalesces them), and each folder stays
small. Other keys shard by their last two characters.

Disk writes and fsyncs run on this store's own threads, so the event loop keeps parsing the next
chunk while the previous one is written (one write in flight per upload keeps the bytes in order)
and fsyncs of many uploads proceed in parallel.

A large blob is flushed while it arrives: every ``_EARLY_SYNC_STEP`` bytes an fdatasync starts on
another thread (one at a time per blob) while the writes go on. Left to the final fsync, a gigabyte
waits in the page cache (and a virtual disk's cache) until the client has sent its last byte, and
is then written while the client waits; measured here, that tail was a third of a 1 GiB upload.
The final fsync before the answer stays; it finds little left to do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from filesapi.blobs.base import BlobNotFound, BlobStore, ByteRange, Checksum, Chunk, check_key
from filesapi.errors import BackendUnavailable
from filesapi.ids import is_file_id
from filesapi.models import BlobInfo

__all__ = ["LocalBlobStore"]

_WRITE_BATCH = 1 << 20
_READ_CHUNK = 1 << 20
_SEND_LINK_SECONDS = 30.0  # far longer than an ASGI server takes to open a path it was handed
_IO_THREADS = 32  # fsyncs wait on the disk, not the CPU: many may run at once
_EARLY_SYNC_STEP = 32 << 20
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
_T = TypeVar("_T")


def _storage_error(exc: OSError) -> BackendUnavailable:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BackendUnavailable("The server's file storage is full.")
    return BackendUnavailable(f"The server's file storage failed: {exc.strerror or exc}.")


def _write_batch(fd: int, batch: list[Chunk], checksum: Checksum) -> None:
    for chunk in batch:
        checksum.update(chunk)
    total = sum(len(c) for c in batch)
    written = os.writev(fd, batch)
    if written < total:  # short write: finish the rest the plain way
        rest = memoryview(b"".join(batch))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def shard_of(key: str) -> str:
    if is_file_id(key):
        body = key[len("file_01") :]
        # Character 5 of the body changes about every 3.5 s, characters 0-4 about every 3 minutes.
        return f"{body[:5]}/{body[5]}"
    return key[-2:]


class _DirSyncer:
    """Coalesced fsyncs of a directory. A caller's rename happened before it asks, so a sync that
    starts after the request covers it: callers arriving while a sync runs share the next one."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._executor = executor
        self._running: dict[Path, asyncio.Future[None]] = {}
        self._queued: dict[Path, asyncio.Future[None]] = {}

    async def sync(self, path: Path) -> None:
        if path not in self._running:
            await asyncio.shield(self._start(path))
            return
        queued = self._queued.get(path)
        if queued is None:
            queued = self._queued[path] = asyncio.get_running_loop().create_future()
        await asyncio.shield(queued)

    def _start(self, path: Path) -> asyncio.Future[None]:
        running = asyncio.get_running_loop().run_in_executor(self._executor, _fsync_dir, path)
        self._running[path] = running
        running.add_done_callback(lambda _: self._finished(path))
        return running

    def _finished(self, path: Path) -> None:
        del self._running[path]
        queued = self._queued.pop(path, None)
        if queued is None:
            return
        following = self._start(path)

        def relay(done: asyncio.Future[None]) -> None:
            if queued.done():
                return
            if done.cancelled():
                queued.cancel()
            elif (exc := done.exception()) is not None:
                queued.set_exception(exc)
            else:
                queued.set_result(None)

        following.add_done_callback(relay)


class LocalBlobStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._sending = self.root / "sending"
        self._sending.mkdir(exist_ok=True)
        self._remove_stale_links()  # what a process that crashed left (other workers' links are young)
        self._known_dirs: set[Path] = set()
        self._executor = concurrent.futures.ThreadPoolExecutor(_IO_THREADS, "filesapi-disk")
        self._dir_syncer = _DirSyncer(self._executor)

    def _path(self, key: str) -> Path:
        return self._blobs / shard_of(key) / key

    def _stored_path(self, key: str) -> Path:
        """Where the blob is: its place in this layout, or in the first layout (``blobs/<last two
        characters>/<key>``), which folders written before it still use."""
        path = self._path(check_key(key))
        if not path.exists():
            legacy = self._blobs / key[-2:] / key
            if legacy.exists():
                return legacy
        return path

    async def _run_raw(self, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        """``_run_raw`` with OS errors translated for the callers above."""
        try:
            return await self._run_raw(fn, *args)
        except OSError as exc:
            raise _storage_error(exc) from exc

    async def put(self, key: str, chunks: AsyncIterable[Chunk]) -> BlobInfo:
        check_key(key)
        tmp = self._tmp / f"{key}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _storage_error(exc) from exc
        loop = asyncio.get_running_loop()
        checksum = Checksum()
        in_flight: asyncio.Future[None] | None = None
        # A flush of what was written so far, running beside the writes (see the module's doc).
        early: asyncio.Future[None] | None = None
        written = early_at = 0
        fd_open = True
        published = False
        try:
            batch: list[Chunk] = []
            batch_size = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                batch.append(chunk)
                batch_size += len(chunk)
                if batch_size >= _WRITE_BATCH:
                    if in_flight is not None:
                        await self._settle(in_flight)
                    in_flight = loop.run_in_executor(self._executor, _write_batch, fd, batch, checksum)
                    written += batch_size
                    batch, batch_size = [], 0
                    if written - early_at >= _EARLY_SYNC_STEP and (early is None or early.done()):
                        if early is not None:
                            # A failure it reports must fail the upload: Linux reports a writeback
                            # error once per open file, so the final fsync would not see it again.
                            await self._settle(early)
                        early = loop.run_in_executor(self._executor, _datasync, fd)
                        early_at = written
            if in_flight is not None:
                await self._settle(in_flight)
            if early is not None:
                await self._settle(early)
            final = self._path(key)
            fd_open = False  # _finish closes it whatever happens
            await self._run(self._finish, fd, batch, checksum, tmp, final)
            await self._synced(final.parent)
            published = True
            return checksum.info()
        finally:
            if not published:
                self._discard(fd if fd_open else None, tmp, [f for f in (in_flight, early) if f is not None])

    def _finish(self, fd: int, batch: list[Chunk], checksum: Checksum, tmp: Path, final: Path) -> None:
        """The rest of the bytes, fsync, close, rename into place: one trip to a thread."""
        try:
            if batch:
                _write_batch(fd, batch, checksum)
            os.fsync(fd)
        finally:
            os.close(fd)
        shard = final.parent
        if shard not in self._known_dirs:
            if not shard.is_dir():
                shard.mkdir(parents=True, exist_ok=True)
                _fsync_dir(shard.parent)  # the new folder's own entry
                if shard.parent != self._blobs:
                    _fsync_dir(self._blobs)
            self._known_dirs.add(shard)
        os.rename(tmp, final)

    async def _synced(self, directory: Path) -> None:
        try:
            await self._dir_syncer.sync(directory)
        except OSError as exc:
            raise _storage_error(exc) from exc

    @staticmethod
    async def _settle(future: asyncio.Future[None]) -> None:
        try:
            await asyncio.shield(future)
        except OSError as exc:
            raise _storage_error(exc) from exc

    @staticmethod
    def _discard(fd: int | None, tmp: Path, running: list[asyncio.Future[None]]) -> None:
        """Drop a failed write. A write or flush still running on its thread must finish before the
        fd is closed (a closed fd number can be reused by another upload), so cleanup waits for
        them."""
        pending = [f for f in running if not f.done()]

        def cleanup() -> None:
            for future in running:  # their errors are this failure's; retrieved, so never logged
                if not future.cancelled():
                    future.exception()
            if fd is not None:
                os.close(fd)
            tmp.unlink(missing_ok=True)

        def finished(_: object) -> None:
            pending.pop()
            if not pending:
                cleanup()

        if not pending:
            cleanup()
        for future in pending:
            future.add_done_callback(finished)

    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        path = self._stored_path(key)
        try:
            size = (await self._run_raw(os.stat, path)).st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise _storage_error(exc) from exc
        start, stop = (0, size) if byte_range is None else (byte_range.start, byte_range.end + 1)
        return self._read(key, path, start, stop)

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
        await self._run(lambda: self._stored_path(key).unlink(missing_ok=True))

    async def exists(self, key: str) -> bool:
        return await self._run(lambda: self._stored_path(key).is_file())

    async def iter_keys(self) -> AsyncIterator[str]:
        """Folder by folder, so memory stays flat however many blobs there are."""

        def files_in(folder: Path) -> list[str]:
            return [p.name for p in folder.rglob("*") if p.is_file()]

        for folder in await self._run(lambda: sorted(p for p in self._blobs.iterdir() if p.is_dir())):
            for key in await self._run(files_in, folder):
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
            return removed + self._remove_stale_links()

        return await self._run(sweep)

    async def send_path(self, key: str) -> str:
        """A hard link to the blob, for the ASGI server to send by path. The server opens the path
        only after the app has handed it over, so the blob's own path could be deleted in between
        (a bare 404 from the server); the link keeps the bytes reachable until the server has them
        open, then goes (``_SEND_LINK_SECONDS`` later, or at the next start after a crash)."""

        def link() -> str:
            target = self._sending / f"{key}.{secrets.token_hex(6)}"
            try:
                os.link(self._stored_path(key), target)
            except FileNotFoundError:
                raise BlobNotFound(key) from None
            return str(target)

        path = await self._run(link)
        asyncio.get_running_loop().call_later(_SEND_LINK_SECONDS, self._unlink_later, path)
        return path

    def _remove_stale_links(self) -> int:
        # A link's ctime is when it was made (link() changes the inode's ctime).
        cutoff = time.time() - 2 * _SEND_LINK_SECONDS
        removed = 0
        for path in self._sending.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_ctime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def _unlink_later(self, path: str) -> None:
        with contextlib.suppress(RuntimeError):  # the executor is gone: the next start clears it
            self._executor.submit(os.unlink, path)

    async def close(self) -> None:
        self._executor.shutdown(wait=False)
