"""profiles and their labels

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    # Find always filters by service and a created_at window, often by type too.
    op.create_index("profiles_service_created", "profiles", ["service", "created_at", "id"])
    op.create_index("profiles_service_type_created", "profiles", ["service", "type", "created_at", "id"])
    op.create_table(
        "profile_labels",
        sa.Column(
            "profile_id",
            sa.String(20),
            sa.ForeignKey("profiles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    # One indexed lookup per (key, value) pair of the AND filter.
    op.create_index("profile_labels_pair", "profile_labels", ["key", "value", "profile_id"])


def downgrade() -> None:
    op.drop_table("profile_labels")
    op.drop_table("profiles")
