"""FileService: the Files API's rules (validation, limits, quotas, expiry, paging), free of HTTP.

It takes and returns plain records (``filesapi.models``) and raises domain errors
(``filesapi.errors``). The write path: stream the bytes into the blob store (counting, checksumming,
refusing past the size limit or the quota), then commit the metadata row, which charges the quota
atomically; only then is the file visible. A failure at any step removes the blob again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from filesapi.blobs import BlobNotFound, BlobStore, ByteRange
from filesapi.blobs.base import Checksum, Chunk
from filesapi.cursors import CursorCodec
from filesapi.errors import (
    BackendUnavailable,
    CorruptBlob,
    FileExpired,
    FileNotDownloadable,
    FilesApiError,
    FileTooLarge,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
)
from filesapi.ids import IdClock, file_id_timestamp_us, is_file_id
from filesapi.metadata import MetadataStore
from filesapi.mime import CONTROL_CHARACTERS, SNIFF_BYTES, clean_filename, default_filename, detect_mime_type
from filesapi.models import BlobInfo, FilePage, FileRecord, Principal
from filesapi.numbers import parse_int

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_EXPIRES_IN_SECONDS",
    "MAX_IDS",
    "MAX_PAGE_SIZE",
    "MIN_EXPIRES_IN_SECONDS",
    "FileService",
    "Policy",
    "ScrubReport",
    "StagedUpload",
    "SweepReport",
    "check_text",
]

log = logging.getLogger("filesapi.service")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
MAX_IDS = 100
MIN_EXPIRES_IN_SECONDS = 3600
MAX_EXPIRES_IN_SECONDS = 7_776_000
_MAX_SCOPE_ID = 255
ORPHAN_GRACE_SECONDS = 24 * 3600.0
_SWEEP_BATCH = 500
_LEASE_US = 5 * 60 * 1_000_000


@dataclass
class ScrubReport:
    checked: int = 0
    bytes: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)
    quarantined: int = 0


@dataclass
class SweepReport:
    deletes_finished: int = 0
    expired_purged: int = 0
    orphans_removed: int = 0
    incomplete_removed: int = 0

    def __bool__(self) -> bool:
        return any(
            (self.deletes_finished, self.expired_purged, self.orphans_removed, self.incomplete_removed)
        )


@dataclass(frozen=True)
class Policy:
    """The rules a deployment chooses. ``uploads_downloadable`` is False under ``--profile hosted``.
    ``inline_max_size``: files up to this many bytes are stored in the metadata database with their
    row (one commit makes both durable) instead of in the blob store; 0 stores every file there."""

    max_file_size: int = 500_000_000
    workspace_quota: int | None = None
    uploads_downloadable: bool = True
    inline_max_size: int = 0


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is several times slower
class StagedUpload:
    """Bytes stored under a fresh id, not yet visible: ``commit`` or ``discard`` it."""

    principal: Principal
    file_id: str
    created_at_us: int
    filename: str
    mime_type: str
    size_bytes: int
    checksum: str
    downloadable: bool
    scope_id: str | None
    inline: bytes | None = None  # the bytes, when the file is small enough to go with its row


def check_text(name: str, value: str, max_length: int = _MAX_SCOPE_ID) -> str:
    """A name or id a client chose: 1..max_length characters, no control characters (NUL, for
    one, cannot be stored in PostgreSQL text)."""
    if not 0 < len(value) <= max_length:
        raise InvalidRequest(f"{name} must be 1 to {max_length} characters.")
    if CONTROL_CHARACTERS.search(value):
        raise InvalidRequest(f"{name} must not contain control characters.")
    return value


def _check_scope_id(scope_id: str | None) -> None:
    if scope_id is not None:
        check_text("scope_id", scope_id)


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


def _show_id(file_id: str) -> str:
    return file_id if len(file_id) <= 64 else file_id[:61] + "..."


class FileService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        cursors: CursorCodec,
        *,
        policy: Policy | None = None,
        clock: IdClock | None = None,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.cursors = cursors
        self.policy = policy or Policy()
        self.clock = clock or IdClock()

    # -- upload
    @staticmethod
    def parse_expires_in_seconds(text: str, *, any_positive: bool = False) -> int:
        """``any_positive``: the admin path, which may make files that expire in a second."""
        low = 1 if any_positive else MIN_EXPIRES_IN_SECONDS
        value = parse_int("expires_in_seconds", text)
        if not low <= value <= MAX_EXPIRES_IN_SECONDS:
            raise InvalidRequest(f"expires_in_seconds must be between {low} and {MAX_EXPIRES_IN_SECONDS}.")
        return value

    async def stage(
        self,
        principal: Principal,
        *,
        filename: str | None,
        content_type: str | None,
        chunks: AsyncIterable[Chunk] | bytes,
        downloadable: bool | None = None,
        scope_id: str | None = None,
    ) -> StagedUpload:
        """``chunks``: the bytes as they arrive, or all of them at once when they already have."""
        name = clean_filename(filename)
        _check_scope_id(scope_id)
        workspace_id = principal.workspace.id
        quota = self.policy.workspace_quota
        room = None if quota is None else quota - await self.metadata.used_bytes(workspace_id)
        file_id, created_at_us = self.clock.new_file_id()
        if isinstance(chunks, bytes):
            self._check_size(len(chunks), room)
            inline, info = await self._store_whole(file_id, chunks)
            head = chunks[:SNIFF_BYTES]
        else:
            sniffed = bytearray()

            async def checked() -> AsyncIterator[Chunk]:
                total = 0
                async for chunk in chunks:
                    total += len(chunk)
                    self._check_size(total, room)
                    if len(sniffed) < SNIFF_BYTES:
                        sniffed.extend(chunk[: SNIFF_BYTES - len(sniffed)])
                    yield chunk

            inline, info = await self._store(file_id, checked())
            head = bytes(sniffed)
        mime_type = detect_mime_type(content_type, name, head, complete=info.size <= SNIFF_BYTES)
        return StagedUpload(
            principal=principal,
            file_id=file_id,
            created_at_us=created_at_us,
            filename=name or default_filename(mime_type),
            mime_type=mime_type,
            size_bytes=info.size,
            checksum=info.checksum,
            downloadable=self.policy.uploads_downloadable if downloadable is None else downloadable,
            scope_id=scope_id,
            inline=inline,
        )

    def _check_size(self, size: int, room: int | None) -> None:
        if size > self.policy.max_file_size:
            raise self.too_large()
        if room is not None and size > room:
            raise QuotaExceeded(self._quota_message())

    async def _store_whole(self, file_id: str, content: bytes) -> tuple[bytes | None, BlobInfo]:
        """``_store`` for bytes that are all here."""
        if self.policy.inline_max_size > 0 and len(content) <= self.policy.inline_max_size:
            return content, Checksum.of(content)
        return None, await self.blobs.put(file_id, _once(content))

    async def _store(self, file_id: str, chunks: AsyncIterator[Chunk]) -> tuple[bytes | None, BlobInfo]:
        """Put the bytes in the blob store, unless they end within ``inline_max_size``: then they
        are returned, to be committed with the row."""
        limit = self.policy.inline_max_size
        if limit <= 0:
            return None, await self.blobs.put(file_id, chunks)
        head: list[Chunk] = []
        size = 0
        async for chunk in chunks:  # leaving this loop early does not close ``chunks``
            head.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        else:
            content = b"".join(head)
            checksum = Checksum()
            checksum.update(content)
            return content, checksum.info()

        async def everything() -> AsyncIterator[Chunk]:
            for chunk in head:
                yield chunk
            async for chunk in chunks:
                yield chunk

        return None, await self.blobs.put(file_id, everything())

    def too_large(self) -> FileTooLarge:
        return FileTooLarge(f"File is larger than the {self.policy.max_file_size}-byte limit of this server.")

    def _quota_message(self) -> str:
        return f"This workspace's storage quota of {self.policy.workspace_quota} bytes is exhausted."

    async def commit(self, staged: StagedUpload, *, expires_in_seconds: int | None = None) -> FileRecord:
        record = FileRecord(
            id=staged.file_id,
            workspace_id=staged.principal.workspace.id,
            filename=staged.filename,
            mime_type=staged.mime_type,
            size_bytes=staged.size_bytes,
            created_at_us=staged.created_at_us,
            downloadable=staged.downloadable,
            checksum=staged.checksum,
            scope_id=staged.scope_id,
            expires_at_us=None
            if expires_in_seconds is None
            else staged.created_at_us + expires_in_seconds * 1_000_000,
            stored_inline=staged.inline is not None,
        )
        if not await self.metadata.insert_file(record, self.policy.workspace_quota, staged.inline):
            raise QuotaExceeded(self._quota_message())
        return record

    async def discard(self, staged: StagedUpload) -> None:
        if staged.inline is not None:
            return
        try:
            await self.blobs.delete(staged.file_id)
        except BackendUnavailable:
            log.warning("could not remove the blob of abandoned upload %s; gc will", staged.file_id)

    # -- read
    async def get(self, principal: Principal, file_id: str) -> FileRecord:
        record = (
            await self.metadata.get_file(principal.workspace.id, file_id) if is_file_id(file_id) else None
        )
        if record is None:
            raise NotFound(f"File not found: {_show_id(file_id)}")
        return record

    def _page_size(self, limit: int | None) -> int:
        if limit is None:
            return DEFAULT_PAGE_SIZE
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}.")
        return limit

    async def list_files(
        self,
        principal: Principal,
        *,
        limit: int | None = None,
        page: str | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        scope_id: str | None = None,
    ) -> tuple[FilePage, str | None]:
        """One page, newest first, and the opaque cursor of the next (older) page, or None.

        ``page`` is a cursor from a previous answer; ``after_id``/``before_id`` are the beta
        dialect's keys. Both ``after_id`` and ``before_id``: the files strictly between them.
        """
        for name, value in (("after_id", after_id), ("before_id", before_id)):
            if value is not None and not is_file_id(value):
                raise InvalidRequest(f"{name} must be a file id returned by this API.")
        _check_scope_id(scope_id)
        workspace_id = principal.workspace.id
        if page is not None:
            if after_id is not None or before_id is not None:
                raise InvalidRequest("page cannot be combined with after_id or before_id.")
            after_id = self.cursors.open(workspace_id, page)
        result = await self.metadata.list_files(
            workspace_id,
            limit=self._page_size(limit),
            after_id=after_id,
            before_id=before_id,
            scope_id=scope_id,
        )
        toward_older = before_id is None or after_id is not None
        next_page = None
        if toward_older and result.has_more:
            next_page = self.cursors.seal(workspace_id, result.files[-1].id)
        return result, next_page

    async def list_ids(self, principal: Principal, file_ids: Sequence[str]) -> list[FileRecord]:
        unique = list(dict.fromkeys(file_ids))
        if len(unique) > MAX_IDS:
            raise InvalidRequest(f"ids accepts at most {MAX_IDS} distinct ids, got {len(unique)}.")
        wanted = [i for i in unique if is_file_id(i)]
        return await self.metadata.get_files(principal.workspace.id, wanted)

    async def downloadable(self, principal: Principal, file_id: str) -> FileRecord:
        """The file, if its content may be downloaded now."""
        return await self.readable(principal, file_id, download=True)

    async def readable(self, principal: Principal, file_id: str, *, download: bool = False) -> FileRecord:
        """The file, if its content may be read now: not expired, not quarantined, and (for a
        ``download``) downloadable. The Messages gateway reads files that are not downloadable too,
        as the hosted service lets a model read every file of the workspace."""
        record = await self.get(principal, file_id)
        if record.is_expired(self.clock.now_us()):
            raise FileExpired(record.id)
        if download and not record.downloadable:
            raise FileNotDownloadable(record.id)
        if record.quarantined:
            raise CorruptBlob(f"The stored content of {record.id} failed its checksum and is quarantined.")
        return record

    async def content_path(self, record: FileRecord) -> str | None:
        """A path the HTTP server may send the whole file from by itself, if the store has one."""
        if record.stored_inline:
            return None
        try:
            return await self.blobs.send_path(record.id)
        except BlobNotFound:
            raise await self._missing(record) from None

    async def _open(self, record: FileRecord, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        """The stored bytes wherever they are; ``BlobNotFound`` when they are missing."""
        if not record.stored_inline:
            return await self.blobs.open(record.id, byte_range)
        content = await self.metadata.inline_content(record.id)
        if content is None:
            raise BlobNotFound(record.id)
        if byte_range is not None:
            content = content[byte_range.start : byte_range.end + 1]
        return _once(content)

    async def download_url(self, record: FileRecord, *, content_disposition: str) -> str | None:
        """Where the client may fetch the whole file by itself, when the blob store offers that
        (S3 with ``download_redirect``); None for inline files and every other store."""
        if record.stored_inline:
            return None
        return await self.blobs.download_url(
            record.id, content_type=record.mime_type, content_disposition=content_disposition
        )

    async def content(self, record: FileRecord, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        """The file's bytes. A whole-file read is verified against the stored size and checksum as
        it streams, holding the last chunk back until the check passes: on a mismatch the file is
        quarantined and the stream fails before its end, so a client never receives a complete-
        looking corrupt body. (A range cannot be checked against a whole-file checksum.)"""
        try:
            chunks = await self._open(record, byte_range)
        except BlobNotFound:
            raise await self._missing(record) from None
        return self._gone_is_not_found(
            record, chunks if byte_range is not None else self._verified(record, chunks)
        )

    async def _missing(self, record: FileRecord) -> FilesApiError:
        """Why the bytes of a file that was there a moment ago are missing: a delete (or an expiry
        purge) that ran while the download started answers as if it had come first; only bytes
        missing from a file that still exists are corruption."""
        current = await self.metadata.get_file(record.workspace_id, record.id)
        if current is None:
            return NotFound(f"File not found: {record.id}")
        if current.is_expired(self.clock.now_us()):
            return FileExpired(record.id)
        log.error("file %s has metadata but no stored content", record.id)
        return CorruptBlob(f"The stored content of {record.id} is missing.")

    async def _gone_is_not_found(
        self, record: FileRecord, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """``chunks``, with bytes vanishing mid-read (an object store losing the object to a
        delete) reported as ``_missing`` says."""
        try:
            async for chunk in chunks:
                yield chunk
        except BlobNotFound:
            raise await self._missing(record) from None
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _verified(self, record: FileRecord, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        checksum = Checksum()
        held: bytes | None = None
        try:
            async for chunk in chunks:
                checksum.update(chunk)
                if held is not None:
                    yield held
                held = chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if checksum.size != record.size_bytes or checksum.hexdigest() != record.checksum:
            log.error(
                "file %s failed its checksum on download (%d bytes, %s; expected %d bytes, %s): quarantined",
                record.id, checksum.size, checksum.hexdigest(), record.size_bytes, record.checksum,
            )  # fmt: skip
            await self.metadata.quarantine(record.id, self.clock.now_us())
            raise CorruptBlob(f"The stored content of {record.id} failed its checksum.")
        if held is not None:
            yield held

    # -- delete
    async def delete(self, principal: Principal, file_id: str) -> str:
        record = (
            await self.metadata.hide_file(principal.workspace.id, file_id, self.clock.now_us())
            if is_file_id(file_id)
            else None
        )
        if record is None:
            raise NotFound(f"File not found: {_show_id(file_id)}")
        try:
            if not record.stored_inline:
                await self.blobs.delete(record.id)
            await self.metadata.purge_file(record.id)
        except BackendUnavailable:
            log.warning("file %s is deleted but its blob is not yet removed; the sweeper will", record.id)
        return record.id

    async def scrub(
        self, *, quarantine: bool = False, on_file: Callable[[FileRecord, str | None], None] | None = None
    ) -> ScrubReport:
        """Re-read every stored file and check its size and checksum against the metadata.
        ``quarantine``: mark the bad ones so they are never served. ``on_file(record, problem)``
        is told about each file (problem None when it is sound)."""
        report = ScrubReport()
        after: str | None = None
        while batch := await self.metadata.scan_files(after, _SWEEP_BATCH):
            for record in batch:
                problem = await self._verify(record)
                report.checked += 1
                report.bytes += record.size_bytes
                if problem is not None:
                    report.bad.append((record.id, problem))
                    if quarantine and not record.quarantined:
                        await self.metadata.quarantine(record.id, self.clock.now_us())
                        report.quarantined += 1
                if on_file is not None:
                    on_file(record, problem)
            after = batch[-1].id
        return report

    async def _verify(self, record: FileRecord) -> str | None:
        checksum = Checksum()
        try:
            async for chunk in await self._open(record):
                checksum.update(chunk)
        except BlobNotFound:
            if await self.metadata.get_file(record.workspace_id, record.id) is None:
                return None  # deleted while the scrub ran: nothing is wrong
            return "content missing"
        if checksum.size != record.size_bytes:
            return f"size {checksum.size}, metadata says {record.size_bytes}"
        if checksum.hexdigest() != record.checksum:
            return f"checksum {checksum.hexdigest()}, metadata says {record.checksum}"
        return None

    async def reset(self, workspace_id: str | None = None) -> int:
        """Delete every file of a workspace (or of all): for tests and ``filesapi reset``.
        Returns how many files were deleted; their bytes are removed before this returns."""
        hidden = await self.metadata.hide_all(workspace_id, self.clock.now_us())
        while True:
            claimed = await self.metadata.claim_hidden(_SWEEP_BATCH, self.clock.now_us(), _LEASE_US)
            if not claimed:
                return hidden
            for file_id in claimed:
                await self.blobs.delete(file_id)
                await self.metadata.purge_file(file_id)

    # -- background sweeping (every replica may run it at once)
    async def sweep(
        self, *, orphan_grace_seconds: float = ORPHAN_GRACE_SECONDS, orphans: bool = True
    ) -> SweepReport:
        """One round: finish interrupted deletes, purge the content of expired files, and (with
        ``orphans``) remove blobs no row knows (left by a crash between storing the bytes and
        committing the row) and unfinished uploads. Rows are claimed with leases and orphan
        collection runs under a database-wide lock, so replicas sweeping at once never do the same
        work twice."""
        report = SweepReport()
        now = self.clock.now_us()
        for file_id in await self.metadata.claim_hidden(_SWEEP_BATCH, now, _LEASE_US):
            await self.blobs.delete(file_id)
            await self.metadata.purge_file(file_id)
            report.deletes_finished += 1
        for record in await self.metadata.claim_expired(_SWEEP_BATCH, now, _LEASE_US):
            if not record.stored_inline:
                await self.blobs.delete(record.id)
            await self.metadata.mark_purged(record.id, now)
            report.expired_purged += 1
        if not orphans:  # listing every blob is the costly part: the background loop does it hourly
            return report
        async with self.metadata.exclusive("filesapi-orphan-gc") as mine:
            if mine:
                report.orphans_removed = await self._remove_orphans(now, orphan_grace_seconds)
                report.incomplete_removed = await self.blobs.sweep_incomplete(orphan_grace_seconds)
        return report

    async def _remove_orphans(self, now_us: int, grace_seconds: float) -> int:
        # The id says when the upload began; a blob without a row younger than the grace period
        # may belong to an upload that is about to commit its row.
        cutoff = now_us - int(grace_seconds * 1_000_000)
        removed = 0
        batch: list[str] = []

        async def flush() -> int:
            known = await self.metadata.existing_ids(batch)
            orphans = [key for key in batch if key not in known]
            for key in orphans:
                await self.blobs.delete(key)
            batch.clear()
            return len(orphans)

        async for key in self.blobs.iter_keys():
            if is_file_id(key) and file_id_timestamp_us(key) < cutoff:
                batch.append(key)
                if len(batch) >= _SWEEP_BATCH:
                    removed += await flush()
        if batch:
            removed += await flush()
        if removed:
            log.warning("removed %d blobs that no file row refers to", removed)
        return removed
