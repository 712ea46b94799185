"""The metadata store interface: files, workspaces, API keys and server secrets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from filesapi.models import ApiKey, FilePage, FileRecord, Workspace, WorkspaceStats

__all__ = ["MetadataStore", "SchemaOutOfDate"]


class SchemaOutOfDate(RuntimeError):
    """The database schema is older (or newer) than this code; migrate before serving."""


class MetadataStore(ABC):
    """Async access to metadata. Knows its database and nothing about the API's rules."""

    # -- workspaces
    @abstractmethod
    async def ensure_workspace(self, name: str) -> Workspace:
        """Return the workspace called ``name``, creating it when missing."""

    @abstractmethod
    async def find_workspace(self, name_or_id: str) -> Workspace | None: ...

    @abstractmethod
    async def used_bytes(self, workspace_id: str) -> int: ...

    @abstractmethod
    async def workspace_stats(self) -> list[WorkspaceStats]:
        """Visible files and charged bytes of every workspace, by name."""

    # -- files
    @abstractmethod
    async def insert_file(
        self, record: FileRecord, quota_bytes: int | None, content: bytes | None = None
    ) -> bool:
        """Add the file and charge its size to the workspace in one transaction; with ``content``
        (a file with ``stored_inline``) its bytes are stored in that same transaction.

        Returns False (and stores nothing) when the charge would take the workspace past
        ``quota_bytes``; the check and the charge are atomic, so concurrent inserts cannot overshoot.
        """

    @abstractmethod
    async def inline_content(self, file_id: str) -> bytes | None:
        """The bytes of a file stored inline, or None when there are none (any more)."""

    @abstractmethod
    async def get_file(self, workspace_id: str, file_id: str) -> FileRecord | None:
        """A visible (not deleted) file of the workspace."""

    @abstractmethod
    async def list_files(
        self,
        workspace_id: str,
        *,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        scope_id: str | None = None,
    ) -> FilePage:
        """Newest first. ``after_id``: only files older than it; ``before_id``: only newer.

        With ``before_id`` alone the page is the ``limit`` files just newer than it (still newest
        first) and ``has_more`` tells whether even newer ones exist; otherwise ``has_more`` tells
        whether older ones exist.
        """

    @abstractmethod
    async def get_files(self, workspace_id: str, file_ids: Sequence[str]) -> list[FileRecord]:
        """The visible files among ``file_ids``, newest first; unknown ids are left out."""

    @abstractmethod
    async def hide_file(self, workspace_id: str, file_id: str, now_us: int) -> FileRecord | None:
        """Mark the file deleted and release its bytes from the workspace's usage (unless an expiry
        purge already did), atomically. Returns the file, or None when it was not visible."""

    @abstractmethod
    async def hide_all(self, workspace_id: str | None, now_us: int) -> int:
        """Hide every visible file (of one workspace, or of all) and zero their usage, atomically.
        Returns how many were hidden; their blobs go with the next sweeps."""

    @abstractmethod
    async def purge_file(self, file_id: str) -> None:
        """Forget a hidden file's row and its inline bytes (after its blob is gone)."""

    # -- sweeping (safe to run on every replica at once: rows are claimed with a lease)
    @abstractmethod
    async def claim_hidden(self, limit: int, now_us: int, lease_us: int) -> list[str]:
        """Claim up to ``limit`` hidden rows (deletes a crash or an outage interrupted) for
        ``lease_us``; no other caller gets the same rows until the lease runs out."""

    @abstractmethod
    async def claim_expired(self, limit: int, now_us: int, lease_us: int) -> list[FileRecord]:
        """Claim visible files that expired and still have their content."""

    @abstractmethod
    async def mark_purged(self, file_id: str, now_us: int) -> None:
        """Record that an expired file's content is gone (removing its inline bytes), and release
        its bytes from the quota."""

    @abstractmethod
    async def scan_files(self, after_id: str | None, limit: int) -> list[FileRecord]:
        """Visible files that still have content, of every workspace, in id order after ``after_id``
        (for scrubbing)."""

    @abstractmethod
    async def quarantine(self, file_id: str, now_us: int) -> None:
        """Mark a file whose stored bytes are corrupt; it is never served again."""

    @abstractmethod
    async def existing_ids(self, file_ids: Sequence[str]) -> set[str]:
        """Which of ``file_ids`` have a row (visible or hidden)."""

    @abstractmethod
    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Try to take a lock named ``name`` shared by every process using this database; yields
        whether this caller holds it (never waits)."""

    @abstractmethod
    async def check(self) -> None:
        """Raise ``BackendUnavailable`` unless the database answers (for /readyz)."""

    # -- keys
    @abstractmethod
    async def add_key(self, key: ApiKey) -> None: ...

    @abstractmethod
    async def find_key(self, key_id: str) -> ApiKey | None: ...

    @abstractmethod
    async def list_keys(self) -> list[ApiKey]: ...

    @abstractmethod
    async def revoke_key(self, key_id: str, now_us: int) -> bool:
        """Returns False when no active key has that id."""

    # -- rate limits
    @abstractmethod
    async def lease_tokens(
        self, client: str, rate: int, want: int, now_us: int, *, prune: bool = False
    ) -> tuple[int, float]:
        """Take up to ``want`` tokens from the shared bucket of ``client`` (``rate`` a minute, at
        most ``rate`` held): how many were granted and, if none, the seconds until one is there.
        ``prune``: also forget the buckets of clients quiet long enough to be full."""

    # -- secrets
    @abstractmethod
    async def secret(self, name: str, create: Callable[[], str]) -> str:
        """The server secret called ``name``; the first caller's ``create()`` value wins, so every
        replica sharing the database signs with the same secret."""

    @abstractmethod
    async def close(self) -> None: ...
