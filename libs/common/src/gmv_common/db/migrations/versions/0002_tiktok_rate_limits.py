"""The shared TikTok request budget: one pacer row per developer app.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gmv_common.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tiktok_rate_limits",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("qps", sa.Double(), nullable=False),
        sa.Column("rate_factor", sa.Double(), nullable=False),
        sa.Column("rate_factor_at", sa.Double(), nullable=False),
        sa.Column("next_slot_at", sa.Double(), nullable=False),
        sa.Column("throttled_at", sa.Double(), nullable=True),
        sa.Column("throttle_count", sa.BigInteger(), nullable=False),
        sa.Column("jitter", sa.Double(), nullable=False),
        sa.Column("jitter_at", sa.Double(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", gmv_common.db.base.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_tiktok_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("tiktok_rate_limits")
