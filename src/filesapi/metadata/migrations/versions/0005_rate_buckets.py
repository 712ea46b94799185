"""Rate buckets: one token bucket per client, shared by every worker and replica.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("client", sa.String(128), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("stamp_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
