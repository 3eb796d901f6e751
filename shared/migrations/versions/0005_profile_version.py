"""each profile's counter version, so a late profile is folded into its hour's window

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`profiles.version` is the value of its (series, hour) counter once the put that stored it had
bumped it. A window built from version V holds exactly the hour's profiles of version <= V, so
when more arrive the compactor merges the window with just those above V instead of the whole
hour again. Rows stored before this revision keep NULL: an hour that holds one is rebuilt whole,
as before.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("profiles", sa.Column("version", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("profiles", "version")
