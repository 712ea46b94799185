"""Inline contents: small files' bytes stored beside their row, committed with it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Id = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("stored_inline", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "inline_contents",
        sa.Column("file_id", _Id, primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inline_contents")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("stored_inline")
