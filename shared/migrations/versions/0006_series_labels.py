"""series_labels: each series' label pairs, one row per pair, for finding profiles by label

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A label filter on pprof profiles picks the matching series first, one range of this table's
(service, key, value, type) index per pair, then reads their profiles on the (series_id,
created_at) index, instead of probing the labels of every profile the window holds. Each row
repeats its series' service and type (a series never changes) so that range holds exactly the
series asked for. The pairs are filled in here from the labels each series row holds already
(JSON [[key, value], ...], sorted); no profile changes. A year of a fleet of 1,000 instances is
about 100,000 series, half a million pairs: a minute or two on a small, busy machine.
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "series_labels",
        sa.Column("series_id", sa.String(32), sa.ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    _backfill(op.get_bind())
    # Built after the rows: one sort instead of half a million inserts into it.
    op.create_index("series_labels_find", "series_labels", ["service", "key", "value", "type", "series_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE series_labels")  # the planner's first queries on it would guess its size


def _backfill(conn: sa.Connection) -> None:
    table = sa.table("series_labels", *(sa.column(c) for c in ("series_id", "position", "service", "type", "key",
                                                                "value")))
    rows = []
    for sid, service, ptype, labels in conn.execute(sa.text("SELECT id, service, type, labels FROM series")).all():
        rows.extend({"series_id": sid, "position": i, "service": service, "type": ptype, "key": k, "value": v}
                    for i, (k, v) in enumerate(json.loads(labels)))
        if len(rows) >= _BATCH:
            conn.execute(sa.insert(table), rows)
            rows = []
    if rows:
        conn.execute(sa.insert(table), rows)


def downgrade() -> None:
    op.drop_index("series_labels_find", table_name="series_labels")
    op.drop_table("series_labels")
