"""The metadata schema as SQLAlchemy Core tables (one schema for SQLite and PostgreSQL).

Alembic migrations in ``migrations/versions`` create and evolve it; a test checks that the
migrated database matches these tables exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

__all__ = [
    "api_keys",
    "files",
    "inline_contents",
    "metadata",
    "rate_buckets",
    "server_secrets",
    "workspaces",
]

metadata = MetaData()

# Ids sort bytewise (base58 in ASCII order); PostgreSQL's default collation does not, so pin "C".
_HIDDEN = text("deleted_at_us IS NOT NULL")
_EXPIRING = text("expires_at_us IS NOT NULL AND purged_at_us IS NULL")
_Id = String(64).with_variant(String(64, collation="C"), "postgresql")

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", _Id, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("used_bytes", BigInteger, nullable=False, server_default="0"),
    Column("created_at_us", BigInteger, nullable=False),
    # Raised in the same transaction as every change to the workspace's listed files (an upload,
    # a delete, a reset): a list page kept by a process is served again only while it is unchanged.
    Column("files_version", BigInteger, nullable=False, server_default="0"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("workspace_id", _Id, ForeignKey("workspaces.id"), nullable=False),
    Column("key_hash", String(128), nullable=False),
    Column("label", String(200), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger, nullable=True),
)

files = Table(
    "files",
    metadata,
    Column("id", _Id, primary_key=True),
    Column("workspace_id", _Id, ForeignKey("workspaces.id"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("checksum", String(80), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("downloadable", Boolean, nullable=False),
    Column("scope_id", String(255), nullable=True),
    Column("expires_at_us", BigInteger, nullable=True),
    # Set when a delete hid the row; the row goes once its blob is gone (a crash in between is swept).
    Column("deleted_at_us", BigInteger, nullable=True),
    # Set when the content of an expired file was removed (its metadata stays readable).
    Column("purged_at_us", BigInteger, nullable=True),
    # Set by `filesapi scrub --quarantine` when the stored bytes failed their checksum.
    Column("quarantined_at_us", BigInteger, nullable=True),
    # A sweeper's claim on the row until then, so replicas never sweep the same row at once.
    Column("lease_until_us", BigInteger, nullable=True),
    # True when the bytes are in inline_contents (small files), not in the blob store.
    Column("stored_inline", Boolean, nullable=False, server_default=false()),
    Index("ix_files_workspace_id_id", "workspace_id", "id"),
    Index("ix_files_workspace_id_scope_id_id", "workspace_id", "scope_id", "id"),
    Index("ix_files_hidden", "id", sqlite_where=_HIDDEN, postgresql_where=_HIDDEN),
    Index("ix_files_expiring", "expires_at_us", sqlite_where=_EXPIRING, postgresql_where=_EXPIRING),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(512), nullable=False),
)

# The bytes of small files, written in the same transaction as their ``files`` row: one commit
# (one fsync, shared by every upload in a group commit) makes both durable. Kept out of ``files``
# so listing never reads them. The row goes with the file's purge or expiry.
inline_contents = Table(
    "inline_contents",
    metadata,
    Column("file_id", _Id, primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

# One token bucket per rate-limited client (a digest of its key or its address, never the key),
# shared by every process and replica on this database. Processes lease tokens from it in small
# batches (``filesapi.metadata.limits``); rows of clients quiet for a while are deleted.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("client", String(128), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp_us", BigInteger, nullable=False),
)
