"""each profile's sample totals

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The sum of each sample value column, as JSON (`[n, ...]`), written at ingest so a timeline over
thousands of profiles reads rows, never blobs. Rows stored before this revision keep NULL: the
timeline counts them and says their totals are unknown.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("profiles", sa.Column("totals", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("profiles", "totals")
