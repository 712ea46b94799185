"""Plain typed records passed between the service and the stores."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ApiKey", "BlobInfo", "FilePage", "FileRecord", "Principal", "Workspace", "WorkspaceStats"]


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    workspace_id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at_us: int
    downloadable: bool
    checksum: str
    scope_id: str | None = None
    expires_at_us: int | None = None
    quarantined: bool = False
    # The bytes live in the metadata database (small files), not in the blob store.
    stored_inline: bool = False

    def is_expired(self, now_us: int) -> bool:
        return self.expires_at_us is not None and now_us >= self.expires_at_us


@dataclass(frozen=True, slots=True)
class FilePage:
    """One page of a newest-first listing. ``has_more``: more files lie beyond in the direction asked."""

    files: list[FileRecord]
    has_more: bool


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    checksum: str


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    workspace: Workspace
    key_hash: str
    created_at_us: int
    revoked_at_us: int | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the workspace a request acts on and the key that proved it."""

    workspace: Workspace
    key_id: str | None
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class WorkspaceStats:
    workspace: Workspace
    files: int
    bytes: int
