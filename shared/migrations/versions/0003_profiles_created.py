"""an index on profiles.created_at for retention

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Raw retention looks for the oldest profile of any service and deletes a day of them; without
this index each of its calls read the whole profiles table (tens of seconds at 20 million rows).
No row changes. On PostgreSQL the build holds off writes to profiles while it runs (about a
minute per 10 million rows on a small machine): run `profefe migrate` in a quiet hour.
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("profiles_created", "profiles", ["created_at"])


def downgrade() -> None:
    op.drop_index("profiles_created", table_name="profiles")
