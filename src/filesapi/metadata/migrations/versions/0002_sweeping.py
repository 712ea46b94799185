"""Sweeping: leases so replicas never sweep the same row twice, and purged content of expired files.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_HIDDEN = sa.text("deleted_at_us IS NOT NULL")
_EXPIRING = sa.text("expires_at_us IS NOT NULL AND purged_at_us IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("purged_at_us", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("lease_until_us", sa.BigInteger, nullable=True))
    op.create_index("ix_files_hidden", "files", ["id"], sqlite_where=_HIDDEN, postgresql_where=_HIDDEN)
    op.create_index(
        "ix_files_expiring", "files", ["expires_at_us"], sqlite_where=_EXPIRING, postgresql_where=_EXPIRING
    )


def downgrade() -> None:
    op.drop_index("ix_files_expiring", "files")
    op.drop_index("ix_files_hidden", "files")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("lease_until_us")
        batch.drop_column("purged_at_us")
