"""The initial schema: workspaces, API keys, files and server secrets.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("used_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", _Id, sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "files",
        sa.Column("id", _Id, primary_key=True),
        sa.Column("workspace_id", _Id, sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(80), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("downloadable", sa.Boolean, nullable=False),
        sa.Column("scope_id", sa.String(255), nullable=True),
        sa.Column("expires_at_us", sa.BigInteger, nullable=True),
        sa.Column("deleted_at_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_files_workspace_id_id", "files", ["workspace_id", "id"])
    op.create_index("ix_files_workspace_id_scope_id_id", "files", ["workspace_id", "scope_id", "id"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_index("ix_files_workspace_id_scope_id_id", "files")
    op.drop_index("ix_files_workspace_id_id", "files")
    op.drop_table("files")
    op.drop_table("api_keys")
    op.drop_table("workspaces")
